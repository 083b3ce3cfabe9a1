//! The system under test: a faithful Rust version of Mailman's lock and queue
//! machinery, written only against [`Os`].
//!
//! Map:
//! - `os`: the seam. Everything the model may touch.
//! - `event`: annotations, what the model believes it did.
//! - `real`: `RealOs`, the trait on the real kernel.
//! - `lockfile`: Mailman's `LockFile` (spec/mailman.md §1) and its variants.
//! - `mlist`: the list config store, `MailList` (spec/mailman.md §2).
//! - `python`: Python file and time idioms shared by the two above.
//!
//! The model knows nothing of simulation: no fault injection, no `cfg(test)`
//! behaviour, no randomness but `Os::random`, no clock but `Os::now`.

mod event;
mod lockfile;
mod mlist;
mod os;
mod python;
mod real;
pub mod smoke;

pub use event::{ListLoadOutcome, ModelEvent};
pub use lockfile::{Condition, LockCounter, LockError, LockFile, LockLogging, LockSettings, LockVariant};
pub use mlist::{
    list_exists, validate_list_name, BounceRecord, ConfigFormat, ListConfig, ListError, ListNameValidation,
    LoadFailureUnlock, LoadShortcut, MailList, MailListSettings, RepairMode, SaveProtocol, SyncAfterWrite,
};
pub use os::{err, errno, errno_name, ExitStatus, Fd, FileType, Metadata, OpenFlags, Os, Pid, SetTime, Signal};
pub use real::{RealOs, SpawnConfig};
