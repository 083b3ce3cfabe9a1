//! The attribute cache (docs/semantics/linux-nfs-client.md §1–§3): adaptive timeouts, `stat` without an
//! RPC, `noac`, and the post-op-attribute switch.

use std::time::Duration;

use sim::nfs::attr_cache::AttrCache;
use sim::nfs::mount::AcBounds;
use sim::nfs::proto::{Fattr, Fh, Ftype};
use sim::{ClientProfile, MountOptions, PostOpAttrs, ServerConfig};

use crate::harness::{at, config, host, push, show, write_file, Bench};

fn two_hosts(seed: u64, mount: MountOptions) -> Bench {
    Bench::new(config(
        seed,
        ServerConfig::default(),
        vec![host("h1", mount.clone(), &["one"]), host("h2", mount, &["two"])],
    ))
}

#[test]
fn attribute_cache_serves_old_nlink_until_acregmin() {
    let mut b = two_hosts(1, MountOptions::default());
    b.program("one", |p, log| async move {
        write_file(&p, "a", b"x").await;
        let first = p.stat("a").await.unwrap();
        push(&log, format!("t=0 nlink={}", first.attr.nlink));
        at(&p, 1500).await;
        push(&log, format!("t=1.5s nlink={}", p.stat("a").await.unwrap().attr.nlink));
        at(&p, 4000).await;
        push(&log, format!("t=4s nlink={}", p.stat("a").await.unwrap().attr.nlink));
    });
    b.program("two", |p, log| async move {
        at(&p, 1000).await;
        push(&log, format!("h2 link {}", show(&p.link("a", "b").await)));
    });
    b.run_until_done(10_000);
    assert_eq!(b.lines(), ["t=0 nlink=1", "h2 link ok", "t=1.5s nlink=1", "t=4s nlink=2"]);
    let served = b.served_by("stat", "\"a\"");
    assert!(served[1].contains("attr-cache(ev "), "{served:?}");
    assert!(!served[1].contains('x'), "the stale stat sent no RPC: {served:?}");
    assert!(served[2].contains('x'), "the expired entry was refreshed by GETATTR: {served:?}");
}

#[test]
fn a_stat_answered_from_a_fresh_entry_sends_no_rpc() {
    let mut b = two_hosts(2, MountOptions::default());
    b.program("one", |p, _log| async move {
        write_file(&p, "f", b"x").await;
        p.stat("f").await.unwrap();
        p.stat("f").await.unwrap();
    });
    b.program("two", |_p, _log| async move {});
    b.run_until_done(5000);
    let served = b.served_by("stat", "\"f\"");
    assert_eq!(served.len(), 2);
    assert!(served.iter().all(|s| s.starts_with("pos-dentry(ev ") && s.contains("attr-cache(ev ")), "{served:?}");
    assert!(b.sim.world().counters().attr_cache_hits >= 2);
}

#[test]
fn noac_stat_always_sends_getattr() {
    let mut b = two_hosts(3, MountOptions::profile(ClientProfile::Noac));
    b.program("one", |p, _log| async move {
        write_file(&p, "f", b"x").await;
        p.stat("f").await.unwrap();
        p.stat("f").await.unwrap();
    });
    b.program("two", |_p, _log| async move {});
    b.run_until_done(5000);
    let served = b.served_by("stat", "\"f\"");
    assert!(served.iter().all(|s| s.contains('x') && !s.contains("attr-cache")), "{served:?}");
    assert_eq!(b.sim.world().counters().attr_cache_hits, 0);
}

#[test]
fn post_op_attributes_ignored_after_link_leave_the_old_nlink_cached() {
    for (switch, want) in [(PostOpAttrs::Applied, 2), (PostOpAttrs::IgnoredAfterLink, 1)] {
        let mount = MountOptions { post_op_attrs: switch, ..MountOptions::default() };
        let mut b = two_hosts(4, mount);
        b.program("one", |p, log| async move {
            // The link goes to another directory, so d1 does not change and the
            // dentry of d1/a stays valid: only LINK's post-op attributes can tell.
            p.mkdir("d1").await.unwrap();
            p.mkdir("d2").await.unwrap();
            write_file(&p, "d1/a", b"x").await;
            p.stat("d1/a").await.unwrap();
            p.link("d1/a", "d2/b").await.unwrap();
            push(&log, format!("{}", p.stat("d1/a").await.unwrap().attr.nlink));
        });
        b.program("two", |_p, _log| async move {});
        b.run_until_done(5000);
        assert_eq!(b.lines(), [want.to_string()], "{switch:?}");
    }
}

fn fattr(mtime: i64) -> Fattr {
    Fattr { ftype: Ftype::Reg, nlink: 1, size: 0, fileid: 5, atime: 0, mtime, ctime: mtime }
}

#[test]
fn the_timeout_doubles_while_attributes_are_unchanged_and_resets_on_a_change() {
    let s = Duration::from_secs;
    let mut c = AttrCache::new(AcBounds { reg_min: s(3), reg_max: s(60), dir_min: s(30), dir_max: s(60) });
    let fh = Fh { ino: 5, gen: 1 };
    c.update(fh, fattr(1), s(0), 1);
    assert!(c.fresh(fh, Duration::from_millis(2999)).is_some());
    assert!(c.fresh(fh, s(3)).is_none());
    // Rechecked unchanged after 3, 6, 12, 24, 48 s, then every 60 s (docs/semantics/linux-nfs-client.md §2).
    let mut t = s(3);
    for want in [6, 12, 24, 48, 60, 60] {
        c.update(fh, fattr(1), t, 2);
        assert_eq!(c.get(fh).unwrap().attrtimeo, s(want));
        t += s(want);
    }
    c.update(fh, fattr(2), t, 3);
    assert_eq!(c.get(fh).unwrap().attrtimeo, s(3), "a change resets the timeout");
}

#[test]
fn refreshes_sooner_than_the_timeout_hold_it_where_it_is() {
    // Close-to-open GETATTRs every 2 s of a file nobody changes: each one restarts the
    // timeout's clock (`attrtimeo_timestamp = now` in `nfs_update_inode`), so the
    // timeout never runs out between them and never doubles (docs/semantics/linux-nfs-client.md §2).
    let s = Duration::from_secs;
    let mut c = AttrCache::new(AcBounds { reg_min: s(3), reg_max: s(60), dir_min: s(30), dir_max: s(60) });
    let fh = Fh { ino: 5, gen: 1 };
    c.update(fh, fattr(1), s(0), 1);
    for k in 1..=40 {
        c.update(fh, fattr(1), s(2 * k), 2);
        assert_eq!(c.get(fh).unwrap().attrtimeo, s(3), "refresh {k} at {} s", 2 * k);
    }
    // One gap longer than the timeout doubles it, once.
    c.update(fh, fattr(1), s(80 + 3), 3);
    assert_eq!(c.get(fh).unwrap().attrtimeo, s(6));
    c.update(fh, fattr(1), s(80 + 3 + 5), 4);
    assert_eq!(c.get(fh).unwrap().attrtimeo, s(6), "5 s after a refresh, inside 6 s: held");
}
