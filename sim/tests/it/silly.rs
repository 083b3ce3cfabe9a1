//! Silly rename (docs/semantics/linux-nfs-client.md §9, §10) and client host crashes.

use std::time::Duration;

use sim::{ClientProfile, Fault, MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, read_file, ro, show, write_file, Bench};

fn silly_names(b: &Bench) -> Vec<String> {
    b.sim
        .world()
        .with_server(|s| s.store.dump())
        .into_iter()
        .map(|e| e.path)
        .filter(|p| p.starts_with(".nfs"))
        .collect()
}

#[test]
fn unlinked_open_file_is_silly_renamed_and_removed_at_last_close() {
    let mut b = Bench::new(config(40, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        write_file(&p, "f", b"still here").await;
        let fd = p.open("f", ro()).await.unwrap();
        push(&log, format!("unlink {}", show(&p.unlink("f").await)));
        push(&log, format!("stat {}", show(&p.stat("f").await)));
        let names = p.read_dir("").await.unwrap();
        push(&log, format!("listing {}", names.iter().filter(|n| n.starts_with(".nfs")).count()));
        push(&log, format!("read {:?}", String::from_utf8_lossy(&p.read(fd, 100).await.unwrap())));
        push(&log, format!("unlink silly {}", show(&p.unlink(&names[0]).await)));
        at(&p, 1000).await;
        p.close(fd).await.unwrap();
    });
    b.run_to(900);
    let hidden = silly_names(&b);
    assert_eq!(hidden.len(), 1);
    assert!(hidden[0].len() == 4 + 16 + 8 && hidden[0][4..].chars().all(|c| c.is_ascii_hexdigit()), "{hidden:?}");
    b.run_until_done(5000);
    assert_eq!(b.lines(), ["unlink ok", "stat ENOENT", "listing 1", "read \"still here\"", "unlink silly EBUSY"]);
    assert!(silly_names(&b).is_empty(), "removed at last close");
    assert_eq!(b.sim.world().counters().silly_renames, 1);
}

#[test]
fn rename_over_a_file_open_on_this_client_leaves_a_window_without_the_name() {
    let renamer = MountOptions { compound_gap_ms_max: 20, ..MountOptions::default() };
    let watcher = MountOptions::profile(ClientProfile::LookupcacheNone);
    let mut b = Bench::new(config(
        41,
        ServerConfig::default(),
        vec![host("h1", renamer, &["one"]), host("h2", watcher, &["two"])],
    ));
    b.program("one", |p, log| async move {
        write_file(&p, "target", b"old").await;
        write_file(&p, "new", b"new").await;
        let fd = p.open("target", ro()).await.unwrap();
        at(&p, 1000).await;
        push(&log, format!("rename {}", show(&p.rename("new", "target").await)));
        push(&log, format!("own view {:?}", read_file(&p, "target").await));
        push(&log, format!("old fd {:?}", String::from_utf8_lossy(&p.read(fd, 10).await.unwrap())));
        p.close(fd).await.unwrap();
    });
    b.program("two", |p, log| async move {
        at(&p, 990).await;
        let mut missing = 0;
        for _ in 0..40 {
            if p.stat("target").await == Err(libc::ENOENT) {
                missing += 1;
            }
            p.sleep(Duration::from_millis(1)).await;
        }
        push(&log, format!("watcher saw ENOENT {}", if missing > 0 { "yes" } else { "no" }));
    });
    b.run_until_done(5000);
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(lines, ["old fd \"old\"", "own view Ok(\"new\")", "rename ok", "watcher saw ENOENT yes"]);
    let renames: Vec<String> = b.events("apply").into_iter().filter(|l| l.contains(" RENAME ")).collect();
    assert_eq!(renames.len(), 2, "{renames:?}");
    assert!(renames[0].contains("\"target\" -> 1.1 \".nfs"), "{renames:?}");
    assert!(silly_names(&b).is_empty());
}

/// Linux asks whether the dentry being removed is in use, not the inode
/// (`d_count(dentry) > 1` in `nfs_unlink`; docs/semantics/linux-nfs-client.md §10):
/// a file open through `a` and unlinked through its hard link `b` is a plain
/// REMOVE; unlinked through `a` it is silly-renamed.
#[test]
fn busy_is_judged_per_name_not_per_inode() {
    let mut b = Bench::new(config(43, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        write_file(&p, "a", b"both").await;
        p.link("a", "b").await.unwrap();
        let fd = p.open("a", ro()).await.unwrap();
        push(&log, format!("unlink b {}", show(&p.unlink("b").await)));
        push(
            &log,
            format!(
                "hidden after b {}",
                p.read_dir("").await.unwrap().iter().filter(|n| n.starts_with(".nfs")).count()
            ),
        );
        push(&log, format!("unlink a {}", show(&p.unlink("a").await)));
        push(
            &log,
            format!(
                "hidden after a {}",
                p.read_dir("").await.unwrap().iter().filter(|n| n.starts_with(".nfs")).count()
            ),
        );
        push(&log, format!("read {:?}", String::from_utf8_lossy(&p.read(fd, 10).await.unwrap())));
        p.close(fd).await.unwrap();
    });
    b.run_until_done(5000);
    assert_eq!(b.lines(), ["unlink b ok", "hidden after b 0", "unlink a ok", "hidden after a 1", "read \"both\""]);
    assert_eq!(b.sim.world().counters().silly_renames, 1);
    assert!(silly_names(&b).is_empty(), "removed at last close");
}

/// Mailman's Save while a runner on the same host holds `config` open: the
/// rename over `config` silly-renames the runner's dentry, whose inode keeps its
/// other name `last`; the next Save's `unlink(last)` removes a dentry nobody
/// holds, so it is a plain REMOVE, and the runner's descriptor still reads
/// through the hidden name, which goes at its close (docs/semantics/linux-nfs-client.md §10).
#[test]
fn a_save_rotation_over_an_open_config_leaves_one_hidden_name_and_removes_it() {
    let mut b = Bench::new(config(44, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        write_file(&p, "config", b"v1").await;
        let fd = p.open("config", ro()).await.unwrap();
        for v in ["v2", "v3"] {
            write_file(&p, "tmp", v.as_bytes()).await;
            let _ = p.unlink("last").await;
            p.link("config", "last").await.unwrap();
            p.rename("tmp", "config").await.unwrap();
        }
        let mut names = p.read_dir("").await.unwrap();
        names.iter_mut().filter(|n| n.starts_with(".nfs")).for_each(|n| *n = ".nfs".into());
        names.sort();
        push(&log, format!("names {names:?}"));
        push(&log, format!("read {:?}", String::from_utf8_lossy(&p.read(fd, 10).await.unwrap())));
        p.close(fd).await.unwrap();
        push(&log, format!("config {:?}, last {:?}", read_file(&p, "config").await, read_file(&p, "last").await));
    });
    b.run_until_done(5000);
    assert_eq!(
        b.lines(),
        ["names [\".nfs\", \"config\", \"last\"]", "read \"v1\"", "config Ok(\"v3\"), last Ok(\"v2\")"]
    );
    assert_eq!(b.sim.world().counters().silly_renames, 1, "only the rename over the held `config`");
    assert!(silly_names(&b).is_empty(), "the hidden name went at the runner's close");
}

/// An open holds the walk's dentry from the lookup on, as Linux's path walk
/// holds its reference while close-to-open's GETATTR is on the wire: a rename
/// over the name on the same host in that window silly-renames the file, and
/// the opener reads the old content (docs/semantics/linux-nfs-client.md §10).
#[test]
fn a_rename_during_an_opens_getattr_silly_renames_the_file_being_opened() {
    let mut b =
        Bench::new(config(45, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one", "two"])]));
    b.program("one", |p, log| async move {
        write_file(&p, "target", b"old").await;
        write_file(&p, "new", b"new").await;
        at(&p, 1000).await;
        let fd = p.open("target", ro()).await.unwrap();
        push(&log, format!("read {:?}", p.read(fd, 10).await.map(|d| String::from_utf8_lossy(&d).into_owned())));
        p.close(fd).await.unwrap();
    });
    b.program("two", |p, log| async move {
        at(&p, 1001).await;
        push(&log, format!("rename {}", show(&p.rename("new", "target").await)));
    });
    b.run_until_done(5000);
    let mut lines = b.lines();
    lines.sort();
    assert_eq!(lines, ["read Ok(\"old\")", "rename ok"]);
    assert_eq!(b.sim.world().counters().silly_renames, 1);
    assert!(silly_names(&b).is_empty(), "removed at the close");
}

/// A process killed while its open waits for close-to-open's GETATTR drops
/// the dentry hold with it, as the killed path walk drops its reference: a
/// later unlink of the name is a plain REMOVE (docs/semantics/linux-nfs-client.md §10).
#[test]
fn a_process_killed_during_an_open_leaves_no_hold_behind() {
    let mut b =
        Bench::new(config(46, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one", "two"])]));
    b.program("one", |p, _log| async move {
        if p.incarnation() == 1 {
            write_file(&p, "f", b"x").await;
            at(&p, 1000).await;
            let _ = p.open("f", ro()).await;
            p.sleep(Duration::from_secs(3600)).await;
        }
    });
    b.program("two", |p, log| async move {
        at(&p, 1100).await;
        push(&log, format!("unlink {}", show(&p.unlink("f").await)));
    });
    b.sim.schedule(Duration::from_micros(1_000_500), Fault::CrashProcess { host: "h1".into(), program: "one".into() });
    b.run_until_done(5000);
    assert_eq!(b.lines(), ["unlink ok"]);
    assert_eq!(b.sim.world().counters().silly_renames, 0, "no hold was left to make the unlink a silly rename");
    assert!(silly_names(&b).is_empty());
}

#[test]
fn host_crash_leaves_silly_renamed_files_behind() {
    let mut b = Bench::new(config(42, ServerConfig::default(), vec![host("h1", MountOptions::default(), &["one"])]));
    b.program("one", |p, log| async move {
        if p.incarnation() == 1 {
            write_file(&p, "f", b"x").await;
            let _fd = p.open("f", ro()).await.unwrap();
            p.unlink("f").await.unwrap();
            p.sleep(Duration::from_secs(3600)).await;
        } else {
            let names = p.read_dir("").await.unwrap();
            push(&log, format!("i{} pid {} sees {}", p.incarnation(), p.pid(), names.len()));
        }
    });
    b.sim.schedule(Duration::from_millis(500), Fault::CrashHost { host: "h1".into() });
    b.sim.schedule(Duration::from_millis(1000), Fault::RestartHost { host: "h1".into() });
    b.run_to(1100);
    b.run_until_done(5000);
    assert_eq!(b.lines(), ["i2 pid 2 sees 1"], "a new incarnation; pids are never reused");
    assert_eq!(silly_names(&b).len(), 1);
    assert_eq!(b.sim.world().counters().host_crashes, 1);
}
