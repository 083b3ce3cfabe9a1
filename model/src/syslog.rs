//! Mailman's `syslog(log, message)`, recorded as `ModelEvent::Log`.
//!
//! Models which log a line goes to and what it says. Leaves out the writes to
//! `logs/<name>` themselves: log files are append-only local state in the
//! deployments the testbed replays, and the oracles read the trace instead.

use crate::event::ModelEvent;
use crate::os::Os;

/// Records one log line in `logs/<log>`.
pub fn syslog<O: Os>(os: &O, log: &str, message: impl Into<String>) {
    os.event(ModelEvent::Log { log: log.to_string(), message: message.into() });
}
