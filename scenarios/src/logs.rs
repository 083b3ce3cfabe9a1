//! `mmsim run … --logs DIR`: Mailman-style log files from the trace.
//!
//! Each host's model annotations become lines of `DIR/<host>/logs/<log>`, in
//! Mailman's format, `Mon DD HH:MM:SS YYYY (pid) message` (Mailman 2.x
//! `Logging/Logger.py` writes `time.strftime('%b %d %H:%M:%S %Y')`), stamped
//! with the host's simulated wall clock (its `ClockConfig` at the event's true
//! time), so that a run can be laid beside a real incident's logs.
//!
//! Which log: `ModelEvent::Log` names its own; lock events go to `locks`; SMTP
//! verdicts to `smtp` (delivered) or `smtp-failure`; `post` exits to `post`;
//! runner starts and exits to `qrunner`; shunts, deletions, failed dequeues
//! and list load failures to `error`; anything else to a log named after the
//! event's kind (`mta_routed`, `sender_injected`, …), as `RealOs` does. Lines
//! other than `Log` carry the event's JSON, since Mailman wrote no line for
//! them. Nothing is written outside DIR: host names are validated by the
//! scenario, and log names are reduced to `[A-Za-z0-9_-]`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use model::{ModelEvent, RealOs};
use sim::{Event, EventKind};

/// Mailman's timestamp, `Jan 15 00:00:03 2002`, for nanoseconds since the Unix epoch (UTC):
/// the model's own `mailman_timestamp`, which `RealOs` writes its logs with.
pub fn mailman_time(ns: i64) -> String {
    model::mailman_timestamp(sim::to_system_time(ns))
}

/// The log an event goes to, and its message.
fn line_of(event: &ModelEvent, text: &str) -> (String, String) {
    let log = match event {
        ModelEvent::Log { log, message } => return (log.clone(), message.clone()),
        ModelEvent::SmtpRecipient { outcome, .. } if *outcome == model::RecipientOutcome::Delivered => {
            "smtp".to_string()
        }
        ModelEvent::SmtpRecipient { .. } => "smtp-failure".to_string(),
        ModelEvent::PostExited { .. } => "post".to_string(),
        ModelEvent::RunnerStarted { .. } | ModelEvent::RunnerExited { .. } | ModelEvent::RunnerSpawned { .. } => {
            "qrunner".to_string()
        }
        ModelEvent::Shunted { .. }
        | ModelEvent::MessageDeleted { .. }
        | ModelEvent::QueueDequeueFailed { .. }
        | ModelEvent::ListCorrupt { .. }
        | ModelEvent::ListMissing { .. } => "error".to_string(),
        other => RealOs::log_name(other),
    };
    let message = match event {
        ModelEvent::SmtpRecipient { message_id, recipient, code, outcome, .. } => {
            format!("{message_id} smtp to {recipient}: {code} {outcome}")
        }
        ModelEvent::PostExited { list, message_id, exit_code, reason } => {
            format!("post to {list} from {message_id}: exit {exit_code} {reason}")
        }
        ModelEvent::Shunted { list, message_id, reason, errno, .. } => {
            format!("SHUNTING: {message_id} for list {list}: {reason} ({errno})")
        }
        ModelEvent::MessageDeleted { list, reason, .. } => format!("{reason}: {list}"),
        ModelEvent::LockAcquired { lock, claim } => format!("{lock} lock acquired by {claim}"),
        ModelEvent::LockReleasing { lock, claim } => format!("{lock} unlocking (claim {claim})"),
        ModelEvent::LockBroken { lock, claim, winner } => {
            format!(
                "{lock} lifetime has expired, breaking (by {claim}; it named {})",
                winner.as_deref().unwrap_or("nobody")
            )
        }
        _ => text.to_string(),
    };
    (log, message)
}

/// Keeps a log name inside its directory.
fn safe_name(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() {
        "unnamed".into()
    } else {
        s
    }
}

/// Creates DIR (and its parents); the CLI refuses the run when this fails.
pub fn prepare(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("--logs {}: cannot create: {}", dir.display(), e.kind()))?;
    if !dir.is_dir() {
        return Err(format!("--logs {}: not a directory", dir.display()));
    }
    Ok(())
}

/// Writes every host's logs under `dir`; returns the files written.
pub fn write(dir: &Path, events: &[Event], hosts: &[sim::HostConfig]) -> std::io::Result<Vec<PathBuf>> {
    let clocks: BTreeMap<&str, &sim::ClockConfig> = hosts.iter().map(|h| (h.name.as_str(), &h.clock)).collect();
    let mut files: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    for e in events {
        let EventKind::Note { host, pid, text, payload } = &e.kind else { continue };
        let Some(m) = payload.downcast_ref::<ModelEvent>() else { continue };
        let wall = match clocks.get(&**host) {
            Some(c) => c.wall_ns(e.t),
            None => sim::EPOCH_UNIX_S as i64 * 1_000_000_000 + e.t.as_nanos() as i64,
        };
        let (log, message) = line_of(m, text);
        let buf = files.entry((safe_name(host), safe_name(&log))).or_default();
        let _ = writeln!(buf, "{} ({pid}) {message}", mailman_time(wall));
    }
    let mut written = Vec::new();
    for ((host, log), data) in files {
        let logs = dir.join(host).join("logs");
        std::fs::create_dir_all(&logs)?;
        let path = logs.join(log);
        std::fs::write(&path, data)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailman_time_formats_the_run_epoch_like_strftime() {
        let base = sim::EPOCH_UNIX_S as i64 * 1_000_000_000;
        assert_eq!(mailman_time(base), "Jan 15 00:00:00 2002");
        assert_eq!(mailman_time(base + 97_323_500_000_000), "Jan 16 03:02:03 2002");
        assert_eq!(mailman_time(951_782_400 * 1_000_000_000), "Feb 29 00:00:00 2000");
    }

    #[test]
    fn log_names_cannot_leave_the_directory() {
        assert_eq!(safe_name("../../etc"), "______etc");
        assert_eq!(safe_name("smtp-failure"), "smtp-failure");
    }
}
