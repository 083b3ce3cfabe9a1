//! `runner_errors`: unexpected errors that shunted, preserved or deleted a
//! message, or killed a runner. A missing list is `no_missing_list`'s business.

use model::ModelEvent;

use super::{History, OracleResult};

pub fn check(history: &History) -> OracleResult {
    let mut violations = Vec::new();
    let mut checked = 0u64;
    for (event, host, pid, note) in history.notes() {
        let t = event.t.as_secs_f64();
        let finding = match note {
            ModelEvent::Shunted { queue, message_id, reason, errno, .. } if !reason.contains("missing list") => {
                Some(format!("{queue}: shunted {message_id}: {reason} ({errno})"))
            }
            ModelEvent::QueueDequeueFailed { queue, filebase, reason, errno } => {
                Some(format!("{queue}: dequeue of {filebase} failed: {reason} ({errno})"))
            }
            ModelEvent::QueueFinished { queue, filebase, outcome, errno } if outcome != "removed" => {
                Some(format!("{queue}: finish of {filebase}: {outcome} ({errno})"))
            }
            ModelEvent::RunnerExited { runner, reason, .. } if reason.starts_with("error") => {
                Some(format!("runner {runner} exited: {reason}"))
            }
            ModelEvent::QueueDequeued { .. } => {
                checked += 1;
                None
            }
            _ => None,
        };
        if let Some(f) = finding {
            violations.push((event.seq, format!("t={t:.3}s {host}/{pid}: {f} [event {}]", event.seq)));
        }
    }
    OracleResult::new("runner_errors", checked, violations)
}
