//! Mailman's queue runners (spec/mailman.md §4), one file per runner.
//!
//! - `base`: the `Runner` loop shared by all 2.1 runners (§4.1, §3.5).
//! - `incoming`: IncomingRunner and its pipeline essentials (§4.3); also VirginRunner.
//! - `outgoing`: OutgoingRunner and SMTPDirect (§4.4, §4.5).
//! - `bounce_events`: BounceMixin's per-process events file (§4.7).
//! - `bounce`: BounceRunner per version (§4.7).
//! - `retry`: RetryRunner (§4.6).
//! - `arch`: ArchRunner.
//! - `virgin`: VirginRunner's pipeline.
//! - `qrunner20`: the 2.0 cron qrunner (§4.9).
//! - `mailmanctl`: the 2.1 master (§4.8).

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
pub use base::{run_runner, DequeueErrors, Dispose, Keep, Raised, RunnerCtx, RunnerSettings, ShuntFailure};
pub use bounce::{BounceRegistration, BounceRunner, BounceSettings};
pub use incoming::{IncomingRunner, PipelineSource};
pub use mailmanctl::{mailmanctl, MailmanctlSettings, QrunnerSpec};
pub use outgoing::{is_permanent, OutgoingRunner, OutgoingSettings, PermFailures, PermFailuresOnCleanup, TempFailures};
pub use qrunner20::{qrunner20, Qrunner20Settings};
pub use retry::{RetryRunner, RetrySettings, RetryWait};
pub use virgin::virgin_runner;
