//! Sweeps: seed-ordered JSON lines identical for any --jobs and shard split,
//! crash isolation, and bad input refused before any work starts.

use crate::mmsim_command as mmsim;

/// A worker that has grown past its memory bound is replaced between seeds
/// (here after every seed): the lines are the same as with one worker for all.
#[test]
fn replacing_a_grown_worker_changes_no_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run = |out: &str, rss_max: Option<&str>| {
        let mut c = mmsim();
        c.args(["sweep", "two-servers", "--seeds", "1..4", "--set", "load.posts=10", "--jobs", "1", "--out", out]);
        if let Some(max) = rss_max {
            c.env("MMSIM_WORKER_RSS_MAX_BYTES", max);
        }
        let o = c.output().unwrap();
        assert!(o.status.code().is_some_and(|c| c < 2), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&p("kept"), None);
    run(&p("replaced"), Some("1"));
    let kept = std::fs::read_to_string(p("kept")).unwrap();
    assert_eq!(kept.lines().count(), 3);
    assert_eq!(kept, std::fs::read_to_string(p("replaced")).unwrap());
}

#[test]
fn sweep_output_is_identical_for_any_jobs_and_any_shard_split() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run = |args: &[&str]| {
        let out = mmsim().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["sweep", "smoke", "--seeds", "10..30", "--jobs", "1", "--out", &p("j1")]);
    run(&["sweep", "smoke", "--seeds", "10..30", "--jobs", "2", "--out", &p("j2")]);
    run(&["sweep", "smoke", "--seeds", "10..30", "--shard", "0/3", "--out", &p("s0")]);
    run(&["sweep", "smoke", "--seeds", "10..30", "--shard", "2/3", "--out", &p("s2")]);
    run(&["sweep", "smoke", "--seeds", "10..30", "--shard", "1/3", "--out", &p("s1")]);
    run(&["merge", &p("s2"), &p("s0"), &p("s1"), "--out", &p("m")]);
    let j1 = std::fs::read(p("j1")).unwrap();
    assert_eq!(j1, std::fs::read(p("j2")).unwrap());
    assert_eq!(j1, std::fs::read(p("m")).unwrap());
    let text = String::from_utf8(j1).unwrap();
    let seeds: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, (10..30).collect::<Vec<_>>());
}

#[test]
fn a_worker_that_dies_costs_only_its_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("r.jsonl");
    let out = mmsim()
        .args(["sweep", "smoke", "--seeds", "0..6", "--jobs", "2", "--out", out_path.to_str().unwrap()])
        .env("MMSIM_WORKER_ABORT_ON_SEED", "3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "the sweep exits with the highest seed exit code");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out_path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    for l in &lines {
        let expected = if l["seed"] == 3 { 6 } else { 0 };
        assert_eq!(l["exit_code"], expected, "{l}");
    }
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("mmsim run smoke --seed 3"), "{summary}");
}

#[test]
fn bad_sweep_arguments_are_refused_with_exit_2() {
    for args in [
        &["sweep", "smoke", "--seeds", "5..5"][..],
        &["sweep", "smoke", "--seeds", "x..9"],
        &["sweep", "smoke", "--seeds", "0..9", "--shard", "3/3"],
        &["sweep", "smoke", "--seeds", "0..9", "--shard", "1"],
        &["sweep", "smoke", "--seeds", "0..9", "--jobs", "0"],
        &["sweep", "smoke", "--seeds", "0..9", "--out", "/nonexistent-dir/r.jsonl"],
        &["sweep", "nosuch", "--seeds", "0..9"],
        &["merge", "/nonexistent-file.jsonl"],
    ] {
        let out = mmsim().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim().lines().count(), 1, "{args:?}");
    }
}

/// `MMSIM_TEST_SEEDS=A..B` (default `0..8`) and `MMSIM_TEST_JOBS=N` (default 2)
/// let `cargo test` run a scenario over many seeds, in isolated workers.
#[test]
fn smoke_passes_over_the_test_seed_range() {
    let seeds = std::env::var("MMSIM_TEST_SEEDS").unwrap_or_else(|_| "0..8".into());
    let jobs: usize = std::env::var("MMSIM_TEST_JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let range = scenarios::sweep::parse_seed_range(&seeds).expect("MMSIM_TEST_SEEDS is A..B");
    let opts = scenarios::sweep::Options {
        exe: env!("CARGO_BIN_EXE_mmsim").into(),
        worker_args: vec!["smoke".into()],
        seeds: range,
        jobs,
        out: None,
        stop_on_first: false,
        timeout: std::time::Duration::from_secs(300),
        progress: false,
        sched: "default".into(),
    };
    let lines = scenarios::sweep::sweep(&opts).unwrap();
    assert_eq!(lines.len() as u64, range.1 - range.0);
    let failing: Vec<_> = lines.iter().filter(|l| l.exit_code != 0).collect();
    assert!(failing.is_empty(), "{}", scenarios::sweep::summary(&lines, "smoke", ""));
}

#[test]
fn swarm_mode_draws_faults_from_the_seed_and_replays_them() {
    let run = |seed: &str| {
        let out = mmsim()
            .args(["run", "lock-stress", "--seed", seed, "--swarm", "--json", "--set", "lock-stress.ignored=1"])
            .output()
            .unwrap();
        out
    };
    // A bad --set is still bad input in swarm mode.
    assert_eq!(run("3").status.code(), Some(2));
    let json = |seed: &str| -> serde_json::Value {
        let out = mmsim().args(["run", "smoke", "--seed", seed, "--swarm", "--json"]).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let a = json("11");
    let b = json("11");
    assert_eq!(a["trace_hash"], b["trace_hash"], "the drawn faults are part of what the seed replays");
    assert_eq!(a["swarm"], b["swarm"]);
    assert!(a["replay"].as_str().unwrap().ends_with("--swarm"));
    let draws: std::collections::BTreeSet<String> =
        (0..12).map(|s| json(&s.to_string())["swarm"].to_string()).collect();
    assert!(draws.len() >= 6, "seeds draw different fault mixes: {draws:?}");
}
