//! Mailman's queue runners (docs/semantics/mailman-queues-runners.md), one file per runner.
//!
//! - `base`: the `Runner` loop shared by all 2.1 runners (§7, §6).
//! - `incoming`: IncomingRunner and its pipeline essentials (§9); also VirginRunner.
//! - `outgoing`: OutgoingRunner and SMTPDirect (§10, §11).
//! - `bounce_events`: BounceMixin's per-process events file (§13).
//! - `bounce`: BounceRunner per version (§13).
//! - `retry`: RetryRunner (§12).
//! - `arch`: ArchRunner.
//! - `virgin`: VirginRunner's pipeline.
//! - `qrunner20`: the 2.0 cron qrunner (§15).
//! - `mailmanctl`: the 2.1 master (§14).

mod arch;
mod base;
mod bounce;
mod bounce_events;
mod incoming;
mod mailmanctl;
mod outgoing;
mod qrunner20;
mod retry;
mod virgin;

pub use arch::{ArchRunner, ArchSettings};
pub use base::{run_runner, DequeueErrors, Dispose, Keep, ListCache, Raised, RunnerCtx, RunnerSettings, ShuntFailure};
pub use bounce::{BounceRegistration, BounceRunner, BounceSettings};
pub use incoming::{IncomingRunner, PipelineSource};
pub use mailmanctl::{mailmanctl, MailmanctlSettings, QrunnerSpec};
pub use outgoing::{is_permanent, OutgoingRunner, OutgoingSettings, PermFailures, PermFailuresOnCleanup, TempFailures};
pub use qrunner20::{qrunner20, Qrunner20Settings};
pub use retry::{RetryRunner, RetrySettings, RetryWait};
pub use virgin::virgin_runner;
