//! The duplicate request cache (docs/semantics/nfs-server.md §3) and the false replies of replays (§4).

use std::rc::Rc;
use std::time::Duration;

use sim::nfs::drc::{Drc, DrcKey, DrcLookup};
use sim::nfs::proto::Proc;
use sim::{LinkFaults, MapEexist, MountOptions, ServerConfig};

use crate::harness::{at, config, host, push, show, write_file, Bench};

/// h1 makes `a`, then at 1.1 s runs `op` while every reply is lost; the link
/// heals at 1.5 s, and `between` runs then (a server reboot, or nothing).
fn lost_reply(mount: MountOptions, op: &'static str, reboot: bool) -> Bench {
    let mut b = Bench::new(config(20, ServerConfig::default(), vec![host("h1", mount, &["one"])]));
    b.program("one", move |p, log| async move {
        write_file(&p, "a", b"x").await;
        at(&p, 1100).await;
        let r = match op {
            "link" => p.link("a", "b").await,
            "rename" => p.rename("a", "b").await,
            _ => p.mkdir("m").await,
        };
        push(&log, format!("{op} {}", show(&r)));
        at(&p, 10_000).await;
        let nlink = p.stat("b").await.map(|a| a.attr.nlink);
        push(&log, format!("b nlink {nlink:?}"));
    });
    b.run_to(1000);
    b.sim.world().set_link_faults("h1", LinkFaults { drop_reply_ppm: 1_000_000, ..Default::default() });
    b.run_to(1500);
    b.sim.world().set_link_faults("h1", LinkFaults::default());
    if reboot {
        b.sim.reboot_server(Duration::from_millis(100));
    }
    b.run_until_done(20_000);
    b
}

#[test]
fn drc_hit_returns_the_original_reply() {
    let b = lost_reply(MountOptions::default(), "link", false);
    assert_eq!(b.lines(), ["link ok", "b nlink Ok(2)"]);
    let c = b.sim.world().counters();
    assert_eq!((c.drc_hits, c.false_eexist_replies), (1, 0));
    assert_eq!(b.events("drc").len(), 1);
    assert!(b.events("drc")[0].ends_with("LINK hit"));
    assert_eq!(b.events("apply").iter().filter(|l| l.contains(" LINK ")).count(), 1);
}

#[test]
fn lost_link_reply_replayed_after_drc_loss_returns_eexist_although_the_link_exists() {
    let b = lost_reply(MountOptions::default(), "link", true);
    assert_eq!(b.lines(), ["link EEXIST", "b nlink Ok(2)"]);
    let c = b.sim.world().counters();
    assert_eq!((c.drc_hits, c.false_eexist_replies, c.replays_executed), (0, 1, 1));
    assert!(b.events("apply").iter().any(|l| l.contains(" LINK ") && l.ends_with("NFS3ERR_EXIST replay")));
}

#[test]
fn lost_rename_reply_replayed_after_drc_loss_returns_enoent_although_the_rename_happened() {
    let b = lost_reply(MountOptions::default(), "rename", true);
    assert_eq!(b.lines(), ["rename ENOENT", "b nlink Ok(1)"]);
    assert_eq!(b.sim.world().counters().false_enoent_replies, 1);
}

#[test]
fn lost_mkdir_reply_replayed_after_drc_loss_returns_eexist() {
    let b = lost_reply(MountOptions::default(), "mkdir", true);
    assert_eq!(b.lines()[0], "mkdir EEXIST");
}

#[test]
fn the_bsd_kludge_turns_a_replayed_eexist_into_success() {
    for (map, want) in
        [(MapEexist::Never, "link EEXIST"), (MapEexist::OnRetransmit, "link ok"), (MapEexist::Always, "link ok")]
    {
        let mount = MountOptions { map_eexist_to_success: map, ..MountOptions::default() };
        let b = lost_reply(mount, "link", true);
        assert_eq!(b.lines()[0], want, "{map:?}");
    }
}

fn key(xid: u32) -> DrcKey {
    DrcKey { client: sim::engine::Addr { host: "mail1".into(), port: 800 }, xid, proc: Proc::Link, checksum: 7 }
}

#[test]
fn drc_evicts_the_least_recently_used_past_capacity_and_skips_entries_in_progress() {
    let s = Duration::from_secs;
    let reply = Rc::new(sim::nfs::proto::Reply::err(sim::nfs::proto::NfsStat::Exist));
    let mut drc = Drc::new(2, s(120));
    drc.insert(key(1), Some(reply.clone()), s(0));
    drc.insert(key(2), None, s(1));
    assert!(matches!(drc.lookup(&key(1), s(2)), DrcLookup::Done(_)));
    assert!(matches!(drc.lookup(&key(2), s(2)), DrcLookup::InProgress));
    // Over capacity: key 1 is the oldest done entry; key 2, in progress, is skipped.
    drc.insert(key(3), Some(reply.clone()), s(3));
    assert!(matches!(drc.lookup(&key(1), s(3)), DrcLookup::Miss));
    assert_eq!(drc.len(), 2);
    drc.clear();
    assert!(drc.is_empty());
}

/// knfsd never refuses a found entry for its age, and frees old entries only
/// when it prunes at an insertion, at most four at a time; an entry's age
/// counts from its last use (`lru_put_end` at the reply and at each hit)
/// (docs/semantics/nfs-server.md §3).
#[test]
fn drc_entries_age_from_their_last_use_and_go_only_when_an_insertion_prunes() {
    let s = Duration::from_secs;
    let reply = Rc::new(sim::nfs::proto::Reply::err(sim::nfs::proto::NfsStat::Exist));
    let mut drc = Drc::new(100, s(120));
    for k in 1..=6 {
        drc.insert(key(k), Some(reply.clone()), s(0));
    }
    assert!(matches!(drc.lookup(&key(6), s(500)), DrcLookup::Done(_)), "old, but found: used");
    drc.insert(key(7), Some(reply.clone()), s(501));
    // Keys 1–4 were 120 s old: the prune freed four and stopped; key 5 stays
    // until a later insertion; key 6 was used at 500 s.
    for (k, kept) in [(1, false), (2, false), (3, false), (4, false), (5, true), (6, true), (7, true)] {
        assert_eq!(!matches!(drc.lookup(&key(k), s(501)), DrcLookup::Miss), kept, "key {k}");
    }
    // An entry in progress is never pruned, however old; its reply restarts its age.
    let mut drc = Drc::new(100, s(120));
    drc.insert(key(1), None, s(0));
    drc.insert(key(2), Some(reply.clone()), s(300));
    assert!(matches!(drc.lookup(&key(1), s(300)), DrcLookup::InProgress));
    drc.complete(&key(1), reply.clone(), s(400));
    drc.insert(key(3), Some(reply.clone()), s(500));
    assert!(matches!(drc.lookup(&key(1), s(500)), DrcLookup::Done(_)), "100 s since its reply");
}
