//! Regression snapshots: a compact, documented rendering of a pinned seed.
//!
//! `check(scenario, seed)` renders what must not change silently: verdicts,
//! oracle counts, non-zero marks, RPC counts and counters, steps, simulated
//! time and the trace hash.
//! Wall time and the build fingerprint are left out. Accept an intended change
//! with `cargo insta review`.

use std::fmt::Write as _;

fn check(name: &str, seed: u64) {
    let (scenario, _) = scenarios::scenario::load(name, &[]).unwrap();
    let r = scenarios::run(&scenario, seed);
    let mut s = String::new();
    let _ = writeln!(s, "{} seed={} exit={} verdict={}", r.scenario, r.seed, r.exit_code, r.verdict);
    let _ =
        writeln!(s, "sim_time_ms={} steps={} events={} trace_hash={}", r.sim_time_ms, r.steps, r.events, r.trace_hash);
    for o in &r.oracles {
        let _ = writeln!(s, "oracle {} {:?} checked={} violations={}", o.name, o.status, o.checked, o.violations.len());
    }
    let marks: Vec<String> = r.marks.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
    let _ = writeln!(s, "marks {}", marks.join(" "));
    let _ = writeln!(s, "rpcs {:?}", r.counters.rpcs);
    let _ = writeln!(s, "counters {}", scenarios::nonzero_counters(&r.counters).join(" "));
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(format!("{name}-seed-{seed}"), s);
    });
}

#[test]
fn smoke_seed_7() {
    check("smoke", 7);
}
