//! `LockFile`, one step of docs/semantics/mailman-lockfile.md at a time, for each variant.
//! Most tests run on `FakeOs` (virtual clock, scripted errnos); the last ones
//! run two lock objects of one process on `RealOs` (race R5).

use std::rc::Rc;
use std::time::Duration;

use model::{Condition, LockCounter, LockError, LockFile, LockLogging, LockSettings, LockVariant, ModelEvent, RealOs};

use crate::fake_os::{FakeOs, Op};

const LOCK: &str = "locks/l.lock";
const CLAIM: &str = "locks/l.lock.host1.1234.0";
const OTHER: &str = "locks/l.lock.host2.99.0";

fn scene() -> Rc<FakeOs> {
    let os = FakeOs::new();
    os.mkdirs("locks");
    os
}

fn lock_file(os: &Rc<FakeOs>, variant: LockVariant) -> LockFile<'_, FakeOs> {
    LockFile::new(&**os, &LockCounter::new(), LOCK, LockSettings::new(variant))
}

/// Another process's claim, linked as the lock, with its lease ending at
/// `now + lease_s` (negative: already in the past).
fn plant_holder(os: &FakeOs, claim: &str, lease_s: i64) {
    os.put(claim, claim.as_bytes());
    os.hard_link(claim, LOCK);
    let t = if lease_s >= 0 {
        os.now_value() + Duration::from_secs(lease_s as u64)
    } else {
        os.now_value() - Duration::from_secs(lease_s.unsigned_abs())
    };
    os.set_mtime(claim, t);
}

fn has_event(os: &FakeOs, f: impl Fn(&ModelEvent) -> bool) -> bool {
    os.events().iter().any(f)
}

fn acquired(os: &FakeOs) -> bool {
    has_event(os, |e| matches!(e, ModelEvent::LockAcquired { .. }))
}

fn io_errno(result: Result<(), LockError>) -> i32 {
    match result {
        Err(LockError::Io(e)) => model::errno(&e),
        other => panic!("expected an io error, got {other:?}"),
    }
}

// --- claim names (mailman-lockfile.md §3) ---

#[tokio::test]
async fn mailman21_claims_carry_host_pid_and_the_process_counter() {
    let os = scene();
    let counter = LockCounter::new();
    let first = LockFile::new(&*os, &counter, LOCK, LockSettings::default());
    let second = LockFile::new(&*os, &counter, "locks/other.lock", LockSettings::default());
    assert_eq!(first.claim(), CLAIM);
    assert_eq!(second.claim(), "locks/other.lock.host1.1234.1");
}

#[tokio::test]
async fn mailman20_claims_have_no_counter() {
    let os = scene();
    assert_eq!(lock_file(&os, LockVariant::Mailman20).claim(), "locks/l.lock.host1.1234");
}

#[tokio::test]
async fn flufl_claims_have_four_pipe_separated_fields() {
    let os = scene();
    os.push_random(0.25);
    let lock = lock_file(&os, LockVariant::Flufl);
    let fields: Vec<&str> = lock.claim().split('|').collect();
    assert_eq!(fields[..3], [LOCK, "host1", "1234"]);
    assert_eq!(fields[3], (((i64::MAX as f64) * 0.25) as u64).to_string());
}

#[tokio::test]
async fn the_claim_holds_its_own_path_without_a_newline() {
    let os = scene();
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    assert_eq!(os.get(CLAIM).unwrap(), CLAIM.as_bytes());
    assert_eq!(os.get(LOCK).unwrap(), CLAIM.as_bytes());
}

// --- lock(): mailman-lockfile.md §5 ---

#[tokio::test]
async fn uncontended_lock_writes_touches_links_and_touches_again() {
    let os = scene();
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    let expected = [
        format!("open {CLAIM}"),
        format!("write {CLAIM}"),
        format!("close {CLAIM}"),
        format!("set_times {CLAIM}"),
        format!("link {CLAIM} {LOCK}"),
        format!("set_times {CLAIM}"),
        "event lock_acquired".to_string(),
    ];
    assert_eq!(os.ops(), expected);
    assert_eq!(os.nlink(LOCK), 2);
    // The lease is an mtime `lifetime` (15 s) ahead of the local clock.
    assert_eq!(os.mtime(LOCK), os.now_value() + Duration::from_secs(15));
}

#[tokio::test]
async fn estale_from_link_unlinks_the_claim_and_propagates() {
    let os = scene();
    os.fail(Op::Link, LOCK, libc::ESTALE, 1);
    let result = lock_file(&os, LockVariant::Mailman21).lock(None).await;
    assert_eq!(io_errno(result), libc::ESTALE);
    assert!(!os.exists(CLAIM));
    assert!(!acquired(&os));
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockLinkError { errno, .. } if errno == "ESTALE")));
    assert_eq!(os.log_lines("locks").len(), 1, "2.1 logs the important line even without withlogging");
    assert!(os.log_lines("locks")[0].starts_with("l.lock unexpected link error: "));
}

#[tokio::test]
async fn mailman20_logs_nothing_without_withlogging() {
    let os = scene();
    os.fail(Op::Link, LOCK, libc::EIO, 1);
    let result = lock_file(&os, LockVariant::Mailman20).lock(None).await;
    assert_eq!(io_errno(result), libc::EIO);
    assert!(os.log_lines("locks").is_empty());
}

#[tokio::test]
async fn enoent_from_link_is_not_acquired_and_is_retried_after_a_sleep() {
    let os = scene();
    os.fail(Op::Link, LOCK, libc::ENOENT, 1);
    os.push_random(0.0);
    let start = os.now_value();
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    let links = os.ops().iter().filter(|op| op.starts_with("link ")).count();
    assert_eq!(links, 2);
    // The retry sleep is random()*2.0 + 0.01 seconds.
    assert_eq!(os.now_value().duration_since(start).unwrap(), Duration::from_millis(10));
    // ENOENT is not contention.
    assert!(!has_event(&os, |e| matches!(e, ModelEvent::LockContended { .. })));
}

#[tokio::test]
async fn eexist_with_linkcount_2_and_own_claim_raises_already_locked() {
    let os = scene();
    let lock = lock_file(&os, LockVariant::Mailman21);
    lock.lock(None).await.unwrap();
    os.clear_ops();
    assert!(matches!(lock.lock(None).await, Err(LockError::AlreadyLocked)));
    assert!(os.exists(CLAIM), "AlreadyLockedError leaves the claim in place");
    assert!(!acquired(&os));
    assert_eq!(os.name_ops(), [format!("set_times {CLAIM}"), format!("link {CLAIM} {LOCK}"), format!("stat {LOCK}")]);
}

#[tokio::test]
async fn eexist_with_an_unexpected_linkcount_stats_twice_logs_and_retries() {
    let os = scene();
    // A lock file that is nobody's claim: link count 1, lease in the future.
    os.put(LOCK, b"stray");
    os.set_mtime(LOCK, os.now_value() + Duration::from_secs(100));
    os.push_random(0.0);
    // Before the second link, the stray file goes away.
    os.before_nth(Op::Link, LOCK, 1, |root| std::fs::remove_file(root.join(LOCK)).unwrap());
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    let first_round: Vec<String> = os.name_ops().into_iter().skip(1).take(4).collect();
    assert_eq!(
        first_round,
        [format!("link {CLAIM} {LOCK}"), format!("stat {LOCK}"), format!("stat {LOCK}"), format!("stat {LOCK}")]
    );
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockUnexpectedLinkcount { nlink: 1, .. })));
    assert!(os.log_lines("locks").contains(&"l.lock unexpected linkcount: 1".to_string()));
    assert!(acquired(&os));
}

#[tokio::test]
async fn a_held_lock_is_waited_for_then_times_out_and_unlinks_the_claim() {
    let os = scene();
    plant_holder(&os, OTHER, 15);
    let result = lock_file(&os, LockVariant::Mailman21).lock(Some(Duration::from_secs(5))).await;
    assert!(matches!(result, Err(LockError::TimeOut)));
    assert!(!os.exists(CLAIM));
    assert!(os.exists(LOCK), "a live lock is not broken");
    let contended = os.events().iter().filter(|e| matches!(e, ModelEvent::LockContended { .. })).count();
    assert_eq!(contended, 1, "contention is reported once per lock() call");
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockTimedOut { .. })));
    assert!(!acquired(&os));
}

#[tokio::test]
async fn waiting_for_claim_is_logged_every_100_loops() {
    let os = scene();
    plant_holder(&os, OTHER, 15);
    for _ in 0..300 {
        os.push_random(0.0);
    }
    let settings = LockSettings { logging: LockLogging::Verbose, ..LockSettings::default() };
    let lock = LockFile::new(&*os, &LockCounter::new(), LOCK, settings);
    // Each loop sleeps 10 ms; loops 0..=250 run before the 2.5 s timeout passes.
    let result = lock.lock(Some(Duration::from_millis(2500))).await;
    assert!(matches!(result, Err(LockError::TimeOut)));
    let waiting = os.log_lines("locks").iter().filter(|l| l.as_str() == "l.lock waiting for claim").count();
    assert_eq!(waiting, 3);
}

#[tokio::test]
async fn an_expired_lock_is_broken_by_touch_read_unlink_lock_unlink_winner() {
    let os = scene();
    plant_holder(&os, OTHER, -20);
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    let ops = os.ops();
    let start = ops.iter().position(|op| op == &format!("set_times {LOCK}")).expect("break touches the lock file");
    let expected = [
        format!("set_times {LOCK}"),
        format!("open {LOCK}"),
        format!("read {LOCK}"),
        format!("read {LOCK}"),
        format!("close {LOCK}"),
        format!("unlink {LOCK}"),
        format!("unlink {OTHER}"),
        "event lock_broken".to_string(),
    ];
    assert_eq!(ops[start..start + expected.len()], expected);
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockBroken { winner: Some(w), .. } if w == OTHER)));
    assert!(os.log_lines("locks").contains(&"l.lock lifetime has expired, breaking".to_string()));
    assert!(!os.exists(OTHER));
    assert!(acquired(&os), "after the sleep the breaker links and wins");
}

#[tokio::test]
async fn a_lease_within_clock_slop_is_not_broken() {
    let os = scene();
    // Lease ended 5 s ago: within CLOCK_SLOP (10 s), so still respected.
    plant_holder(&os, OTHER, -5);
    let result = lock_file(&os, LockVariant::Mailman21).lock(Some(Duration::from_millis(500))).await;
    assert!(matches!(result, Err(LockError::TimeOut)));
    assert!(!has_event(&os, |e| matches!(e, ModelEvent::LockBroken { .. })));
}

/// Race R6: the holder unlocks between the waiter's failed link and its
/// release-time stat; a third process links; the waiter breaks that fresh lock.
fn stage_r6(os: &FakeOs) {
    plant_holder(os, OTHER, 15);
    // Stat #0 is the link count, stat #1 the release time.
    os.before_nth(Op::Stat, LOCK, 1, |root| {
        std::fs::remove_file(root.join(LOCK)).unwrap();
        std::fs::remove_file(root.join(OTHER)).unwrap();
    });
    os.before_nth(Op::SetTimes, LOCK, 0, |root| {
        let third = "locks/l.lock.host3.7.0";
        std::fs::write(root.join(third), third).unwrap();
        std::fs::hard_link(root.join(third), root.join(LOCK)).unwrap();
    });
}

#[tokio::test]
async fn mailman_breaks_a_fresh_lock_when_the_release_time_reads_missing() {
    let os = scene();
    stage_r6(&os);
    let result = lock_file(&os, LockVariant::Mailman21).lock(Some(Duration::from_millis(1))).await;
    assert!(result.is_ok() || matches!(result, Err(LockError::TimeOut)));
    let third = "locks/l.lock.host3.7.0".to_string();
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockBroken { winner: Some(w), .. } if *w == third)));
    assert!(!os.exists(&third), "the third process's claim was unlinked");
}

#[tokio::test]
async fn flufl_never_breaks_when_the_release_time_reads_missing() {
    let os = scene();
    os.push_random(0.0);
    stage_r6(&os);
    let lock = LockFile::new(&*os, &LockCounter::new(), LOCK, LockSettings::new(LockVariant::Flufl));
    // With the lock gone and nothing broken, the next link simply wins.
    lock.lock(Some(Duration::from_millis(1))).await.unwrap();
    // The hook on the break's touch never ran: no touch of the lock file.
    assert!(!os.ops().contains(&format!("set_times {LOCK}")));
    assert!(!has_event(&os, |e| matches!(e, ModelEvent::LockBroken { .. })));
}

#[tokio::test]
async fn eperm_from_the_first_touch_propagates() {
    let os = scene();
    os.fail(Op::SetTimes, CLAIM, libc::EPERM, 1);
    assert_eq!(io_errno(lock_file(&os, LockVariant::Mailman21).lock(None).await), libc::EPERM);
    assert!(!os.ops().iter().any(|op| op.starts_with("link ")));
}

#[tokio::test]
async fn eperm_from_the_touch_in_break_is_ignored() {
    let os = scene();
    plant_holder(&os, OTHER, -20);
    os.fail(Op::SetTimes, LOCK, libc::EPERM, 1);
    lock_file(&os, LockVariant::Mailman21).lock(None).await.unwrap();
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockBroken { .. })));
}

#[tokio::test]
async fn estale_from_the_release_time_stat_propagates_in_mailman() {
    let os = scene();
    plant_holder(&os, OTHER, 15);
    os.fail_nth(Op::Stat, LOCK, 1, libc::ESTALE);
    let result = lock_file(&os, LockVariant::Mailman21).lock(None).await;
    assert_eq!(io_errno(result), libc::ESTALE);
}

// --- locked(), refresh(), unlock(), finalize(): mailman-lockfile.md §7 ---

#[tokio::test]
async fn locked_touches_the_claim_and_checks_count_and_content() {
    let os = scene();
    let lock = lock_file(&os, LockVariant::Mailman21);
    assert!(!lock.locked().await.unwrap());
    lock.lock(None).await.unwrap();
    os.advance(Duration::from_secs(7));
    assert!(lock.locked().await.unwrap());
    assert_eq!(os.mtime(LOCK), os.now_value() + Duration::from_secs(15), "locked() extends the lease");
}

#[tokio::test]
async fn eperm_from_the_touch_makes_locked_false() {
    let os = scene();
    let lock = lock_file(&os, LockVariant::Mailman21);
    lock.lock(None).await.unwrap();
    os.fail(Op::SetTimes, CLAIM, libc::EPERM, 1);
    assert!(!lock.locked().await.unwrap());
}

#[tokio::test]
async fn refresh_of_a_held_lock_extends_the_lease_with_a_new_lifetime() {
    let os = scene();
    let mut lock = lock_file(&os, LockVariant::Mailman21);
    lock.lock(None).await.unwrap();
    os.advance(Duration::from_secs(5));
    lock.refresh(Some(Duration::from_secs(60)), Condition::RequireLocked).await.unwrap();
    assert_eq!(os.mtime(LOCK), os.now_value() + Duration::from_secs(60));
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockRefreshed { held: true, .. })));
}

#[tokio::test]
async fn refresh_of_a_lost_lock_raises_not_locked_after_rereading_in_21_but_not_20() {
    for (variant, name_ops_after) in [(LockVariant::Mailman21, 4), (LockVariant::Mailman20, 2)] {
        let os = scene();
        let mut lock = lock_file(&os, variant);
        lock.lock(None).await.unwrap();
        std::fs::remove_file(os.root().join(LOCK)).unwrap();
        os.clear_ops();
        assert!(matches!(lock.refresh(None, Condition::RequireLocked).await, Err(LockError::NotLocked)));
        assert!(has_event(&os, |e| matches!(e, ModelEvent::LockRefreshed { held: false, .. })));
        // locked(): touch + stat; 2.1 then repeats them for repr(self) and reads.
        assert_eq!(os.name_ops().len(), name_ops_after, "{variant:?}: {:?}", os.ops());
        assert!(lock.refresh(None, Condition::Unconditionally).await.is_ok());
    }
}

#[tokio::test]
async fn unlock_announces_itself_then_removes_the_lock_file_before_the_claim() {
    let os = scene();
    let lock = lock_file(&os, LockVariant::Mailman21);
    lock.lock(None).await.unwrap();
    os.clear_ops();
    lock.unlock(Condition::RequireLocked).await.unwrap();
    let expected = [
        "event lock_releasing".to_string(),
        format!("set_times {CLAIM}"),
        format!("stat {LOCK}"),
        format!("open {LOCK}"),
        format!("read {LOCK}"),
        format!("read {LOCK}"),
        format!("close {LOCK}"),
        format!("unlink {LOCK}"),
        format!("unlink {CLAIM}"),
    ];
    assert_eq!(os.ops(), expected);
    assert!(!os.exists(LOCK) && !os.exists(CLAIM));
}

#[tokio::test]
async fn unlock_of_an_unheld_lock_raises_not_locked_unless_unconditional() {
    let os = scene();
    plant_holder(&os, OTHER, 15);
    let lock = lock_file(&os, LockVariant::Mailman21);
    assert!(matches!(lock.unlock(Condition::RequireLocked).await, Err(LockError::NotLocked)));
    lock.unlock(Condition::Unconditionally).await.unwrap();
    assert!(os.exists(LOCK), "an unconditional unlock removes only the own claim");
}

#[tokio::test]
async fn estale_from_unlink_propagates_out_of_unlock_in_mailman_but_not_flufl() {
    for (variant, fails) in [(LockVariant::Mailman21, true), (LockVariant::Flufl, false)] {
        let os = scene();
        let lock = lock_file(&os, variant);
        lock.lock(None).await.unwrap();
        os.fail(Op::Unlink, LOCK, libc::ESTALE, 1);
        assert_eq!(lock.unlock(Condition::RequireLocked).await.is_err(), fails, "{variant:?}");
    }
}

#[tokio::test]
async fn finalize_unlocks_unconditionally_in_mailman_but_not_in_flufl() {
    for (variant, released) in
        [(LockVariant::Mailman21, true), (LockVariant::Mailman20, true), (LockVariant::Flufl, false)]
    {
        let os = scene();
        let lock = lock_file(&os, variant);
        lock.lock(None).await.unwrap();
        lock.finalize().await.unwrap();
        assert_eq!(!os.exists(LOCK), released, "{variant:?}");
    }
}

// --- flufl (mailman-lockfile.md §10) ---

#[tokio::test]
async fn flufl_treats_estale_from_link_like_enoent() {
    let os = scene();
    os.fail(Op::Link, LOCK, libc::ESTALE, 1);
    lock_file(&os, LockVariant::Flufl).lock(None).await.unwrap();
    assert!(acquired(&os));
}

#[tokio::test]
async fn flufl_refuses_to_break_a_lock_whose_content_is_not_a_claim_name() {
    let os = scene();
    plant_holder(&os, OTHER, -20);
    let result = lock_file(&os, LockVariant::Flufl).lock(Some(Duration::from_millis(1))).await;
    assert!(matches!(result, Err(LockError::TimeOut)));
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockBreakRefused { content, .. } if content == OTHER)));
    assert!(os.exists(LOCK) && os.exists(OTHER));
}

#[tokio::test]
async fn flufl_breaks_an_expired_four_field_claim() {
    let os = scene();
    let other = "locks/l.lock|host2|99|42";
    plant_holder(&os, other, -20);
    lock_file(&os, LockVariant::Flufl).lock(None).await.unwrap();
    assert!(has_event(&os, |e| matches!(e, ModelEvent::LockBroken { winner: Some(w), .. } if w == other)));
    assert!(acquired(&os));
}

// --- the open(2) recipe ---

/// A link that happened on the server although its reply was lost: the
/// retransmission finds the name taken (EEXIST) by our own claim.
fn stage_lost_link_reply(os: &FakeOs) {
    os.before_nth(Op::Link, LOCK, 0, |root| {
        std::fs::hard_link(root.join(CLAIM), root.join(LOCK)).unwrap();
    });
}

#[tokio::test]
async fn open2_recipe_takes_nlink_2_on_the_own_claim_as_success() {
    let os = scene();
    stage_lost_link_reply(&os);
    lock_file(&os, LockVariant::Open2Recipe).lock(None).await.unwrap();
    assert!(acquired(&os));
    assert!(os.name_ops().contains(&format!("stat {CLAIM}")));
}

#[tokio::test]
async fn mailman21_raises_already_locked_on_a_lost_link_reply() {
    let os = scene();
    stage_lost_link_reply(&os);
    let result = lock_file(&os, LockVariant::Mailman21).lock(None).await;
    assert!(matches!(result, Err(LockError::AlreadyLocked)));
    assert!(!acquired(&os));
}

// --- two lock objects in one real process (race R5) ---

fn real_os() -> (tempfile::TempDir, Rc<RealOs>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("locks")).unwrap();
    let os = Rc::new(RealOs::new(dir.path().to_path_buf(), "host1".to_string()));
    (dir, os)
}

#[tokio::test]
async fn mailman21_counter_keeps_two_lock_objects_of_one_process_apart() {
    let (_dir, os) = real_os();
    let counter = LockCounter::new();
    let first = LockFile::new(&*os, &counter, LOCK, LockSettings::default());
    let second = LockFile::new(&*os, &counter, LOCK, LockSettings::default());
    first.lock(None).await.unwrap();
    assert!(!second.locked().await.unwrap());
    let result = second.lock(Some(Duration::from_millis(50))).await;
    assert!(matches!(result, Err(LockError::TimeOut)));
    assert!(first.locked().await.unwrap());
    first.unlock(Condition::RequireLocked).await.unwrap();
}

#[tokio::test]
async fn mailman20_second_lock_object_believes_it_holds_the_lock() {
    let (_dir, os) = real_os();
    let counter = LockCounter::new();
    let settings = LockSettings::new(LockVariant::Mailman20);
    let first = LockFile::new(&*os, &counter, LOCK, settings.clone());
    let second = LockFile::new(&*os, &counter, LOCK, settings);
    assert_eq!(first.claim(), second.claim());
    first.lock(None).await.unwrap();
    // R5: the second object never called lock() and yet it "holds" the lock.
    assert!(second.locked().await.unwrap());
    assert!(matches!(second.lock(None).await, Err(LockError::AlreadyLocked)));
    // And its unlock releases the first object's lock.
    second.unlock(Condition::RequireLocked).await.unwrap();
    assert!(!first.locked().await.unwrap());
}

#[tokio::test]
async fn a_second_process_gets_the_lock_only_after_the_holder_unlocks() {
    let os = scene();
    let other = os.process("host2", 99);
    let mine = lock_file(&os, LockVariant::Mailman21);
    let theirs = LockFile::new(&*other, &LockCounter::new(), LOCK, LockSettings::default());
    mine.lock(None).await.unwrap();
    assert!(matches!(theirs.lock(Some(Duration::from_secs(3))).await, Err(LockError::TimeOut)));
    mine.unlock(Condition::RequireLocked).await.unwrap();
    theirs.lock(Some(Duration::from_secs(3))).await.unwrap();
    assert_eq!(os.get(LOCK).unwrap(), OTHER.as_bytes());
    assert!(acquired(&other));
}
