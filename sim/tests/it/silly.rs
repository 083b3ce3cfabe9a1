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
