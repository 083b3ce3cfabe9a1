//! `lock-worker`: one process hammering one Mailman `LockFile`.
//!
//! Each round: `lock()`, append `enter <who> <round>` to a shared log, hold
//! for a while, append `exit <who> <round>`, `unlock()`. Inside the critical
//! section nobody else may write, so the log of a correct lock alternates
//! enter/exit of one owner at a time ([`check_log`]). The same program runs in
//! the simulation (`lock-stress` scenario) and on real directories (`mmsim real
//! lock-stress`, including a real NFS mount).

use std::time::Duration;

use model::args::{ArgDefault, ArgError, ArgKind, ArgSpec, Parsed, ProgramSpec};
use model::{Condition, LockCounter, LockError, LockFile, LockSettings, LockVariant, OpenFlags, Os};

/// The lock variants `--variant=` names.
pub const VARIANTS: &[&str] = &["mailman21", "mailman20", "flufl", "open2"];

const MS: ArgKind = ArgKind::UInt { min: 0, max: 3_600_000, unit: "milliseconds" };

/// `--retry-ms-min=`: LockFile's shortest retry sleep (Mailman: 10 ms).
pub const RETRY_MS_MIN: ArgSpec =
    ArgSpec { name: "retry-ms-min", kind: MS, default: ArgDefault::Value("10"), help: "the shortest retry sleep" };
/// `--retry-ms-spread=`: the retry sleep's random spread (Mailman: 2000 ms).
pub const RETRY_MS_SPREAD: ArgSpec = ArgSpec {
    name: "retry-ms-spread",
    kind: MS,
    default: ArgDefault::Value("2000"),
    help: "the retry sleep's random spread",
};
/// `--hold-ms=`: how long each critical section lasts.
pub const HOLD_MS: ArgSpec = ArgSpec {
    name: "hold-ms",
    kind: MS,
    default: ArgDefault::Value("0"),
    help: "how long each critical section lasts",
};
/// `--think-ms=`: the pause between rounds.
pub const THINK_MS: ArgSpec =
    ArgSpec { name: "think-ms", kind: MS, default: ArgDefault::Value("0"), help: "the pause between rounds" };

/// Sets the lock's retry sleep from [`RETRY_MS_MIN`] and [`RETRY_MS_SPREAD`].
pub fn set_retry_sleep(p: &Parsed, settings: &mut LockSettings) {
    settings.retry_sleep_min = Duration::from_millis(p.uint("retry-ms-min"));
    settings.retry_sleep_spread = Duration::from_millis(p.uint("retry-ms-spread"));
}

/// `--lock=`: the lock file.
pub const LOCK: ArgSpec =
    ArgSpec { name: "lock", kind: ArgKind::Path, default: ArgDefault::Required, help: "the lock file" };
/// `--log=`: the shared log of enter/exit marks.
pub const LOG: ArgSpec = ArgSpec {
    name: "log",
    kind: ArgKind::Path,
    default: ArgDefault::Required,
    help: "the shared log of enter/exit marks",
};
/// `--rounds=`: critical sections to go through.
pub const ROUNDS: ArgSpec = ArgSpec {
    name: "rounds",
    kind: ArgKind::UInt { min: 0, max: 1_000_000, unit: "rounds" },
    default: ArgDefault::Value("10"),
    help: "critical sections to go through",
};

/// `lock-worker`'s arguments.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "lock-worker",
    summary: "rounds of LockFile lock / append enter+exit marks / unlock on one lock",
    options: &[
        LOCK,
        LOG,
        ROUNDS,
        ArgSpec {
            name: "variant",
            kind: ArgKind::Choice(VARIANTS),
            default: ArgDefault::Value("mailman21"),
            help: "whose lock: Mailman 2.1's or 2.0's LockFile, flufl.lock, or the open(O_EXCL) recipe",
        },
        ArgSpec {
            name: "lifetime-s",
            kind: ArgKind::Float { min: 0.001, max: 1_000_000.0, unit: "seconds" },
            default: ArgDefault::Value("15"),
            help: "the lock lifetime (LockFile's DEFAULT_LOCK_LIFETIME)",
        },
        RETRY_MS_MIN,
        RETRY_MS_SPREAD,
        HOLD_MS,
        THINK_MS,
    ],
    positional: &[],
    command: false,
};

pub fn variant(name: &str) -> Option<LockVariant> {
    match name {
        "mailman21" => Some(LockVariant::Mailman21),
        "mailman20" => Some(LockVariant::Mailman20),
        "flufl" => Some(LockVariant::Flufl),
        "open2" => Some(LockVariant::Open2Recipe),
        _ => None,
    }
}

/// What a worker does, from its arguments.
pub struct Plan {
    lock: String,
    log: String,
    rounds: u32,
    settings: LockSettings,
    hold: Duration,
    think: Duration,
}

/// Parses and checks the arguments against [`SPEC`]. Pure: no I/O.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let mut settings = LockSettings::new(variant(&p.text("variant")).expect("a declared variant"));
    settings.lifetime = Duration::from_secs_f64(p.float("lifetime-s"));
    set_retry_sleep(&p, &mut settings);
    Ok(Plan {
        lock: p.text("lock"),
        log: p.text("log"),
        rounds: p.uint("rounds"),
        settings,
        hold: Duration::from_millis(p.uint("hold-ms")),
        think: Duration::from_millis(p.uint("think-ms")),
    })
}

/// Appends `line` to the shared log at `path` (open, write, close, as each mark is).
pub async fn append<O: Os>(os: &O, path: &str, line: &str) -> std::io::Result<()> {
    let fd = os.open(path, OpenFlags::append()).await?;
    let written = os.write(fd, line.as_bytes()).await;
    os.close(fd).await?;
    written
}

pub async fn lock_worker<O: Os>(os: O, args: &[String]) -> i32 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            os.event(model::ModelEvent::Log { log: "error".into(), message: format!("lock-worker: {e}") });
            return 2;
        }
    };
    let who = format!("{}.{}", os.hostname(), os.pid());
    let lock = LockFile::new(&os, &LockCounter::new(), &plan.lock, plan.settings.clone());
    let mut code = 0;
    for round in 0..plan.rounds {
        if let Err(e) = lock.lock(None).await {
            os.event(model::ModelEvent::Log { log: "error".into(), message: format!("lock-worker {who}: lock: {e}") });
            code = 1;
            break;
        }
        let section = async {
            append(&os, &plan.log, &format!("enter {who} {round}\n")).await?;
            if !plan.hold.is_zero() {
                os.sleep(plan.hold).await;
            }
            append(&os, &plan.log, &format!("exit {who} {round}\n")).await
        }
        .await;
        if let Err(e) = section {
            os.event(model::ModelEvent::Log { log: "error".into(), message: format!("lock-worker {who}: log: {e}") });
            code = 1;
        }
        match lock.unlock(Condition::RequireLocked).await {
            Ok(()) => {}
            Err(LockError::NotLocked) => {
                // Our lock was broken while we held it: the oracle and the log check say so.
                os.event(model::ModelEvent::Log {
                    log: "locks".into(),
                    message: format!("{who}: lock lost before unlock"),
                });
            }
            Err(e) => {
                os.event(model::ModelEvent::Log {
                    log: "error".into(),
                    message: format!("lock-worker {who}: unlock: {e}"),
                });
                code = 1;
                break;
            }
        }
        if !plan.think.is_zero() {
            os.sleep(plan.think).await;
        }
    }
    let _ = lock.finalize().await;
    code
}

/// What a lock-stress log shows.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogCheck {
    pub sections: u64,
    /// Critical sections that began while another was open.
    pub overlaps: u64,
    pub first_overlap: Option<String>,
}

/// Checks that critical sections never overlap: every `enter` is followed by
/// the same owner's `exit` before any other `enter`.
pub fn check_log(text: &str) -> LogCheck {
    let mut check = LogCheck::default();
    let mut open: Vec<&str> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.splitn(3, ' ');
        let (Some(kind), Some(who)) = (parts.next(), parts.next()) else { continue };
        match kind {
            "enter" => {
                check.sections += 1;
                if !open.is_empty() {
                    check.overlaps += 1;
                    check.first_overlap.get_or_insert_with(|| {
                        format!("line {}: {who} entered while {} was inside", i + 1, open.join(", "))
                    });
                }
                open.push(who);
            }
            "exit" => open.retain(|w| *w != who),
            _ => {}
        }
    }
    check
}
