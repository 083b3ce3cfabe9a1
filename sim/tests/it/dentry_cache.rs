//! The lookup cache (docs/semantics/linux-nfs-client.md §4, §5, §7, §11): negative and
//! positive dentries, `lookupcache=`, timestamp granularity, ESTALE and the one-retry rule.

use sim::{ClientProfile, DentryRevalidate, EstaleErrno, MountOptions, ServerConfig, ServerProfile};

use crate::harness::{at, config, host, push, read_file, show, write_file, Bench};

/// h1 looks `d/x` up while it is absent; h2 creates it at 1 s; h1 looks again at 2 s and 40 s.
fn negative_dentry_run(mount: MountOptions) -> Vec<String> {
    let mut b = Bench::new(config(
        5,
        ServerConfig::default(),
        vec![host("h1", mount.clone(), &["one"]), host("h2", mount, &["two"])],
    ));
    b.program("one", |p, log| async move {
        p.mkdir("d").await.unwrap();
        push(&log, format!("0s stat {}", show(&p.stat("d/x").await)));
        at(&p, 2000).await;
        push(&log, format!("2s stat {}", show(&p.stat("d/x").await)));
        push(&log, format!("2s open {}", show(&p.open("d/x", crate::harness::ro()).await)));
        at(&p, 40_000).await;
        push(&log, format!("40s stat {}", show(&p.stat("d/x").await)));
    });
    b.program("two", |p, _log| async move {
        at(&p, 1000).await;
        write_file(&p, "d/x", b"x").await;
    });
    b.run_until_done(60_000);
    b.lines()
}

#[test]
fn stale_negative_dentry_hides_a_file_created_by_another_client_until_the_directory_is_revalidated() {
    assert_eq!(
        negative_dentry_run(MountOptions::default()),
        ["0s stat ENOENT", "2s stat ENOENT", "2s open ENOENT", "40s stat ok"]
    );
}

#[test]
fn lookupcache_none_sees_new_files_at_once() {
    assert_eq!(
        negative_dentry_run(MountOptions::profile(ClientProfile::LookupcacheNone)),
        ["0s stat ENOENT", "2s stat ok", "2s open ok", "40s stat ok"]
    );
}

/// `lookupcache=positive` never trusts a negative dentry: the stat at 2 s
/// looks again and finds the file; `actimeo=0` gets there another way, the
/// directory's attributes never fresh.
#[test]
fn lookupcache_positive_and_actimeo_0_see_new_files_at_once() {
    for profile in [ClientProfile::LookupcachePositive, ClientProfile::Actimeo0] {
        assert_eq!(
            negative_dentry_run(MountOptions::profile(profile)),
            ["0s stat ENOENT", "2s stat ok", "2s open ok", "40s stat ok"],
            "{profile:?}"
        );
    }
}

#[test]
fn linux_2_2_looks_again_once_its_negative_dentry_is_older_than_1_s() {
    assert_eq!(
        negative_dentry_run(MountOptions::profile(ClientProfile::Linux22)),
        ["0s stat ENOENT", "2s stat ok", "2s open ok", "40s stat ok"]
    );
}

#[test]
fn directory_change_within_one_timestamp_tick_is_never_noticed() {
    let server = ServerConfig::profile(ServerProfile::Linux22);
    let mut b = Bench::new(config(
        6,
        server,
        vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])],
    ));
    b.program("one", |p, log| async move {
        at(&p, 2300).await;
        push(&log, format!("2.3s stat {}", show(&p.stat("d/x").await)));
        at(&p, 40_000).await;
        push(&log, format!("40s stat {}", show(&p.stat("d/x").await)));
        at(&p, 100_000).await;
        push(&log, format!("100s stat {}", show(&p.stat("d/x").await)));
    });
    b.program("two", |p, _log| async move {
        p.mkdir("d").await.unwrap();
        // Three changes of d inside the server's one-second tick [2 s, 3 s).
        at(&p, 2100).await;
        write_file(&p, "d/y", b"y").await;
        at(&p, 2500).await;
        write_file(&p, "d/x", b"x").await;
    });
    b.run_until_done(120_000);
    assert_eq!(b.lines(), ["2.3s stat ENOENT", "40s stat ENOENT", "100s stat ENOENT"]);
}

#[test]
fn positive_dentry_keeps_answering_with_the_old_file_while_it_lives_under_another_name() {
    let mut b = Bench::new(config(
        7,
        ServerConfig::default(),
        vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])],
    ));
    b.program("one", |p, log| async move {
        write_file(&p, "cfg", b"old").await;
        at(&p, 5000).await;
        push(&log, format!("5s {:?}", read_file(&p, "cfg").await));
        at(&p, 40_000).await;
        push(&log, format!("40s {:?}", read_file(&p, "cfg").await));
    });
    b.program("two", |p, _log| async move {
        at(&p, 1000).await;
        p.link("cfg", "cfg.last").await.unwrap();
        write_file(&p, "cfg.tmp", b"new").await;
        p.rename("cfg.tmp", "cfg").await.unwrap();
    });
    b.run_until_done(60_000);
    assert_eq!(b.lines(), ["5s Ok(\"old\")", "40s Ok(\"new\")"]);
}

fn show_stat(r: Result<sim::Attr, i32>) -> String {
    match r {
        Ok(a) => format!("ok size={}", a.attr.size),
        Err(e) => sim::errno_name(e).to_string(),
    }
}

/// h1 caches `f`; h2 renames `g` over it at 1 s, freeing the old inode; h1 stats at 5 s.
fn freed_inode_run(mount: MountOptions) -> (String, u64) {
    let mut b = Bench::new(config(
        8,
        ServerConfig::default(),
        vec![host("h1", mount, &["one"]), host("h2", MountOptions::default(), &["two"])],
    ));
    b.program("one", |p, log| async move {
        write_file(&p, "f", b"old").await;
        p.stat("f").await.unwrap();
        at(&p, 5000).await;
        let first = show_stat(p.stat("f").await);
        // The stale handle's dentry is not trusted again, so a second call recovers.
        let second = show_stat(p.stat("f").await);
        push(&log, format!("{first}, then {second}"));
    });
    b.program("two", |p, _log| async move {
        at(&p, 1000).await;
        write_file(&p, "g", b"newer").await;
        p.rename("g", "f").await.unwrap();
    });
    b.run_until_done(10_000);
    (b.lines()[0].clone(), b.sim.world().counters().estale_retries)
}

#[test]
fn positive_dentry_of_a_freed_inode_gets_estale_and_the_walk_retries_once() {
    assert_eq!(freed_inode_run(MountOptions::default()), ("ok size=5, then ok size=5".to_string(), 1));
}

#[test]
fn linux_2_2_returns_estale_from_a_path_based_call_without_retrying() {
    // The 2.2 profile with the modern dentry rule, so that h1 trusts its
    // dentry of `f` (the 2.2-era rule would look the last name up again, as
    // the parent changed 4 s ago: docs/semantics/linux-2.2-client.md §1) and
    // this test sees the ESTALE rule alone.
    let old = MountOptions {
        dentry_revalidate: DentryRevalidate::ParentVerifier,
        ..MountOptions::profile(ClientProfile::Linux22)
    };
    assert_eq!(freed_inode_run(old.clone()), ("ESTALE, then ok size=5".to_string(), 0));
    let enoent = MountOptions { estale_errno: EstaleErrno::Enoent, ..old };
    assert_eq!(freed_inode_run(enoent), ("ENOENT, then ok size=5".to_string(), 0));
}

#[test]
fn a_descriptor_of_a_file_another_client_removed_returns_estale() {
    let mut b = Bench::new(config(
        9,
        ServerConfig::default(),
        vec![host("h1", MountOptions::default(), &["one"]), host("h2", MountOptions::default(), &["two"])],
    ));
    b.program("one", |p, log| async move {
        write_file(&p, "f", b"data").await;
        let fd = p.open("f", crate::harness::ro()).await.unwrap();
        p.read(fd, 10).await.unwrap();
        at(&p, 5000).await;
        p.seek(fd, 0).await.unwrap();
        push(&log, format!("read {}", show(&p.read(fd, 10).await)));
        push(&log, format!("fstat {}", show(&p.fstat(fd).await)));
        p.close(fd).await.unwrap();
    });
    b.program("two", |p, _log| async move {
        at(&p, 1000).await;
        p.unlink("f").await.unwrap();
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["read ESTALE", "fstat ESTALE"]);
}
