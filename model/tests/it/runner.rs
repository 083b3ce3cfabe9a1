//! Runners (docs/semantics/mailman-queues-runners.md §7–§15): numbering, shunting, corrupt entries,
//! SMTP classification and per-version failure handling.

use model::list_access::{ListConfig, MailListSettings};
use model::msgdata::MsgData;
use model::post::{post, EntryScript};
use model::profile::{MailmanProfile, Settings};
use model::runner::{qrunner20, run_runner, IncomingRunner, OutgoingRunner};
use model::slice::Slice;
use model::switchboard::{QueuedMessage, Switchboard};
use model::ModelEvent;

use crate::support::{args, block_on, TestOs};

fn text(id: &str) -> String {
    format!("From: a@example.org\nSubject: hello\nMessage-Id: <{id}>\n\nbody\n")
}

fn one_pass(mut s: Settings) -> Settings {
    s.runner.passes_max = 1;
    s
}

async fn make_list(os: &TestOs, s: &MailListSettings, members: &[&str]) {
    crate::support::make_list(os, s, "test", members).await;
}

async fn load(os: &TestOs, s: &Settings) -> ListConfig {
    crate::support::load_list(os, &s.list_store, "test").await
}

#[test]
fn incoming_runner_puts_post_id_into_the_subject_and_increments_it() {
    let os = TestOs::new(1);
    let s = one_pass(Settings::default());
    block_on(async {
        make_list(&os, &s.list_store, &["alice@example.org"]).await;
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("p1@x")).await, 0);
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await, 0);
        let out = Switchboard::new(&os, &s.queue, "out", Slice::WHOLE);
        let files = out.files().await.unwrap();
        assert_eq!(files.len(), 1);
        let d = out.dequeue(&files[0]).await.unwrap();
        assert_eq!(d.msg.unwrap().get("Subject"), Some("[test 7] hello"));
        assert_eq!(d.data.recips, Some(vec!["alice@example.org".to_string()]));
        assert_eq!(load(&os, &s).await.post_id, 8);
        assert_eq!(Switchboard::new(&os, &s.queue, "archive", Slice::WHOLE).files().await.unwrap().len(), 1);
        assert!(os.names("qfiles/in").is_empty());
    });
    let events = os.events();
    assert!(events
        .iter()
        .any(|e| matches!(e, ModelEvent::PostNumbered { post_id: 7, message_id, .. } if message_id == "p1@x")));
    assert!(events.iter().any(|e| matches!(e, ModelEvent::ListSaved { post_id: 8, .. })));
}

#[test]
fn a_second_post_gets_the_next_number_and_an_old_prefix_is_replaced() {
    let os = TestOs::new(1);
    let s = one_pass(Settings::default());
    block_on(async {
        make_list(&os, &s.list_store, &["alice@example.org"]).await;
        post(&os, &s, EntryScript::Post, "test", &text("p1@x")).await;
        run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await;
        let reply = "From: b@example.org\nSubject: [test 7] hello\nMessage-Id: <p2@x>\n\nre\n";
        post(&os, &s, EntryScript::Post, "test", reply).await;
        run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await;
        assert_eq!(load(&os, &s).await.post_id, 9);
    });
    let subjects: Vec<u64> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::PostNumbered { post_id, .. } => Some(post_id),
            _ => None,
        })
        .collect();
    assert_eq!(subjects, vec![7, 8]);
}

#[test]
fn a_message_for_a_missing_list_is_shunted_in_2_1() {
    let os = TestOs::new(1);
    let s = one_pass(Settings::default());
    block_on(async {
        let inq = Switchboard::open(&os, &s.queue, "in", Slice::WHOLE).await.unwrap();
        let d = MsgData { listname: Some("nolist".to_string()), plaintext: true, ..MsgData::default() };
        inq.enqueue(QueuedMessage::Text(text("lost@x")), d).await.unwrap();
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await, 0);
        assert_eq!(Switchboard::new(&os, &s.queue, "shunt", Slice::WHOLE).files().await.unwrap().len(), 1);
        assert!(os.names("qfiles/in").is_empty());
    });
    assert!(os.events().iter().any(|e| matches!(e, ModelEvent::Shunted { reason, .. } if reason.is_missing_list())));
}

/// Posts one message, truncates its `qfiles/in` entry and runs one
/// IncomingRunner pass over it; returns the entry's file name.
async fn run_on_a_truncated_entry(os: &TestOs, s: &Settings) -> String {
    make_list(os, &s.list_store, &[]).await;
    post(os, s, EntryScript::Post, "test", &text("t@x")).await;
    let name = os.names("qfiles/in").pop().unwrap();
    std::fs::write(os.path(&format!("qfiles/in/{name}")), b"\"From: a").unwrap();
    assert_eq!(run_runner(os, s, Slice::WHOLE, IncomingRunner::new()).await, 0);
    name
}

#[test]
fn a_truncated_entry_is_preserved_to_bad_in_2_1_39() {
    let os = TestOs::new(1);
    let s = one_pass(Settings::default());
    block_on(async {
        let name = run_on_a_truncated_entry(&os, &s).await;
        let fb = name.strip_suffix(".pck").unwrap().to_string();
        assert_eq!(os.names("qfiles/bad"), vec![format!("{fb}.psv")]);
        assert!(os.names("qfiles/in").is_empty());
        // Mailman 2.1.26 `Runner._oneloop`: `self._log(e)`, then the
        // QRUNNER_SAVE_BAD_MESSAGES line (docs/semantics/mailman-corrupt-files.md).
        let errors = os.log_lines("error");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("Uncaught runner exception: cannot decode queue entry: "), "{errors:?}");
        assert_eq!(errors[1], format!("Skipping and preserving unparseable message: {fb}"));
    });
}

#[test]
fn a_truncated_entry_is_ignored_and_removed_when_bad_messages_are_not_saved() {
    let os = TestOs::new(1);
    let mut s = one_pass(Settings::default());
    s.queue.bad_messages = model::switchboard::BadMessages::Discard;
    block_on(async {
        let name = run_on_a_truncated_entry(&os, &s).await;
        assert!(os.names("qfiles/in").is_empty());
        assert!(os.names("qfiles/bad").is_empty());
        let fb = name.strip_suffix(".pck").unwrap();
        assert_eq!(os.log_lines("error")[1], format!("Ignoring unparseable message: {fb}"));
    });
}

#[test]
fn a_corrupt_entry_kills_the_runner_in_2_1_early() {
    let os = TestOs::new(1);
    let s = one_pass(MailmanProfile::V2_1Early.settings());
    block_on(async {
        make_list(&os, &s.list_store, &[]).await;
        post(&os, &s, EntryScript::Post, "test", &text("t@x")).await;
        let db = os.names("qfiles/in").into_iter().find(|n| n.ends_with(".db")).unwrap();
        std::fs::write(os.path(&format!("qfiles/in/{db}")), b"{\"listna").unwrap();
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await, 1);
    });
    assert!(os
        .events()
        .iter()
        .any(|e| matches!(e, ModelEvent::RunnerExited { reason: model::RunnerExit::Error(_), .. })));
}

#[test]
fn smtp_codes_of_500_and_up_except_552_are_permanent() {
    use model::runner::is_permanent;
    assert!(is_permanent(550) && is_permanent(554) && is_permanent(500));
    assert!(!is_permanent(552) && !is_permanent(451) && !is_permanent(-1) && !is_permanent(250));
}

fn start_sink(os: &TestOs, port: u16) {
    let sink = os.fork();
    let a = args(&[&format!("--port={port}"), "--perm=bob@example.org", "--temp=carol@example.org"]);
    tokio::task::spawn_local(async move { model::programs::run(sink, "smtp-sink", &a).await });
}

async fn enqueue_out(os: &TestOs, s: &Settings) {
    let out = Switchboard::open(os, &s.queue, "out", Slice::WHOLE).await.unwrap();
    let recips = ["alice@example.org", "bob@example.org", "carol@example.org"].iter().map(|r| r.to_string()).collect();
    let d = MsgData { listname: Some("test".to_string()), recips: Some(recips), ..MsgData::default() };
    let msg = model::message::Message::parse("Subject: [test 7] hi\nMessage-Id: <o@x>\n\nbody\n").unwrap();
    out.enqueue(QueuedMessage::Parsed(msg), d).await.unwrap();
}

fn outcomes(os: &TestOs) -> Vec<String> {
    os.events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::SmtpRecipient { recipient, code, outcome, .. } => Some(format!("{recipient} {code} {outcome}")),
            _ => None,
        })
        .collect()
}

#[test]
fn outgoing_classifies_recipients_and_sends_tempfailures_to_retry_in_2_1_39() {
    let os = TestOs::new(1);
    let mut s = one_pass(Settings::default());
    s.outgoing.smtp_port = 2525;
    // `bin/install` creates DATA_DIR; nothing in the model does.
    std::fs::create_dir_all(os.path("data")).unwrap();
    block_on(async {
        make_list(&os, &s.list_store, &[]).await;
        start_sink(&os, 2525);
        tokio::task::yield_now().await;
        enqueue_out(&os, &s).await;
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, OutgoingRunner::new()).await, 0);
        assert_eq!(Switchboard::new(&os, &s.queue, "retry", Slice::WHOLE).files().await.unwrap().len(), 1);
        // The permanent failure waits in the events file until _cleanup registers it.
        assert!(!os.exists("data") || os.names("data").is_empty());
    });
    assert_eq!(
        outcomes(&os),
        vec!["alice@example.org 250 delivered", "bob@example.org 550 permanent", "carol@example.org 451 temporary"]
    );
    assert!(os.events().iter().any(|e| matches!(e, ModelEvent::SinkReceived { post_number: Some(7), .. })));
    assert!(os
        .events()
        .iter()
        .any(|e| matches!(e, ModelEvent::BounceRegistered { address, .. } if address == "bob@example.org")));
}

#[test]
fn outgoing_requeues_into_out_and_registers_permfailures_at_once_in_2_1_2() {
    let os = TestOs::new(1);
    let mut s = one_pass(MailmanProfile::V2_1Early.settings());
    s.outgoing.smtp_port = 2526;
    block_on(async {
        make_list(&os, &s.list_store, &[]).await;
        start_sink(&os, 2526);
        tokio::task::yield_now().await;
        enqueue_out(&os, &s).await;
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, OutgoingRunner::new()).await, 0);
        let out = Switchboard::new(&os, &s.queue, "out", Slice::WHOLE);
        let files = out.files().await.unwrap();
        assert_eq!(files.len(), 1);
        let d = out.dequeue(&files[0]).await.unwrap();
        assert_eq!(d.data.recips, Some(vec!["carol@example.org".to_string()]));
        assert!(d.data.deliver_after.is_some());
        assert!(!os.exists("qfiles/retry"));
        assert!(load(&os, &s).await.bounce_info.contains_key("bob@example.org"));
    });
}

#[test]
fn outgoing_keeps_the_message_when_the_smtp_server_is_down() {
    let os = TestOs::new(1);
    let mut s = one_pass(Settings::default());
    s.outgoing.smtp_port = 2599;
    block_on(async {
        make_list(&os, &s.list_store, &[]).await;
        enqueue_out(&os, &s).await;
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, OutgoingRunner::new()).await, 0);
        assert_eq!(Switchboard::new(&os, &s.queue, "out", Slice::WHOLE).files().await.unwrap().len(), 1);
    });
    assert!(outcomes(&os).is_empty());
}

#[test]
fn the_2_0_post_and_qrunner_number_a_post_and_deliver_it() {
    let os = TestOs::new(1);
    let mut s = MailmanProfile::V2_0.settings();
    s.outgoing.smtp_port = 2527;
    block_on(async {
        make_list(&os, &s.list_store, &["alice@example.org"]).await;
        assert!(os.exists("lists/test/config.db"));
        // `bin/install` creates these in 2.0; nothing in the model does.
        std::fs::create_dir_all(os.path("qfiles")).unwrap();
        std::fs::create_dir_all(os.path("locks")).unwrap();
        start_sink(&os, 2527);
        tokio::task::yield_now().await;
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("old@x")).await, 0);
        assert_eq!(model::runner::qrunner20(&os, &s).await, 0);
        assert!(os.names("qfiles").is_empty());
        assert_eq!(load(&os, &s).await.post_id, 8);
    });
    assert!(os.events().iter().any(|e| matches!(e, ModelEvent::SinkReceived { post_number: Some(7), .. })));
}

#[test]
fn mailmanctl_starts_every_slice_unless_the_host_has_dedicated_ones() {
    use model::runner::QrunnerSpec;
    let stock = QrunnerSpec { name: "Incoming".into(), count: 4, slices: None };
    assert_eq!(stock.host_slices(), vec![0, 1, 2, 3]);
    let dedicated = QrunnerSpec { name: "Incoming".into(), count: 4, slices: Some(vec![1, 3, 9]) };
    assert_eq!(dedicated.host_slices(), vec![1, 3], "slices at or past count are ignored");
}

/// A shunt's reason is typed in the model and recorded as the text Mailman
/// logs, so traces read, and hash, as they did when it was a string.
#[test]
fn a_drop_reason_is_recorded_as_mailmans_text() {
    for (reason, text) in [
        (model::DropReason::MissingList, "Dequeuing message destined for missing list"),
        (model::DropReason::Raised("Stale file handle (os error 116)".into()), "Stale file handle (os error 116)"),
    ] {
        let event = ModelEvent::Shunted {
            queue: "in".into(),
            filebase: "f".into(),
            message_id: "m".into(),
            list: "test".into(),
            reason: reason.clone(),
            errno: "ENOENT".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!((json["reason"].as_str(), reason.to_string().as_str()), (Some(text), text));
    }
}

/// Loads of `config.pck` while an IncomingRunner numbers three posts (three
/// passes: before 2.1.9 posts in one second share a key, one per pass), and
/// the post id they leave.
fn loads_for_three_posts(s: &Settings) -> (Vec<model::ListLoadOutcome>, u64) {
    let mut s = s.clone();
    s.runner.passes_max = 3;
    let s = &s;
    let os = TestOs::new(1);
    let post_id = block_on(async {
        make_list(&os, &s.list_store, &["alice@example.org"]).await;
        for id in ["a@x", "b@x", "c@x"] {
            assert_eq!(post(&os, s, EntryScript::Post, "test", &text(id)).await, 0);
        }
        assert_eq!(run_runner(&os, s, Slice::WHOLE, IncomingRunner::new()).await, 0);
        assert!(os.names("qfiles/in").is_empty());
        load(&os, s).await.post_id
    });
    let mut loads: Vec<_> = os
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::ListFileLoad { outcome, .. } => Some(outcome),
            _ => None,
        })
        .collect();
    assert_eq!(loads.pop(), Some(model::ListLoadOutcome::Loaded), "the test's own load of the result");
    (loads, post_id)
}

/// 2.1.2's `_open_list` returns the process's cached list object without
/// `Load()`, and a reference cycle keeps it cached (NEWS 2.1.15); 2.1.15+
/// makes a fresh object and loads it for every message
/// (docs/semantics/mailman-queues-runners.md §7).
#[test]
fn a_2_1_early_runner_loads_a_list_unlocked_once_and_then_uses_its_cached_object() {
    use model::runner::ListCache;
    use model::ListLoadOutcome::{Loaded, ShortcutSkip};
    let early = one_pass(MailmanProfile::V2_1Early.settings());
    assert_eq!(early.runner.list_cache, ListCache::KeptForever);
    // The first message: the unlocked Load, then Lock()'s Load (the file is
    // not newer). The next two: Lock()'s Load only, which Save's timestamp
    // lets skip.
    assert_eq!(loads_for_three_posts(&early), (vec![Loaded, ShortcutSkip, ShortcutSkip, ShortcutSkip], 10));
    let mut uncached = early.clone();
    uncached.runner.list_cache = ListCache::None;
    assert_eq!(
        loads_for_three_posts(&uncached),
        (vec![Loaded, ShortcutSkip, Loaded, ShortcutSkip, Loaded, ShortcutSkip], 10)
    );
    assert_eq!(Settings::default().runner.list_cache, ListCache::None, "2.1.39");
}

/// Enqueues one 2.0 message for `listname` in `qfiles/` and returns its root.
async fn enqueue_20<O: model::Os>(os: &O, s: &Settings, listname: Option<&str>) -> String {
    let q = Switchboard::open(os, &s.queue, "qfiles", Slice::WHOLE).await.unwrap();
    let d = MsgData { listname: listname.map(str::to_string), tolist: true, ..MsgData::default() };
    q.enqueue(QueuedMessage::Text(text("q@x")), d).await.unwrap()
}

/// 2.0.13 `cron/qrunner`'s `main`: `if not os.path.exists(root + '.db')`
/// unlinks the `.msg`, and `exists` is false on any stat error, ESTALE
/// included, so a stale handle loses the message and leaves its `.db`
/// (docs/semantics/mailman-queues-runners.md §15).
#[test]
fn the_2_0_qrunner_takes_a_stale_db_for_an_orphan_and_unlinks_its_msg() {
    use crate::fake_os::{FakeOs, Op};
    let os = FakeOs::new();
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        os.mkdirs("locks");
        let root = enqueue_20(&*os, &s, Some("test")).await;
        os.fail(Op::Stat, &format!("qfiles/{root}.db"), libc::ESTALE, 1);
        assert_eq!(qrunner20(&*os, &s).await, 0);
        assert!(!os.exists(&format!("qfiles/{root}.msg")), "the message is gone");
        assert!(os.exists(&format!("qfiles/{root}.db")), "its metadata stays");
        let lines = os.log_lines("qrunner");
        assert!(
            lines.iter().any(|l| l.contains(&format!("Unlinking orphaned .msg file: qfiles/{root}.msg"))),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l.contains("Exception reading qfile")), "{lines:?}");
    });
}

/// A `.nfs…` file left in `qfiles/` (a host crashed with a queue file open)
/// is all extension to 2.0's `splitext`, so the qrunner takes it for a
/// `.msg`, finds no `qfiles/.db` and unlinks `qfiles/.msg`: ENOENT escapes
/// and ends the run, every minute, until someone removes the file. An entry
/// whose metadata names no list is logged and left queued.
#[test]
fn the_2_0_qrunner_dies_on_a_silly_renamed_file_and_keeps_an_entry_without_a_list() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        std::fs::create_dir_all(os.path("locks")).unwrap();
        let root = enqueue_20(&os, &s, None).await;
        assert_eq!(qrunner20(&os, &s).await, 0);
        assert_eq!(os.names("qfiles").len(), 2, "kept: {:?}", os.names("qfiles"));
        std::fs::write(os.path("qfiles/.nfs00000000000000170000000a"), b"x").unwrap();
        assert_ne!(qrunner20(&os, &s).await, 0, "the unlink of qfiles/.msg escapes");
        assert!(os.names("locks").is_empty(), "the site lock is released in `finally`");
        assert!(os.exists(&format!("qfiles/{root}.msg")));
    });
    let lines = os.log_lines("qrunner");
    assert!(lines.iter().any(|l| l.starts_with("qfile metadata specifies no list: qfiles/")), "{lines:?}");
    assert!(lines.iter().any(|l| l == "Unlinking orphaned .msg file: qfiles/.msg"), "{lines:?}");
}

/// 2.0.13 `cron/qrunner`: `finally: mlist.Save(); mlist.Unlock()`, so a
/// Save() that raises skips the Unlock(): the list lock stays until the run's
/// `finally` clears the list cache (its `__del__`), after the site lock has
/// been released unconditionally (docs/semantics/mailman-queues-runners.md §15).
#[test]
fn a_failed_2_0_save_skips_the_unlock_and_the_list_lock_goes_after_the_site_lock() {
    use crate::fake_os::{FakeOs, Op};
    let os = FakeOs::new();
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        use model::Os;
        os.mkdirs("locks");
        let config = model::ListConfig::new("test", "lists.example.com", "example.net", 0);
        model::newlist(&*os, &model::LockCounter::new(), "test", &s.list_store, config).await.unwrap();
        enqueue_20(&*os, &s, Some("test")).await;
        // Every Save() of the run fails to open its temporary file.
        let tmp = format!("lists/test/config.db.tmp.{}.{}", os.hostname(), os.pid());
        os.fail(Op::Open, &tmp, libc::EIO, usize::MAX);
        assert_eq!(qrunner20(&*os, &s).await, 1, "Save's error escapes");
        assert!(!os.exists("locks/qrunner.lock") && !os.exists("locks/test.lock"), "both locks are gone at the end");
    });
    let events = os.events();
    let started = events.iter().position(|e| matches!(e, ModelEvent::RunnerStarted { .. })).unwrap();
    let releases: Vec<String> = events[started..]
        .iter()
        .filter_map(|e| match e {
            ModelEvent::LockReleasing { lock, .. } => Some(lock.clone()),
            _ => None,
        })
        .collect();
    // The site lock's unconditional unlock, the list object's `__del__` at
    // `_listcache.clear()`, and the site lock object's `__del__` at exit.
    assert_eq!(
        releases,
        ["locks/qrunner.lock", "locks/test.lock", "locks/qrunner.lock"],
        "no Unlock() of the list after the failed Save"
    );
}
