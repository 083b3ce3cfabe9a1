//! `runner_errors`: unexpected errors that shunted, preserved or deleted a
//! message, or killed a runner. A missing list is `no_missing_list`'s business.

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A safety property: an error that shunted, dropped a message or killed a runner happened at an event.
pub const PROPERTY: Property = Property::Safety;

#[derive(Default)]
pub struct RunnerErrors {
    violations: Violations,
    checked: u64,
}

impl Oracle for RunnerErrors {
    fn observe(&mut self, seen: &Seen) {
        let Some((host, pid, note)) = seen.note else { return };
        let event = seen.event;
        let t = event.t.as_secs_f64();
        let finding = match note {
            ModelEvent::Shunted { queue, message_id, reason, errno, .. } if !reason.is_missing_list() => {
                Some(format!("{queue}: shunted {message_id}: {reason} ({errno})"))
            }
            ModelEvent::QueueDequeueFailed { queue, filebase, reason, errno } => {
                Some(format!("{queue}: dequeue of {filebase} failed: {reason} ({errno})"))
            }
            ModelEvent::QueueFinished { queue, filebase, outcome, errno }
                if *outcome != model::FinishOutcome::Removed =>
            {
                Some(format!("{queue}: finish of {filebase}: {outcome} ({errno})"))
            }
            ModelEvent::RunnerExited { runner, reason: reason @ model::RunnerExit::Error(_), .. } => {
                Some(format!("runner {runner} exited: {reason}"))
            }
            ModelEvent::QueueDequeued { .. } => {
                self.checked += 1;
                None
            }
            _ => None,
        };
        if let Some(f) = finding {
            self.violations.push(event.seq, || format!("t={t:.3}s {host}/{pid}: {f} [event {}]", event.seq));
        }
    }

    fn finish(self: Box<Self>, _: &End) -> OracleResult {
        OracleResult::new("runner_errors", self.checked, self.violations)
    }
}
