//! The verdict of a run: safety, liveness, vacuity and nondeterminism kept
//! apart, as VOPR keeps its safety and liveness modes apart.
//!
//! A safety property is violated by something that happened: an event in the
//! history, or a final state that contradicts one. A liveness property is
//! violated by something that did not happen in time: the queues did not drain,
//! a lock stayed held, the budget ran out first. A run cut off by its budget is
//! therefore a liveness verdict, never a safety one, and its safety oracles
//! judge only what completed before the cut (`oracle::End::cut`).
//!
//! A run stopped by an external program that asked for what mmsim cannot run
//! (docs/real-programs.md) is bad input (2), and nothing else of it is judged.
//! The parts are reported in that order, and the exit code is the first part
//! that failed: safety (1), an internal error of the sim (6, which makes the rest
//! untrustworthy but not a safety finding), liveness (3), vacuity (4, judged only
//! on a run that completed: a cut run may not have reached its marks yet),
//! nondeterminism (5). Every failing part is listed, so that `safety violation:
//! X; liveness: Y` says both.

use serde::Serialize;

use crate::run::exit;

/// What kind of property an oracle checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// Nothing bad ever happens: judged on what completed.
    Safety,
    /// Something good eventually happens: judged after the heal, at the end.
    Liveness,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    /// The run asked for what mmsim cannot run (an external program's call the
    /// shim cannot represent, a missing program): exit 2, and nothing else is judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_input: Option<String>,
    /// The safety oracles that failed, by name.
    pub safety: Vec<String>,
    /// A host's software failed: a bug in the sim (exit 6).
    pub internal: Option<String>,
    /// Why the run did not finish (the budget, a livelock), then the liveness
    /// oracles that failed (as `oracle NAME`).
    pub liveness: Vec<String>,
    /// The required coverage marks never hit.
    pub vacuous: Vec<String>,
    /// Where two runs of the seed diverged (`--check-determinism`).
    pub nondeterminism: Option<String>,
}

impl Verdict {
    /// The exit code: the first failing part, in the order of the fields.
    pub fn exit_code(&self) -> i32 {
        if self.bad_input.is_some() {
            exit::BAD_INPUT
        } else if !self.safety.is_empty() {
            exit::SAFETY
        } else if self.internal.is_some() {
            exit::PANIC
        } else if !self.liveness.is_empty() {
            exit::LIVENESS
        } else if !self.vacuous.is_empty() {
            exit::VACUOUS
        } else if self.nondeterminism.is_some() {
            exit::NONDETERMINISM
        } else {
            exit::PASS
        }
    }

    /// One line: every failing part in order, `; ` between them, or `pass`.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(why) = &self.bad_input {
            return format!("bad input: {why}");
        }
        if !self.safety.is_empty() {
            parts.push(format!("safety violation: {}", self.safety.join(", ")));
        }
        if let Some(e) = &self.internal {
            parts.push(format!("internal error: {e}"));
        }
        if !self.liveness.is_empty() {
            parts.push(format!("liveness: {}", self.liveness.join(", ")));
        }
        if !self.vacuous.is_empty() {
            parts.push(format!("vacuous: required marks never hit: {}", self.vacuous.join(", ")));
        }
        if let Some(n) = &self.nondeterminism {
            parts.push(format!("nondeterminism {n}"));
        }
        if parts.is_empty() {
            "pass".to_string()
        } else {
            parts.join("; ")
        }
    }
}
