//! The list store as the queue runners, `post`, the 2.0 qrunner and
//! mailmanctl reach it: the real `mlist` and `lockfile` types, re-exported
//! under one name so that the callers' imports show the boundary. Nothing
//! here has logic of its own.
//!
//! Every caller owns one [`LockCounter`] per process (Mailman's class-level
//! `LockFile.COUNTER`, docs/semantics/mailman-lockfile.md §3) and passes it to every
//! [`MailList`] and [`LockFile`] it makes. Finalisation (`__del__`) is the
//! explicit `finalize()`, never `Drop`.

pub use crate::lockfile::{Condition, LockCounter, LockError, LockFile, LockSettings, LockVariant, LOCK_DIR};
pub use crate::mlist::{
    list_exists, newlist, validate_list_name, ConfigFormat, ListConfig, ListError, MailList, MailListSettings,
    LIST_DATA_DIR,
};
