//! The pct scheduler as a scenario setting: it changes the history, replays with
//! the seed, is reported with its parameters, names itself in sweeps, and bad
//! scheduler input is one line and exit code 2.

use super::mmsim;

fn run(name: &str, seed: u64, sets: &[&str]) -> scenarios::RunOutput {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let (scenario, _) = scenarios::scenario::load(name, &sets).unwrap();
    scenarios::run_full(&scenario, seed, "")
}

/// (scenario, seed, sets, pct's own sets): smoke is short, so its change points
/// are drawn over its own length.
const CASES: &[(&str, u64, &[&str], &[&str])] = &[
    ("smoke", 7, &[], &["sched.horizon_calls=400"]),
    ("lock-stress", 1, &[], &[]),
    ("slices-two-hosts", 1, &["load.posts=5"], &[]),
];

#[test]
fn pct_changes_the_history_and_replays_it_with_the_seed() {
    for &(name, seed, sets, pct) in CASES {
        let default = run(name, seed, sets);
        let pct_sets: Vec<&str> = sets.iter().chain(&["sched.kind=pct"]).chain(pct).copied().collect();
        let a = run(name, seed, &pct_sets);
        let b = run(name, seed, &pct_sets);
        assert_ne!(a.report.trace_hash, default.report.trace_hash, "{name}: pct changes the history");
        assert_eq!(a.trace.line_hashes(), b.trace.line_hashes(), "{name}: pct replays event for event");
        assert_eq!(a.report.sched, b.report.sched);
        assert!(a.report.sched.deferred_ms > 0, "{name}: some call waited behind a higher priority");
        assert!(a.report.sched.priority_changes > 0, "{name}: a change point was reached");
    }
}

#[test]
fn pct_passes_check_determinism_from_the_cli() {
    let out = mmsim(&["run", "smoke", "--seed", "3", "--sched", "pct", "--depth", "2", "--check-determinism"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_different_depth_draws_a_different_schedule() {
    let hashes: std::collections::BTreeSet<String> = [1, 3, 8]
        .iter()
        .map(|d| {
            let depth = format!("sched.depth={d}");
            let out = run("lock-stress", 1, &["sched.kind=pct", &depth]);
            assert_eq!(out.report.sched.change_points.len(), *d as usize);
            out.report.trace_hash
        })
        .collect();
    assert_eq!(hashes.len(), 3, "{hashes:?}");
}

#[test]
fn the_report_shows_the_scheduler_its_draws_and_claims_no_bound() {
    let out = mmsim(&["run", "smoke", "--seed", "5", "--sched", "pct", "--depth", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sched = &v["sched"];
    assert_eq!(sched["kind"], "pct");
    assert_eq!(sched["depth"], 2);
    assert_eq!(sched["horizon_calls"], 5000);
    assert_eq!(sched["change_points"].as_array().unwrap().len(), 2);
    assert!(sched["priority_changes"].as_u64().unwrap() <= 2);
    assert!(v["replay"].as_str().unwrap().ends_with("--seed 5 --sched pct --depth 2"), "{}", v["replay"]);
    let text =
        String::from_utf8(mmsim(&["run", "smoke", "--seed", "5", "--sched", "pct", "--depth", "2"]).stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("sched")).expect("a sched line");
    assert!(line.contains("pct depth=2") && line.contains("change points at calls"), "{line}");
    assert!(line.contains("no probability bound is claimed"), "{line}");
    let text = String::from_utf8(mmsim(&["run", "smoke", "--seed", "5"]).stdout).unwrap();
    assert!(text.contains("sched       default (latency-driven)"), "{text}");
}

#[test]
fn bad_scheduler_input_gets_one_line_and_exit_code_2() {
    for (args, needle) in [
        (&["run", "smoke", "--depth", "3"][..], "--depth: only with --sched pct"),
        (&["run", "smoke", "--sched", "default", "--depth", "2"], "--depth: only with --sched pct"),
        (&["sweep", "smoke", "--seeds", "0..2", "--depth", "2"], "--depth: only with --sched pct"),
        (&["run", "nosuch", "--depth", "2"], "unknown scenario \"nosuch\""),
        (&["run", "smoke", "--sched", "pct", "--depth", "101"], "sched.depth: expected 0..=100"),
        (&["explain", "smoke", "--sched", "pct", "--depth", "-1"], "-1"),
        (&["run", "smoke", "--sched", "fifo"], "unknown variant `fifo`, expected `default` or `pct`"),
        (&["timeline", "smoke", "--sched", "fifo", "--out", "/tmp/x.html"], "unknown variant `fifo`"),
        (&["run", "smoke", "--set", "sched.depth=5"], "apply only with sched.kind = \"pct\""),
        (&["run", "smoke", "--sched", "pct", "--set", "sched.horizon_calls=0"], "sched.horizon_calls"),
        (&["shrink", "smoke", "--seed", "1", "--sched", "pct", "--set", "sched.defer_ms_max=99999"], "defer_ms_max"),
    ] {
        let out = mmsim(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line expected, got {stderr:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr:?} lacks {needle:?}");
    }
}

#[test]
fn sweep_lines_and_summary_name_the_scheduler_for_any_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let sweep = |jobs: &str, out: &str| {
        let args = ["sweep", "smoke", "--seeds", "0..4", "--jobs", jobs, "--sched", "pct", "--out", out];
        let out = mmsim(&[&args[..], &["--set", "sched.horizon_calls=400"]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    };
    let summary = sweep("1", &p("j1"));
    sweep("2", &p("j2"));
    let j1 = std::fs::read_to_string(p("j1")).unwrap();
    assert_eq!(j1, std::fs::read_to_string(p("j2")).unwrap());
    for line in j1.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["sched"], "pct depth=3", "{line}");
    }
    assert!(summary.contains("sched pct depth=3: 0/4 seeds failed"), "{summary}");
}

#[test]
fn the_summary_names_the_scheduler_that_found_each_failure() {
    let line = |seed: u64, exit_code: i32, sched: &str| scenarios::sweep::SeedLine {
        sched: sched.into(),
        exit_code,
        first_violation: (exit_code == 1).then(|| "lock_exclusion: two holders".into()),
        ..scenarios::sweep::SeedLine::crashed(seed, "x".into())
    };
    // A merge of a default shard and a pct shard.
    let lines = [line(1, 0, "default"), line(2, 1, "pct depth=3"), line(3, 0, "pct depth=3"), line(4, 1, "")];
    let s = scenarios::sweep::summary(&lines, "lock-stress", "");
    assert!(s.contains("sched default: 1/2 seeds failed"), "{s}");
    assert!(s.contains("sched pct depth=3: 1/2 seeds failed"), "{s}");
    assert!(s.contains("seed 2 exit 1 (sched pct depth=3): lock_exclusion: two holders"), "{s}");
    assert!(s.contains("seed 4 exit 1 (sched default)"), "{s}");
}
