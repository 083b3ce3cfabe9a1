//! `list-worker`: one process numbering posts of one list, the way Mailman
//! 2.1's IncomingRunner does for each message.
//!
//! Each round is one message: `MailList(name, lock=0)` (a fresh object and its
//! unlocked `Load()`, as 2.1.39's `Runner._open_list` builds one per message),
//! `Lock(LIST_LOCK_TIMEOUT)` (which loads again), `post_id += 1`
//! (AfterDelivery), `Save()`, then, still under the lock, `post <who> <round>
//! <post_id>` appended to a shared log, and `Unlock()`. A `Save()` refused with
//! NotLockedError (the lock was broken under its holder; the runner shunts the
//! message) logs `refused`, a timed-out `Lock()` (the runner requeues) logs
//! `timed-out`, any other error (the runner shunts, `Runner._oneloop`) logs
//! `shunted` with its errno, and the worker goes on. Saves are serialised by
//! the list lock, so in a correct store every logged number is one more than
//! the one before it; a
//! number that is not higher than every earlier one is a lost update: that
//! `Save()` did not build on the previous one ([`check_log`]). The same program
//! runs on real directories (`mmsim real list-stress`), which is how findings
//! that need no NFS are shown on the real kernel
//! (docs/semantics/real-lost-update.md).

use std::time::Duration;

use crate::lock_worker::{self, append};
use model::args::{ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use model::{ListError, LoadShortcut, LockCounter, LockError, MailList, MailListSettings, Os, SyncAfterWrite};

/// `--load-shortcut=` values: the profile's own, or one of `__load`'s tests.
pub const SHORTCUTS: &[&str] = &["profile", "none", "mtime-le", "mtime-lt-local-stamp"];

/// `list-worker`'s arguments.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "list-worker",
    summary: "rounds of MailList open / Lock / post_id += 1 / Save / Unlock on one list (IncomingRunner's cycle)",
    options: &[
        ArgSpec {
            name: "profile",
            kind: ArgKind::Choice(model::profile::PROFILE_NAMES),
            default: ArgDefault::Value("2.1.39"),
            help: "the Mailman version whose list store and lock to use",
        },
        ArgSpec { name: "list", kind: ArgKind::ListName, default: ArgDefault::Required, help: "the list" },
        ArgSpec {
            name: "log",
            kind: ArgKind::Path,
            default: ArgDefault::Required,
            help: "the shared log of saved post numbers",
        },
        ArgSpec {
            name: "rounds",
            kind: ArgKind::UInt { min: 0, max: 1_000_000, unit: "rounds" },
            default: ArgDefault::Value("10"),
            help: "messages to number",
        },
        ArgSpec {
            name: "load-shortcut",
            kind: ArgKind::Choice(SHORTCUTS),
            default: ArgDefault::Value("profile"),
            help: "__load's \"already current\" test: the profile's, or none (2.0), mtime-le (2.1.0-2.1.14), mtime-lt-local-stamp (2.1.15+)",
        },
        ArgSpec {
            name: "sync-after-write",
            kind: ArgKind::Choice(&["no", "yes"]),
            default: ArgDefault::Value("no"),
            help: "mm_cfg.SYNC_AFTER_WRITE: fsync the temporary config before the rename (2.1.4+, default no)",
        },
        lock_worker::RETRY_MS_MIN,
        lock_worker::RETRY_MS_SPREAD,
        lock_worker::THINK_MS,
    ],
    positional: &[],
    command: false,
};

/// What a worker does, from its arguments.
pub struct Plan {
    list: String,
    log: String,
    rounds: u32,
    settings: MailListSettings,
    think: Duration,
}

/// Parses and checks the arguments against [`SPEC`]. Pure: no I/O.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let mut settings = crate::install::list_settings(&p.text("profile")).expect("a declared profile");
    settings.load_shortcut = match p.text("load-shortcut").as_str() {
        "none" => LoadShortcut::None,
        "mtime-le" => LoadShortcut::MtimeLe,
        "mtime-lt-local-stamp" => LoadShortcut::MtimeLtLocalStamp,
        _ => settings.load_shortcut,
    };
    if p.text("sync-after-write") == "yes" {
        settings.sync_after_write = SyncAfterWrite::Fsync;
    }
    lock_worker::set_retry_sleep(&p, &mut settings.lock);
    Ok(Plan {
        list: p.text("list"),
        log: p.text("log"),
        rounds: p.uint("rounds"),
        settings,
        think: Duration::from_millis(p.uint("think-ms")),
    })
}

/// How one round ended.
enum Outcome {
    Saved,
    /// `Save()` raised NotLockedError: the lock had been broken.
    Refused,
    /// `Lock()` timed out: the runner requeues the message.
    TimedOut,
    /// Any other error (ESTALE from a Load on NFS, say): the runner shunts.
    Shunted(ListError),
    /// The shared log could not be written: the check would be wrong, so stop.
    LogFailed(std::io::Error),
}

/// The errno name of an error, `-` when it has none.
fn errno_of(e: &ListError) -> String {
    match e {
        ListError::Io(io) => io.raw_os_error().map(model::errno_name).unwrap_or_else(|| "-".into()),
        _ => "-".into(),
    }
}

pub async fn list_worker<O: Os>(os: O, args: &[String]) -> i32 {
    let error = |message: String| os.event(model::ModelEvent::Log { log: "error".into(), message });
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            error(format!("list-worker: {e}"));
            return 2;
        }
    };
    let who = format!("{}.{}", os.hostname(), os.pid());
    let counter = LockCounter::new();
    for round in 0..plan.rounds {
        let mut mlist = match MailList::new(&os, &counter, &plan.list, plan.settings.clone()) {
            Ok(m) => m,
            Err(e) => {
                error(format!("list-worker {who}: {e}"));
                return 2;
            }
        };
        let cycle = async {
            mlist.load().await?;
            // IncomingRunner: `mlist.Lock(timeout=mm_cfg.LIST_LOCK_TIMEOUT)`.
            match mlist.lock(Some(plan.settings.list_lock_timeout)).await {
                Err(ListError::Lock(LockError::TimeOut)) => return Ok(Outcome::TimedOut),
                result => result?,
            }
            let numbered = async {
                mlist.config_mut().post_id += 1;
                match mlist.save().await {
                    // Save()'s refresh: the lock was broken under this process,
                    // and the runner shunts the message ("Uncaught runner exception").
                    Err(ListError::Lock(LockError::NotLocked)) => return Ok(Outcome::Refused),
                    result => result?,
                }
                let line = format!("post {who} {round} {}\n", mlist.config().post_id);
                Ok(match append(&os, &plan.log, &line).await {
                    Ok(()) => Outcome::Saved,
                    Err(e) => Outcome::LogFailed(e),
                })
            }
            .await;
            let unlocked = mlist.unlock().await;
            unlocked.and(numbered)
        }
        .await;
        let finalized = mlist.finalize().await;
        // Runner._oneloop: any exception out of _onefile is logged and the
        // message shunted; the runner goes on with the next one.
        let outcome = match (cycle, finalized) {
            (Ok(outcome), Ok(())) => outcome,
            (Err(e), _) | (_, Err(e)) => Outcome::Shunted(e),
        };
        let mark = match outcome {
            Outcome::Saved => None,
            Outcome::Refused => Some(format!("refused {who} {round}")),
            Outcome::TimedOut => Some(format!("timed-out {who} {round}")),
            Outcome::Shunted(e) => {
                error(format!("list-worker {who}: round {round}: {e}"));
                Some(format!("shunted {who} {round} {}", errno_of(&e)))
            }
            Outcome::LogFailed(e) => {
                error(format!("list-worker {who}: log: {e}"));
                return 1;
            }
        };
        if let Some(mark) = mark {
            if let Err(e) = append(&os, &plan.log, &format!("{mark}\n")).await {
                error(format!("list-worker {who}: log: {e}"));
                return 1;
            }
        }
        if !plan.think.is_zero() {
            os.sleep(plan.think).await;
        }
    }
    0
}

/// What a list-stress log shows.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogCheck {
    /// Saves logged: lock cycles that numbered a post.
    pub cycles: u64,
    /// Saves whose number was not above every earlier one.
    pub lost_updates: u64,
    pub first_lost_update: Option<String>,
    /// The highest number saved.
    pub post_id_max: u64,
    /// Saves refused with NotLockedError: the lock was broken under its holder.
    pub saves_refused: u64,
    /// `Lock()` calls that timed out (`LIST_LOCK_TIMEOUT`).
    pub lock_timeouts: u64,
    /// Rounds that ended in another error, which the runner shunts.
    pub shunted: u64,
}

/// Checks that every saved post number is above all the earlier ones.
pub fn check_log(text: &str) -> LogCheck {
    let mut check = LogCheck::default();
    let mut by: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["refused", ..] => check.saves_refused += 1,
            ["timed-out", ..] => check.lock_timeouts += 1,
            ["shunted", ..] => check.shunted += 1,
            _ => {}
        }
        let ["post", who, _round, id] = parts[..] else { continue };
        let Ok(id) = id.parse::<u64>() else { continue };
        check.cycles += 1;
        if id <= check.post_id_max {
            check.lost_updates += 1;
            check.first_lost_update.get_or_insert_with(|| {
                let (at, prev) = by.clone().unwrap_or_default();
                format!(
                    "line {}: {who} saved post_id {id}, after line {} where {prev} had saved {}",
                    i + 1,
                    at + 1,
                    check.post_id_max
                )
            });
        } else {
            check.post_id_max = id;
            by = Some((i, who.to_string()));
        }
    }
    check
}
