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
                    decision: model::RouteDecision::BouncedUnknownList,
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
        decision: model::RouteDecision::BouncedUnknownList,
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

/// A server namespace holding `files` (paths under the export root; their
/// directories are made on the way), as the end of a run leaves it.
fn store_with_paths(files: &[&str]) -> Store {
    use sim::nfs::proto::{Body, CreateMode, Request};
    let mut store = Store::new(0, 1, ReaddirOrder::Creation, 0);
    let mut dirs: std::collections::BTreeMap<String, sim::nfs::proto::Fh> = Default::default();
    for path in files {
        let mut dir = sim::nfs::store::ROOT;
        let (parents, name) = path.rsplit_once('/').unwrap_or(("", path));
        let mut at = String::new();
        for part in parents.split('/').filter(|p| !p.is_empty()) {
            at = if at.is_empty() { part.to_string() } else { format!("{at}/{part}") };
            dir = *dirs.entry(at.clone()).or_insert_with(|| {
                let made = store.apply(&Request::Mkdir { dir, name: part.into() }, 0);
                let Ok(Body::Handle(fh)) = made.status else { panic!("mkdir {at}: {:?}", made.status) };
                fh
            });
        }
        store.apply(&Request::Create { dir, name: name.into(), mode: CreateMode::Unchecked }, 0);
    }
    store
}

/// One oracle on one hand-made history: `want` is `None` for a pass, or a
/// text that the first violation contains.
struct Case {
    what: &'static str,
    oracle: &'static str,
    events: Vec<EventKind>,
    files: &'static [&'static str],
    ending_problem: Option<&'static str>,
    held_locks_must_be_free: bool,
    want: Option<&'static str>,
}

fn case(what: &'static str, oracle: &'static str, events: Vec<EventKind>, want: Option<&'static str>) -> Case {
    Case { what, oracle, events, files: &[], ending_problem: None, held_locks_must_be_free: true, want }
}

fn check_cases(cases: Vec<Case>) {
    for c in cases {
        let events = history_of(c.events.into_iter().enumerate().map(|(i, k)| (i as u64, k)).collect());
        let store = store_with_paths(c.files);
        let history = History {
            events: &events,
            store: &store,
            ending_problem: c.ending_problem.map(str::to_string),
            cut: false,
            held_locks_must_be_free: c.held_locks_must_be_free,
        };
        let result = check(c.oracle, &history);
        match c.want {
            None => assert_eq!(result.status, Status::Pass, "{}: {:?}", c.what, result.violations),
            Some(text) => {
                assert_eq!(result.status, Status::Fail, "{}: passed", c.what);
                assert!(result.violations[0].contains(text), "{}: {:?}", c.what, result.violations);
            }
        }
    }
}

fn acquired(host: &str, claim: &str) -> EventKind {
    note(host, 1, ModelEvent::LockAcquired { lock: "locks/test.lock".into(), claim: claim.into() })
}

fn releasing(host: &str, claim: &str) -> EventKind {
    note(host, 1, ModelEvent::LockReleasing { lock: "locks/test.lock".into(), claim: claim.into() })
}

#[test]
fn lock_exclusion_on_hand_made_histories() {
    let broken =
        note("mail1", 1, ModelEvent::LockRefreshed { lock: "locks/test.lock".into(), claim: "a".into(), held: false });
    check_cases(vec![
        case(
            "one holder after another",
            "lock_exclusion",
            vec![acquired("mail1", "a"), releasing("mail1", "a"), acquired("mail2", "b"), releasing("mail2", "b")],
            None,
        ),
        case(
            "two holders at once",
            "lock_exclusion",
            vec![acquired("mail1", "a"), acquired("mail2", "b")],
            Some("mail2/1 acquired locks/test.lock (claim b) while mail1/1 (claim a) held it since t=0.000s [event 1]"),
        ),
        case(
            "a holder finds its lock broken",
            "lock_exclusion",
            vec![acquired("mail1", "a"), broken],
            Some("found its lock locks/test.lock (claim a, held since t=0.000s) broken while it was alive"),
        ),
    ]);
}

#[test]
fn lost_update_on_hand_made_histories() {
    let saved =
        |post_id: u64| note("mail1", 4, ModelEvent::ListSaved { list: "test".into(), file: "f".into(), post_id });
    let numbered = |id: &str, post_id: u64| {
        note("mail1", 4, ModelEvent::PostNumbered { list: "test".into(), message_id: id.into(), post_id })
    };
    let sunk = |id: &str, n: u64| {
        note(
            "sink",
            1,
            ModelEvent::SinkReceived {
                recipient: "m@x".into(),
                message_id: id.into(),
                post_number: Some(n),
                subject: String::new(),
            },
        )
    };
    check_cases(vec![
        case("saves one post apart", "lost_update", vec![saved(1), saved(2), saved(3)], None),
        case("a save without a new post keeps the post_id", "lost_update", vec![saved(1), saved(2), saved(2)], None),
        case(
            "a save from a stale config goes back",
            "lost_update",
            vec![saved(1), saved(2), saved(1)],
            Some("mail1/4 saved test with post_id 1 after a save with 2 [events 1, 2]"),
        ),
        case("a save that skips one", "lost_update", vec![saved(1), saved(3)], Some("post_id 3 after a save with 1")),
        case("one number, one message, twice", "lost_update", vec![numbered("a", 5), numbered("a", 5)], None),
        case(
            "one number, two messages",
            "lost_update",
            vec![numbered("a", 5), numbered("b", 5)],
            Some("test: post number 5 given to b and to a [events 0, 1]"),
        ),
        case(
            "the sink sees one number on two messages",
            "lost_update",
            vec![sunk("a", 7), sunk("b", 7)],
            Some("the sink saw post number 7 on b and on a"),
        ),
    ]);
}

#[test]
fn runner_errors_on_hand_made_histories() {
    let shunted = |reason: model::DropReason| {
        note(
            "mail1",
            4,
            ModelEvent::Shunted {
                queue: "in".into(),
                filebase: "f".into(),
                message_id: "m".into(),
                list: "test".into(),
                reason,
                errno: "ESTALE".into(),
            },
        )
    };
    let finished = |outcome: model::FinishOutcome| {
        note(
            "mail1",
            4,
            ModelEvent::QueueFinished { queue: "in".into(), filebase: "f".into(), outcome, errno: String::new() },
        )
    };
    let exited = |reason: model::RunnerExit| {
        note("mail1", 4, ModelEvent::RunnerExited { runner: "IncomingRunner".into(), slice: 0, count: 1, reason })
    };
    check_cases(vec![
        case("a message removed after delivery", "runner_errors", vec![finished(model::FinishOutcome::Removed)], None),
        case(
            "a shunt for a missing list is no_missing_list's",
            "runner_errors",
            vec![shunted(model::DropReason::MissingList)],
            None,
        ),
        case(
            "a shunt on an error",
            "runner_errors",
            vec![shunted(model::DropReason::Raised("Stale file handle (os error 116)".into()))],
            Some("in: shunted m: Stale file handle (os error 116) (ESTALE)"),
        ),
        case(
            "an entry preserved instead of removed",
            "runner_errors",
            vec![finished(model::FinishOutcome::Preserved)],
            Some("in: finish of f: preserved"),
        ),
        case("a clean runner exit", "runner_errors", vec![exited(model::RunnerExit::Done)], None),
        case(
            "a runner killed by an error",
            "runner_errors",
            vec![exited(model::RunnerExit::Error("EIO".into()))],
            Some("runner IncomingRunner exited: error: EIO"),
        ),
    ]);
}

#[test]
fn liveness_on_hand_made_end_states() {
    let end = |what, files, ending_problem, held_locks_must_be_free, want| Case {
        what,
        oracle: "liveness",
        events: Vec::new(),
        files,
        ending_problem,
        held_locks_must_be_free,
        want,
    };
    check_cases(vec![
        end("drained, locks free", &["qfiles/shunt/x.pck", "lists/test/config.pck"], None, true, None),
        end(
            "a message still queued",
            &["qfiles/in/x.pck"],
            None,
            true,
            Some("qfiles/in/x.pck is still queued at the end"),
        ),
        end("a lock still held", &["locks/test.lock"], None, true, Some("locks/test.lock is still held at the end")),
        end("a lock left by a crash the scenario does not recover", &["locks/test.lock"], None, false, None),
        end("the budget ran out", &[], Some("the 400s simulated-time budget ran out"), true, Some("budget ran out")),
        end("a silly-renamed leftover is not a queued message", &["qfiles/in/.nfs0001"], None, true, None),
    ]);
}
