//! The transport (docs/semantics/nfs-server.md §2): hard and soft mounts across a partition.

use std::time::Duration;

use sim::{Fault, MountKind, MountOptions, ServerConfig, TransportOptions, SERVER_HOST};

use crate::harness::{config, host, push, show, Bench};

fn partitioned(mount: MountKind, seconds: u64) -> (Bench, Vec<String>) {
    let m = MountOptions { transport: TransportOptions { mount, ..Default::default() }, ..MountOptions::default() };
    let mut b = Bench::new(config(30, ServerConfig::default(), vec![host("h1", m, &["one"])]));
    b.program("one", |p, log| async move {
        crate::harness::at(&p, 100).await;
        let r = p.mkdir("d").await;
        push(&log, format!("{} at {} ms", show(&r), sim::true_now().as_millis()));
    });
    b.sim.schedule(
        Duration::from_millis(50),
        Fault::Partition { a: "h1".into(), b: SERVER_HOST.into(), window: Duration::from_secs(seconds) },
    );
    b.run_until_done(200_000);
    let lines = b.lines();
    (b, lines)
}

#[test]
fn soft_mount_returns_eio_after_major_timeout() {
    // 1.1 + 2.2 + 4.4 + 8.8 s: the first transmission and three retransmissions.
    let (_, lines) = partitioned(MountKind::Soft, 100);
    assert_eq!(lines, ["EIO at 16600 ms"]);
}

#[test]
fn softerr_mount_returns_etimedout_after_major_timeout() {
    let (_, lines) = partitioned(MountKind::SoftErr, 100);
    assert_eq!(lines, ["ETIMEDOUT at 16600 ms"]);
}

#[test]
fn hard_mount_blocks_through_a_partition_and_then_succeeds() {
    let (b, lines) = partitioned(MountKind::Hard, 20);
    // Sent at 0.1 s; retransmitted at 1.2, 3.4, 7.8, 16.6 s (a major timeout: back to
    // 1.1 s), 17.7, 19.9 and 24.3 s, the first after the partition heals at 20.05 s.
    assert_eq!(lines, ["ok at 24302 ms"]);
    assert_eq!(b.sim.world().counters().retransmissions, 7);
}
