//! `MailList`: Save and Load step by step (docs/semantics/mailman-config-store.md), per version
//! profile, on `FakeOs` and on `RealOs`.

use std::cell::Cell;
use std::rc::Rc;

use model::{
    list_exists, ConfigFormat, ListConfig, ListError, ListLoadOutcome, LockCounter, LockError, MailList,
    MailListSettings, ModelEvent, Os, RealOs, SaveProtocol, SyncAfterWrite,
};

use crate::fake_os::{FakeOs, Op};

const LIST: &str = "test";
const PCK: &str = "lists/test/config.pck";
const PCK_LAST: &str = "lists/test/config.pck.last";
const DB: &str = "lists/test/config.db";
const DB_LAST: &str = "lists/test/config.db.last";
const LIST_LOCK: &str = "locks/test.lock";

fn scene() -> Rc<FakeOs> {
    let os = FakeOs::new();
    os.mkdirs("locks");
    os
}

fn open_list<O: Os>(os: &Rc<O>, settings: MailListSettings) -> MailList<'_, O> {
    MailList::new(&**os, &LockCounter::new(), LIST, settings).unwrap()
}

/// Creates the list with `members` members and saves it `saves` times
/// (post_id 1, 2, …), then unlocks. After two saves `.last` exists.
async fn created<O: Os>(os: &Rc<O>, settings: MailListSettings, members: usize, saves: u64) -> MailList<'_, O> {
    let mut mlist = open_list(os, settings);
    mlist.create(ListConfig::new(LIST, "example.com", "example.com", members)).await.unwrap();
    for post_id in 1..=saves {
        mlist.config_mut().post_id = post_id;
        mlist.save().await.unwrap();
    }
    mlist.unlock().await.unwrap();
    mlist
}

fn truncate(os: &FakeOs, path: &str) {
    let file = std::fs::OpenOptions::new().write(true).open(os.root().join(path)).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
}

fn load_outcomes(os: &FakeOs) -> Vec<(String, ListLoadOutcome)> {
    os.events()
        .into_iter()
        .filter_map(|e| match e {
            ModelEvent::ListFileLoad { file, outcome, .. } => Some((file, outcome)),
            _ => None,
        })
        .collect()
}

fn has_event(os: &FakeOs, f: impl Fn(&ModelEvent) -> bool) -> bool {
    os.events().iter().any(f)
}

// --- Save (mailman-config-store.md §4) ---

#[tokio::test]
async fn save_then_load_round_trips_on_real_os() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("locks")).unwrap();
    let os = Rc::new(RealOs::new(dir.path().to_path_buf(), "host1".to_string()));
    let counter = LockCounter::new();
    let mut writer = MailList::new(&*os, &counter, LIST, MailListSettings::mailman_2_1_39()).unwrap();
    let mut config = ListConfig::new(LIST, "example.com", "example.com", 200);
    config.post_id = 42;
    config.subject_prefix = "[test %d] ".to_string();
    writer.create(config.clone()).await.unwrap();
    writer.save().await.unwrap();
    writer.unlock().await.unwrap();
    let mut reader = MailList::new(&*os, &counter, LIST, MailListSettings::mailman_2_1_39()).unwrap();
    reader.lock(None).await.unwrap();
    assert_eq!(reader.config(), &config);
    assert_eq!(reader.config().rendered_subject_prefix(), "[test 42] ");
    reader.unlock().await.unwrap();
    assert!(!dir.path().join(LIST_LOCK).exists());
}

#[tokio::test]
async fn save_writes_the_tmp_file_then_rotates_last_and_renames_over_config() {
    let os = scene();
    let mut mlist = created(&os, MailListSettings::mailman_2_1_39(), 3, 1).await;
    mlist.lock(None).await.unwrap();
    os.clear_ops();
    mlist.save().await.unwrap();
    let tmp = "lists/test/config.pck.tmp.host1.1234";
    let list_ops: Vec<String> =
        os.ops().into_iter().filter(|op| op.contains("lists/") || op.starts_with("event list_saved")).collect();
    let expected = [
        format!("open {tmp}"),
        format!("write {tmp}"),
        format!("close {tmp}"),
        format!("unlink {PCK_LAST}"),
        format!("link {PCK} {PCK_LAST}"),
        format!("rename {tmp} {PCK}"),
        "event list_saved".to_string(),
        format!("stat {PCK}"),
    ];
    assert_eq!(list_ops, expected);
    // The refresh came first: the lock was touched before the tmp file opened.
    assert!(os.ops()[0].starts_with("event lock_refreshed") || os.ops()[0].starts_with("set_times locks/"));
}

#[tokio::test]
async fn a_200_member_save_spans_several_8_kib_writes() {
    let os = scene();
    let config = ListConfig::new(LIST, "example.com", "example.com", 200);
    let bytes = serde_json::to_vec(&config).unwrap().len();
    assert!(bytes > 3 * 8192, "{bytes} bytes");
    let mut mlist = open_list(&os, MailListSettings::mailman_2_1_39());
    mlist.create(config).await.unwrap();
    os.clear_ops();
    mlist.save().await.unwrap();
    let writes = os.ops().iter().filter(|op| op.starts_with("write lists/test/config.pck.tmp.")).count();
    assert_eq!(writes, bytes.div_ceil(8192));
}

#[tokio::test]
async fn sync_after_write_fsyncs_the_tmp_file_before_closing_it() {
    let os = scene();
    let settings = MailListSettings { sync_after_write: SyncAfterWrite::Fsync, ..MailListSettings::mailman_2_1_39() };
    created(&os, settings, 1, 1).await;
    let ops = os.ops();
    let fsync = ops.iter().position(|op| op.starts_with("fsync lists/test/config.pck.tmp.")).expect("fsync");
    assert!(ops[fsync + 1].starts_with("close lists/test/config.pck.tmp."));
}

#[tokio::test]
async fn save_without_the_lock_raises_not_locked_and_writes_nothing() {
    let os = scene();
    let mut mlist = created(&os, MailListSettings::mailman_2_1_39(), 1, 1).await;
    os.clear_ops();
    mlist.config_mut().post_id = 99;
    assert!(matches!(mlist.save().await, Err(ListError::Lock(LockError::NotLocked))));
    assert!(!os.ops().iter().any(|op| op.contains("lists/")));
}

#[tokio::test]
async fn a_failed_tmp_write_is_logged_unlinked_and_leaves_config_alone() {
    let os = scene();
    let mut mlist = created(&os, MailListSettings::mailman_2_1_39(), 1, 1).await;
    let before = os.get(PCK).unwrap();
    mlist.lock(None).await.unwrap();
    os.fail(Op::Write, "lists/test/config.pck.tmp.host1.1234", libc::ENOSPC, 1);
    mlist.config_mut().post_id = 7;
    match mlist.save().await {
        Err(ListError::Io(e)) => assert_eq!(model::errno(&e), libc::ENOSPC),
        other => panic!("{other:?}"),
    }
    assert!(!os.exists("lists/test/config.pck.tmp.host1.1234"));
    assert_eq!(os.get(PCK).unwrap(), before);
    assert!(os.log_lines("error")[0].starts_with("Failed config.pck write, retaining old state."));
}

#[tokio::test]
async fn aside1999_save_leaves_a_window_with_no_config_db() {
    for (protocol, absent_in_window) in [(SaveProtocol::Aside1999, true), (SaveProtocol::LinkRename, false)] {
        let os = scene();
        let settings = MailListSettings { save_protocol: protocol, ..MailListSettings::mailman_2_0_13() };
        let mut mlist = created(&os, settings, 1, 1).await;
        mlist.lock(None).await.unwrap();
        os.clear_ops();
        // Look at the namespace just before the step that installs the new file.
        let missing = Rc::new(Cell::new(false));
        let seen = Rc::clone(&missing);
        let install = if protocol == SaveProtocol::Aside1999 { Op::Link } else { Op::Rename };
        let tmp = "lists/test/config.db.tmp.host1.1234";
        os.before_nth(install, tmp, 0, move |root| seen.set(!root.join(DB).exists()));
        mlist.save().await.unwrap();
        assert_eq!(missing.get(), absent_in_window, "{protocol:?}");
        if protocol == SaveProtocol::Aside1999 {
            let list_ops: Vec<String> = os.name_ops().into_iter().filter(|op| op.contains("lists/")).collect();
            let expected = [
                format!("unlink {DB_LAST}"),
                format!("link {DB} {DB_LAST}"),
                format!("unlink {DB}"),
                format!("link {tmp} {DB}"),
                format!("unlink {tmp}"),
            ];
            assert_eq!(list_ops, expected);
        }
        assert!(os.exists(DB) && os.exists(DB_LAST) && !os.exists(tmp));
    }
}

// --- Load (mailman-config-store.md §5, §6) ---

#[tokio::test]
async fn load_falls_back_to_last_and_repairs_under_the_lock_in_2_1_39() {
    let os = scene();
    created(&os, MailListSettings::mailman_2_1_39(), 20, 2).await;
    truncate(&os, PCK);
    os.clear_ops();
    let mut reader = open_list(&os, MailListSettings::mailman_2_1_39());
    reader.lock(None).await.unwrap();
    assert_eq!(reader.config().post_id, 1, "the state of the previous save");
    assert_eq!(
        load_outcomes(&os),
        [(PCK.to_string(), ListLoadOutcome::Corrupt), (PCK_LAST.to_string(), ListLoadOutcome::Loaded)]
    );
    assert!(has_event(&os, |e| matches!(e, ModelEvent::ListFallbackUsed { file, .. } if file == PCK_LAST)));
    assert!(has_event(&os, |e| matches!(e, ModelEvent::ListRepairFinished { .. })));
    assert!(os.exists("lists/test/config.pck.corrupt"));
    assert_eq!(os.get(PCK), os.get(PCK_LAST));
    assert_eq!(os.get("lists/test/config.pck.safety"), os.get(PCK_LAST));
    let errors = os.log_lines("error");
    assert!(errors[0].starts_with("couldn't load config file lists/test/config.pck\n"), "{errors:?}");
    assert_eq!(errors[1], "fixing corrupt config file, using: lists/test/config.pck.last");
    // The repair found the lock already held (AlreadyLocked) and kept it.
    assert!(reader.locked().await.unwrap());
    let ops = os.name_ops();
    let rename = ops.iter().position(|op| op.starts_with("rename lists/test/config.pck ")).unwrap();
    assert_eq!(ops[rename], format!("rename {PCK} lists/test/config.pck.corrupt"));
}

#[tokio::test]
async fn load_falls_back_and_copies_in_place_without_the_lock_in_2_1_2() {
    let os = scene();
    created(&os, MailListSettings::mailman_2_1_2(), 20, 2).await;
    truncate(&os, PCK);
    let inode = std::fs::metadata(os.root().join(PCK)).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    os.clear_ops();
    let mut reader = open_list(&os, MailListSettings::mailman_2_1_2());
    reader.load().await.unwrap();
    assert_eq!(reader.config().post_id, 1);
    assert!(!os.exists("lists/test/config.pck.corrupt"));
    assert_eq!(os.get(PCK), os.get(PCK_LAST));
    assert_eq!(os.get("lists/test/config.pck.safety"), os.get(PCK_LAST));
    let after = std::fs::metadata(os.root().join(PCK)).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap();
    assert_eq!(inode, after, "shutil.copy truncates config.pck in place");
    // No lock was taken for the repair.
    assert!(!os.ops().iter().any(|op| op.starts_with("link locks/")));
}

#[tokio::test]
async fn mailman_2_0_load_falls_back_to_config_db_last() {
    let os = scene();
    created(&os, MailListSettings::mailman_2_0_13(), 20, 2).await;
    truncate(&os, DB);
    let mut reader = open_list(&os, MailListSettings::mailman_2_0_13());
    reader.load().await.unwrap();
    assert_eq!(reader.config().post_id, 1);
    assert_eq!(os.get(DB), os.get(DB_LAST));
    assert!(!os.exists("lists/test/config.pck.safety"));
    assert_eq!(
        os.log_lines("error"),
        ["test db file was corrupt, using fallback: lists/test/config.db.last".to_string()]
    );
}

#[tokio::test]
async fn all_fallbacks_corrupt_raises_and_only_2_1_unlocks() {
    for (settings, lock_held_after) in
        [(MailListSettings::mailman_2_1_39(), false), (MailListSettings::mailman_2_0_13(), true)]
    {
        let os = scene();
        let format = settings.format;
        created(&os, settings.clone(), 5, 2).await;
        let (primary, last) = if format == ConfigFormat::Db20 { (DB, DB_LAST) } else { (PCK, PCK_LAST) };
        truncate(&os, primary);
        truncate(&os, last);
        let mut reader = open_list(&os, settings);
        assert!(matches!(reader.lock(None).await, Err(ListError::CorruptDatabase { .. })));
        assert!(has_event(&os, |e| matches!(e, ModelEvent::ListCorrupt { .. })));
        assert_eq!(os.exists(LIST_LOCK), lock_held_after, "{format:?}");
    }
}

#[tokio::test]
async fn locking_an_unknown_list_raises_and_releases_the_lock() {
    for settings in [MailListSettings::mailman_2_1_39(), MailListSettings::mailman_2_0_13()] {
        let os = scene();
        let mut mlist = open_list(&os, settings);
        assert!(matches!(mlist.lock(None).await, Err(ListError::UnknownList(_))));
        assert!(!os.exists(LIST_LOCK));
    }
}

#[tokio::test]
async fn estale_from_open_in_load_propagates() {
    let os = scene();
    created(&os, MailListSettings::mailman_2_1_39(), 1, 1).await;
    os.fail(Op::Open, PCK, libc::ESTALE, 1);
    let mut reader = open_list(&os, MailListSettings::mailman_2_1_39());
    match reader.lock(None).await {
        Err(ListError::Io(e)) => assert_eq!(model::errno(&e), libc::ESTALE),
        other => panic!("{other:?}"),
    }
    assert!(!os.exists(LIST_LOCK), "2.1 unlocks on any Load error");
}

/// Race R10: process B saves in the same second as A's last save; A's next
/// Lock() compares mtimes. 2.1.2 (`<=`) keeps its stale state; the 2.1.15 rule
/// (`<`) reloads.
async fn reload_after_same_second_update(settings: MailListSettings) -> u64 {
    let os = scene();
    let other = os.process("host2", 99);
    let mut a = created(&os, settings.clone(), 1, 1).await;
    let a_stamp = os.mtime(PCK);
    let mut b = open_list(&other, settings);
    b.lock(None).await.unwrap();
    b.config_mut().post_id = 2;
    b.save().await.unwrap();
    b.unlock().await.unwrap();
    // One-second server timestamps: B's save carries A's mtime.
    os.set_mtime(PCK, a_stamp);
    a.lock(None).await.unwrap();
    let post_id = a.config().post_id;
    let skipped =
        has_event(&os, |e| matches!(e, ModelEvent::ListFileLoad { outcome: ListLoadOutcome::ShortcutSkip, .. }));
    assert_eq!(skipped, post_id == 1);
    post_id
}

#[tokio::test]
async fn shortcut_le_in_2_1_2_skips_a_same_timestamp_update() {
    assert_eq!(reload_after_same_second_update(MailListSettings::mailman_2_1_2()).await, 1);
}

#[tokio::test]
async fn shortcut_lt_in_2_1_15_and_later_loads_a_same_timestamp_update() {
    assert_eq!(reload_after_same_second_update(MailListSettings::mailman_2_1_39()).await, 2);
}

#[tokio::test]
async fn the_2_1_15_stamp_comes_from_the_local_clock() {
    let os = scene();
    created(&os, MailListSettings::mailman_2_1_39(), 1, 1).await;
    let mut reader = open_list(&os, MailListSettings::mailman_2_1_39());
    reader.load().await.unwrap();
    // A file whose mtime is one second behind the reader's load stamp is
    // skipped, although nobody loaded that version (race R11).
    let stamp_s = os.now_value().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    os.set_mtime(PCK, std::time::UNIX_EPOCH + std::time::Duration::from_secs(stamp_s - 1));
    os.clear_ops();
    reader.load().await.unwrap();
    assert_eq!(load_outcomes(&os), [(PCK.to_string(), ListLoadOutcome::ShortcutSkip)]);
}

// --- list_exists (mailman-config-store.md §7) and names ---

#[tokio::test]
async fn list_exists_checks_the_files_of_each_version() {
    let os = scene();
    os.put(PCK, b"{}");
    assert!(list_exists(&*os, LIST, &MailListSettings::mailman_2_1_2()).await.unwrap());
    assert!(!list_exists(&*os, LIST, &MailListSettings::mailman_2_0_13()).await.unwrap());
    let missing = os.events().into_iter().find_map(|e| match e {
        ModelEvent::ListMissing { files, errnos, .. } => Some((files, errnos)),
        _ => None,
    });
    assert_eq!(missing, Some((vec![DB.to_string(), DB_LAST.to_string()], vec!["ENOENT".to_string(); 2])));
}

#[tokio::test]
async fn list_exists_reads_estale_on_every_file_as_no_such_list() {
    let os = scene();
    os.put(PCK, b"{}");
    for file in [PCK, PCK_LAST, DB, DB_LAST] {
        os.fail(Op::Stat, file, libc::ESTALE, 1);
    }
    assert!(!list_exists(&*os, LIST, &MailListSettings::mailman_2_1_39()).await.unwrap());
    assert!(has_event(
        &os,
        |e| matches!(e, ModelEvent::ListMissing { errnos, .. } if errnos.iter().all(|e| e == "ESTALE"))
    ));
}

#[tokio::test]
async fn list_name_validation_from_2_1_23_rejects_unacceptable_characters() {
    let os = scene();
    os.put("lists/Test/config.pck", b"{}");
    assert!(list_exists(&*os, "Test", &MailListSettings::mailman_2_1_2()).await.unwrap());
    assert!(!list_exists(&*os, "Test", &MailListSettings::mailman_2_1_39()).await.unwrap());
    assert_eq!(os.log_lines("mischief"), ["Hostile listname: Test".to_string()]);
}

#[tokio::test]
async fn hostile_list_names_are_refused_before_any_io() {
    let os = scene();
    for name in ["../x", ".", "..", "", "a/b", "a b", "x\0y", "über"] {
        let made = MailList::new(&*os, &LockCounter::new(), name, MailListSettings::mailman_2_1_39());
        assert!(matches!(made, Err(ListError::BadListName(_))), "{name:?}");
        let exists = list_exists(&*os, name, &MailListSettings::mailman_2_0_13()).await;
        assert!(matches!(exists, Err(ListError::BadListName(_))), "{name:?}");
    }
    assert!(os.ops().is_empty());
}

/// The decode memo may hand a saved config to the next load of its bytes
/// only because the JSON round trip is exact: the bytes decode to an equal
/// config, which encodes to the same bytes.
#[test]
fn a_saved_config_decodes_to_itself() {
    let mut config = ListConfig::new("test", "lists.example.com", "example.net", 200);
    config.post_id = 4242;
    // The default serde_json reader returns 1011052810.0186496 for this one.
    config.last_post_time = 1_011_052_810.018_649_7;
    config.register_bounce("member0003@example.net", (2002, 12, 2));
    let config = Rc::new(config);
    let bytes = ListConfig::encode(&config);
    let fresh: ListConfig = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(fresh, *config);
    assert_eq!(serde_json::to_vec(&fresh).unwrap(), bytes);
    assert!(Rc::ptr_eq(&ListConfig::decode(&bytes).unwrap(), &config), "the memo shares the saved config");
}
