//! The 2.1 `Runner` loop (`Mailman/Queue/Runner.py`, docs/semantics/mailman-queues-runners.md §7)
//! and its dequeue error handling per version (§6, §7).
//!
//! Models: `run()` = { `_oneloop()`; `_doperiodic()`; stop?; `_snooze(n)` }
//! with `_cleanup()` in `finally`; `_oneloop` over `files()` with dequeue,
//! `_onefile`, shunting, `finish`, `_doperiodic()` after every file and the
//! `_shortcircuit()` stop check; `_onefile`'s unlocked `_open_list` (the
//! real `Load()` with its fallback chain and repair), the "Dequeuing message
//! destined for missing list" shunt, and the list object's finalisation
//! (`__del__`) when `_onefile` is done with it. Signals arrive
//! through `Os::take_signal`: SIGTERM and SIGINT set the stop flag (exit
//! status 15 and 2, which mailmanctl reads as "do not restart" and
//! "restart"), SIGHUP is taken and ignored (log reopening is not modelled).
//!
//! Before 2.1.15 `_open_list` keeps list objects in a class-level cache and
//! returns a cached one without `Load()`; a reference cycle keeps every list
//! object alive, so a process loads each list unlocked only once
//! ([`ListCache`], docs/semantics/mailman-queues-runners.md §7).
//!
//! Left out: `Utils.reap` of children, and per-list language setup.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{DropReason, ModelEvent, RunnerExit};
use crate::list_access::{ListError, LockCounter, LockError, LockFile, LockSettings, MailList};
use crate::message::Message;
use crate::msgdata::MsgData;
use crate::os::{errno, errno_name, Os, Signal};
use crate::profile::Settings;
use crate::python::duration_s;
use crate::slice::Slice;
use crate::switchboard::{BadMessages, DequeueError, Finish, QueuedMessage, Switchboard};
use crate::syslog::syslog;

/// How `_oneloop` reacts when `dequeue` raises (docs/semantics/mailman-queues-runners.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DequeueErrors {
    /// 2.1.0–2.1.4: nothing is caught; the runner process dies.
    Escape,
    /// 2.1.5–2.1.9: only `MessageParseError` is caught ("Ignoring unparseable message").
    CatchParseOnly,
    /// 2.1.10+: any exception → "Skipping and preserving unparseable message" + `finish(preserve)`.
    PreserveAny,
}

/// `Runner._open_list`'s list cache (docs/semantics/mailman-queues-runners.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListCache {
    /// 2.1.15+: every `_open_list` is `MailList(name, lock=False)`, a fresh
    /// object and its unlocked `Load()`; the object goes (`__del__`) when the
    /// caller is done with it.
    None,
    /// 2.1.0–2.1.14: `_listcache`, a `WeakValueDictionary` whose objects a
    /// reference cycle (`MailList` ↔ `OldStyleMemberships`) keeps alive for
    /// good (NEWS 2.1.15): a cached object comes back without `Load()`, and is
    /// never finalised.
    KeptForever,
}

/// What happens when `shunt.enqueue` itself fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShuntFailure {
    /// Before 2.1.12: the exception escapes and the runner dies.
    Escape,
    /// 2.1.12+: "SHUNTING FAILED, preserving original entry" + `finish(preserve)`.
    PreserveOriginal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerSettings {
    /// `QRUNNER_SLEEP_TIME`.
    pub qrunner_sleep_time_s: f64,
    pub dequeue_errors: DequeueErrors,
    pub shunt_failure: ShuntFailure,
    pub list_cache: ListCache,
    /// `MAILMAN_SITE_LIST`.
    pub site_list: String,
    /// `GLOBAL_PIPELINE`; handlers the model does not implement pass through.
    pub global_pipeline: Vec<String>,
    /// Passes of `_oneloop` before a runner exits on its own (a bound for
    /// runs without a master; Mailman has none, so the default is huge).
    pub passes_max: u64,
}

/// 2.1.39 `GLOBAL_PIPELINE` (docs/semantics/mailman-queues-runners.md §9).
pub const GLOBAL_PIPELINE_2_1_39: &[&str] = &[
    "SpamDetect",
    "Approve",
    "Replybot",
    "Moderate",
    "Hold",
    "MimeDel",
    "Scrubber",
    "Emergency",
    "Tagger",
    "CalcRecips",
    "AvoidDuplicates",
    "Cleanse",
    "CleanseDKIM",
    "CookHeaders",
    "ToDigest",
    "ToArchive",
    "ToUsenet",
    "AfterDelivery",
    "Acknowledge",
    "WrapMessage",
    "ToOutgoing",
];

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            qrunner_sleep_time_s: 1.0,
            dequeue_errors: DequeueErrors::PreserveAny,
            shunt_failure: ShuntFailure::PreserveOriginal,
            list_cache: ListCache::None,
            site_list: "mailman".to_string(),
            global_pipeline: GLOBAL_PIPELINE_2_1_39.iter().map(|s| s.to_string()).collect(),
            passes_max: u64::MAX,
        }
    }
}

/// `_dispose`'s return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// False: the message is done here.
    Done,
    /// True: re-enqueue it to this runner's queue.
    Requeue,
}

/// An exception raised out of `_dispose` or `_doperiodic`: it leads to a
/// shunt (in `_onefile`) or out of `run()` (in `_doperiodic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub reason: String,
    pub errno: String,
}

impl From<ListError> for Raised {
    fn from(e: ListError) -> Self {
        Raised { errno: e.errno_name(), reason: e.to_string() }
    }
}

impl From<LockError> for Raised {
    fn from(e: LockError) -> Self {
        ListError::from(e).into()
    }
}

impl From<io::Error> for Raised {
    fn from(e: io::Error) -> Self {
        Raised { errno: errno_name(errno(&e)), reason: e.to_string() }
    }
}

impl From<DequeueError> for Raised {
    fn from(e: DequeueError) -> Self {
        Raised { errno: e.errno_name(), reason: e.to_string() }
    }
}

/// What every runner can reach: the process, the settings, other queues.
/// One `RunnerCtx` is one process.
pub struct RunnerCtx<'a, O: Os> {
    pub os: &'a O,
    pub settings: &'a Settings,
    /// This process's `LockFile.COUNTER` (docs/semantics/mailman-lockfile.md §3), shared by
    /// every list and site lock it makes.
    pub lock_counter: LockCounter,
    opened: RefCell<BTreeSet<String>>,
    /// `_listcache` ([`ListCache::KeptForever`]): the list objects between uses.
    lists: RefCell<BTreeMap<String, MailList<'a, O>>>,
    stop: Cell<Option<Signal>>,
}

impl<'a, O: Os> RunnerCtx<'a, O> {
    pub fn new(os: &'a O, settings: &'a Settings) -> Self {
        RunnerCtx {
            os,
            settings,
            lock_counter: LockCounter::new(),
            opened: RefCell::new(BTreeSet::new()),
            lists: RefCell::new(BTreeMap::new()),
            stop: Cell::new(None),
        }
    }

    /// `get_switchboard(whichq).enqueue(msg, data)`; the queue directory is
    /// created on first use in this process, as Mailman's `_sbcache` does.
    pub async fn enqueue_to(&self, whichq: &str, msg: QueuedMessage, data: MsgData) -> io::Result<String> {
        let first = !self.opened.borrow().contains(whichq);
        let sb = if first {
            let sb = Switchboard::open(self.os, &self.settings.queue, whichq, Slice::WHOLE).await?;
            self.opened.borrow_mut().insert(whichq.to_string());
            sb
        } else {
            Switchboard::new(self.os, &self.settings.queue, whichq, Slice::WHOLE)
        };
        sb.enqueue(msg, data).await
    }

    /// `MailList(name, lock=0)` without its `Load()`: a fresh list object
    /// and lock claim name (no I/O). Fails only for a refused name.
    pub fn list(&self, name: &str) -> Result<MailList<'a, O>, ListError> {
        MailList::new(self.os, &self.lock_counter, name, self.settings.list_store.clone())
    }

    /// `_open_list(name)`: `MailList(name, lock=0)`, a list object and its
    /// unlocked `Load()`, or with [`ListCache::KeptForever`] the process's
    /// cached object as it was left, with no `Load()`. The object is finalised
    /// here when the load fails, as Python collects it (and does not cache it).
    /// Give it back with [`RunnerCtx::release`].
    pub async fn open_list(&self, name: &str) -> Result<MailList<'a, O>, ListError> {
        if let Some(cached) = self.lists.borrow_mut().remove(name) {
            return Ok(cached);
        }
        let mut mlist = self.list(name)?;
        match mlist.load().await {
            Ok(()) => Ok(mlist),
            Err(e) => {
                self.finalize(mlist).await;
                Err(e)
            }
        }
    }

    /// A site lock at `path` (`locks/master-qrunner`, the 2.0
    /// `locks/qrunner.lock`): the list lock's variant, `lifetime`, no `withlogging`.
    pub fn site_lock(&self, path: &str, lifetime: Duration) -> LockFile<'a, O> {
        let settings = LockSettings::new(self.settings.list_store.lock.variant).with_lifetime(lifetime);
        LockFile::new(self.os, &self.lock_counter, path, settings)
    }

    /// `LIST_LOCK_TIMEOUT`.
    pub fn list_lock_timeout(&self) -> Duration {
        self.settings.list_store.list_lock_timeout
    }

    /// `mlist.Lock(timeout=LIST_LOCK_TIMEOUT)`: `Ok(false)` on TimeOutError,
    /// the runners' "try again later" (docs/semantics/mailman-queues-runners.md §8).
    pub async fn lock_list(&self, mlist: &mut MailList<'a, O>) -> Result<bool, Raised> {
        match mlist.lock(Some(self.list_lock_timeout())).await {
            Ok(()) => Ok(true),
            Err(e) if e.is_timeout() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `mlist.Lock(timeout)`, `registerBounce` for each address, `Save()`,
    /// and `Unlock()` in `finally` (docs/semantics/mailman-queues-runners.md §11, §13). The outer
    /// error is the `Lock()` failure (nothing was registered); the inner one
    /// comes after the registrations were made in memory.
    pub async fn register_bounces_locked(
        &self,
        mlist: &mut MailList<'a, O>,
        timeout: Option<Duration>,
        addrs: &[String],
    ) -> Result<Result<(), ListError>, ListError> {
        mlist.lock(timeout).await?;
        for addr in addrs {
            mlist.register_bounce(addr);
            self.os.event(ModelEvent::BounceRegistered { list: mlist.name().to_string(), address: addr.clone() });
        }
        let saved = mlist.save().await;
        let unlocked = mlist.unlock().await;
        // An error from Unlock() in `finally` replaces the one from Save().
        Ok(unlocked.and(saved))
    }

    /// The caller of [`RunnerCtx::open_list`] is done with the object: it
    /// goes back to the cache, or is finalised when there is none.
    pub async fn release(&self, mlist: MailList<'a, O>) {
        match self.settings.runner.list_cache {
            ListCache::KeptForever => {
                self.lists.borrow_mut().insert(mlist.name().to_string(), mlist);
            }
            ListCache::None => self.finalize(mlist).await,
        }
    }

    /// The list object's `__del__` where Python drops its last reference:
    /// the lock's unconditional unlock (docs/semantics/mailman-lockfile.md §7). Python prints
    /// and ignores an exception raised there; so does this.
    pub async fn finalize(&self, mlist: MailList<'a, O>) {
        let name = mlist.name().to_string();
        if let Err(e) = mlist.finalize().await {
            syslog(self.os, "error", format!("Exception in MailList {name} __del__ ignored: {e}"));
        }
    }

    /// Takes pending signals; true once SIGTERM or SIGINT has arrived.
    pub fn stopping(&self) -> bool {
        while let Some(sig) = self.os.take_signal() {
            match sig {
                Signal::Term | Signal::Int => {
                    if self.stop.get().is_none() {
                        self.stop.set(Some(sig));
                    }
                }
                Signal::Hup | Signal::Kill => {}
            }
        }
        self.stop.get().is_some()
    }

    fn stop_signal(&self) -> Option<Signal> {
        self.stop.get()
    }
}

/// One runner's behaviour on top of the loop.
#[allow(async_fn_in_trait)]
pub trait Dispose<'a, O: Os> {
    /// The class name without `Runner` (`Incoming`), as `--runner=` names it.
    fn name(&self) -> &str;
    /// The queue it serves (`in`).
    fn queue(&self) -> &str;
    /// Called once after the Switchboard exists (BounceMixin's `__init__`).
    async fn start(&mut self, _ctx: &RunnerCtx<'a, O>) {}
    async fn dispose(
        &mut self,
        ctx: &RunnerCtx<'a, O>,
        mlist: &mut MailList<'a, O>,
        msg: &mut Message,
        data: &mut MsgData,
    ) -> Result<Keep, Raised>;
    async fn doperiodic(&mut self, _ctx: &RunnerCtx<'a, O>) -> Result<(), Raised> {
        Ok(())
    }
    async fn cleanup(&mut self, _ctx: &RunnerCtx<'a, O>) {}
    /// `_snooze(n)`: the sleep after a pass, if any.
    fn snooze(&self, ctx: &RunnerCtx<'a, O>, files_found: usize) -> Option<Duration> {
        (files_found == 0).then(|| duration_s(ctx.settings.runner.qrunner_sleep_time_s))
    }
}

/// Runs one runner slice until stopped; returns the process exit status.
pub async fn run_runner<'a, O: Os, D: Dispose<'a, O>>(
    os: &'a O,
    settings: &'a Settings,
    slice: Slice,
    mut runner: D,
) -> i32 {
    let ctx = RunnerCtx::new(os, settings);
    let name = runner.name().to_string();
    os.event(ModelEvent::RunnerStarted { runner: name.clone(), slice: slice.index, count: slice.count });
    let exited = |reason: RunnerExit| {
        os.event(ModelEvent::RunnerExited { runner: name.clone(), slice: slice.index, count: slice.count, reason });
    };
    // `Runner.__init__`: the Switchboard (with `recover=True` from 2.1.9).
    let sb = match Switchboard::open(os, &settings.queue, runner.queue(), slice).await {
        Ok(sb) => sb,
        Err(e) => {
            exited(RunnerExit::Error(e.to_string()));
            return 1;
        }
    };
    if let Err(e) = sb.recover_backup_files().await {
        exited(RunnerExit::Error(e.to_string()));
        return 1;
    }
    runner.start(&ctx).await;
    let mut result: Result<(), Raised> = Ok(());
    let mut passes: u64 = 0;
    loop {
        let n = match oneloop(&ctx, &sb, &mut runner).await {
            Ok(n) => n,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        if let Err(e) = runner.doperiodic(&ctx).await {
            result = Err(e);
            break;
        }
        passes += 1;
        if ctx.stopping() || passes >= settings.runner.passes_max {
            break;
        }
        if let Some(d) = runner.snooze(&ctx, n) {
            os.sleep(d).await;
        }
    }
    runner.cleanup(&ctx).await;
    match (result, ctx.stop_signal()) {
        (Err(e), _) => {
            syslog(os, "error", format!("Uncaught runner exception: {}", e.reason));
            exited(RunnerExit::Error(format!("{} ({})", e.reason, e.errno)));
            1
        }
        (Ok(()), Some(Signal::Term)) => {
            exited(RunnerExit::Sigterm);
            15
        }
        (Ok(()), Some(_)) => {
            exited(RunnerExit::Sigint);
            2
        }
        (Ok(()), None) => {
            exited(RunnerExit::Done);
            0
        }
    }
}

/// `_oneloop()`: returns `len(files)`.
async fn oneloop<'a, O: Os, D: Dispose<'a, O>>(
    ctx: &RunnerCtx<'a, O>,
    sb: &Switchboard<'a, O>,
    runner: &mut D,
) -> Result<usize, Raised> {
    let files = sb.files().await?;
    for filebase in &files {
        match sb.dequeue(filebase).await {
            Ok(entry) => match entry.msg {
                Some(msg) => process_one(ctx, sb, runner, filebase, msg, entry.data).await?,
                None => syslog(ctx.os, "error", format!("lost data files for filebase: {filebase}")),
            },
            Err(e) => match ctx.settings.runner.dequeue_errors {
                DequeueErrors::Escape => return Err(e.into()),
                DequeueErrors::CatchParseOnly => match e {
                    DequeueError::Parse(_) => {
                        syslog(ctx.os, "error", format!("Ignoring unparseable message: {filebase}"));
                    }
                    other => return Err(other.into()),
                },
                DequeueErrors::PreserveAny => {
                    // `self._log(e)` (its traceback line left out), then the
                    // QRUNNER_SAVE_BAD_MESSAGES branch; docs/semantics/mailman-corrupt-files.md.
                    syslog(ctx.os, "error", format!("Uncaught runner exception: {e}"));
                    match ctx.settings.queue.bad_messages {
                        BadMessages::Preserve => {
                            syslog(ctx.os, "error", format!("Skipping and preserving unparseable message: {filebase}"));
                            sb.finish(filebase, Finish::Preserve).await;
                        }
                        BadMessages::Discard => {
                            syslog(ctx.os, "error", format!("Ignoring unparseable message: {filebase}"));
                            sb.finish(filebase, Finish::Remove).await;
                        }
                    }
                }
            },
        }
        runner.doperiodic(ctx).await?;
        if ctx.stopping() {
            break;
        }
    }
    Ok(files.len())
}

/// The body of `_oneloop` for one dequeued message: `_onefile`, the shunt on
/// error, and `finish` (a no-op before 2.1.9).
async fn process_one<'a, O: Os, D: Dispose<'a, O>>(
    ctx: &RunnerCtx<'a, O>,
    sb: &Switchboard<'a, O>,
    runner: &mut D,
    filebase: &str,
    mut msg: Message,
    mut data: MsgData,
) -> Result<(), Raised> {
    match onefile(ctx, sb, runner, filebase, &mut msg, &mut data).await {
        Ok(()) => {
            sb.finish(filebase, Finish::Remove).await;
            Ok(())
        }
        Err(e) => {
            syslog(ctx.os, "error", format!("Uncaught runner exception: {}", e.reason));
            data.whichq = Some(sb.whichq().to_string());
            let list = data.listname.clone().unwrap_or_default();
            let message_id = msg.message_id();
            match ctx.enqueue_to("shunt", QueuedMessage::Parsed(msg), data).await {
                Ok(_) => {
                    ctx.os.event(ModelEvent::Shunted {
                        queue: sb.whichq().to_string(),
                        filebase: filebase.to_string(),
                        message_id,
                        list,
                        reason: DropReason::Raised(e.reason),
                        errno: e.errno,
                    });
                    sb.finish(filebase, Finish::Remove).await;
                    Ok(())
                }
                Err(shunt_err) => match ctx.settings.runner.shunt_failure {
                    ShuntFailure::Escape => Err(shunt_err.into()),
                    ShuntFailure::PreserveOriginal => {
                        syslog(ctx.os, "error", format!("SHUNTING FAILED, preserving original entry: {filebase}"));
                        sb.finish(filebase, Finish::Preserve).await;
                        Ok(())
                    }
                },
            }
        }
    }
}

/// `_onefile(msg, msgdata)`.
async fn onefile<'a, O: Os, D: Dispose<'a, O>>(
    ctx: &RunnerCtx<'a, O>,
    sb: &Switchboard<'a, O>,
    runner: &mut D,
    filebase: &str,
    msg: &mut Message,
    data: &mut MsgData,
) -> Result<(), Raised> {
    let listname =
        data.listname.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| ctx.settings.runner.site_list.clone());
    // `_open_list`: `MailList(name, lock=False)`; an MMListError gives None,
    // anything else (ESTALE, EIO) escapes and so shunts.
    let mut mlist = match ctx.open_list(&listname).await {
        Ok(mlist) => mlist,
        Err(e) if e.is_mm_list_error() => {
            syslog(ctx.os, "error", format!("error opening list: {listname}\n{e}"));
            syslog(ctx.os, "error", format!("Dequeuing message destined for missing list: {listname}"));
            let message_id = msg.message_id();
            ctx.enqueue_to("shunt", QueuedMessage::Parsed(msg.clone()), data.clone()).await?;
            ctx.os.event(ModelEvent::Shunted {
                queue: sb.whichq().to_string(),
                filebase: filebase.to_string(),
                message_id,
                list: listname,
                reason: DropReason::MissingList,
                errno: e.errno_name(),
            });
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let kept = runner.dispose(ctx, &mut mlist, msg, data).await;
    let requeued = match kept {
        Ok(Keep::Requeue) => {
            sb.enqueue(QueuedMessage::Parsed(msg.clone()), data.clone()).await.map(drop).map_err(Raised::from)
        }
        Ok(Keep::Done) => Ok(()),
        Err(e) => Err(e),
    };
    // `mlist` is a local of `_onefile`: collected when it returns, after the
    // re-enqueue (on an exception, the model finalises before the shunt),
    // unless the list cache keeps it.
    ctx.release(mlist).await;
    requeued
}
