//! The events engine (docs/engines.md): nanosecond time, idle time skipped,
//! link latency plus transmission time, and both engines behind one seam.

use std::time::Duration;

use sim::{EngineKind, LinkProfile, MountOptions, ServerConfig, Simulation};

use crate::harness::{at, config, host, push, write_file, Bench};

fn bench(engine: EngineKind, profile: LinkProfile, program: &str) -> Bench {
    let mut c = config(5, ServerConfig::default(), vec![host("h1", MountOptions::default(), &[program])]);
    c.engine = engine;
    c.net = profile.net_config();
    Bench::new(c)
}

#[test]
fn sleeps_have_nanosecond_resolution_and_idle_time_costs_no_steps() {
    let mut b = bench(EngineKind::Events, LinkProfile::LanModern, "sleeper");
    b.program("sleeper", |p, log| async move {
        p.sleep(Duration::from_nanos(1_500)).await;
        push(&log, format!("{}", sim::true_now().as_nanos()));
        p.sleep(Duration::from_secs(3600)).await;
        push(&log, format!("{}", sim::true_now().as_nanos()));
    });
    b.sim.run_until(Duration::from_secs(7200)).unwrap();
    assert_eq!(b.lines(), ["1500", "3600000001500"]);
    // A few wake-ups, not 7.2 million 1 ms steps.
    assert!(b.sim.steps() < 20, "steps={}", b.sim.steps());
}

/// One GETATTR round trip (a `stat` of the root's child, its LOOKUP) and one
/// 8 KB WRITE: each pays two latencies plus its bytes' transmission time.
fn round_trips(profile: LinkProfile) -> (u64, u64) {
    let mut b = bench(EngineKind::Events, profile, "io");
    b.program("io", |p, log| async move {
        let t0 = sim::true_now();
        let _ = p.stat("nosuch").await;
        let t1 = sim::true_now();
        let fd = p.open("f", crate::harness::rw()).await.unwrap();
        p.write(fd, &[7u8; 8192]).await.unwrap();
        let t2 = sim::true_now();
        p.fsync(fd).await.unwrap();
        let t3 = sim::true_now();
        push(&log, format!("{}", (t1 - t0).as_nanos()));
        push(&log, format!("{}", (t3 - t2).as_nanos()));
    });
    b.run_until_done(10_000);
    let l = b.lines();
    (l[0].parse().unwrap(), l[1].parse().unwrap())
}

#[test]
fn an_rpc_pays_two_latencies_and_an_8k_write_pays_its_bytes() {
    let (lookup_2002, flush_2002) = round_trips(LinkProfile::Lan2002);
    let (lookup_modern, flush_modern) = round_trips(LinkProfile::LanModern);
    // lan-2002: 2 x 60 us plus about 300 bytes at 80 ns a byte.
    assert!((120_000..200_000).contains(&lookup_2002), "lookup {lookup_2002} ns");
    // The flush sends WRITE (8 KB: 655 us at 100 Mbit/s) and COMMIT.
    assert!(flush_2002 > 2 * 120_000 + 655_000, "flush {flush_2002} ns");
    // lan-modern: 2 x 25 us, 8 KB in under 7 us.
    assert!((50_000..60_000).contains(&lookup_modern), "lookup {lookup_modern} ns");
    assert!(flush_modern < 2 * 60_000 + 10_000, "flush {flush_modern} ns");
}

#[test]
fn the_turmoil_engine_rounds_every_duration_up_to_whole_milliseconds() {
    let mut b = bench(EngineKind::Turmoil, LinkProfile::LanModern, "io");
    b.program("io", |p, log| async move {
        let t0 = sim::true_now();
        let _ = p.stat("nosuch").await;
        push(&log, format!("{}", (sim::true_now() - t0).as_millis()));
    });
    b.run_until_done(10_000);
    // 25 us latency becomes 1 ms each way.
    assert_eq!(b.lines(), ["2"]);
}

#[test]
fn one_seed_gives_one_trace_on_each_engine() {
    for engine in [EngineKind::Events, EngineKind::Turmoil] {
        let hash = || {
            let mut b = bench(engine, LinkProfile::Lan2002, "io");
            b.program("io", |p, _| async move {
                for i in 0..20 {
                    let _ = p.mkdir(&format!("d{i}")).await;
                    p.sleep(Duration::from_micros(1 + p.random().to_bits() % 700)).await;
                }
            });
            b.run_until_done(60_000);
            let h = b.sim.world().trace().hash();
            h
        };
        assert_eq!(hash(), hash(), "{engine:?}");
    }
}

#[test]
fn a_crashed_host_loses_its_tasks_and_a_restart_boots_it_again() {
    let mut b = bench(EngineKind::Events, LinkProfile::LanModern, "ticker");
    b.program("ticker", |p, log| async move {
        loop {
            push(&log, format!("tick {}", p.incarnation()));
            p.sleep(Duration::from_millis(10)).await;
        }
    });
    b.sim.run_until(Duration::from_millis(25)).unwrap();
    b.sim.crash_host("h1");
    b.sim.run_until(Duration::from_millis(100)).unwrap();
    let ticks_while_down = b.lines().len();
    assert_eq!(ticks_while_down, 3, "{:?}", b.lines());
    b.sim.restart_host("h1");
    b.sim.run_until(Duration::from_millis(125)).unwrap();
    assert_eq!(b.lines()[3..], ["tick 2", "tick 2", "tick 2"]);
    let _: &Simulation = &b.sim;
}

/// A world is freed with its simulation: once the simulation is dropped, the
/// caller's handle is the only one left, under either engine, even with
/// processes still running, files open and NFS clients holding caches.
#[test]
fn dropping_a_simulation_leaves_no_other_handle_to_its_world() {
    for engine in [sim::EngineKind::Events, sim::EngineKind::Turmoil] {
        let hosts = vec![host("h1", MountOptions::default(), &["writer"]), host("h2", MountOptions::default(), &["reader"])];
        let mut cfg = config(62, ServerConfig::default(), hosts);
        cfg.engine = engine;
        let mut b = Bench::new(cfg);
        b.program("writer", |p, _log| async move {
            write_file(&p, "a", b"x").await;
            let _fd = p.open("a", crate::harness::ro()).await;
            at(&p, 100_000).await;
        });
        b.program("reader", |p, _log| async move {
            at(&p, 10).await;
            let _ = p.stat("a").await;
            at(&p, 100_000).await;
        });
        b.run_to(50);
        let world = b.sim.world().clone();
        assert!(world.handles() > 2, "{engine:?}: the running world is shared");
        drop(b);
        assert_eq!(world.handles(), 1, "{engine:?}");
    }
}
