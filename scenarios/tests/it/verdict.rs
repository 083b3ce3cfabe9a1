//! The verdict: safety apart from liveness, a budget cut-off as liveness, and
//! the heal before the drain is judged (`scenarios::verdict`, `run.heal_at_s`).
//!
//! `check` renders what a verdict is made of (exit code, verdict line, the
//! heal, each oracle with its property) and pins it with insta beside the
//! seed snapshots (`snapshots/verdict-*.snap`).

use std::fmt::Write as _;

use scenarios::verdict::Verdict;
use scenarios::{exit, Report};

/// Runs builtin scenario `name`, with `extra` TOML appended to its file (more
/// `[[faults]]`, say), under `seed` and `sets`.
fn run(name: &str, extra: &str, seed: u64, sets: &[&str]) -> Report {
    let (_, text) = scenarios::scenario::BUILTIN.iter().find(|(n, _)| *n == name).expect("builtin");
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let (scenario, _) = scenarios::scenario::parse(&format!("{text}\n{extra}"), &sets).unwrap();
    scenarios::run(&scenario, seed)
}

/// What the verdict of `report` is made of, pinned as `verdict-{snapshot}`.
fn check(snapshot: &str, report: &Report, exit_code: i32) {
    assert_eq!(report.exit_code, exit_code, "{}", report.verdict);
    let mut s = String::new();
    let _ = writeln!(s, "exit={} verdict={}", report.exit_code, report.verdict);
    let _ =
        writeln!(s, "ending={:?} sim_time_ms={} load_sim_ms={}", report.ending, report.sim_time_ms, report.load_sim_ms);
    match &report.heal {
        Some(h) => {
            let _ = writeln!(s, "heal at_ms={} healed={:?}", h.at_ms, h.healed);
        }
        None => {
            let _ = writeln!(s, "heal none");
        }
    }
    for o in &report.oracles {
        let _ = writeln!(
            s,
            "oracle {} {:?} {:?} checked={} violations={}",
            o.name,
            o.property,
            o.status,
            o.checked,
            o.violations.len()
        );
        if !o.tally.is_empty() {
            let _ = writeln!(s, "  tally {:?}", o.tally);
        }
    }
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(format!("verdict-{snapshot}"), s);
    });
}

/// The smoke run cut off after 1 s of simulated time (turmoil's whole-ms links
/// are slow enough that the 25 turns each are not done by then): liveness,
/// exit 3. A worker was inside its critical section at the cut, its record
/// already on the server but not yet noted: pending, not a safety violation.
#[test]
fn smoke_cut_off_by_its_budget_is_a_liveness_verdict_not_a_safety_one() {
    let report = run("smoke", "", 7, &["run.duration_s_max=1", "network.engine=turmoil"]);
    check("smoke-seed-7-cut-at-1s", &report, exit::LIVENESS);
    assert!(report.verdicts.safety.is_empty(), "{}", report.verdict);
    assert_eq!(report.verdict, "liveness: the 1s simulated-time budget ran out");
    let out = crate::mmsim(&[
        "run",
        "smoke",
        "--seed",
        "7",
        "--set",
        "run.duration_s_max=1",
        "--set",
        "network.engine=turmoil",
    ]);
    assert_eq!(out.status.code(), Some(exit::LIVENESS), "{}", String::from_utf8_lossy(&out.stdout));
}

/// crash-recovery at its pinned settings fails safety (`lost_update`, events
/// long before the cut) and liveness (mail2's slice never drains after the
/// restart, and the budget runs out): exit 1, both reported, safety first,
/// and `liveness` judged after the heal, which comes once the load is over and
/// the last scheduled fault (t=100 s) has fired.
#[test]
fn crash_recovery_reports_its_safety_violation_and_its_liveness_failure_apart() {
    let report = run("crash-recovery", "", 1, &["load.posts=30", "run.duration_s_max=400"]);
    check("crash-recovery-seed-1-load_posts_30-run_duration_s_max_400", &report, exit::SAFETY);
    assert_eq!(report.verdicts.safety, ["lost_update"]);
    assert_eq!(report.verdicts.liveness, ["the 400s simulated-time budget ran out", "oracle liveness"]);
    assert!(report.verdict.starts_with("safety violation: lost_update; liveness: "), "{}", report.verdict);
    let heal = report.heal.as_ref().expect("the run healed before it was cut");
    assert!(
        heal.at_ms >= 100_000 && heal.at_ms >= report.load_sim_ms,
        "{heal:?}, load ended at {} ms",
        report.load_sim_ms
    );
}

/// A partition of client2 from the server that outlasts the load: client2's
/// worker hangs on its hard mount, so the load never ends, the run never heals
/// by itself and the budget cuts it (liveness). With `run.heal_at_s` the heal
/// repairs the partition at 2 s, client2's retransmissions get through, and the
/// run passes.
#[test]
fn the_heal_repairs_a_partition_that_outlasts_the_load() {
    let partition = "[[faults]]\nkind = \"partition\"\nat_s = 0.05\na = \"client2\"\nb = \"nfs\"\nwindow_s = 100000\n";
    let unhealed = run("smoke", partition, 7, &["run.duration_s_max=30"]);
    check("smoke-seed-7-partition-unhealed", &unhealed, exit::LIVENESS);
    assert!(unhealed.heal.is_none());
    let healed = run("smoke", partition, 7, &["run.duration_s_max=30", "run.heal_at_s=2"]);
    check("smoke-seed-7-partition-healed-at-2s", &healed, exit::PASS);
    let heal = healed.heal.as_ref().expect("healed");
    assert_eq!((heal.at_ms, heal.healed.as_slice()), (2000, &["partition client2 nfs".to_string()][..]));
}

/// A fault at or after `run.heal_at_s` would be silently dropped by the heal: refused at the door.
#[test]
fn a_fault_after_the_heal_is_bad_input() {
    let (_, text) = scenarios::scenario::BUILTIN.iter().find(|(n, _)| *n == "crash-recovery").unwrap();
    let err = scenarios::scenario::parse(text, &["run.heal_at_s=50".to_string()]).unwrap_err();
    assert!(err.to_string().contains("faults.1.at_s: 60 s is not before run.heal_at_s (50 s)"), "{err}");
}

/// Every failing part is reported, in order; the exit code is the first.
#[test]
fn a_verdict_lists_every_failing_part_safety_first() {
    let cases: &[(Verdict, i32, &str)] = &[
        (Verdict::default(), exit::PASS, "pass"),
        (
            Verdict {
                safety: vec!["lock_exclusion".into()],
                liveness: vec!["the 1s simulated-time budget ran out".into()],
                nondeterminism: Some("at event 9".into()),
                ..Verdict::default()
            },
            exit::SAFETY,
            "safety violation: lock_exclusion; liveness: the 1s simulated-time budget ran out; nondeterminism at event 9",
        ),
        (
            Verdict { liveness: vec!["oracle liveness".into()], vacuous: vec!["lock_contended".into()], ..Verdict::default() },
            exit::LIVENESS,
            "liveness: oracle liveness; vacuous: required marks never hit: lock_contended",
        ),
        (Verdict { vacuous: vec!["drc_hit".into()], ..Verdict::default() }, exit::VACUOUS, "vacuous: required marks never hit: drc_hit"),
        (Verdict { nondeterminism: Some("at event 3".into()), ..Verdict::default() }, exit::NONDETERMINISM, "nondeterminism at event 3"),
    ];
    for (verdict, code, line) in cases {
        assert_eq!((verdict.exit_code(), verdict.render().as_str()), (*code, *line));
    }
}
