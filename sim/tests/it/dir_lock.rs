//! The VFS directory locks of one client host (docs/semantics/dir-locking.md):
//! namespace operations hold their parent directories across their RPCs; a
//! lookup that has to ask the server waits for them; a valid dentry-cache hit
//! does not; other hosts never see them.

use std::time::Duration;

use sim::nfs::mount::DirLock;
use sim::{true_now, ClientProfile, Fault, Flags, LookupCache, MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, ro, show, write_file, Bench};

fn excl() -> Flags {
    Flags { write: true, create: true, exclusive: true, ..Default::default() }
}

/// The server-side procedures (`CREATE`, `RENAME`, …) applied for `host`, in order,
/// each with its canonical line.
fn applied(b: &Bench, host: &str, procs: &[&str]) -> Vec<String> {
    b.events("apply")
        .into_iter()
        .filter(|l| l.contains(&format!(" apply {host} ")))
        .filter(|l| procs.iter().any(|p| l.contains(&format!(" {p} "))))
        .collect()
}

/// On h1 (mount `renamer`), process `renamer` keeps `t` open through `keeper`
/// and renames `new` over it at 1 s, with a 30 ms gap between the silly RENAME
/// and the RENAME; from 0.99 s process `watcher` on h1 and process `other` on h2
/// stat `t` every millisecond. Returns the log and the h1 lock waits.
fn busy_rename_run(renamer: MountOptions) -> (Vec<String>, u64) {
    let renamer = MountOptions { compound_gap_ms_max: 30, ..renamer };
    let mut b = Bench::new(config(
        90,
        ServerConfig::default(),
        vec![
            host("h1", renamer, &["renamer", "watcher"]),
            host("h2", MountOptions::profile(ClientProfile::LookupcacheNone), &["other"]),
        ],
    ));
    b.program("renamer", |p, log| async move {
        write_file(&p, "t", b"old!").await;
        write_file(&p, "new", b"new").await;
        let fd = p.open("t", ro()).await.unwrap();
        at(&p, 1000).await;
        push(&log, format!("rename {}", show(&p.rename("new", "t").await)));
        at(&p, 1200).await;
        p.close(fd).await.unwrap();
    });
    let watch = |who: &'static str| {
        move |p: sim::Proc, log: crate::harness::Log| async move {
            at(&p, 990).await;
            let (mut enoent, mut slowest, mut new_seen) = (0, Duration::ZERO, false);
            for _ in 0..60 {
                let t0 = true_now();
                match p.stat("t").await {
                    Err(libc::ENOENT) => enoent += 1,
                    Err(e) => push(&log, format!("{who} stat {}", sim::errno_name(e))),
                    Ok(a) => new_seen |= a.attr.size == 3,
                }
                slowest = slowest.max(true_now() - t0);
                p.sleep(Duration::from_millis(1)).await;
            }
            push(&log, format!("{who} ENOENT {}", if enoent > 0 { "seen" } else { "never" }));
            push(&log, format!("{who} waited {}", if slowest >= Duration::from_millis(20) { "yes" } else { "no" }));
            push(&log, format!("{who} new file {}", if new_seen { "seen" } else { "not seen" }));
        }
    };
    b.program("watcher", watch("h1 watcher"));
    b.program("other", watch("h2 other"));
    b.run_until_done(10_000);
    let renames = applied(&b, "h1", &["RENAME"]);
    assert_eq!(renames.len(), 2, "a silly RENAME, then the RENAME: {renames:?}");
    assert!(renames[0].contains("\"t\" -> 1.1 \".nfs"), "{renames:?}");
    let mut lines = b.lines();
    lines.sort();
    (lines, b.sim.world().counters().dir_lock_waits)
}

#[test]
fn a_stat_on_the_renaming_host_waits_out_a_busy_target_rename_and_sees_the_new_file() {
    let (lines, waits) = busy_rename_run(MountOptions::default());
    for want in ["h1 watcher ENOENT never", "h1 watcher waited yes", "h1 watcher new file seen", "rename ok"] {
        assert!(lines.iter().any(|l| l == want), "{want:?} not in {lines:?}");
    }
    assert!(waits >= 1, "the watcher's lookup waited for the rename's lock: {waits}");
}

#[test]
fn a_stat_on_another_host_in_the_same_window_gets_enoent_from_the_server() {
    let (lines, _) = busy_rename_run(MountOptions::default());
    for want in ["h2 other ENOENT seen", "h2 other waited no", "h2 other new file seen"] {
        assert!(lines.iter().any(|l| l == want), "{want:?} not in {lines:?}");
    }
}

#[test]
fn the_renaming_host_never_sees_its_own_rename_window_in_any_profile() {
    for profile in ClientProfile::ALL {
        let (lines, waits) = busy_rename_run(MountOptions::profile(profile));
        for want in ["h1 watcher ENOENT never", "h1 watcher new file seen", "h2 other ENOENT seen"] {
            assert!(lines.iter().any(|l| l == want), "{profile:?}: {want:?} not in {lines:?}");
        }
        assert!(waits >= 1, "{profile:?}: {waits}");
    }
}

/// Two processes on h1 create `d/a` and `d/b` with O_EXCL at the same moment,
/// with 40 ms between each CREATE and its SETATTR; h2 creates `d/c` then too.
fn two_creates_run(h1_mount: MountOptions) -> Bench {
    let gap = MountOptions { compound_gap_ms_max: 40, ..h1_mount };
    let mut b = Bench::new(config(
        91,
        ServerConfig::default(),
        vec![host("h1", gap.clone(), &["setup", "a", "b"]), host("h2", gap, &["c"])],
    ));
    b.program("setup", |p, _log| async move {
        p.mkdir("d").await.unwrap();
    });
    for (prog, path) in [("a", "d/a"), ("b", "d/b"), ("c", "d/c")] {
        b.program(prog, move |p, log| async move {
            // Every process knows `d` before the race, so only the creates contend.
            at(&p, 50).await;
            p.stat("d").await.unwrap();
            at(&p, 100).await;
            let fd = p.open(path, excl()).await;
            push(&log, format!("{path} {}", show(&fd)));
            if let Ok(fd) = fd {
                p.close(fd).await.unwrap();
            }
        });
    }
    b.run_until_done(10_000);
    b
}

#[test]
fn two_creates_in_one_directory_on_one_host_serialize() {
    let b = two_creates_run(MountOptions::default());
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(lines, ["d/a ok", "d/b ok", "d/c ok"]);
    // Each CREATE EXCLUSIVE and its SETATTR run under d's lock: h1's pairs do not interleave.
    let procs: Vec<&str> = applied(&b, "h1", &["CREATE", "SETATTR"])
        .iter()
        .map(|l| if l.contains(" CREATE ") { "CREATE" } else { "SETATTR" })
        .collect();
    assert_eq!(procs, ["CREATE", "SETATTR", "CREATE", "SETATTR"]);
    assert_eq!(b.sim.world().counters().dir_lock_waits, 1);
}

#[test]
fn a_create_on_another_host_does_not_wait_for_this_hosts_lock() {
    let b = two_creates_run(MountOptions::default());
    let seq = |l: &str| l.split(' ').next().unwrap().parse::<u64>().unwrap();
    let h1: Vec<u64> = applied(&b, "h1", &["CREATE", "SETATTR"]).iter().map(|l| seq(l)).collect();
    let h2: Vec<u64> = applied(&b, "h2", &["CREATE", "SETATTR"]).iter().map(|l| seq(l)).collect();
    // h2's create overlaps one of h1's on the server: no lock is shared across hosts.
    let overlaps = |a: &[u64], b: &[u64]| a[0].max(b[0]) < a[1].min(b[1]);
    assert!(overlaps(&h1[0..2], &h2) || overlaps(&h1[2..4], &h2), "h1 {h1:?}, h2 {h2:?}");
    assert_eq!(b.sim.world().counters().dir_lock_waits, 1, "only h1's second create waited");
}

/// A rename in `d` whose RPCs are lost in a partition holds `d`'s lock for
/// over a second while `d` itself does not change: another process of the
/// host stats a name with a valid dentry and a name the cache has never seen.
#[test]
fn a_valid_dentry_hit_does_not_wait_but_a_cache_miss_does() {
    let mut b = Bench::new(config(
        92,
        ServerConfig::default(),
        vec![host("h1", MountOptions::default(), &["renamer", "watcher"])],
    ));
    b.program("renamer", |p, log| async move {
        p.mkdir("d").await.unwrap();
        write_file(&p, "d/new", b"new").await;
        write_file(&p, "d/t", b"old!").await;
        write_file(&p, "d/other", b"other").await;
        at(&p, 1000).await;
        let t0 = true_now();
        p.rename("d/new", "d/t").await.unwrap();
        push(&log, format!("rename held d for more than 1 s: {}", true_now() - t0 > Duration::from_secs(1)));
    });
    b.program("watcher", |p, log| async move {
        at(&p, 500).await;
        p.stat("d/other").await.unwrap();
        at(&p, 1200).await;
        for path in ["d/other", "d/never-seen"] {
            let t0 = true_now();
            let r = p.stat(path).await;
            let ms = (true_now() - t0).as_millis();
            push(&log, format!("{path} {} {}", show(&r), if ms < 10 { "at once" } else { "after a wait" }));
        }
    });
    b.sim.schedule(
        Duration::from_millis(999),
        Fault::Partition { a: "h1".into(), b: sim::SERVER_HOST.into(), window: Duration::from_millis(500) },
    );
    b.run_until_done(10_000);
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(
        lines,
        ["d/never-seen ENOENT after a wait", "d/other ok at once", "rename held d for more than 1 s: true"]
    );
    let other = b.served_by("stat", "\"d/other\"");
    assert!(other[1].contains("pos-dentry") && !other[1].contains('x'), "answered from the caches: {other:?}");
    assert_eq!(b.sim.world().counters().dir_lock_waits, 1);
}

#[test]
fn crossed_renames_between_two_directories_do_not_deadlock() {
    let mut b = Bench::new(config(
        93,
        ServerConfig::default(),
        vec![host("h1", MountOptions::default(), &["setup", "one", "two"])],
    ));
    b.program("setup", |p, _log| async move {
        p.mkdir("a").await.unwrap();
        p.mkdir("b").await.unwrap();
        write_file(&p, "a/x", b"x").await;
        write_file(&p, "b/y", b"y").await;
    });
    for (prog, from, to) in [("one", "a/x", "b/x"), ("two", "b/y", "a/y")] {
        b.program(prog, move |p, log| async move {
            at(&p, 500).await;
            push(&log, format!("{from} -> {to} {}", show(&p.rename(from, to).await)));
        });
    }
    b.run_until_done(5_000);
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(lines, ["a/x -> b/x ok", "b/y -> a/y ok"]);
    assert!(b.sim.world().counters().dir_lock_waits >= 1, "the second rename waited for the first");
}

/// Two processes of one host stat two names of `d` at once with
/// `lookupcache=none`, so both lookups go to the server.
fn parallel_lookups_waits(dir_lock: DirLock) -> u64 {
    let mount = MountOptions { lookupcache: LookupCache::None, dir_lock, ..MountOptions::default() };
    let mut b = Bench::new(config(94, ServerConfig::default(), vec![host("h1", mount, &["setup", "x", "y"])]));
    b.program("setup", |p, _log| async move {
        p.mkdir("d").await.unwrap();
    });
    for (prog, path) in [("x", "d/x"), ("y", "d/y")] {
        b.program(prog, move |p, log| async move {
            at(&p, 100).await;
            push(&log, format!("{path} {}", show(&p.stat(path).await)));
        });
    }
    b.run_until_done(5_000);
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(lines, ["d/x ENOENT", "d/y ENOENT"]);
    b.sim.world().counters().dir_lock_waits
}

#[test]
fn lookups_share_the_lock_but_linux_2_2s_semaphore_serialises_them() {
    assert_eq!(parallel_lookups_waits(DirLock::Rwsem), 0);
    assert!(parallel_lookups_waits(DirLock::Semaphore) >= 1);
    assert_eq!(MountOptions::profile(ClientProfile::Linux22).dir_lock, DirLock::Semaphore);
    assert_eq!(MountOptions::profile(ClientProfile::LinuxModern).dir_lock, DirLock::Rwsem);
}
