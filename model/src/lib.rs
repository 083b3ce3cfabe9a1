//! The system under test: a faithful Rust version of Mailman's lock and queue
//! machinery, written only against [`Os`].
//!
//! Map:
//! - `os`: the seam. Everything the model may touch.
//! - `event`: annotations, what the model believes it did.
//! - `real`: `RealOs`, the trait on the real kernel.
//! - `lockfile`: Mailman's `LockFile` (docs/semantics/mailman-lockfile.md) and its variants.
//! - `mlist`: the list config store, `MailList` (docs/semantics/mailman-config-store.md).
//! - `smoke`: the smoke workload (an O_EXCL lock and appends).
//! - `python`: Python's time and float idioms (`time.time()`, `repr(float)`,
//!   seconds-valued settings).
//! - `fileio`: Python's file idioms (`fp.read()`, `open().write()`, `makedirs`).
//! - `syslog`, `task_set`: small helpers.
//! - `message`, `msgdata`: a queued message and its metadata dict.
//! - `slice`: 160-bit hash-space slices of a queue.
//! - `switchboard`: queue directories in the 2.0, 2.1-early and 2.1.5+ formats.
//! - `list_access`: the list store and lock as the runners, `post`, the 2.0
//!   qrunner and mailmanctl import them (re-exports of `mlist`, `lockfile`).
//! - `runner`: the 2.1 runners, mailmanctl and the 2.0 cron qrunner.
//! - `smtp`, `mta`, `post`: SMTP, the Exim-like MTA and the `post` script.
//! - `peers`: the downstream sink and the sender.
//! - `profile`: version profiles and the `Settings` struct.
//! - `programs`: entry points by name, for `Os::spawn`; `args`: the typed
//!   declaration of each program's arguments, which parses them.
//!
//! The model knows nothing of simulation: no fault injection, no `cfg(test)`
//! behaviour, no randomness but `Os::random`, no clock but `Os::now`.

pub mod args;
mod event;
mod fileio;
pub mod list_access;
mod lockfile;
pub mod message;
mod mlist;
pub mod msgdata;
pub mod mta;
mod os;
pub mod peers;
pub mod post;
pub mod profile;
pub mod programs;
mod python;
mod real;
pub mod runner;
pub mod slice;
pub mod smoke;
pub mod smtp;
pub mod switchboard;
mod syslog;
mod task_set;

pub use event::{
    BakOutcome, DequeueFailure, DropReason, FinishOutcome, ListLoadOutcome, ModelEvent, RecipientOutcome,
    RouteDecision, RouteStage, RunnerExit,
};
pub use lockfile::{Condition, LockCounter, LockError, LockFile, LockLogging, LockSettings, LockVariant, LOCK_DIR};
pub use mlist::{
    check_new_list_name, list_exists, newlist, validate_list_name, BounceRecord, ConfigFormat, ListConfig, ListError,
    ListNameValidation, LoadFailureUnlock, LoadShortcut, MailList, MailListSettings, MemberMap, MemberValue,
    RepairMode, SaveProtocol, Span, SyncAfterWrite, ACCEPTABLE_LISTNAME_CHARACTERS, LIST_DATA_DIR,
};
pub use os::{err, errno, errno_name, ExitStatus, Fd, FileType, Metadata, OpenFlags, Os, Peer, Pid, SetTime, Signal};
pub use profile::{MailmanProfile, Settings};
pub use python::mailman_timestamp;
pub use real::{RealOs, SpawnConfig};
