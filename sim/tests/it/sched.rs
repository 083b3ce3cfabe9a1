//! The pct scheduler at the gate: priorities decide which of two processes that
//! reach the gate in the same step goes first; the default scheduler leaves the
//! order to the host's task order.

use sim::{SchedConfig, SchedKind, ServerConfig};

use crate::harness::{config, host, Bench};

/// Two processes on one host, each making one `mkdir` in the first step.
/// Returns (pid, step its call started) in the order the calls passed the gate
/// (span order: calls are recorded when they return), and each pid's priority.
fn race(seed: u64, sched: SchedConfig) -> (Vec<(u32, u64)>, [Option<u64>; 2]) {
    let mut cfg = config(seed, ServerConfig::default(), vec![host("h1", Default::default(), &["maker", "maker"])]);
    cfg.sched = sched;
    let mut b = Bench::new(cfg);
    b.program("maker", |p, _| async move {
        p.mkdir(&format!("d{}", p.pid())).await.unwrap();
    });
    b.run_until_done(1_000);
    let trace = b.sim.world().trace();
    let mut calls: Vec<(u64, u32, u64)> = trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            sim::EventKind::Call { op: "mkdir", span, pid, started, .. } => {
                Some((*span, *pid, started.as_millis() as u64))
            }
            _ => None,
        })
        .collect();
    calls.sort_unstable();
    let calls = calls.into_iter().map(|(_, pid, started)| (pid, started)).collect();
    let world = b.sim.world();
    (calls, [world.sched_priority("h1", 1), world.sched_priority("h1", 2)])
}

fn pct() -> SchedConfig {
    SchedConfig { kind: SchedKind::Pct, depth: 0, ..SchedConfig::default() }
}

#[test]
fn under_the_default_scheduler_two_calls_in_one_step_go_in_task_order() {
    let (calls, priorities) = race(1, SchedConfig::default());
    assert_eq!(calls, [(1, 0), (2, 0)]);
    assert_eq!(priorities, [None, None]);
}

#[test]
fn pct_priorities_reorder_two_calls_of_one_step() {
    // Over a few seeds both priority orders occur; in each, the higher-priority
    // process's call starts first and the other's is deferred to a later step.
    let mut orders = std::collections::BTreeSet::new();
    for seed in 1..=8 {
        let (calls, [p1, p2]) = race(seed, pct());
        let (p1, p2) = (p1.expect("pct priority"), p2.expect("pct priority"));
        let (first, second) = if p1 > p2 { (1, 2) } else { (2, 1) };
        assert_eq!(calls.len(), 2, "seed {seed}: {calls:?}");
        assert_eq!((calls[0].0, calls[1].0), (first, second), "seed {seed}: priorities {p1} {p2}: {calls:?}");
        assert_eq!(calls[0].1, 0, "seed {seed}: the higher priority goes in the first step: {calls:?}");
        assert!(calls[1].1 > calls[0].1, "seed {seed}: the lower priority waits a step: {calls:?}");
        orders.insert(first);
    }
    assert_eq!(orders.len(), 2, "both priority orders occur over the seeds");
}

#[test]
fn a_change_point_drops_the_calling_process_below_every_other() {
    // depth 1 over a horizon of one call: the very first call (pid 1's) reaches
    // the change point, so pid 1 ends with priority 1 and goes second.
    let (calls, [p1, p2]) = race(5, SchedConfig { kind: SchedKind::Pct, depth: 1, horizon_calls: 1, defer_ms_max: 20 });
    assert_eq!(p1, Some(1));
    assert!(p2.unwrap() > 1);
    assert_eq!(calls.iter().map(|c| c.0).collect::<Vec<_>>(), [2, 1]);
}

#[test]
fn a_wait_at_the_gate_is_bounded_by_defer_ms_max() {
    // With no wait allowed, both calls go in the first step whatever the priorities.
    for seed in 1..=4 {
        let (calls, _) = race(seed, SchedConfig { defer_ms_max: 0, ..pct() });
        assert_eq!(calls.iter().map(|c| c.1).collect::<Vec<_>>(), [0, 0], "seed {seed}: {calls:?}");
    }
}
