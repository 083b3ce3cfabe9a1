//! The system under test: a faithful Rust version of Mailman's lock and queue
//! machinery, written only against [`Os`].
//!
//! Map:
//! - `os`: the seam. Everything the model may touch.
//! - `event`: annotations, what the model believes it did.
//! - `errno_name`, `pytime`, `fileio`, `syslog`, `task_set`: small helpers.
//! - `message`, `msgdata`: a queued message and its metadata dict.
//! - `slice`: 160-bit hash-space slices of a queue.
//! - `switchboard`: queue directories in the 2.0, 2.1-early and 2.1.5+ formats.
//! - `list_access`: the narrow list-store interface the runners use
//!   (a placeholder until `mlist`/`lockfile` are merged).
//! - `runner`: the 2.1 runners, mailmanctl and the 2.0 cron qrunner.
//! - `smtp`, `mta`, `post`: SMTP, the Exim-like MTA and the `post` script.
//! - `peers`: the downstream sink and the sender.
//! - `profile`: version profiles and the `Settings` struct.
//! - `programs`: entry points by name, for `Os::spawn`.
//!
//! The model knows nothing of simulation: no fault injection, no `cfg(test)`
//! behaviour, no randomness but `Os::random`, no clock but `Os::now`.

mod errno_name;
mod event;
mod fileio;
pub mod list_access;
pub mod message;
pub mod msgdata;
pub mod mta;
mod os;
pub mod peers;
pub mod post;
pub mod profile;
pub mod programs;
mod pytime;
pub mod runner;
pub mod slice;
pub mod smtp;
pub mod switchboard;
mod syslog;
mod task_set;

pub use errno_name::errno_name;
pub use event::ModelEvent;
pub use os::{err, errno, ExitStatus, Fd, FileType, Metadata, OpenFlags, Os, Pid, SetTime, Signal};
pub use profile::{MailmanProfile, Settings};
