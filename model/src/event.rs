//! Annotations: what the model believes it did, recorded beside what it did.
//!
//! Oracles in `scenarios` read these from the trace; they never ask the model.
//! Each variant is one belief at one instant. The canonical text of an event is
//! its serde JSON form, so the field order here is part of every trace hash:
//! append fields, never reorder them.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelEvent {
    /// `lock()` returned success: this process believes it holds `lock`.
    LockAcquired { lock: String, claim: String },
    /// `unlock()` is about to run its first filesystem call.
    LockReleasing { lock: String, claim: String },
    /// The smoke workload appended record `record` to `path` inside its critical section.
    Appended { path: String, record: String },
    /// Free-form log line, as Mailman writes to `logs/<log>`.
    Log { log: String, message: String },
}
