//! Oracles on hand-made histories: the evidence they report for a violation.

use std::rc::Rc;
use std::time::Duration;

use model::ModelEvent;
use scenarios::oracle::{check, History, Status};
use sim::nfs::store::{ReaddirOrder, Store};
use sim::{Event, EventKind};

fn note(host: &str, pid: u32, m: ModelEvent) -> EventKind {
    EventKind::Note { host: host.into(), pid, text: String::new(), payload: Rc::new(m) }
}

fn apply(client: &str, proc: &'static str, args: &str, status: &'static str) -> EventKind {
    EventKind::Apply { client: client.into(), xid: 7, proc, args: args.into(), status, replay: false }
}

/// The silly-rename window: mail1's Save renames its tmp file over a
/// `config.pck` that is open on mail1, so the client first renames the busy
/// target to `.nfs…`; mail2's LOOKUP lands in between and fills a negative
/// dentry, from which the MTA's stat gets ENOENT. The violation names the
/// LOOKUP's NOENT and the silly rename before it, not only the later rename
/// that brought the name back. Event 5 (the LOOKUP's reply) is absent, as a
/// run that keeps only what the oracles read drops it.
#[test]
fn no_missing_list_names_what_made_the_name_absent_when_a_negative_dentry_was_filled() {
    let v = silly_rename_window_violation("mail2", 5);
    assert!(v.contains("its negative dentry was filled by a LOOKUP that got NOENT on the server [event 3]"), "{v}");
    assert!(v.contains("after the server's last change RENAME 21.21 \"config.pck\" -> 21.21 \".nfs0001\""), "{v}");
    assert!(v.contains("on the server: last change RENAME 21.21 \"config.pck.tmp.mail1.6\""), "{v}");
}

/// The same window seen from the saving host itself: its client made the
/// negative dentry when it silly-renamed the busy `config.pck`.
#[test]
fn no_missing_list_names_the_hosts_own_silly_rename_that_filled_a_negative_dentry() {
    let v = silly_rename_window_violation("mail1", 2);
    assert!(
        v.contains(
            "its negative dentry was filled by this host's own RENAME 21.21 \"config.pck\" -> 21.21 \".nfs0001\" OK"
        ),
        "{v}"
    );
}

/// The first `no_missing_list` violation of a hand-made silly-rename window in
/// which `stat_host`'s MTA stats the config through a negative dentry filled
/// by the reply at event `fill` (2: mail1's silly RENAME; 5: mail2's LOOKUP).
/// Replies are absent, as a run that keeps only what the oracles read drops them.
fn silly_rename_window_violation(stat_host: &str, fill: u64) -> String {
    let kinds = vec![
        (
            0,
            note(
                "mail1",
                6,
                ModelEvent::ListSaved { list: "test".into(), file: "lists/test/config.pck".into(), post_id: 1 },
            ),
        ),
        (1, apply("mail1", "RENAME", "21.21 \"config.pck\" -> 21.21 \".nfs0001\"", "OK")),
        (3, apply("mail2", "LOOKUP", "21.21 \"config.pck\"", "NFS3ERR_NOENT")),
        (4, apply("mail1", "RENAME", "21.21 \"config.pck.tmp.mail1.6\" -> 21.21 \"config.pck\"", "OK")),
        (
            6,
            EventKind::Call {
                span: 9,
                host: stat_host.into(),
                pid: 1,
                op: "stat",
                args: "\"lists/test/config.pck\"".into(),
                outcome: Err(libc::ENOENT),
                served_by: format!("pos-dentry(ev 0)+neg-dentry(ev {fill})"),
                started: Duration::from_millis(5),
            },
        ),
        (
            7,
            note(
                stat_host,
                1,
                ModelEvent::MtaRouted {
                    list: "test".into(),
                    recipient: "test@lists.example.com".into(),
                    decision: "bounced_unknown_list".into(),
                    errno: "ENOENT".into(),
                    stage: model::RouteStage::Verify,
                },
            ),
        ),
    ];
    let events: Vec<Event> =
        kinds.into_iter().map(|(seq, kind)| Event { seq, t: Duration::from_millis(seq), kind }).collect();
    let store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let history =
        History { events: &events, store: &store, ending_problem: None, cut: false, held_locks_must_be_free: true };
    let result = check("no_missing_list", &history);
    assert_eq!(result.status, Status::Fail);
    assert_eq!(result.first_event, Some(7));
    result.violations[0].clone()
}

fn history_of(kinds: Vec<(u64, EventKind)>) -> Vec<Event> {
    kinds.into_iter().map(|(seq, kind)| Event { seq, t: Duration::from_millis(seq), kind }).collect()
}

/// A negative dentry filled by this host's silly RENAME of `config.pck` (its
/// reply is event 2) answers a stat although the host's client later removed
/// another `config.pck` (another list's, event 4): the finding names the last
/// apply that could have made the name absent *before the fill*, not the last one.
#[test]
fn no_missing_list_names_the_fill_before_the_dentry_was_filled_not_a_later_one() {
    let stat = |seq: u64| EventKind::Call {
        span: seq,
        host: "mail1".into(),
        pid: 1,
        op: "stat",
        args: "\"lists/test/config.pck\"".into(),
        outcome: Err(libc::ENOENT),
        served_by: "pos-dentry(ev 0)+neg-dentry(ev 2)".into(),
        started: Duration::from_millis(seq),
    };
    let routed = ModelEvent::MtaRouted {
        list: "test".into(),
        recipient: "test@lists.example.com".into(),
        decision: "bounced_unknown_list".into(),
        errno: "ENOENT".into(),
        stage: model::RouteStage::Delivery,
    };
    let events = history_of(vec![
        (0, note("mail1", 6, ModelEvent::ListSaved { list: "test".into(), file: "x".into(), post_id: 1 })),
        (1, apply("mail1", "RENAME", "21.21 \"config.pck\" -> 21.21 \".nfs0001\"", "OK")),
        (4, apply("mail1", "REMOVE", "33.33 \"config.pck\"", "OK")),
        (5, apply("mail1", "LOOKUP", "21.21 \"config.pck\"", "NFS3ERR_NOENT")),
        (6, stat(6)),
        (7, note("mail1", 1, routed)),
    ]);
    let store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let history =
        History { events: &events, store: &store, ending_problem: None, cut: false, held_locks_must_be_free: true };
    let v = check("no_missing_list", &history).violations[0].clone();
    assert!(
        v.contains(
            "filled by this host's own RENAME 21.21 \"config.pck\" -> 21.21 \".nfs0001\" OK at t=0.001s [event 1]"
        ),
        "{v}"
    );
    assert!(v.contains("via stat \"lists/test/config.pck\" -> ENOENT served_by="), "{v}");
}

/// A report shows the first violations by event (end-state findings last),
/// however the oracle found them, and counts the rest.
#[test]
fn an_oracle_shows_its_first_violations_by_event_and_counts_the_rest() {
    use sim::nfs::proto::{Body, CreateMode, Request, Stable};
    // Twelve records appended at events 0..12 whose names sort in reverse
    // event order, none of them in the final file, which holds a stray line.
    let events = history_of(
        (0..12)
            .map(|i| {
                let record = format!("r{:02}", 99 - i);
                (i, note("h", 1, ModelEvent::Appended { path: "shared".into(), record }))
            })
            .collect(),
    );
    let mut store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let created = store
        .apply(&Request::Create { dir: sim::nfs::store::ROOT, name: "shared".into(), mode: CreateMode::Unchecked }, 0);
    let Ok(Body::Handle(fh)) = created.status else { panic!("create: {:?}", created.status) };
    store.apply(&Request::Write { fh, offset: 0, stable: Stable::FileSync, data: b"stray\n".to_vec() }, 0);
    let history =
        History { events: &events, store: &store, ending_problem: None, cut: false, held_locks_must_be_free: true };
    let result = check("append_conservation", &history);
    assert_eq!(result.status, Status::Fail);
    assert_eq!(result.checked, 12);
    assert_eq!(result.first_event, Some(0));
    assert_eq!(result.violations.len(), 11);
    for (i, v) in result.violations[..10].iter().enumerate() {
        assert!(v.ends_with(&format!("(lost) [event {i}]")), "{i}: {v}");
    }
    assert_eq!(result.violations[10], "… and 3 more");
}

/// A final file with `content`, as the server holds it at the end.
fn store_with_file(name: &str, content: &[u8]) -> Store {
    use sim::nfs::proto::{Body, CreateMode, Request, Stable};
    let mut store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let created =
        store.apply(&Request::Create { dir: sim::nfs::store::ROOT, name: name.into(), mode: CreateMode::Unchecked }, 0);
    let Ok(Body::Handle(fh)) = created.status else { panic!("create: {:?}", created.status) };
    store.apply(&Request::Write { fh, offset: 0, stable: Stable::FileSync, data: content.to_vec() }, 0);
    store
}

/// Client2 wrote its record and the run was cut before its `close()`
/// returned, so the record is on the server but not yet noted `Appended`: in
/// flight at a cut, corruption in a run that completed.
#[test]
fn append_conservation_counts_a_line_written_inside_an_open_critical_section_as_pending_only_at_a_cut() {
    let lock = |claim: &str| ModelEvent::LockAcquired { lock: "smoke.lock".into(), claim: claim.into() };
    let events = history_of(vec![
        (0, note("client1", 1, lock("client1.1"))),
        (1, note("client1", 1, ModelEvent::Appended { path: "shared".into(), record: "client1 0".into() })),
        (2, note("client1", 1, ModelEvent::LockReleasing { lock: "smoke.lock".into(), claim: "client1.1".into() })),
        (3, note("client2", 1, lock("client2.1"))),
    ]);
    let store = store_with_file("shared", b"client1 0\nclient2 0\n");
    let judge = |cut: bool| {
        let history =
            History { events: &events, store: &store, ending_problem: None, cut, held_locks_must_be_free: true };
        check("append_conservation", &history)
    };
    assert_eq!(judge(true).status, Status::Pass, "{:?}", judge(true).violations);
    let completed = judge(false);
    assert_eq!(completed.status, Status::Fail);
    assert_eq!(completed.violations, ["shared: line \"client2 0\" (1x) was never appended (corruption)"]);
}

/// Beyond one unnoted line per open critical section, a cut run's file is corrupt too.
#[test]
fn append_conservation_still_finds_corruption_in_a_cut_run() {
    let events = history_of(vec![
        (0, note("client1", 1, ModelEvent::LockAcquired { lock: "smoke.lock".into(), claim: "client1.1".into() })),
        (1, note("client1", 1, ModelEvent::Appended { path: "shared".into(), record: "client1 0".into() })),
    ]);
    let store = store_with_file("shared", b"client1 0\nstray\n");
    let history =
        History { events: &events, store: &store, ending_problem: None, cut: true, held_locks_must_be_free: true };
    assert_eq!(check("append_conservation", &history).status, Status::Fail);
}

/// A bounce registered in memory whose save the cut came before is pending; the
/// same history in a completed run has lost it.
#[test]
fn lost_update_counts_a_bounce_registered_but_not_yet_saved_as_pending_only_at_a_cut() {
    let events = history_of(vec![(
        0,
        note("mail1", 4, ModelEvent::BounceRegistered { list: "test".into(), address: "m@example.com".into() }),
    )]);
    let store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let judge = |cut: bool| {
        let history =
            History { events: &events, store: &store, ending_problem: None, cut, held_locks_must_be_free: true };
        check("lost_update", &history).status
    };
    assert_eq!(judge(true), Status::Pass);
    assert_eq!(judge(false), Status::Fail);
}

/// An injected message the MTA never answered is in flight at a cut, and never
/// answered in a run that completed.
#[test]
fn message_conservation_counts_an_unanswered_message_as_pending_only_at_a_cut() {
    let events = history_of(vec![(
        0,
        note(
            "sender",
            1,
            ModelEvent::SenderInjected { message_id: "<a1@x>".into(), recipient: "test@lists.example.com".into() },
        ),
    )]);
    let store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let judge = |cut: bool| {
        let history =
            History { events: &events, store: &store, ending_problem: None, cut, held_locks_must_be_free: true };
        check("message_conservation", &history)
    };
    let cut = judge(true);
    assert_eq!(cut.status, Status::Pass);
    assert_eq!(cut.tally.get("pending_at_cut"), Some(&1));
    assert_eq!(judge(false).status, Status::Fail);
}
