//! The sim gate: a spinning process ends in a liveness verdict, not a hang; a
//! crashed process's calls never return.

use std::rc::Rc;
use std::time::Duration;

use sim::{BootProgram, GateConfig, HostConfig, Proc, Simulation, WorldConfig};

fn world(program: &str, gate: GateConfig) -> WorldConfig {
    WorldConfig {
        seed: 3,
        engine: Default::default(),
        net: sim::LinkProfile::WholeMs.net_config(),
        server: Default::default(),
        gate,
        sched: Default::default(),
        hosts: vec![HostConfig {
            name: "h1".into(),
            clock: Default::default(),
            mount: Default::default(),
            link: Default::default(),
            boot: vec![BootProgram { program: program.into(), args: vec![], start_ms: 0 }],
        }],
    }
}

/// One host whose only process loops on zero sleeps, each a gated `Os` call.
fn spinning(gate: GateConfig) -> Simulation<'static> {
    let sim = Simulation::new(world("spin", gate));
    sim.world().register_program(
        "spin",
        Rc::new(|p: Proc, _| {
            Box::pin(async move {
                loop {
                    p.sleep(Duration::ZERO).await;
                }
            })
        }),
    );
    sim
}

#[test]
fn the_op_cap_ends_a_spinning_process_with_a_livelock_verdict() {
    // With no CPU cost charged, a loop of zero sleeps never lets time advance.
    let mut sim = spinning(GateConfig { cpu_cost_us_per_call: 0, ops_per_step_max: 500, ..GateConfig::default() });
    for _ in 0..100 {
        sim.step().unwrap();
        if sim.world().livelock().is_some() {
            break;
        }
    }
    let why = sim.world().livelock().expect("livelock detected");
    assert!(why.contains("h1/1"), "{why}");
    assert!(sim.steps() < 5);
}

#[test]
fn cpu_cost_makes_a_loop_of_cheap_calls_advance_simulated_time() {
    let mut sim = spinning(GateConfig { cpu_cost_us_per_call: 100, ops_per_step_max: 500, ..GateConfig::default() });
    for _ in 0..50 {
        sim.step().unwrap();
    }
    assert!(sim.world().livelock().is_none());
    // Ten calls per millisecond: about 500 calls in 50 steps.
    let calls = sim.world().counters().calls;
    assert!((400..=600).contains(&calls), "calls={calls}");
}

#[test]
fn no_call_issued_after_a_crash_gets_through() {
    let mut sim = Simulation::new(world("writer", GateConfig::default()));
    sim.world().register_program(
        "writer",
        Rc::new(|p: Proc, _| {
            Box::pin(async move {
                let mut i = 0;
                loop {
                    let _ = p.mkdir(&format!("d{i}")).await;
                    i += 1;
                }
            })
        }),
    );
    for _ in 0..40 {
        sim.step().unwrap();
    }
    assert!(sim.crash_process("h1", 1));
    let made = sim.world().with_server(|s| s.store.dump().len());
    for _ in 0..40 {
        sim.step().unwrap();
    }
    // At most the one MKDIR already in flight lands after the crash.
    let after = sim.world().with_server(|s| s.store.dump().len());
    assert!(after <= made + 1, "made={made} after={after}");
    assert!(made >= 5);
}
