//! Hot paths of the simulation, measured in isolation (`cargo bench -p sim`).
//!
//! - `store_*`: one server procedure applied to the inode store.
//! - `attr_cache_fresh`, `dentry_cache_get`: client cache lookups.
//! - `trace_push_*`: recording one event (canonical text plus both hashes).
//! - `step_*`: one 1 ms simulation step: idle hosts (turmoil's floor, see
//!   docs/determinism.md §6), and a process making 100 gated calls per step.

use std::rc::Rc;
use std::time::Duration;

use divan::Bencher;
use sim::nfs::attr_cache::AttrCache;
use sim::nfs::dentry_cache::{Dentry, DentryCache, DentryKind};
use sim::nfs::mount::AcBounds;
use sim::nfs::proto::{CreateMode, Fh, Ftype, Request};
use sim::nfs::store::Store;
use sim::{BootProgram, EventKind, GateConfig, HostConfig, Proc, ReaddirOrder, Simulation, Trace, WorldConfig};

fn main() {
    divan::main();
}

fn store_with_dir(files: u64) -> (Store, Fh) {
    let mut store = Store::new(1_000_000_000, 1, ReaddirOrder::Creation, 7);
    let root = store.resolve("").expect("root");
    store.apply(&Request::Mkdir { dir: root, name: "qfiles".into() }, 2_000_000_000);
    let dir = store.resolve("qfiles").expect("qfiles");
    for i in 0..files {
        store.apply(&Request::Create { dir, name: format!("f{i}"), mode: CreateMode::Unchecked }, 3_000_000_000);
    }
    (store, dir)
}

#[divan::bench(args = [10, 1000])]
fn store_lookup(bencher: Bencher, files: u64) {
    let (mut store, dir) = store_with_dir(files);
    let req = Request::Lookup { dir, name: format!("f{}", files / 2) };
    bencher.bench_local(|| divan::black_box(store.apply(&req, 4_000_000_000)));
}

#[divan::bench(args = [10, 1000])]
fn store_create_remove(bencher: Bencher, files: u64) {
    let (mut store, dir) = store_with_dir(files);
    let create = Request::Create { dir, name: "new".into(), mode: CreateMode::Guarded };
    let remove = Request::Remove { dir, name: "new".into() };
    bencher.bench_local(|| {
        divan::black_box(store.apply(&create, 4_000_000_000));
        divan::black_box(store.apply(&remove, 4_000_000_000));
    });
}

#[divan::bench]
fn attr_cache_fresh(bencher: Bencher) {
    let bounds = AcBounds {
        reg_min: Duration::from_secs(3),
        reg_max: Duration::from_secs(60),
        dir_min: Duration::from_secs(30),
        dir_max: Duration::from_secs(60),
    };
    let (mut store, dir) = store_with_dir(100);
    let mut cache = AttrCache::new(bounds);
    let mut fhs = Vec::new();
    for i in 0..100 {
        let fh = store.resolve(&format!("qfiles/f{i}")).expect("file");
        if let Some(attr) = store.apply(&Request::Getattr { fh }, 5_000_000_000).obj {
            cache.update(fh, attr, Duration::from_secs(5), i);
        }
        fhs.push(fh);
    }
    let _ = dir;
    let fh = fhs[50];
    bencher.bench_local(|| divan::black_box(cache.fresh(fh, Duration::from_secs(6)).is_some()));
}

#[divan::bench]
fn dentry_cache_get(bencher: Bencher) {
    let mut cache = DentryCache::default();
    let dir = Fh { ino: 2, gen: 1 };
    for i in 0..100u64 {
        let kind = DentryKind::Positive { fh: Fh { ino: 10 + i, gen: 1 }, ftype: Ftype::Reg };
        cache.insert(
            dir,
            &format!("name{i}"),
            Dentry { kind, verifier: 0, renewed: std::time::Duration::ZERO, filled_by_ev: i },
        );
    }
    bencher.bench_local(|| divan::black_box(cache.get(dir, "name50")));
}

#[divan::bench]
fn trace_push_call(bencher: Bencher) {
    let host: Rc<str> = "mail1".into();
    let mut trace = Trace::default();
    let mut span = 0;
    bencher.bench_local(|| {
        span += 1;
        trace.push(
            Duration::from_micros(span),
            EventKind::Call {
                span,
                host: host.clone(),
                pid: 7,
                op: "open",
                args: format!("{:?} {}", "locks/test.lock.mail1.7", "WRONLY|CREAT|EXCL"),
                outcome: Err(17),
                served_by: format!("x{span}"),
                started: Duration::from_micros(span),
            },
        )
    });
}

fn world(hosts: usize, program: &str) -> WorldConfig {
    WorldConfig {
        seed: 3,
        engine: Default::default(),
        net: sim::LinkProfile::WholeMs.net_config(),
        server: Default::default(),
        gate: GateConfig::default(),
        sched: Default::default(),
        hosts: (0..hosts)
            .map(|i| HostConfig {
                name: format!("h{i}"),
                clock: Default::default(),
                mount: Default::default(),
                link: Default::default(),
                boot: vec![BootProgram { program: program.into(), args: vec![], start_ms: 0 }],
            })
            .collect(),
    }
}

fn register(sim: &Simulation) {
    sim.world().register_program(
        "idle",
        Rc::new(|p: Proc, _| {
            Box::pin(async move {
                p.sleep(Duration::from_secs(1_000_000)).await;
                0
            })
        }),
    );
    // 100 gated calls (`seek` on a closed fd: the gate and a recorded call, no RPC), then 1 ms.
    sim.world().register_program(
        "gated",
        Rc::new(|p: Proc, _| {
            Box::pin(async move {
                loop {
                    for _ in 0..100 {
                        let _ = p.seek(99, 0).await;
                    }
                    p.sleep(Duration::from_millis(1)).await;
                }
            })
        }),
    );
}

/// 1000 steps of a world with the NFS server and `hosts` idle client hosts.
#[divan::bench(args = [1, 4], sample_count = 10)]
fn step_idle_1000(bencher: Bencher, hosts: usize) {
    bencher.bench_local(|| {
        let mut sim = Simulation::new(world(hosts, "idle"));
        register(&sim);
        for _ in 0..1000 {
            sim.step().expect("step");
        }
    });
}

/// 1000 steps with one process passing the gate 100 times per step.
#[divan::bench(sample_count = 10)]
fn step_gated_1000(bencher: Bencher) {
    bencher.bench_local(|| {
        let mut sim = Simulation::new(world(1, "gated"));
        register(&sim);
        for _ in 0..1000 {
            sim.step().expect("step");
        }
    });
}
