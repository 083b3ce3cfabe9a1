//! A `sync` export's disk (`ServerConfig::sync_metadata_us`,
//! docs/semantics/nfs-server-sync.md): a metadata change is visible to every
//! client at once, its reply waits for the disk, and one disk serialises the
//! commits.

use sim::{MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, show, write_file, Bench};

fn ms() -> u128 {
    sim::true_now().as_millis()
}

fn server(sync_metadata_us: u64) -> ServerConfig {
    ServerConfig { sync_metadata_us, ..ServerConfig::default() }
}

/// h1 renames `a` to `b` at 1 s; h2 stats `b` at 1.010 s (whole-ms links: 1 ms each way).
fn rename_seen_from_another_host(sync_metadata_us: u64) -> Vec<String> {
    let hosts = vec![host("h1", MountOptions::default(), &["renamer"]), host("h2", MountOptions::default(), &["looker"])];
    let mut b = Bench::new(config(60, server(sync_metadata_us), hosts));
    b.program("renamer", |p, log| async move {
        write_file(&p, "a", b"x").await;
        at(&p, 1000).await;
        let r = p.rename("a", "b").await;
        push(&log, format!("{} h1 rename {}", ms(), show(&r)));
    });
    b.program("looker", |p, log| async move {
        at(&p, 1010).await;
        let r = p.stat("b").await;
        push(&log, format!("{} h2 stat b {}", ms(), show(&r)));
    });
    b.run_until_done(10_000);
    let mut lines = b.lines();
    lines.sort();
    lines
}

#[test]
fn a_rename_is_visible_to_another_client_before_its_reply_leaves_the_disk() {
    // 50 ms of disk: the RENAME reaches the server at 1001 ms and is applied
    // there; h2's LOOKUP at 1011 ms finds `b`; h1's reply leaves at 1051 ms.
    assert_eq!(rename_seen_from_another_host(50_000), ["1012 h2 stat b ok", "1052 h1 rename ok"]);
    // Without the knob the reply leaves at once.
    assert_eq!(rename_seen_from_another_host(0), ["1002 h1 rename ok", "1012 h2 stat b ok"]);
}

/// h1 and h2 each make a directory at 1 s; both MKDIRs reach the server at 1001 ms.
fn two_mkdirs(sync_metadata_us: u64) -> Vec<String> {
    let hosts = vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])];
    let mut b = Bench::new(config(61, server(sync_metadata_us), hosts));
    b.program("one", |p, log| async move {
        at(&p, 1000).await;
        let r = p.mkdir("d1").await;
        push(&log, format!("{} {}", ms(), show(&r)));
    });
    b.program("two", |p, log| async move {
        at(&p, 1000).await;
        let r = p.mkdir("d2").await;
        push(&log, format!("{} {}", ms(), show(&r)));
    });
    b.run_until_done(10_000);
    let mut lines = b.lines();
    lines.sort();
    lines
}

#[test]
fn one_disk_serialises_the_commits_of_two_clients() {
    // The first commit ends at 1051 ms, the second queues behind it until 1101 ms.
    assert_eq!(two_mkdirs(50_000), ["1052 ok", "1102 ok"]);
    assert_eq!(two_mkdirs(0), ["1002 ok", "1002 ok"]);
}

#[test]
fn reads_and_lookups_do_not_wait_for_the_disk() {
    let hosts = vec![host("h1", MountOptions::default(), &["one"])];
    let mut b = Bench::new(config(62, server(50_000), hosts));
    b.program("one", |p, log| async move {
        at(&p, 1000).await;
        let r = p.stat("missing").await;
        push(&log, format!("{} {}", ms(), show(&r)));
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["1002 ENOENT"]);
}
