//! The narrow interface the queue runners, `post` and the 2.0 qrunner need
//! from the list config store (spec/mailman.md §2), kept in one place so that
//! the merge can wire it to the real `mlist::MailList`.
//!
//! PLACEHOLDER: [`MailList`] below is a stand-in written while the real
//! `MailList` and `LockFile` are built in parallel. It stores the config as
//! JSON in `lists/<name>/config.pck` (or `config.db` for the 2.0 format),
//! `lock`/`unlock` do **no locking at all**, and `load` has no fallback, no
//! `.last` file and no "already current" shortcut. Replace the body of this
//! file with `pub use crate::mlist::{MailList, ListError, list_exists, ...}`
//! once the real store lands; the callers use only:
//! - `MailList::open(os, name, settings) -> MailList` (no I/O),
//! - `.load()`, `.lock(timeout: Option<Duration>)`, `.save()`, `.unlock()`,
//! - fields `post_id`, `members`, `bounce_info`, `last_post_time`,
//!   `subject_prefix`, `host_name`, `archive`, `bounce_processing` on `.config`,
//! - `.register_bounce(addr)`, `.name()`,
//! - `list_exists(os, name, settings)`, [`ListError`] and its `is_timeout()`.

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::fileio::{self, Sync};
use crate::os::{errno, Os};

/// Which config file a list has (spec/mailman.md §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// 2.0 `config.db` (marshal).
    ConfigDb,
    /// 2.1 `config.pck` (pickle).
    ConfigPck,
}

impl ConfigFormat {
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigFormat::ConfigDb => "config.db",
            ConfigFormat::ConfigPck => "config.pck",
        }
    }
}

/// What the store needs to know (the real store has more).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListStoreSettings {
    pub config_format: ConfigFormat,
    /// `LIST_DATA_DIR`, relative to the Mailman prefix.
    pub lists_dir: String,
}

impl Default for ListStoreSettings {
    fn default() -> Self {
        ListStoreSettings { config_format: ConfigFormat::ConfigPck, lists_dir: "lists".to_string() }
    }
}

/// Bounce bookkeeping for one member (a small part of `_BounceInfo`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BounceInfo {
    pub score: f64,
    pub last_bounce_time_s: f64,
}

/// The public attributes of a list that the model reads and writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListConfig {
    pub real_name: String,
    pub host_name: String,
    pub post_id: u64,
    pub members: Vec<String>,
    pub bounce_info: BTreeMap<String, BounceInfo>,
    pub last_post_time: f64,
    pub subject_prefix: String,
    pub archive: bool,
    pub bounce_processing: bool,
}

impl Default for ListConfig {
    fn default() -> Self {
        ListConfig {
            real_name: String::new(),
            host_name: "lists.example.com".to_string(),
            post_id: 1,
            members: Vec::new(),
            bounce_info: BTreeMap::new(),
            last_post_time: 0.0,
            subject_prefix: String::new(),
            archive: true,
            bounce_processing: true,
        }
    }
}

/// Mailman's list errors, as the callers branch on them.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// `MMUnknownListError`.
    #[error("unknown list: {0}")]
    UnknownList(String),
    /// `MMCorruptListDatabaseError`.
    #[error("corrupt list database: {0}")]
    CorruptDatabase(String),
    /// `LockFile.TimeOutError`.
    #[error("timed out waiting for the list lock")]
    TimeOut,
    /// `LockFile.NotLockedError`.
    #[error("list lock not held")]
    NotLocked,
    /// An uncaught `OSError`/`IOError`.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ListError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, ListError::TimeOut)
    }

    /// `MMListError` subclasses, which `_open_list` turns into "missing list".
    pub fn is_mm_list_error(&self) -> bool {
        matches!(self, ListError::UnknownList(_) | ListError::CorruptDatabase(_))
    }

    pub fn errno_name(&self) -> String {
        match self {
            ListError::Io(e) => crate::errno_name::io_errno_name(e),
            _ => "none".to_string(),
        }
    }
}

/// Whether a name could be a list name: `[A-Za-z0-9._-]`, not `.` or `..`
/// (2.1.23+ `ACCEPTABLE_LISTNAME_CHARACTERS`, plus the path-safety rule the
/// MTA needs). Nothing outside `lists/` is ever touched for other names.
pub fn acceptable_list_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains("..")
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `Utils.list_exists(name)` (spec/mailman.md §2.6): any of the config
/// files passes `os.path.exists`, which is false on **any** stat error.
pub async fn list_exists<O: Os>(os: &O, name: &str, settings: &ListStoreSettings) -> bool {
    if !acceptable_list_name(name) {
        return false;
    }
    let candidates: &[&str] = match settings.config_format {
        ConfigFormat::ConfigDb => &["config.db", "config.db.last"],
        ConfigFormat::ConfigPck => &["config.pck", "config.pck.last", "config.db", "config.db.last"],
    };
    for file in candidates {
        if os.stat(&format!("{}/{}/{}", settings.lists_dir, name.to_lowercase(), file)).await.is_ok() {
            return true;
        }
    }
    false
}

/// PLACEHOLDER list object; see the module docs.
pub struct MailList<'a, O: Os> {
    os: &'a O,
    name: String,
    settings: ListStoreSettings,
    pub config: ListConfig,
    locked: bool,
}

impl<'a, O: Os> MailList<'a, O> {
    /// `MailList(name, lock=0)` without the Load: no I/O.
    pub fn open(os: &'a O, name: &str, settings: &ListStoreSettings) -> Self {
        MailList {
            os,
            name: name.to_lowercase(),
            settings: settings.clone(),
            config: ListConfig::default(),
            locked: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn config_path(&self) -> String {
        format!("{}/{}/{}", self.settings.lists_dir, self.name, self.settings.config_format.file_name())
    }

    /// `Load()`: `list_exists` check, then read the config.
    pub async fn load(&mut self) -> Result<(), ListError> {
        if !list_exists(self.os, &self.name, &self.settings).await {
            return Err(ListError::UnknownList(self.name.clone()));
        }
        match fileio::read_file(self.os, &self.config_path()).await {
            Ok(bytes) => {
                self.config = serde_json::from_slice(&bytes).map_err(|e| ListError::CorruptDatabase(e.to_string()))?;
                Ok(())
            }
            Err(e) if errno(&e) == libc::ENOENT => {
                Err(ListError::CorruptDatabase(format!("{}: {e}", self.config_path())))
            }
            Err(e) => Err(ListError::Io(e)),
        }
    }

    /// `Lock(timeout)`: PLACEHOLDER, takes no lock; then `Load()`.
    pub async fn lock(&mut self, _timeout: Option<Duration>) -> Result<(), ListError> {
        self.locked = true;
        if let Err(e) = self.load().await {
            self.locked = false;
            return Err(e);
        }
        Ok(())
    }

    /// `Save()`: PLACEHOLDER, writes through a tmp file and renames.
    pub async fn save(&mut self) -> Result<(), ListError> {
        if !self.locked {
            return Err(ListError::NotLocked);
        }
        let path = self.config_path();
        let tmp = format!("{path}.tmp.{}.{}", self.os.hostname(), self.os.pid());
        let bytes = serde_json::to_vec(&self.config).expect("a list config always serialises");
        fileio::write_file(self.os, &tmp, &bytes, Sync::NoFsync).await?;
        self.os.rename(&tmp, &path).await?;
        Ok(())
    }

    /// `Unlock()`: `unlock(unconditionally=1)`.
    pub async fn unlock(&mut self) -> Result<(), ListError> {
        self.locked = false;
        Ok(())
    }

    /// `registerBounce(addr, msg)`: a simplified score increment.
    pub fn register_bounce(&mut self, address: &str, now_s: f64) {
        let info = self.config.bounce_info.entry(address.to_string()).or_default();
        info.score += 1.0;
        info.last_bounce_time_s = now_s;
    }
}

/// Creates a list directory and its first config (a test and scenario helper,
/// standing in for `bin/newlist`).
pub async fn create_list<O: Os>(
    os: &O,
    name: &str,
    settings: &ListStoreSettings,
    config: &ListConfig,
) -> io::Result<()> {
    fileio::makedirs(os, &format!("{}/{}", settings.lists_dir, name)).await?;
    let path = format!("{}/{}/{}", settings.lists_dir, name, settings.config_format.file_name());
    let bytes = serde_json::to_vec(config).expect("a list config always serialises");
    fileio::write_file(os, &path, &bytes, Sync::NoFsync).await
}

/// PLACEHOLDER site lock (`LockFile(path, lifetime)`), used for
/// `locks/qrunner.lock` and `locks/master-qrunner` until the real
/// `lockfile::LockFile` lands. It takes the lock by exclusive create, polls
/// with Mailman's `random()*2+0.01` sleep, never breaks an expired lock and
/// has no claim files. Replace with the real LockFile on merge.
pub struct LockFile<'a, O: Os> {
    os: &'a O,
    path: String,
    held: bool,
}

impl<'a, O: Os> LockFile<'a, O> {
    pub fn new(os: &'a O, path: &str, _lifetime: Duration) -> Self {
        LockFile { os, path: path.to_string(), held: false }
    }

    /// `lock(timeout)`; `None` blocks forever.
    pub async fn lock(&mut self, timeout: Option<Duration>) -> Result<(), ListError> {
        let deadline = timeout.map(|t| self.os.now() + t);
        loop {
            match self.os.open(&self.path, crate::os::OpenFlags::create_exclusive()).await {
                Ok(fd) => {
                    let claim = format!("{}.{}.{}", self.path, self.os.hostname(), self.os.pid());
                    let written = self.os.write(fd, claim.as_bytes()).await;
                    crate::fileio::close_after(self.os, fd, written).await?;
                    self.held = true;
                    return Ok(());
                }
                Err(e) if errno(&e) == libc::EEXIST => {}
                Err(e) => return Err(ListError::Io(e)),
            }
            if let Some(d) = deadline {
                if self.os.now() > d {
                    return Err(ListError::TimeOut);
                }
            }
            self.os.sleep(crate::pytime::duration_s(self.os.random() * 2.0 + 0.01)).await;
        }
    }

    /// `refresh()`: PLACEHOLDER, checks nothing.
    pub async fn refresh(&mut self) -> Result<(), ListError> {
        if self.held {
            Ok(())
        } else {
            Err(ListError::NotLocked)
        }
    }

    /// `unlock(unconditionally=True)`.
    pub async fn unlock(&mut self) -> Result<(), ListError> {
        if self.held {
            self.held = false;
            match self.os.unlink(&self.path).await {
                Ok(()) => {}
                Err(e) if errno(&e) == libc::ENOENT => {}
                Err(e) => return Err(ListError::Io(e)),
            }
        }
        Ok(())
    }
}
