//! Mailman's `LockFile` (docs/semantics/mailman-lockfile.md): an NFS-safe lock built from a
//! hard link between a per-process claim file and one global lock file, with
//! the lease held as an mtime set into the future.
//!
//! Models, step for step, the algorithm of Mailman 2.1 (`Mailman/LockFile.py`)
//! and three relatives behind [`LockVariant`]: Mailman 2.0 (no counter in the
//! claim name, so two objects in one process share a claim: race R5), flufl.lock
//! (ESTALE tolerated, the −1 release-time guard, the four-field check before a
//! break) and the open(2) man-page recipe (a failed `link` is a success when the
//! claim's own link count reads 2). Every stat, read, touch and unlink happens
//! in the order and number the Python code does them, because a simulated NFS
//! client answers each one separately.
//!
//! Leaves out: mailmanctl's fork hand-over (`_transfer_to`, `_take_possession`,
//! `_disown`), so `__owned` is always true; the stack trace 2.1 prints after each
//! log line; umask; flufl's `retry_errnos` (empty by default), `_now()` hook and
//! `state` property. Finalisation (`__del__`) is the explicit
//! [`LockFile::finalize`], never `Drop`.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::event::ModelEvent;
use crate::fileio::read_file_chunked;
use crate::os::{errno, errno_name, OpenFlags, Os, SetTime};
use crate::python::whole_seconds;

/// `LOCK_DIR`, relative to the Mailman prefix: list locks, `master-qrunner`
/// and the 2.0 `qrunner.lock` live here (docs/semantics/mailman-lockfile.md §2).
pub const LOCK_DIR: &str = "locks";

/// Which lock algorithm runs. Everything not listed here is Mailman 2.1's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockVariant {
    /// Mailman 2.1.x, the reference text (mailman-lockfile.md §2–§8).
    Mailman21,
    /// Mailman 2.0.x: claim `<lock>.<host>.<pid>` without a counter (mailman-lockfile.md §3);
    /// logs nothing unless `withlogging` ([`LockLogging::Verbose`]); finalisation
    /// always unlocks (mailman-lockfile.md §7); `refresh` builds no error message.
    Mailman20,
    /// flufl.lock 10 (mailman-lockfile.md §10): claim `<lock>|<host>|<pid>|<random>`; ESTALE
    /// tolerated wherever ENOENT is; never breaks when the release time reads as
    /// missing (−1); refuses to break a lock whose content is not four fields;
    /// no unlock at finalisation.
    Flufl,
    /// Mailman 2.1 with the open(2) man-page rule: after a failed `link`, stat the
    /// *own claim* and take a link count of 2 as success (mailman-lockfile.md §11).
    Open2Recipe,
}

/// Mailman's `withlogging` flag, as an enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockLogging {
    /// `withlogging=False`: 2.1 and flufl still log the important lines
    /// (unexpected link error, unexpected linkcount, breaking); 2.0 logs nothing.
    Quiet,
    /// `withlogging=True`: every line goes to `logs/locks`.
    Verbose,
}

/// The constants of `LockFile.py`, with Mailman's defaults from [`LockSettings::new`].
/// Durations appear in settings JSON as float seconds with an `_s` suffix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockSettings {
    pub variant: LockVariant,
    /// `lifetime`: how far into the future each touch pushes the lease.
    /// `DEFAULT_LOCK_LIFETIME` is 15 s; list locks use `LIST_LOCK_LIFETIME`, 5 h.
    #[serde(rename = "lifetime_s", with = "crate::python::serde_seconds")]
    pub lifetime: Duration,
    /// `CLOCK_SLOP`, 10 s: the lease counts as expired only this long after its mtime.
    #[serde(rename = "clock_slop_s", with = "crate::python::serde_seconds")]
    pub clock_slop: Duration,
    /// The retry sleep is `random() * retry_sleep_spread + retry_sleep_min`:
    /// 2 s and 10 ms in `__sleep()` (mailman-lockfile.md §5 step 3.4).
    #[serde(rename = "retry_sleep_min_s", with = "crate::python::serde_seconds")]
    pub retry_sleep_min: Duration,
    #[serde(rename = "retry_sleep_spread_s", with = "crate::python::serde_seconds")]
    pub retry_sleep_spread: Duration,
    /// "waiting for claim" is logged on loops 0, N, 2N, …; N is 100.
    pub waiting_log_every_loops: u64,
    pub logging: LockLogging,
}

impl LockSettings {
    /// Mailman's defaults for `variant` (mailman-lockfile.md §2, §10: the same numbers in flufl).
    pub fn new(variant: LockVariant) -> Self {
        LockSettings {
            variant,
            lifetime: Duration::from_secs(15),
            clock_slop: Duration::from_secs(10),
            retry_sleep_min: Duration::from_millis(10),
            retry_sleep_spread: Duration::from_secs(2),
            waiting_log_every_loops: 100,
            logging: LockLogging::Quiet,
        }
    }

    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings::new(LockVariant::Mailman21)
    }
}

/// Mailman's `unconditionally` argument to `unlock()` and `refresh()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Raise [`LockError::NotLocked`] if this object does not hold the lock.
    RequireLocked,
    /// Go ahead whether or not the lock is held.
    Unconditionally,
}

/// `LockError` and its subclasses, plus the OS errors Mailman lets through
/// (ESTALE, EIO, ETIMEDOUT, EPERM from the first touch: mailman-lockfile.md §8).
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// `AlreadyLockedError`: `lock()` found its own claim in the lock file.
    #[error("already locked")]
    AlreadyLocked,
    /// `NotLockedError`: `unlock()`/`refresh()` on a lock this object does not hold.
    #[error("not locked")]
    NotLocked,
    /// `TimeOutError`: `lock(timeout)` gave up.
    #[error("timed out waiting for the lock")]
    TimeOut,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The process-wide `LockFile.COUNTER` (mailman-lockfile.md §3). Python keeps it in a class
/// attribute; here each process owns one and hands it to every `LockFile` it
/// makes. Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct LockCounter(Rc<Cell<u32>>);

impl LockCounter {
    pub fn new() -> Self {
        LockCounter::default()
    }

    /// The value before the increment, so the first lock of a process gets 0.
    fn take(&self) -> u32 {
        let value = self.0.get();
        self.0.set(value + 1);
        value
    }
}

/// flufl's claim-name separator, `SEP` (a pipe; a caret on Windows).
const FLUFL_SEP: char = '|';
/// flufl draws the last claim field with `random.randint(0, sys.maxsize)`.
const FLUFL_RANDOM_MAX: f64 = i64::MAX as f64;

/// Whether a log line is one 2.1 writes even without `withlogging`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Importance {
    Debug,
    Important,
}

/// One `LockFile` object: a claim on one global lock file. It borrows its
/// process's `Os`, as every other model object does.
pub struct LockFile<'a, O: Os> {
    os: &'a O,
    settings: LockSettings,
    lock_path: String,
    claim: String,
    /// `os.path.split(lockfile)[1]`, the prefix of every log line.
    log_prefix: String,
}

impl<'a, O: Os> LockFile<'a, O> {
    /// `LockFile(lockfile, lifetime, withlogging)`. Names the claim (mailman-lockfile.md §3)
    /// and takes a counter value for the 2.1-style names; does no I/O.
    pub fn new(os: &'a O, counter: &LockCounter, lock_path: &str, settings: LockSettings) -> Self {
        let (host, pid) = (os.hostname(), os.pid());
        let claim = match settings.variant {
            LockVariant::Mailman21 | LockVariant::Open2Recipe => {
                format!("{lock_path}.{host}.{pid}.{}", counter.take())
            }
            LockVariant::Mailman20 => format!("{lock_path}.{host}.{pid}"),
            LockVariant::Flufl => {
                let random = (os.random() * FLUFL_RANDOM_MAX) as u64;
                format!("{lock_path}{FLUFL_SEP}{host}{FLUFL_SEP}{pid}{FLUFL_SEP}{random}")
            }
        };
        let log_prefix = lock_path.rsplit('/').next().unwrap_or(lock_path).to_string();
        LockFile { os, settings, lock_path: lock_path.to_string(), claim, log_prefix }
    }

    pub fn lock_path(&self) -> &str {
        &self.lock_path
    }

    pub fn claim(&self) -> &str {
        &self.claim
    }

    pub fn settings(&self) -> &LockSettings {
        &self.settings
    }

    /// `set_lifetime()`: takes effect at the next touch.
    pub fn set_lifetime(&mut self, lifetime: Duration) {
        self.settings.lifetime = lifetime;
    }

    /// `lock(timeout)`, mailman-lockfile.md §5. `None` (Mailman's 0) blocks forever.
    pub async fn lock(&self, timeout: Option<Duration>) -> Result<(), LockError> {
        // §5 step 1.
        let deadline = timeout.filter(|t| !t.is_zero()).map(|t| self.os.now() + t);
        // §5 step 2: an EPERM from this touch propagates.
        self.write_claim().await?;
        self.touch(&self.claim).await?;
        self.log("laying claim", Importance::Debug);
        let mut contended = false;
        let mut loopcount: u64 = 0;
        loop {
            // §5 step 3.1.
            if self.try_link(&mut contended).await? {
                self.log("got the lock", Importance::Debug);
                self.touch(&self.claim).await?;
                self.os.event(ModelEvent::LockAcquired { lock: self.lock_path.clone(), claim: self.claim.clone() });
                return Ok(());
            }
            // §5 step 3.2: `timeout_time < time.time()`.
            if deadline.is_some_and(|deadline| deadline < self.os.now()) {
                self.os.unlink(&self.claim).await?;
                self.log("timed out", Importance::Debug);
                self.os.event(ModelEvent::LockTimedOut { lock: self.lock_path.clone(), claim: self.claim.clone() });
                return Err(LockError::TimeOut);
            }
            // §5 step 3.3.
            if self.lifetime_expired().await? {
                self.break_lock().await?;
                self.log("lifetime has expired, breaking", Importance::Important);
            } else if loopcount.is_multiple_of(self.settings.waiting_log_every_loops) {
                self.log("waiting for claim", Importance::Debug);
            }
            // §5 step 3.4: uniform in [0.01, 2.01) s, no backoff.
            let sleep_s = self.os.random() * self.settings.retry_sleep_spread.as_secs_f64()
                + self.settings.retry_sleep_min.as_secs_f64();
            self.os.sleep(Duration::from_secs_f64(sleep_s)).await;
            loopcount += 1;
        }
    }

    /// `unlock(unconditionally)`, mailman-lockfile.md §7: the lock file first, then the claim.
    pub async fn unlock(&self, condition: Condition) -> Result<(), LockError> {
        // Announced before the first filesystem call, so that an oracle sees the
        // release begin even when a later step fails.
        self.os.event(ModelEvent::LockReleasing { lock: self.lock_path.clone(), claim: self.claim.clone() });
        let is_locked = self.locked().await?;
        if !is_locked && condition == Condition::RequireLocked {
            return Err(LockError::NotLocked);
        }
        if is_locked {
            self.unlink_tolerant(&self.lock_path).await?;
        }
        self.unlink_tolerant(&self.claim).await?;
        self.log("unlocked", Importance::Debug);
        Ok(())
    }

    /// `locked()`, mailman-lockfile.md §7: touches the claim (extending a held lease), then
    /// checks the link count and the content of the global lock file.
    pub async fn locked(&self) -> Result<bool, LockError> {
        match self.touch(&self.claim).await {
            Err(e) if errno(&e) == libc::EPERM => return Ok(false),
            result => result?,
        }
        if self.linkcount().await? != 2 {
            return Ok(false);
        }
        Ok(self.read_lock().await?.as_deref() == Some(self.claim.as_str()))
    }

    /// `refresh(newlifetime, unconditionally)`, mailman-lockfile.md §7.
    pub async fn refresh(&mut self, new_lifetime: Option<Duration>, condition: Condition) -> Result<(), LockError> {
        if let Some(lifetime) = new_lifetime {
            self.settings.lifetime = lifetime;
        }
        // flufl tests `unconditionally` first and so skips `is_locked` (and its
        // touch) altogether; Mailman always calls `locked()` (inferred for
        // flufl, not read in its source).
        if self.settings.variant == LockVariant::Flufl && condition == Condition::Unconditionally {
            return Ok(());
        }
        let held = self.locked().await?;
        self.os.event(ModelEvent::LockRefreshed { lock: self.lock_path.clone(), claim: self.claim.clone(), held });
        if held || condition == Condition::Unconditionally {
            return Ok(());
        }
        if self.settings.variant != LockVariant::Mailman20 {
            // 2.1 and flufl raise `NotLockedError('%s: %s' % (repr(self), self.__read()))`;
            // `repr` calls `locked()` again. Both touch the server, and an error
            // from either replaces the NotLockedError.
            self.locked().await?;
            self.read_lock().await?;
        }
        Err(LockError::NotLocked)
    }

    /// Mailman's `__del__` (mailman-lockfile.md §7), run explicitly at normal exit: 2.1 and
    /// 2.0 `unlock(unconditionally=True)` (`__owned` is always true here, see the
    /// module doc); flufl does nothing (its `__del__` unlock went in 4.0).
    /// Python prints and swallows an error raised in `__del__`; the caller
    /// decides here.
    pub async fn finalize(self) -> Result<(), LockError> {
        match self.settings.variant {
            LockVariant::Flufl => Ok(()),
            LockVariant::Mailman21 | LockVariant::Mailman20 | LockVariant::Open2Recipe => {
                self.unlock(Condition::Unconditionally).await
            }
        }
    }

    /// One `os.link(claim, lockfile)` and the checks after a failure
    /// (mailman-lockfile.md §5 step 3.1). `Ok(true)` means this object now holds the lock.
    async fn try_link(&self, contended: &mut bool) -> Result<bool, LockError> {
        let e = match self.os.link(&self.claim, &self.lock_path).await {
            Ok(()) => return Ok(true),
            Err(e) => e,
        };
        if self.settings.variant == LockVariant::Open2Recipe && self.claim_nlink().await? == 2 {
            // The recipe: the link may have happened although its reply was lost.
            return Ok(true);
        }
        if self.is_tolerated(&e) {
            // ENOENT "in some Linux environments": not acquired, try again.
            return Ok(false);
        }
        if errno(&e) != libc::EEXIST {
            self.log(&format!("unexpected link error: {e}"), Importance::Important);
            self.os.event(ModelEvent::LockLinkError {
                lock: self.lock_path.clone(),
                claim: self.claim.clone(),
                errno: errno_name(errno(&e)),
            });
            self.os.unlink(&self.claim).await?;
            return Err(e.into());
        }
        if !*contended {
            *contended = true;
            self.os.event(ModelEvent::LockContended { lock: self.lock_path.clone(), claim: self.claim.clone() });
        }
        if self.linkcount().await? != 2 {
            // Mailman stats again to format the log line; the event reports that
            // second answer, as the log does.
            let nlink = self.linkcount().await?;
            self.log(&format!("unexpected linkcount: {nlink}"), Importance::Important);
            self.os.event(ModelEvent::LockUnexpectedLinkcount {
                lock: self.lock_path.clone(),
                claim: self.claim.clone(),
                nlink,
            });
        } else if self.read_lock().await?.as_deref() == Some(self.claim.as_str()) {
            self.log("already locked", Importance::Debug);
            return Err(LockError::AlreadyLocked);
        }
        Ok(false)
    }

    /// `time.time() > __releasetime() + CLOCK_SLOP` (mailman-lockfile.md §4 step 3, §5
    /// step 3.3). Mailman reads the clock first and then stats; a missing lock
    /// file reads as −1 and so always counts as expired (race R6). flufl stats
    /// first, then reads the clock, and never breaks on −1 (mailman-lockfile.md §10).
    async fn lifetime_expired(&self) -> io::Result<bool> {
        let slop = self.settings.clock_slop;
        if self.settings.variant == LockVariant::Flufl {
            let release = self.release_time().await?;
            let now = self.os.now();
            return Ok(release.is_some_and(|release| now > release + slop));
        }
        let now = self.os.now();
        let release = self.release_time().await?.unwrap_or(UNIX_EPOCH - Duration::from_secs(1));
        Ok(now > release + slop)
    }

    /// `__break()`, mailman-lockfile.md §6. The breaker does not take the lock here.
    async fn break_lock(&self) -> Result<(), LockError> {
        // §6 step 1: EPERM ignored (the touch itself ignores ENOENT).
        match self.touch(&self.lock_path).await {
            Err(e) if errno(&e) == libc::EPERM => {}
            result => result?,
        }
        // §6 step 2.
        let winner = self.read_lock().await?;
        if self.settings.variant == LockVariant::Flufl {
            if let Some(content) = winner.as_ref().filter(|w| w.split(FLUFL_SEP).count() != 4) {
                self.log(&format!("refusing to break a lock with content {content:?}"), Importance::Important);
                self.os.event(ModelEvent::LockBreakRefused {
                    lock: self.lock_path.clone(),
                    claim: self.claim.clone(),
                    content: content.clone(),
                });
                return Ok(());
            }
        }
        // §6 step 3: the act that breaks the lock.
        self.unlink_tolerant(&self.lock_path).await?;
        // §6 step 4: Python's `if winner:` also skips an empty content.
        if let Some(winner) = winner.as_deref().filter(|w| !w.is_empty()) {
            self.unlink_tolerant(winner).await?;
        }
        self.os.event(ModelEvent::LockBroken { lock: self.lock_path.clone(), claim: self.claim.clone(), winner });
        Ok(())
    }

    /// `__write()`: the claim holds its own path, no newline (mailman-lockfile.md §3).
    async fn write_claim(&self) -> io::Result<()> {
        let fd = self.os.open(&self.claim, OpenFlags::write_truncate()).await?;
        self.os.write(fd, self.claim.as_bytes()).await?;
        self.os.close(fd).await
    }

    /// `__read()`: the whole lock file, `None` on ENOENT (mailman-lockfile.md §7).
    async fn read_lock(&self) -> io::Result<Option<String>> {
        match self.read_whole(&self.lock_path).await {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if self.is_tolerated(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn read_whole(&self, path: &str) -> io::Result<Vec<u8>> {
        const READ_CHUNK_BYTES: usize = 8192;
        read_file_chunked(self.os, path, READ_CHUNK_BYTES).await
    }

    /// `__touch(f)`: `utime(f, (t, t))` with `t = now + lifetime` from the
    /// local clock (mailman-lockfile.md §4 step 1). ENOENT is ignored.
    async fn touch(&self, path: &str) -> io::Result<()> {
        let t = self.os.now() + self.settings.lifetime;
        match self.os.set_times(path, SetTime::Explicit(t)).await {
            Err(e) if self.is_tolerated(&e) => Ok(()),
            result => result,
        }
    }

    /// `__releasetime()`: the lock file's mtime, `None` for Mailman's −1
    /// (mailman-lockfile.md §4 step 2). Mailman reads `stat()[ST_MTIME]`, whole seconds;
    /// flufl reads `st_mtime`, a float.
    async fn release_time(&self) -> io::Result<Option<SystemTime>> {
        match self.os.stat(&self.lock_path).await {
            Ok(meta) if self.settings.variant == LockVariant::Flufl => Ok(Some(meta.mtime)),
            Ok(meta) => Ok(Some(whole_seconds(meta.mtime))),
            Err(e) if self.is_tolerated(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `__linkcount()`: the **global** lock file's st_nlink, −1 on ENOENT.
    async fn linkcount(&self) -> io::Result<i64> {
        self.nlink_of(&self.lock_path).await
    }

    /// The open(2) recipe's stat of the own claim.
    async fn claim_nlink(&self) -> io::Result<i64> {
        self.nlink_of(&self.claim).await
    }

    async fn nlink_of(&self, path: &str) -> io::Result<i64> {
        match self.os.stat(path).await {
            Ok(meta) => Ok(i64::try_from(meta.nlink).unwrap_or(i64::MAX)),
            Err(e) if self.is_tolerated(&e) => Ok(-1),
            Err(e) => Err(e),
        }
    }

    async fn unlink_tolerant(&self, path: &str) -> io::Result<()> {
        match self.os.unlink(path).await {
            Err(e) if self.is_tolerated(&e) => Ok(()),
            result => result,
        }
    }

    /// The errnos read as "not there": ENOENT, and ESTALE too in flufl (mailman-lockfile.md §8, §10).
    fn is_tolerated(&self, e: &io::Error) -> bool {
        let errno = errno(e);
        errno == libc::ENOENT || (self.settings.variant == LockVariant::Flufl && errno == libc::ESTALE)
    }

    /// `__writelog(msg, important)` to `logs/locks` (mailman-lockfile.md §8).
    fn log(&self, message: &str, importance: Importance) {
        let verbose = self.settings.logging == LockLogging::Verbose;
        let important = importance == Importance::Important && self.settings.variant != LockVariant::Mailman20;
        if verbose || important {
            self.os
                .event(ModelEvent::Log { log: "locks".to_string(), message: format!("{} {message}", self.log_prefix) });
        }
    }
}
