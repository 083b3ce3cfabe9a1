//! Version profiles of the list config store: which file format, load
//! shortcut, repair, save protocol and checks a Mailman release used
//! (docs/semantics/mailman-config-store.md §1 profiles, §3–§8).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lockfile::{LockSettings, LockVariant};

/// Which config file the store writes and which files `Load()` tries (mailman-config-store.md §2, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigFormat {
    /// 2.0: `config.db` (marshal), fallback `config.db.last`.
    Db20,
    /// 2.1: `config.pck` (pickle); `Load()` tries `config.pck`, `config.pck.last`,
    /// `config.db`, `config.db.last`.
    Pck21,
}

impl ConfigFormat {
    /// The file `Save()` renames over.
    pub fn primary(self) -> &'static str {
        match self {
            ConfigFormat::Db20 => "config.db",
            ConfigFormat::Pck21 => "config.pck",
        }
    }

    /// The files `Load()` and `list_exists()` try, in order (mailman-config-store.md §6 step 2, §7).
    pub fn load_chain(self) -> &'static [&'static str] {
        match self {
            ConfigFormat::Db20 => &["config.db", "config.db.last"],
            ConfigFormat::Pck21 => &["config.pck", "config.pck.last", "config.db", "config.db.last"],
        }
    }
}

/// The "already current" test in `__load` (mailman-config-store.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadShortcut {
    /// 2.0: every `Load()` re-reads.
    None,
    /// 2.1.0–2.1.14: skip when `getmtime(f) <= timestamp`; `timestamp` is the
    /// loaded file's mtime (server clock). Race R10.
    MtimeLe,
    /// 2.1.15+: skip when `getmtime(f) < timestamp`; `timestamp` is
    /// `int(time.time())` on the local clock, taken after the open and before
    /// the decode. Race R11.
    MtimeLtLocalStamp,
}

/// How `Load()` puts a `.last` fallback back in place (mailman-config-store.md §6 step 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairMode {
    /// 2.0 and 2.1.0–2.1.4, without the lock: `copy(last, primary)`; 2.1 also
    /// `copy(last, config.pck.safety)`.
    CopyUnlocked,
    /// 2.1.5+: under the list lock, `rename(primary, .corrupt)`,
    /// `remove(.safety)`, `copy(last, primary)`, `copy(last, .safety)`.
    RenameCorruptThenCopy,
}

/// How `Save()` replaces the config file (mailman-config-store.md §4, §8 row 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SaveProtocol {
    /// 2.0 and 2.1: `unlink(.last)`, `link(primary, .last)`, `rename(tmp, primary)`.
    /// The primary file exists throughout.
    LinkRename,
    /// Before July 1999 (`aside_new`): `unlink(.last)`, `link(primary, .last)`,
    /// `unlink(primary)`, `link(tmp, primary)`, `unlink(tmp)`. The primary file
    /// is absent between the unlink and the link (race R1).
    Aside1999,
}

/// `mm_cfg.SYNC_AFTER_WRITE` (2.1.4+, default `No`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncAfterWrite {
    No,
    /// `os.fsync()` the temporary file before closing it.
    Fsync,
}

/// `list_exists()`'s name check (mailman-config-store.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListNameValidation {
    /// Before 2.1.23: the name goes to the file system as it is.
    Off,
    /// 2.1.23+: a name with characters outside
    /// `ACCEPTABLE_LISTNAME_CHARACTERS` does not exist.
    AcceptableCharacters,
}

/// Which errors from `Load()` make `Lock()` release the lock again (mailman-config-store.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadFailureUnlock {
    /// 2.1: any error → `Unlock()` and re-raise.
    AnyError,
    /// 2.0: only `MMUnknownListError`; any other error leaves the lock held
    /// until the object is finalised.
    UnknownListOnly,
}

/// Everything version-dependent about one `MailList`, plus its constants.
/// This is `Settings::list_store`: the one place each list-store and list-lock
/// knob lives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailListSettings {
    pub format: ConfigFormat,
    pub load_shortcut: LoadShortcut,
    pub repair: RepairMode,
    pub save_protocol: SaveProtocol,
    pub sync_after_write: SyncAfterWrite,
    pub list_name_validation: ListNameValidation,
    pub load_failure_unlock: LoadFailureUnlock,
    /// The list lock, `locks/<name>.lock`, with `LIST_LOCK_LIFETIME` (5 h).
    pub lock: LockSettings,
    /// `LIST_LOCK_TIMEOUT` (10 s): what runners pass to `lock()`. `MailList`
    /// itself never uses it; it is here so callers share one value.
    #[serde(rename = "list_lock_timeout_s", with = "crate::python::serde_seconds")]
    pub list_lock_timeout: Duration,
    /// The size of each `write()` of the temporary file: stdio's `BUFSIZ`
    /// (8 KiB), which also is a typical NFS `wsize`.
    pub write_chunk_bytes: usize,
    /// The size of each `read()` when loading.
    pub read_chunk_bytes: usize,
    /// `shutil.copyfileobj`'s buffer, 16 KiB.
    pub copy_chunk_bytes: usize,
    /// `mm_cfg.ACCEPTABLE_LISTNAME_CHARACTERS`, `[-+_.=a-z0-9]`, spelled out.
    pub acceptable_listname_characters: String,
}

impl MailListSettings {
    fn base(format: ConfigFormat, lock_variant: LockVariant) -> Self {
        MailListSettings {
            format,
            load_shortcut: LoadShortcut::None,
            repair: RepairMode::CopyUnlocked,
            save_protocol: SaveProtocol::LinkRename,
            sync_after_write: SyncAfterWrite::No,
            list_name_validation: ListNameValidation::Off,
            load_failure_unlock: LoadFailureUnlock::AnyError,
            lock: LockSettings::new(lock_variant).with_lifetime(Duration::from_secs(5 * 3600)),
            list_lock_timeout: Duration::from_secs(10),
            write_chunk_bytes: 8192,
            read_chunk_bytes: 8192,
            copy_chunk_bytes: 16 * 1024,
            acceptable_listname_characters: super::ACCEPTABLE_LISTNAME_CHARACTERS.to_string(),
        }
    }

    /// Mailman 2.0.13: `config.db`, no shortcut, unlocked copy repair, 2.0 locks.
    pub fn mailman_2_0_13() -> Self {
        MailListSettings {
            load_failure_unlock: LoadFailureUnlock::UnknownListOnly,
            ..MailListSettings::base(ConfigFormat::Db20, LockVariant::Mailman20)
        }
    }

    /// Mailman 2.1.2 (2.1-early): `config.pck`, the `<=` shortcut, unlocked repair.
    pub fn mailman_2_1_2() -> Self {
        MailListSettings {
            load_shortcut: LoadShortcut::MtimeLe,
            ..MailListSettings::base(ConfigFormat::Pck21, LockVariant::Mailman21)
        }
    }

    /// Mailman 2.1.39: the `<` shortcut with a local stamp, locked `.corrupt`
    /// repair, list-name validation.
    pub fn mailman_2_1_39() -> Self {
        MailListSettings {
            load_shortcut: LoadShortcut::MtimeLtLocalStamp,
            repair: RepairMode::RenameCorruptThenCopy,
            list_name_validation: ListNameValidation::AcceptableCharacters,
            ..MailListSettings::base(ConfigFormat::Pck21, LockVariant::Mailman21)
        }
    }
}

impl Default for MailListSettings {
    /// 2.1.39, like `Settings::default()`.
    fn default() -> Self {
        MailListSettings::mailman_2_1_39()
    }
}
