//! Server crash and reboot (docs/semantics/nfs-server.md §5, §6): unstable writes, the `async`
//! export, hard mounts across the outage.

use std::time::Duration;

use sim::{Export, MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, rw, show, Bench};

#[test]
fn server_reboot_loses_uncommitted_writes_and_the_client_resends() {
    let mut b = Bench::new(config(50, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        let fd = p.open("f", rw()).await.unwrap();
        p.write(fd, b"precious").await.unwrap();
        // stat flushes the dirty page as an UNSTABLE WRITE, without a COMMIT.
        push(&log, format!("size {}", p.stat("f").await.unwrap().attr.size));
        at(&p, 2000).await;
        push(&log, format!("close {}", show(&p.close(fd).await)));
    });
    b.run_to(1000);
    assert_eq!(b.sim.world().with_server(|s| s.store.read_file("f").map(|d| d.to_vec())), Some(b"precious".to_vec()));
    b.sim.reboot_server(Duration::from_millis(300));
    assert_eq!(b.sim.world().with_server(|s| s.store.read_file("f").map(|d| d.len())), Some(0), "lost");
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["size 8", "close ok"]);
    assert_eq!(b.sim.world().with_server(|s| s.store.read_file("f").map(|d| d.to_vec())), Some(b"precious".to_vec()));
    let c = b.sim.world().counters();
    assert_eq!((c.unstable_files_lost, c.writes_resent), (1, 1));
}

fn reboot_after_create(export: Export) -> Vec<String> {
    let server = ServerConfig { export, async_sync_ms: 60_000, ..ServerConfig::default() };
    let mut b = Bench::new(config(
        51,
        server,
        vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])],
    ));
    b.program("one", |p, log| async move {
        at(&p, 500).await;
        let fd = p.open("lock", rw()).await;
        push(&log, format!("create {}", show(&fd)));
        p.close(fd.unwrap()).await.unwrap();
        at(&p, 3000).await;
        push(&log, format!("h1 open {}", show(&p.open("lock", crate::harness::ro()).await)));
    });
    b.program("two", |p, log| async move {
        at(&p, 3500).await;
        push(&log, format!("h2 stat {}", show(&p.stat("lock").await)));
    });
    b.run_to(1000);
    b.sim.reboot_server(Duration::from_millis(500));
    b.run_until_done(10_000);
    b.lines()
}

#[test]
fn async_export_rolls_back_an_acknowledged_create() {
    assert_eq!(reboot_after_create(Export::Async), ["create ok", "h1 open ENOENT", "h2 stat ENOENT"]);
}

#[test]
fn sync_export_keeps_an_acknowledged_create_across_a_reboot() {
    assert_eq!(reboot_after_create(Export::Sync), ["create ok", "h1 open ok", "h2 stat ok"]);
}

#[test]
fn hard_mount_blocks_across_a_server_reboot() {
    let mut b = Bench::new(config(52, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        at(&p, 1000).await;
        let r = p.mkdir("d").await;
        push(&log, format!("mkdir {} after {} s", show(&r), sim::true_now().as_secs()));
    });
    b.run_to(900);
    b.sim.reboot_server(Duration::from_secs(10));
    b.run_until_done(60_000);
    assert_eq!(b.lines(), ["mkdir ok after 17 s"]);
    assert!(b.sim.world().counters().requests_dropped_server_down >= 4);
}
