//! The Mailman 2.0 cron `qrunner` (docs/semantics/mailman-queues-runners.md §15).
//!
//! Models one cron run: the site-wide `locks/qrunner.lock` taken with a
//! 0.5 s timeout (one qrunner across every host sharing `locks/`); the walk
//! of `listdir(qfiles)` in directory order with `lock.refresh()` per entry;
//! orphan `.msg` removal; the per-run list cache; **"Dequeuing message
//! destined for missing list" deletes the message** (R24); `Lock(10 s)`
//! with `continue` on timeout; `DeliverToList` through `LIST_PIPELINE` with
//! the 2.0 SMTPDirect that saves, unlocks, delivers, then re-locks with no
//! timeout and registers permanent failures at once; re-queue of temporary
//! failures by rewriting the `.db` in place; `Save()`/`Unlock()` in
//! `finally`; the `QRUNNER_PROCESS_LIFETIME` and `QRUNNER_MAX_MESSAGES` bounds.
//!
//! Left out: `toadmin`/`toowner`/`torequest` dispatch (every entry is treated
//! as a `tolist` post) and the handlers other than CookHeaders, CalcRecips,
//! SMTPDirect and AfterDelivery, which pass through.

use std::time::Duration;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::event::{DropReason, ModelEvent, RunnerExit};
use crate::list_access::{Condition, LockError, LockFile, MailList, LOCK_DIR};
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::Os;
use crate::profile::Settings;
use crate::python::{duration_s, time_s};
use crate::slice::Slice;
use crate::switchboard::Switchboard;
use crate::syslog::syslog;

use super::base::{Raised, RunnerCtx};
use super::incoming::{after_delivery, calc_recips, cook_headers};
use super::outgoing::{smtp_direct, Delivery};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qrunner20Settings {
    /// `QRUNNER_LOCK_LIFETIME`.
    pub qrunner_lock_lifetime_s: f64,
    /// The timeout of the cron run's lock attempt.
    pub qrunner_lock_timeout_s: f64,
    /// `QRUNNER_PROCESS_LIFETIME`.
    pub qrunner_process_lifetime_s: f64,
    /// `QRUNNER_MAX_MESSAGES`.
    pub qrunner_max_messages: u32,
    /// 2.0 `LIST_PIPELINE`.
    pub list_pipeline: Vec<String>,
}

impl Default for Qrunner20Settings {
    fn default() -> Self {
        Qrunner20Settings {
            qrunner_lock_lifetime_s: 10.0 * 3_600.0,
            qrunner_lock_timeout_s: 0.5,
            qrunner_process_lifetime_s: 900.0,
            qrunner_max_messages: 300,
            list_pipeline: [
                "SpamDetect",
                "Approve",
                "Replybot",
                "Hold",
                "Cleanse",
                "CookHeaders",
                "ToDigest",
                "ToArchive",
                "ToUsenet",
                "CalcRecips",
                "Decorate",
                "SMTPDirect",
                "AfterDelivery",
                "Acknowledge",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

/// One cron run of the 2.0 qrunner. Returns the exit status.
pub async fn qrunner20<O: Os>(os: &O, settings: &Settings) -> i32 {
    let s = &settings.qrunner20;
    let ctx = RunnerCtx::new(os, settings);
    os.event(ModelEvent::RunnerStarted { runner: "qrunner20".to_string(), slice: 0, count: 1 });
    let mut lock = ctx.site_lock(&format!("{LOCK_DIR}/qrunner.lock"), duration_s(s.qrunner_lock_lifetime_s));
    match lock.lock(Some(duration_s(s.qrunner_lock_timeout_s))).await {
        Ok(()) => {}
        Err(LockError::TimeOut) => {
            syslog(os, "qrunner", "Could not acquire qrunner lock");
            os.event(ModelEvent::RunnerExited {
                runner: "qrunner20".to_string(),
                slice: 0,
                count: 1,
                reason: RunnerExit::LockBusy,
            });
            return 0;
        }
        Err(e) => {
            os.event(ModelEvent::RunnerExited {
                runner: "qrunner20".to_string(),
                slice: 0,
                count: 1,
                reason: RunnerExit::Error(e.to_string()),
            });
            return 1;
        }
    }
    // `_listcache`: the run's list objects.
    let mut lists: IndexMap<String, MailList<'_, O>> = IndexMap::new();
    let result = walk_queue(&ctx, &mut lock, &mut lists).await;
    // `finally: lock.unlock(unconditionally=1)`, then `_listcache.clear()`
    // (the list objects' locks' `__del__`), and the site lock's `__del__` at exit.
    let unlocked = lock.unlock(Condition::Unconditionally).await;
    for (_, mlist) in lists {
        ctx.finalize(mlist).await;
    }
    if let Err(e) = lock.finalize().await {
        syslog(os, "qrunner", format!("Exception in LockFile __del__ ignored: {e}"));
    }
    let (code, reason) = match (result, unlocked) {
        (Err(e), _) => (1, RunnerExit::Error(format!("{} ({})", e.reason, e.errno))),
        (Ok(()), Err(e)) => (1, RunnerExit::Error(e.to_string())),
        (Ok(()), Ok(())) => (0, RunnerExit::Done),
    };
    os.event(ModelEvent::RunnerExited { runner: "qrunner20".to_string(), slice: 0, count: 1, reason });
    code
}

/// `main(lock)`: the walk over `qfiles/`.
async fn walk_queue<'a, O: Os>(
    ctx: &RunnerCtx<'a, O>,
    lock: &mut LockFile<'a, O>,
    lists: &mut IndexMap<String, MailList<'a, O>>,
) -> Result<(), Raised> {
    let os = ctx.os;
    let s = &ctx.settings.qrunner20;
    let sb = Switchboard::new(os, &ctx.settings.queue, "qfiles", Slice::WHOLE);
    let start = time_s(os);
    let mut count: u32 = 0;
    for name in os.read_dir(sb.dir()).await? {
        lock.refresh(None, Condition::RequireLocked).await?;
        // `os.path.splitext`: only `.db` and `.tmp` are skipped; every other
        // name is taken for a `.msg` (a `.nfs…` file included).
        let (root, ext) = splitext(&name);
        if ext == ".db" || ext == ".tmp" {
            continue;
        }
        // `if not os.path.exists(root + '.db')`: any error of the stat, ESTALE
        // included, reads as "absent", and the `.msg` is unlinked; an error of
        // that unlink escapes. There is no `continue`: the walk goes on, and
        // reading the entry fails below.
        if !exists(os, &format!("{}/{root}.db", sb.dir())).await {
            syslog(os, "qrunner", format!("Unlinking orphaned .msg file: {}/{root}.msg", sb.dir()));
            os.unlink(&format!("{}/{root}.msg", sb.dir())).await?;
        }
        if time_s(os) - start > s.qrunner_process_lifetime_s || count > s.qrunner_max_messages {
            break;
        }
        count += 1;
        let entry = match sb.read_flat(root).await {
            Ok(e) => e,
            Err(e) => {
                syslog(os, "qrunner", format!("Exception reading qfile: {}/{root}\n{e}", sb.dir()));
                continue;
            }
        };
        let Some(mut msg) = entry.msg else { continue };
        let mut data = entry.data;
        let Some(listname) = data.listname.clone().filter(|n| !n.is_empty()) else {
            syslog(os, "qrunner", format!("qfile metadata specifies no list: {}/{root}", sb.dir()));
            continue;
        };
        // `open_list`: a cached object, else `MailList(name, lock=0)`; only an
        // MMListError means "missing" (and is not cached), anything else escapes.
        if !lists.contains_key(&listname) {
            match ctx.open_list(&listname).await {
                Ok(mlist) => {
                    lists.insert(listname.clone(), mlist);
                }
                Err(e) if e.is_mm_list_error() => {
                    syslog(os, "qrunner", format!("error opening list: {listname}\n{e}"));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(mlist) = lists.get_mut(&listname) else {
            syslog(os, "qrunner", format!("Dequeuing message destined for missing list: {}/{root}", sb.dir()));
            sb.remove_flat(root).await?;
            os.event(ModelEvent::MessageDeleted {
                queue: "qfiles".to_string(),
                filebase: root.to_string(),
                message_id: msg.message_id(),
                list: listname,
                reason: DropReason::MissingList,
            });
            continue;
        };
        if !ctx.lock_list(mlist).await? {
            continue;
        }
        let body = dispose_message(ctx, mlist, &mut msg, &mut data).await;
        let kept = match body {
            Ok(true) => sb.rewrite_flat_db(root, &data).await.map_err(Raised::from),
            Ok(false) => sb.remove_flat(root).await.map_err(Raised::from),
            Err(e) => Err(e),
        };
        // `finally: mlist.Save(); mlist.Unlock()`: an exception from Save()
        // skips the Unlock() and replaces the body's; so does one from Unlock().
        mlist.save().await?;
        mlist.unlock().await?;
        kept?;
    }
    Ok(())
}

/// Python 1.5.2–2.5 `posixpath.splitext` of a name without `/`: the
/// extension runs from the last dot, a leading one included (2.6 began to
/// ignore leading dots), so `.nfs…` is all extension.
fn splitext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    }
}

/// `os.path.exists`: true when `stat` succeeds, false on any `os.error`.
async fn exists<O: Os>(os: &O, path: &str) -> bool {
    os.stat(path).await.is_ok()
}

/// `DeliverToList` through `msgdata['pipeline']` or `LIST_PIPELINE`;
/// returns whether the message is kept (re-queued).
async fn dispose_message<'a, O: Os>(
    ctx: &RunnerCtx<'a, O>,
    mlist: &mut MailList<'a, O>,
    msg: &mut Message,
    data: &mut MsgData,
) -> Result<bool, Raised> {
    let mut pipeline = data.pipeline.take().unwrap_or_else(|| ctx.settings.qrunner20.list_pipeline.clone());
    while !pipeline.is_empty() {
        let handler = pipeline.remove(0);
        match handler.as_str() {
            "CookHeaders" => cook_headers(ctx.os, mlist, msg, false),
            "CalcRecips" => calc_recips(mlist, data),
            "SMTPDirect" => {
                if let Some(temp) = smtp_direct_20(ctx, mlist, msg, data).await? {
                    let now = time_s(ctx.os);
                    let no_progress = Some(temp.len()) == data.last_recip_count;
                    if no_progress && now > data.deliver_until.unwrap_or(now) {
                        // Give up on delivery; the rest of the pipeline runs.
                        continue;
                    }
                    if !no_progress {
                        data.deliver_until = Some(now + ctx.settings.outgoing.delivery_retry_period_s);
                    }
                    data.last_recip_count = Some(temp.len());
                    data.recips = Some(temp);
                    pipeline.insert(0, handler);
                    data.pipeline = Some(pipeline);
                    return Ok(true);
                }
            }
            "AfterDelivery" => after_delivery(ctx.os, mlist),
            _ => {}
        }
    }
    Ok(false)
}

/// 2.0 SMTPDirect: `Save()`, `Unlock()`, deliver, then `Lock()` with no
/// timeout in `finally`; permanent failures are registered at once.
/// Returns the temporary failures, if any.
async fn smtp_direct_20<'a, O: Os>(
    ctx: &RunnerCtx<'a, O>,
    mlist: &mut MailList<'a, O>,
    msg: &Message,
    data: &mut MsgData,
) -> Result<Option<Vec<String>>, Raised> {
    mlist.save().await?;
    mlist.unlock().await?;
    let delivery = smtp_direct(ctx, mlist, msg, data).await;
    mlist.lock(None::<Duration>).await?;
    let (temp, perm) = match delivery {
        Delivery::AllDelivered => return Ok(None),
        Delivery::CannotConnect(_) => (data.recips.clone().unwrap_or_default(), Vec::new()),
        Delivery::SomeFailed { temp, perm } => (temp, perm),
    };
    for addr in perm {
        mlist.register_bounce(&addr);
        ctx.os.event(ModelEvent::BounceRegistered { list: mlist.name().to_string(), address: addr });
    }
    Ok((!temp.is_empty()).then_some(temp))
}
