//! `lock-worker`: one process hammering one Mailman `LockFile`.
//!
//! Each round: `lock()`, append `enter <who> <round>` to a shared log, hold
//! for a while, append `exit <who> <round>`, `unlock()`. Inside the critical
//! section nobody else may write, so the log of a correct lock alternates
//! enter/exit of one owner at a time ([`check_log`]). The same program runs in
//! the simulation (`lock-stress` scenario) and on real directories (`mmsim real
//! lock-stress`, including a real NFS mount).

use std::time::Duration;

use model::{Condition, LockCounter, LockError, LockFile, LockSettings, LockVariant, OpenFlags, Os};

pub const USAGE: &str = "lock-worker --lock=PATH --log=PATH --rounds=N [--variant=mailman21|mailman20|flufl|open2] \
[--lifetime-s=S] [--retry-ms-min=MS] [--retry-ms-spread=MS] [--hold-ms=MS] [--think-ms=MS]";

fn option<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    args.iter().find_map(|a| a.strip_prefix(&format!("--{key}=")))
}

fn number<T: std::str::FromStr>(args: &[String], key: &str, default: T) -> Result<T, String> {
    match option(args, key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("--{key}={v}: expected a number")),
    }
}

pub fn variant(name: &str) -> Option<LockVariant> {
    match name {
        "mailman21" => Some(LockVariant::Mailman21),
        "mailman20" => Some(LockVariant::Mailman20),
        "flufl" => Some(LockVariant::Flufl),
        "open2" => Some(LockVariant::Open2Recipe),
        _ => None,
    }
}

struct Plan {
    lock: String,
    log: String,
    rounds: u32,
    settings: LockSettings,
    hold: Duration,
    think: Duration,
}

fn plan(args: &[String]) -> Result<Plan, String> {
    let known =
        ["lock", "log", "rounds", "variant", "lifetime-s", "retry-ms-min", "retry-ms-spread", "hold-ms", "think-ms"];
    if let Some(a) = args.iter().find(|a| !known.iter().any(|k| a.starts_with(&format!("--{k}=")))) {
        return Err(format!("unknown argument {a:?}"));
    }
    let variant_name = option(args, "variant").unwrap_or("mailman21");
    let mut settings =
        LockSettings::new(variant(variant_name).ok_or_else(|| format!("--variant={variant_name}: unknown"))?);
    settings.lifetime = Duration::from_secs_f64(number(args, "lifetime-s", 15.0)?);
    settings.retry_sleep_min = Duration::from_millis(number(args, "retry-ms-min", 10)?);
    settings.retry_sleep_spread = Duration::from_millis(number(args, "retry-ms-spread", 2000)?);
    Ok(Plan {
        lock: option(args, "lock").ok_or("missing --lock=")?.to_string(),
        log: option(args, "log").ok_or("missing --log=")?.to_string(),
        rounds: number(args, "rounds", 10)?,
        settings,
        hold: Duration::from_millis(number(args, "hold-ms", 0)?),
        think: Duration::from_millis(number(args, "think-ms", 0)?),
    })
}

async fn append<O: Os>(os: &O, path: &str, line: &str) -> std::io::Result<()> {
    let fd = os.open(path, OpenFlags::append()).await?;
    let written = os.write(fd, line.as_bytes()).await;
    os.close(fd).await?;
    written
}

pub async fn lock_worker<O: Os>(os: O, args: &[String]) -> i32 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            os.event(model::ModelEvent::Log {
                log: "error".into(),
                message: format!("lock-worker: {e}; usage: {USAGE}"),
            });
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
