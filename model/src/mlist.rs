//! Mailman's list config store (`Mailman/MailList.py`, `Utils.list_exists`;
//! docs/semantics/mailman-config-store.md): `Lock`/`Unlock`, `Save` under the lock, `Load` with its
//! per-version "already current" shortcut, fallback chain and repair.
//!
//! Models the file operations of each version in their exact order, because
//! every window in which `config.X` is missing or partial (mailman-config-store.md §8) comes
//! from that order. Serialisation is serde JSON (see `config`).
//!
//! Leaves out: `SaveRequestsDb()` and `CheckHTMLArchiveDir()` after a save,
//! `CheckVersion()`/`CheckValues()` after a load (no schema migrations), umask
//! and `chmod` (so `shutil.copy`'s EPERM case cannot arise), the list cache of
//! 2.1.0–2.1.14, and the OS/2 save. `Create()` is reduced to its file-system
//! effect: the list directory, and the lock taken directly.

mod config;
mod member_map;
mod settings;

use std::io;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use config::{BounceRecord, ListConfig};
pub use member_map::{MemberMap, MemberValue, Span};
pub use settings::{
    ConfigFormat, ListNameValidation, LoadFailureUnlock, LoadShortcut, MailListSettings, RepairMode, SaveProtocol,
    SyncAfterWrite,
};

use crate::event::{ListLoadOutcome, ModelEvent};
use crate::fileio::{close_after, read_to_end};
use crate::lockfile::{Condition, LockCounter, LockError, LockFile, LOCK_DIR};
use crate::os::{errno, errno_name, OpenFlags, Os};
use crate::python::{localtime_ymd, system_time_s, whole_seconds};

/// `LIST_DATA_DIR`, relative to the Mailman prefix: `lists/<name>/config.*`.
pub const LIST_DATA_DIR: &str = "lists";

/// Mailman's list errors, plus the refusals of this API and the OS errors
/// Mailman lets through (ESTALE, EIO, …).
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// Refused before any I/O: empty, `.`, containing `..`, or characters outside
    /// `[A-Za-z0-9._-]` (which would let the name escape `lists/`).
    #[error("bad list name {0:?}: use only A-Z, a-z, 0-9, '.', '_' and '-', and not '.' or '..'")]
    BadListName(String),
    /// `MMUnknownListError`.
    #[error("no such list: {0}")]
    UnknownList(String),
    /// `MMListAlreadyExistsError`.
    #[error("list already exists: {0}")]
    AlreadyExists(String),
    /// `MMCorruptListDatabaseError`: every file of the fallback chain failed.
    #[error("corrupt list database for {list}: {reason}")]
    CorruptDatabase { list: String, reason: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ListError {
    /// `LockFile.TimeOutError` out of `Lock(timeout)`: the caller's "try again later".
    pub fn is_timeout(&self) -> bool {
        matches!(self, ListError::Lock(LockError::TimeOut))
    }

    /// An `MMListError`, which `_open_list` and the 2.0 scripts treat as a
    /// missing list. A refused name counts: Mailman would not find the list.
    pub fn is_mm_list_error(&self) -> bool {
        matches!(
            self,
            ListError::BadListName(_)
                | ListError::UnknownList(_)
                | ListError::AlreadyExists(_)
                | ListError::CorruptDatabase { .. }
        )
    }

    /// The errno symbol of an OS error inside, `none` for Mailman's own errors.
    pub fn errno_name(&self) -> String {
        match self {
            ListError::Io(e) | ListError::Lock(LockError::Io(e)) => errno_name(errno(e)),
            _ => "none".to_string(),
        }
    }
}

/// Checks a list name against this API's rule (see [`ListError::BadListName`]).
pub fn validate_list_name(name: &str) -> Result<(), ListError> {
    let charset_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    // `..` anywhere is refused too: harmless without `/`, but the MTA's
    // router refuses it before any stat, and one rule serves both.
    if name.is_empty() || name.contains("..") || name == "." || !charset_ok {
        return Err(ListError::BadListName(name.to_string()));
    }
    Ok(())
}

/// `mm_cfg.ACCEPTABLE_LISTNAME_CHARACTERS` (`[-+_.=a-z0-9]`, Mailman 2.1.11
/// and later), spelled out; docs/semantics/list-names.md.
pub const ACCEPTABLE_LISTNAME_CHARACTERS: &str = "-+_.=abcdefghijklmnopqrstuvwxyz0123456789";

/// The list names a new list may take (`install --list=`, a `post` boot
/// argument): what Mailman's `bin/newlist` and `MailList.Create` accept
/// (lower case, every character in [`ACCEPTABLE_LISTNAME_CHARACTERS`]) that
/// [`validate_list_name`] also accepts (so no `+`, `=`, `.` alone or `..`).
/// `Err` is the "expected …" text. See docs/semantics/list-names.md.
pub fn check_new_list_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("expected a list name; got an empty one");
    }
    if name.contains('/') || name.contains("..") || name == "." {
        return Err("expected a list name that stays inside lists/ (no '/', no '..', not '.')");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("expected a lower-case list name (newlist lower-cases names, MailList.Create asserts it)");
    }
    if !name.chars().all(|c| ACCEPTABLE_LISTNAME_CHARACTERS.contains(c)) {
        return Err("expected a list name of a-z, 0-9, '-', '_' and '.' (Mailman's ACCEPTABLE_LISTNAME_CHARACTERS)");
    }
    validate_list_name(name)
        .map_err(|_| "expected a list name of a-z, 0-9, '-', '_' and '.' ('+' and '=' are refused too)")
}

/// `Utils.list_exists(name)` (mailman-config-store.md §7): true if any file of the version's
/// chain passes `os.path.exists`, which is false on **any** stat error. Emits
/// [`ModelEvent::ListMissing`] when it concludes false.
pub async fn list_exists<O: Os>(os: &O, name: &str, settings: &MailListSettings) -> Result<bool, ListError> {
    validate_list_name(name)?;
    if settings.list_name_validation == ListNameValidation::AcceptableCharacters
        && !name.chars().all(|c| settings.acceptable_listname_characters.contains(c))
    {
        os.event(ModelEvent::Log { log: "mischief".to_string(), message: format!("Hostile listname: {name}") });
        os.event(ModelEvent::ListMissing { list: name.to_string(), files: Vec::new(), errnos: Vec::new() });
        return Ok(false);
    }
    let mut files = Vec::new();
    let mut errnos = Vec::new();
    for file in settings.format.load_chain() {
        let path = format!("{LIST_DATA_DIR}/{name}/{file}");
        match os.stat(&path).await {
            Ok(_) => return Ok(true),
            Err(e) => {
                files.push(path);
                errnos.push(errno_name(errno(&e)));
            }
        }
    }
    os.event(ModelEvent::ListMissing { list: name.to_string(), files, errnos });
    Ok(false)
}

/// What `__load(file)` returned (mailman-config-store.md §5).
enum FileLoad {
    /// `(dict, None)`.
    Loaded(Rc<ListConfig>),
    /// `(None, None)`: the shortcut says the state in memory is current.
    Current,
    /// `(None, e)`: missing or undecodable; try the next file.
    Failed(String),
}

/// One `MailList` object of one process: the in-memory state of list `name`
/// and its lock. It borrows its process's `Os`.
pub struct MailList<'a, O: Os> {
    os: &'a O,
    settings: MailListSettings,
    name: String,
    lock: LockFile<'a, O>,
    /// `__timestamp`, 0 until the first load or save.
    timestamp: SystemTime,
    /// Shared with the decode memo until first changed (`config_mut`).
    config: Rc<ListConfig>,
}

impl<'a, O: Os> MailList<'a, O> {
    /// `MailList(name, lock=0)` without the initial `Load()`: no I/O. The lock
    /// object is `locks/<name>.lock` and takes a value from `counter`.
    pub fn new(os: &'a O, counter: &LockCounter, name: &str, settings: MailListSettings) -> Result<Self, ListError> {
        validate_list_name(name)?;
        let lock = LockFile::new(os, counter, &format!("{LOCK_DIR}/{name}.lock"), settings.lock.clone());
        let host_name = os.hostname();
        Ok(MailList {
            os,
            name: name.to_string(),
            lock,
            timestamp: UNIX_EPOCH,
            config: Rc::new(ListConfig::new(name, &host_name, &host_name, 0)),
            settings,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &MailListSettings {
        &self.settings
    }

    /// The state as last loaded, created or changed in memory.
    pub fn config(&self) -> &ListConfig {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut ListConfig {
        Rc::make_mut(&mut self.config)
    }

    pub fn lock_file(&self) -> &LockFile<'a, O> {
        &self.lock
    }

    /// `Create()` reduced to its file-system effect (mailman-config-store.md §8 last row): fails
    /// if the list exists, makes `lists/<name>/`, then takes the lock directly
    /// (not through `lock()`, which would load the missing config). The caller
    /// then calls `save()` and `unlock()`, as `bin/newlist` does.
    pub async fn create(&mut self, config: ListConfig) -> Result<(), ListError> {
        if list_exists(self.os, &self.name, &self.settings).await? {
            return Err(ListError::AlreadyExists(self.name.clone()));
        }
        for dir in [LIST_DATA_DIR.to_string(), self.dir()] {
            match self.os.mkdir(&dir).await {
                Err(e) if errno(&e) == libc::EEXIST => {}
                result => result?,
            }
        }
        self.lock.lock(None).await?;
        self.config = Rc::new(config);
        Ok(())
    }

    /// `Lock(timeout)` (mailman-config-store.md §3): take the list lock, then `Load()`. `None`
    /// blocks forever, as Mailman's `timeout=0`.
    pub async fn lock(&mut self, timeout: Option<Duration>) -> Result<(), ListError> {
        self.lock.lock(timeout).await?;
        let Err(e) = self.load().await else { return Ok(()) };
        let unlock = match self.settings.load_failure_unlock {
            LoadFailureUnlock::AnyError => true,
            LoadFailureUnlock::UnknownListOnly => matches!(e, ListError::UnknownList(_)),
        };
        if unlock {
            // An error from Unlock() replaces the load error, as in Python.
            self.unlock().await?;
        }
        Err(e)
    }

    /// `Unlock()`: `unlock(unconditionally=1)` (mailman-config-store.md §3).
    pub async fn unlock(&mut self) -> Result<(), ListError> {
        Ok(self.lock.unlock(Condition::Unconditionally).await?)
    }

    /// `Locked()`: the lock's `locked()`, which also extends the lease.
    pub async fn locked(&self) -> Result<bool, ListError> {
        Ok(self.lock.locked().await?)
    }

    /// `Save()` (mailman-config-store.md §4): refresh the lock, write the temporary file, then
    /// replace the config file by the version's [`SaveProtocol`].
    pub async fn save(&mut self) -> Result<(), ListError> {
        // §4 step 1: NotLockedError here means nothing is written.
        self.lock.refresh(None, Condition::RequireLocked).await?;
        // §4 step 2.
        let data = ListConfig::encode(&self.config);
        let primary = self.file(self.settings.format.primary());
        let last = format!("{primary}.last");
        let tmp = format!("{primary}.tmp.{}.{}", self.os.hostname(), self.os.pid());
        // §4 step 3.1.
        self.write_tmp(&tmp, &data).await?;
        match self.settings.save_protocol {
            SaveProtocol::LinkRename => {
                // §4 steps 3.2–3.4.
                self.unlink_if_exists(&last).await?;
                self.link_if_exists(&primary, &last).await?;
                self.os.rename(&tmp, &primary).await?;
            }
            SaveProtocol::Aside1999 => {
                // §8 row 1. The `.last` unlink first is inferred: the link below
                // needs the name free.
                self.unlink_if_exists(&last).await?;
                self.link_if_exists(&primary, &last).await?;
                self.unlink_if_exists(&primary).await?;
                self.os.link(&tmp, &primary).await?;
                self.os.unlink(&tmp).await?;
            }
        }
        self.os.event(ModelEvent::ListSaved {
            list: self.name.clone(),
            file: primary.clone(),
            post_id: self.config.post_id,
        });
        // §4 step 3.5: only versions with a load shortcut keep a timestamp.
        if self.settings.load_shortcut != LoadShortcut::None {
            self.timestamp = self.os.stat(&primary).await?.mtime;
        }
        Ok(())
    }

    /// `Load()` (mailman-config-store.md §6).
    pub async fn load(&mut self) -> Result<(), ListError> {
        // §6 step 1.
        if !list_exists(self.os, &self.name, &self.settings).await? {
            return Err(ListError::UnknownList(self.name.clone()));
        }
        // §6 step 2.
        let format = self.settings.format;
        let chain = format.load_chain();
        let mut reason = String::new();
        let mut loaded = None;
        for (i, file) in chain.iter().enumerate() {
            let path = self.file(file);
            match self.load_file(&path).await? {
                FileLoad::Loaded(config) => {
                    loaded = Some((*file, config));
                    break;
                }
                FileLoad::Current => return Ok(()),
                FileLoad::Failed(why) => {
                    let message = match format {
                        ConfigFormat::Db20 if i == 0 => {
                            format!("{} db file was corrupt, using fallback: {}", self.name, self.file(chain[1]))
                        }
                        ConfigFormat::Db20 => format!("{} fallback was corrupt, giving up", self.name),
                        ConfigFormat::Pck21 => format!("couldn't load config file {path}\n{why}"),
                    };
                    self.log_error(message);
                    reason = why;
                }
            }
        }
        let Some((file, config)) = loaded else {
            if format == ConfigFormat::Pck21 {
                self.log_error(format!("All {} fallbacks were corrupt, giving up", self.name));
            }
            self.os.event(ModelEvent::ListCorrupt { list: self.name.clone() });
            return Err(ListError::CorruptDatabase { list: self.name.clone(), reason });
        };
        if file != format.primary() {
            self.os.event(ModelEvent::ListFallbackUsed { list: self.name.clone(), file: self.file(file) });
        }
        // §6 step 3: only a `.last` file is copied back; 2.1's plain
        // `config.db` is used as it is.
        if file.ends_with(".last") {
            self.repair(file).await?;
        }
        // §6 step 4, without CheckVersion/CheckValues.
        self.config = config;
        Ok(())
    }

    /// `registerBounce(member, msg)` with today's date from the local clock.
    pub fn register_bounce(&mut self, address: &str) {
        let day = localtime_ymd(system_time_s(self.os.now()));
        self.config_mut().register_bounce(address, day);
    }

    /// Mailman's `__del__` at normal exit: the lock's finalisation.
    pub async fn finalize(self) -> Result<(), ListError> {
        Ok(self.lock.finalize().await?)
    }

    /// `__load(file)` (mailman-config-store.md §5).
    async fn load_file(&mut self, path: &str) -> Result<FileLoad, ListError> {
        let shortcut = self.settings.load_shortcut;
        let mut mtime = None;
        if shortcut != LoadShortcut::None {
            match self.os.stat(path).await {
                Ok(meta) => {
                    let current = match shortcut {
                        LoadShortcut::MtimeLe => meta.mtime <= self.timestamp,
                        _ => meta.mtime < self.timestamp,
                    };
                    if current {
                        self.emit_load(path, ListLoadOutcome::ShortcutSkip, None, None);
                        return Ok(FileLoad::Current);
                    }
                    mtime = Some(meta.mtime);
                }
                Err(e) if errno(&e) == libc::ENOENT => return Ok(self.missing(path, &e)),
                Err(e) => return Err(e.into()),
            }
        }
        let fd = match self.os.open(path, OpenFlags::read_only()).await {
            Ok(fd) => fd,
            Err(e) if errno(&e) == libc::ENOENT => return Ok(self.missing(path, &e)),
            Err(e) => return Err(e.into()),
        };
        // 2.1.15+: `now = int(time.time())` after the open, before the decode.
        let stamp = whole_seconds(self.os.now());
        let read = read_to_end(self.os, fd, self.settings.read_chunk_bytes).await;
        let bytes = close_after(self.os, fd, read).await?;
        match ListConfig::decode(&bytes) {
            Ok(config) => {
                match shortcut {
                    LoadShortcut::None => {}
                    LoadShortcut::MtimeLe => self.timestamp = mtime.expect("stat ran"),
                    LoadShortcut::MtimeLtLocalStamp => self.timestamp = stamp,
                }
                self.emit_load(path, ListLoadOutcome::Loaded, None, Some(config.post_id));
                Ok(FileLoad::Loaded(config))
            }
            Err(e) => {
                self.emit_load(path, ListLoadOutcome::Corrupt, None, None);
                Ok(FileLoad::Failed(e.to_string()))
            }
        }
    }

    fn missing(&self, path: &str, e: &io::Error) -> FileLoad {
        self.emit_load(path, ListLoadOutcome::Missing, Some(errno_name(errno(e))), None);
        FileLoad::Failed(e.to_string())
    }

    /// mailman-config-store.md §6 step 3 for `last` (`config.pck.last` or `config.db.last`).
    async fn repair(&mut self, last: &str) -> Result<(), ListError> {
        let primary = self.file(last.trim_end_matches(".last"));
        let last = self.file(last);
        self.os.event(ModelEvent::ListRepairStarted {
            list: self.name.clone(),
            from: last.clone(),
            mode: self.settings.repair,
        });
        match self.settings.repair {
            RepairMode::CopyUnlocked => {
                self.copy(&last, &primary).await?;
                if self.settings.format == ConfigFormat::Pck21 {
                    // 2.1.0–2.1.4 keep the safety copy beside config.pck, also
                    // when the source is config.db.last.
                    let safety = self.file("config.pck.safety");
                    self.copy(&last, &safety).await?;
                }
            }
            RepairMode::RenameCorruptThenCopy => {
                self.log_error(format!("fixing corrupt config file, using: {last}"));
                let took_lock = match self.lock.lock(None).await {
                    Ok(()) => true,
                    // The caller (usually Lock()) already holds it.
                    Err(LockError::AlreadyLocked) => false,
                    Err(e) => {
                        // Python's `finally: if unlock: unlock()` still runs, and
                        // its NotLockedError would replace this error.
                        self.lock.unlock(Condition::RequireLocked).await?;
                        return Err(e.into());
                    }
                };
                let fixed = self.rename_corrupt_then_copy(&last, &primary).await;
                if took_lock {
                    self.lock.unlock(Condition::RequireLocked).await?;
                }
                fixed?;
            }
        }
        self.os.event(ModelEvent::ListRepairFinished { list: self.name.clone(), from: last });
        Ok(())
    }

    /// `__fix_corrupt_pckfile` (2.1.5+), steps (a)–(d).
    async fn rename_corrupt_then_copy(&self, last: &str, primary: &str) -> Result<(), ListError> {
        match self.os.rename(primary, &format!("{primary}.corrupt")).await {
            Err(e) if errno(&e) == libc::ENOENT => {}
            result => result?,
        }
        let safety = format!("{primary}.safety");
        self.unlink_if_exists(&safety).await?;
        self.copy(last, primary).await?;
        self.copy(last, &safety).await
    }

    /// `shutil.copy(src, dst)`: open the source, open the destination with
    /// `'wb'` (O_TRUNC, same inode), copy in chunks, close both. Not atomic: a
    /// reader meanwhile sees an empty or partial file (mailman-config-store.md §6).
    async fn copy(&self, src: &str, dst: &str) -> Result<(), ListError> {
        let source = self.os.open(src, OpenFlags::read_only()).await?;
        let target = match self.os.open(dst, OpenFlags::write_truncate()).await {
            Ok(fd) => fd,
            Err(e) => {
                let _ = self.os.close(source).await;
                return Err(e.into());
            }
        };
        let copied = async {
            loop {
                let chunk = self.os.read(source, self.settings.copy_chunk_bytes).await?;
                if chunk.is_empty() {
                    return Ok::<(), io::Error>(());
                }
                self.os.write(target, &chunk).await?;
            }
        }
        .await;
        // The `with` blocks close the destination first, then the source.
        let closed_target = self.os.close(target).await;
        let closed_source = self.os.close(source).await;
        copied?;
        closed_target?;
        closed_source?;
        Ok(())
    }

    /// `__save` step 3.1 (mailman-config-store.md §4): write the temporary file. An IOError
    /// (open, write, close) is logged, the file unlinked if it was opened, and
    /// the error raised; an fsync error (an OSError in Python) is only raised.
    async fn write_tmp(&self, tmp: &str, data: &[u8]) -> Result<(), ListError> {
        let primary = self.settings.format.primary();
        let fd = match self.os.open(tmp, OpenFlags::write_truncate()).await {
            Ok(fd) => fd,
            Err(e) => {
                self.log_error(format!("Failed {primary} write, retaining old state.\n{e}"));
                return Err(e.into());
            }
        };
        for chunk in data.chunks(self.settings.write_chunk_bytes.max(1)) {
            if let Err(e) = self.os.write(fd, chunk).await {
                self.log_error(format!("Failed {primary} write, retaining old state.\n{e}"));
                // Python unlinks while the file is still open (it is closed when
                // collected), which on NFS means a silly rename.
                self.os.unlink(tmp).await?;
                let _ = self.os.close(fd).await;
                return Err(e.into());
            }
        }
        if self.settings.sync_after_write == SyncAfterWrite::Fsync {
            if let Err(e) = self.os.fsync(fd).await {
                let _ = self.os.close(fd).await;
                return Err(e.into());
            }
        }
        if let Err(e) = self.os.close(fd).await {
            self.log_error(format!("Failed {primary} write, retaining old state.\n{e}"));
            self.os.unlink(tmp).await?;
            return Err(e.into());
        }
        Ok(())
    }

    async fn unlink_if_exists(&self, path: &str) -> io::Result<()> {
        match self.os.unlink(path).await {
            Err(e) if errno(&e) == libc::ENOENT => Ok(()),
            result => result,
        }
    }

    async fn link_if_exists(&self, existing: &str, new: &str) -> io::Result<()> {
        match self.os.link(existing, new).await {
            Err(e) if errno(&e) == libc::ENOENT => Ok(()),
            result => result,
        }
    }

    fn dir(&self) -> String {
        format!("{LIST_DATA_DIR}/{}", self.name)
    }

    fn file(&self, name: &str) -> String {
        format!("{LIST_DATA_DIR}/{}/{name}", self.name)
    }

    fn emit_load(&self, path: &str, outcome: ListLoadOutcome, errno: Option<String>, post_id: Option<u64>) {
        self.os.event(ModelEvent::ListFileLoad {
            list: self.name.clone(),
            file: path.to_string(),
            outcome,
            errno,
            post_id,
        });
    }

    /// `syslog('error', …)`: `logs/error`.
    fn log_error(&self, message: String) {
        self.os.event(ModelEvent::Log { log: "error".to_string(), message });
    }
}

/// `bin/newlist` reduced to the store: `Create()`, the first `Save()`, then
/// `Unlock()` and the object's finalisation (mailman-config-store.md §8 last row). A scenario
/// and test helper; the runners never create lists.
pub async fn newlist<O: Os>(
    os: &O,
    counter: &LockCounter,
    name: &str,
    settings: &MailListSettings,
    config: ListConfig,
) -> Result<(), ListError> {
    let mut mlist = MailList::new(os, counter, name, settings.clone())?;
    mlist.create(config).await?;
    let saved = mlist.save().await;
    let unlocked = mlist.unlock().await;
    let finalized = mlist.finalize().await;
    saved?;
    unlocked?;
    finalized
}
