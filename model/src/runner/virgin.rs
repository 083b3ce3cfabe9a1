//! VirginRunner (`qfiles/virgin`, docs/semantics/mailman-queues-runners.md §8): IncomingRunner with
//! the fixed pipeline `['CookHeaders', 'ToOutgoing']` and `_fasttrack` set,
//! so it locks the list with the same 10 s timeout but adds no subject prefix.
//! Leaves out nothing else: the behaviour is inherited.

use super::incoming::{IncomingRunner, PipelineSource};

/// A VirginRunner.
pub fn virgin_runner() -> IncomingRunner {
    IncomingRunner::with_pipeline(
        "Virgin",
        "virgin",
        PipelineSource::FastTrack(vec!["CookHeaders".to_string(), "ToOutgoing".to_string()]),
    )
}
