//! The runners, `post` and the 2.0 qrunner against the real list store and
//! its lock (docs/semantics/mailman-config-store.md;
//! docs/semantics/mailman-queues-runners.md §8–§9, §15, §16): who locks, what
//! a held lock does to them, and the fallback chain reached through an
//! unlocked `Load()`.

use std::time::Duration;

use model::list_access::{LockCounter, MailList, MailListSettings};
use model::msgdata::MsgData;
use model::post::{post, EntryScript};
use model::profile::{MailmanProfile, Settings};
use model::runner::{qrunner20, run_runner, IncomingRunner};
use model::slice::Slice;
use model::switchboard::{QueuedMessage, Switchboard};
use model::RepairMode;
use model::{ListLoadOutcome, ModelEvent};

use crate::support::{block_on, load_list, make_list, TestOs};

fn text(id: &str) -> String {
    format!("From: a@example.org\nSubject: hello\nMessage-Id: <{id}>\n\nbody\n")
}

fn passes(mut s: Settings, passes_max: u64) -> Settings {
    s.runner.passes_max = passes_max;
    s
}

/// Another process's `Lock()`, `post_id = post_id`, `Save()`, `Unlock()`:
/// after it, `.last` holds the previous state.
async fn save_post_id(os: &TestOs, settings: &MailListSettings, post_id: u64) {
    let counter = LockCounter::new();
    let mut mlist = MailList::new(os, &counter, "test", settings.clone()).unwrap();
    mlist.lock(None).await.unwrap();
    mlist.config_mut().post_id = post_id;
    mlist.save().await.unwrap();
    mlist.unlock().await.unwrap();
    mlist.finalize().await.unwrap();
}

fn post_ids(os: &TestOs) -> Vec<(String, u64)> {
    os.events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::PostNumbered { message_id, post_id, .. } => Some((message_id, post_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn incoming_runner_requeues_to_in_when_another_process_holds_the_list_lock_past_the_timeout() {
    let os = TestOs::new(1);
    let holder = os.fork();
    let s = passes(Settings::default(), 1);
    let counter = LockCounter::new();
    let mut held = MailList::new(&holder, &counter, "test", s.list_store.clone()).unwrap();
    block_on(async {
        make_list(&os, &s.list_store, "test", &["alice@example.org"]).await;
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("p1@x")).await, 0);
        // LIST_LOCK_LIFETIME is 5 h, so the runner's 10 s of polling never breaks it.
        held.lock(None).await.unwrap();
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await, 0);
        assert!(os.exists("locks/test.lock"), "the holder's lock must survive");
        assert_eq!(os.names("qfiles/in").len(), 1, "the message is back in `in`");
        assert!(os.names("qfiles/out").is_empty());
        assert_eq!(load_list(&os, &s.list_store, "test").await.post_id, 7);
        held.unlock().await.unwrap();
    });
    let runner_events: Vec<ModelEvent> =
        os.world.events.borrow().iter().filter(|(pid, _)| *pid == os.pid).map(|(_, e)| e.clone()).collect();
    let timed_out = runner_events
        .iter()
        .position(|e| matches!(e, ModelEvent::LockTimedOut { lock, .. } if lock == "locks/test.lock"))
        .expect("the runner's Lock(timeout=10 s) timed out");
    assert!(runner_events[..timed_out]
        .iter()
        .any(|e| matches!(e, ModelEvent::LockContended { lock, .. } if lock == "locks/test.lock")));
    // `post` ran in this process too: look only after the timeout.
    assert!(
        runner_events[timed_out..].iter().any(
            |e| matches!(e, ModelEvent::QueueEnqueued { queue, message_id, .. } if queue == "in" && message_id == "p1@x")
        ),
        "re-queued to in"
    );
    assert!(!runner_events.iter().any(|e| matches!(e, ModelEvent::PostNumbered { .. })));
    assert!(!runner_events[timed_out..].iter().any(|e| matches!(e, ModelEvent::LockAcquired { .. })));
}

#[test]
fn two_incoming_runners_on_disjoint_slices_share_one_list_and_number_posts_without_repeats() {
    const POSTS: u64 = 12;
    let os = TestOs::new(7);
    let s = passes(Settings::default(), 40);
    let ids: Vec<String> = (0..POSTS).map(|i| format!("p{i}@x")).collect();
    block_on(async {
        make_list(&os, &s.list_store, "test", &["alice@example.org"]).await;
        for id in &ids {
            assert_eq!(post(&os, &s, EntryScript::Post, "test", &text(id)).await, 0);
            os.advance(Duration::from_millis(10));
        }
        // Each slice must own some of the posts, or nothing contends.
        for index in 0..2 {
            let sb = Switchboard::new(&os, &s.queue, "in", Slice { index, count: 2 });
            assert!(!sb.files().await.unwrap().is_empty(), "slice {index} is empty");
        }
        os.world.yield_on_io.set(true);
        let (a, b) = (os.fork(), os.fork());
        let (sa, sb) = (s.clone(), s.clone());
        let ha = tokio::task::spawn_local(async move {
            run_runner(&a, &sa, Slice { index: 0, count: 2 }, IncomingRunner::new()).await
        });
        let hb = tokio::task::spawn_local(async move {
            run_runner(&b, &sb, Slice { index: 1, count: 2 }, IncomingRunner::new()).await
        });
        assert_eq!(ha.await.unwrap(), 0);
        assert_eq!(hb.await.unwrap(), 0);
        os.world.yield_on_io.set(false);
        assert!(os.names("qfiles/in").is_empty(), "both runners drained their slices");
        assert_eq!(load_list(&os, &s.list_store, "test").await.post_id, 7 + POSTS);
    });
    let numbered = post_ids(&os);
    let numbers: Vec<u64> = numbered.iter().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (7..7 + POSTS).collect::<Vec<_>>(), "strictly increasing, no repeats");
    let mut seen: Vec<&str> = numbered.iter().map(|(id, _)| id.as_str()).collect();
    seen.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(seen, want, "each post numbered exactly once");
    let events = os.world.events.borrow();
    assert!(
        events.iter().any(|(_, e)| matches!(e, ModelEvent::LockContended { lock, .. } if lock == "locks/test.lock")),
        "the runners never contended: the test proves nothing"
    );
    let numbering_pids: std::collections::BTreeSet<u32> =
        events.iter().filter(|(_, e)| matches!(e, ModelEvent::PostNumbered { .. })).map(|(pid, _)| *pid).collect();
    assert_eq!(numbering_pids.len(), 2, "both runners made progress");
}

#[test]
fn post_of_2_1_exits_1_for_a_missing_list_and_0_for_a_list_found_only_by_its_last_file() {
    let os = TestOs::new(1);
    let s = Settings::default();
    block_on(async {
        assert_eq!(post(&os, &s, EntryScript::Post, "nolist", &text("n@x")).await, 1);
        make_list(&os, &s.list_store, "test", &[]).await;
        save_post_id(&os, &s.list_store, 8).await;
        // Only `.last` left: `list_exists` still finds the list (mailman-config-store.md §7).
        std::fs::remove_file(os.path("lists/test/config.pck")).unwrap();
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("p@x")).await, 0);
        assert_eq!(os.names("qfiles/in").len(), 1);
    });
    let events = os.events();
    assert!(events.iter().any(|e| matches!(e,
        ModelEvent::ListMissing { list, files, .. } if list == "nolist" && files.len() == 4)));
    let exits: Vec<(String, i32)> = events
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::PostExited { list, exit_code, .. } => Some((list, exit_code)),
            _ => None,
        })
        .collect();
    assert_eq!(exits, vec![("nolist".to_string(), 1), ("test".to_string(), 0)]);
}

#[test]
fn post_of_2_0_falls_back_to_config_db_last_when_config_db_is_truncated_and_copies_it_back() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        std::fs::create_dir_all(os.path("qfiles")).unwrap();
        make_list(&os, &s.list_store, "test", &[]).await;
        save_post_id(&os, &s.list_store, 8).await;
        let last = std::fs::read(os.path("lists/test/config.db.last")).unwrap();
        let full = std::fs::read(os.path("lists/test/config.db")).unwrap();
        std::fs::write(os.path("lists/test/config.db"), &full[..full.len() / 2]).unwrap();
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("old@x")).await, 0);
        assert_eq!(os.names("qfiles").len(), 2, "the flat .db/.msg pair");
        // The unlocked 2.0 repair: `shutil.copy(config.db.last, config.db)`.
        assert_eq!(std::fs::read(os.path("lists/test/config.db")).unwrap(), last);
    });
    let events = os.events();
    assert!(events.iter().any(|e| matches!(e,
        ModelEvent::ListFileLoad { file, outcome: ListLoadOutcome::Corrupt, .. } if file == "lists/test/config.db")));
    assert!(events.iter().any(|e| matches!(e,
        ModelEvent::ListFallbackUsed { file, .. } if file == "lists/test/config.db.last")));
    assert!(events.iter().any(|e| matches!(e, ModelEvent::ListRepairStarted { mode: RepairMode::CopyUnlocked, .. })));
    assert!(events.iter().any(|e| matches!(e, ModelEvent::PostExited { exit_code: 0, .. })));
    // The repair is unlocked in 2.0: nobody took the list lock.
    let post_pid_events = os.world.events.borrow();
    assert!(!post_pid_events
        .iter()
        .skip_while(|(_, e)| !matches!(e, ModelEvent::ListFallbackUsed { .. }))
        .any(|(_, e)| matches!(e, ModelEvent::LockAcquired { lock, .. } if lock == "locks/test.lock")));
}

#[test]
fn qrunner_of_2_0_deletes_a_message_for_a_missing_list_under_its_site_lock() {
    let os = TestOs::new(1);
    let s = MailmanProfile::V2_0.settings();
    block_on(async {
        std::fs::create_dir_all(os.path("locks")).unwrap();
        let q = Switchboard::open(&os, &s.queue, "qfiles", Slice::WHOLE).await.unwrap();
        let d = MsgData { listname: Some("nolist".to_string()), tolist: true, ..MsgData::default() };
        q.enqueue(QueuedMessage::Text(text("gone@x")), d).await.unwrap();
        assert_eq!(qrunner20(&os, &s).await, 0);
        assert!(os.names("qfiles").is_empty());
        assert!(os.names("locks").is_empty(), "lock and claim are gone");
    });
    let events = os.events();
    let acquired = events
        .iter()
        .position(|e| matches!(e,
            // 2.0 claims carry no counter (mailman-lockfile.md §3).
            ModelEvent::LockAcquired { lock, claim } if lock == "locks/qrunner.lock" && claim == "locks/qrunner.lock.host1.1"))
        .expect("qrunner.lock taken");
    let deleted = events
        .iter()
        .position(|e| matches!(e, ModelEvent::MessageDeleted { message_id, list, .. } if message_id == "gone@x" && list == "nolist"))
        .expect("message deleted");
    let released = events
        .iter()
        .position(|e| matches!(e, ModelEvent::LockReleasing { lock, .. } if lock == "locks/qrunner.lock"))
        .expect("qrunner.lock released");
    assert!(acquired < deleted && deleted < released);
}

/// Corrupts `config.pck` of a list whose `.last` holds post_id 7 (the
/// primary holds 8), runs one IncomingRunner pass, and returns the events.
fn open_list_with_a_corrupt_config_pck(profile: MailmanProfile) -> TestOs {
    let os = TestOs::new(1);
    let s = passes(profile.settings(), 1);
    block_on(async {
        make_list(&os, &s.list_store, "test", &["alice@example.org"]).await;
        save_post_id(&os, &s.list_store, 8).await;
        std::fs::write(os.path("lists/test/config.pck"), b"{\"real_name\": \"te").unwrap();
        assert_eq!(post(&os, &s, EntryScript::Post, "test", &text("p1@x")).await, 0);
        assert_eq!(run_runner(&os, &s, Slice::WHOLE, IncomingRunner::new()).await, 0);
        let out = Switchboard::new(&os, &s.queue, "out", Slice::WHOLE);
        assert_eq!(out.files().await.unwrap().len(), 1, "the post went on, numbered from .last");
        assert_eq!(load_list(&os, &s.list_store, "test").await.post_id, 8);
    });
    let events = os.events();
    assert!(events.iter().any(|e| matches!(e,
        ModelEvent::ListFallbackUsed { file, .. } if file == "lists/test/config.pck.last")));
    assert_eq!(post_ids(&os), vec![("p1@x".to_string(), 7)]);
    os
}

#[test]
fn open_list_of_2_1_39_loads_config_pck_last_and_repairs_under_the_lock() {
    let os = open_list_with_a_corrupt_config_pck(MailmanProfile::V2_1_39);
    assert!(os.exists("lists/test/config.pck.corrupt"));
    assert!(os.exists("lists/test/config.pck.safety"));
    let events = os.events();
    let started = events
        .iter()
        .position(|e| matches!(e, ModelEvent::ListRepairStarted { mode: RepairMode::RenameCorruptThenCopy, .. }))
        .expect("locked repair");
    // The repair takes the list lock itself (no caller holds it in `_open_list`).
    assert!(matches!(&events[started + 1..].iter().find(|e| matches!(e, ModelEvent::LockAcquired { .. })),
        Some(ModelEvent::LockAcquired { lock, .. }) if lock == "locks/test.lock"));
    assert!(events[started..].iter().any(|e| matches!(e, ModelEvent::ListRepairFinished { .. })));
}

#[test]
fn open_list_of_2_1_early_loads_config_pck_last_and_copies_it_back_without_the_lock() {
    let os = open_list_with_a_corrupt_config_pck(MailmanProfile::V2_1Early);
    assert!(!os.exists("lists/test/config.pck.corrupt"));
    assert!(os.exists("lists/test/config.pck.safety"));
    let events = os.events();
    let started = events
        .iter()
        .position(|e| matches!(e, ModelEvent::ListRepairStarted { mode: RepairMode::CopyUnlocked, .. }))
        .expect("unlocked repair");
    let finished =
        events.iter().position(|e| matches!(e, ModelEvent::ListRepairFinished { .. })).expect("repair finished");
    assert!(!events[started..finished].iter().any(|e| matches!(e, ModelEvent::LockAcquired { .. })));
}

/// The profiles thread through to the store: each builds its version's
/// `MailListSettings`, and a `--settings` override reaches it.
#[test]
fn profiles_build_their_list_store_settings_and_overrides_reach_the_store() {
    assert_eq!(MailmanProfile::V2_0.settings().list_store, MailListSettings::mailman_2_0_13());
    assert_eq!(MailmanProfile::V2_1Early.settings().list_store, MailListSettings::mailman_2_1_2());
    assert_eq!(MailmanProfile::V2_1_39.settings().list_store, MailListSettings::mailman_2_1_39());
    let s = model::profile::settings_from(
        "2.1.39",
        Some(r#"{"list_store":{"repair":"copy_unlocked","list_lock_timeout_s":2.5,"lock":{"variant":"flufl","lifetime_s":60}}}"#),
    )
    .unwrap();
    assert_eq!(s.list_store.repair, model::RepairMode::CopyUnlocked);
    assert_eq!(s.list_store.list_lock_timeout, Duration::from_millis(2500));
    assert_eq!(s.list_store.lock.variant, model::LockVariant::Flufl);
    assert_eq!(s.list_store.lock.lifetime, Duration::from_secs(60));
    assert!(model::profile::settings_from("2.1.39", Some(r#"{"list_store":{"lock":{"lifetime":60}}}"#)).is_err());
}
