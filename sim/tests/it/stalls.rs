//! Process stalls at the sim gate, and determinism of the whole run.

use std::time::Duration;

use sim::{GateConfig, MountOptions, ServerConfig};

use crate::harness::{config, host, push, Bench};

fn run(stall_ppm: u32) -> (Vec<String>, u64, u64) {
    let mut cfg = config(70, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["worker", "worker"])]);
    cfg.gate = GateConfig { stall_ppm, stall_ms_median: 20, stall_ms_max: 2000, ..GateConfig::default() };
    let mut b = Bench::new(cfg);
    b.program("worker", |p, log| async move {
        for _ in 0..50 {
            p.sleep(Duration::from_millis(1)).await;
        }
        push(&log, format!("pid {} done at {} ms", p.pid(), sim::true_now().as_millis()));
    });
    b.run_until_done(60_000);
    let hash = b.sim.world().trace().hash();
    (b.lines(), b.sim.world().counters().stalls, hash)
}

#[test]
fn stalls_are_drawn_per_process_and_delay_only_the_stalled_process() {
    let (calm, stalls, _) = run(0);
    assert_eq!(stalls, 0);
    assert_eq!(calm, ["pid 1 done at 50 ms", "pid 2 done at 50 ms"]);
    let (stalled, stalls, hash) = run(100_000);
    assert!(stalls > 0);
    let times: Vec<u64> =
        stalled.iter().map(|l| l.split(" at ").nth(1).unwrap().trim_end_matches(" ms").parse().unwrap()).collect();
    assert!(times.iter().all(|&t| t > 50), "{stalled:?}");
    assert_ne!(times[0], times[1], "each process draws its own stalls: {stalled:?}");
    assert_eq!(run(100_000).2, hash, "the same seed stalls the same way");
}
