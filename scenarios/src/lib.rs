//! Joins the model and the simulated world: scenario files, the `SimOs`
//! adapter, the program table, oracles, coverage marks, reports, and the
//! `mmsim` CLI (`main.rs` and `cli/`, which only the binary compiles).
//!
//! Map:
//! - `scenario`: the TOML format, `--set`, validation, the builtin scenarios.
//! - `sim_os`: `model::Os` on a `sim::Proc`.
//! - `programs`: which model entry points a simulated host can run.
//! - `run`: [`run`] and [`run_full`], the [`Report`], exit codes, the heal.
//! - `verdict`: safety, liveness, vacuity and nondeterminism kept apart, and the exit code they give.
//! - `oracle/`: one property per file. `marks`: coverage marks.
//! - `ledgers`: the oracles, marks, figures and lock waits as one state machine fed each event as it is recorded.
//! - `bench`: `mmsim bench`, seeds/s, simulated-to-wall time and peak RSS, beside the real kernel.
//! - `figures`: per-run throughput and bounce-registration delay, from the trace.
//! - `experiment`: `mmsim experiment`, a grid of `--set`s swept cell by cell into CSV; `plot`: its SVGs.
//! - `trace_query`: queries over a recorded trace that the oracles and the tools share.
//! - `explain`: the causal story of a run's first violation (`mmsim explain`), one story per file.
//! - `timeline`: a window of a run as a self-contained HTML page (`mmsim timeline`).
//! - `dump`: the world's state at one trace event (`mmsim run --dump-at`).
//! - `trace_filter`: which events `--trace` writes (`--trace-filter`).
//! - `logs`: Mailman-style log files from the notes (`mmsim run --logs`).
//! - `real`: `mmsim real lock-stress`; `corrupt`: `mmsim real corrupt`, corrupt files on a real directory.
//!
//! This is the only crate that sees both `model` and `sim`.

pub mod bench;
pub mod chrome_trace;
pub mod corrupt;
pub mod cron;
pub mod dump;
pub mod experiment;
pub mod explain;
pub mod external;
pub mod figures;
pub mod install;
pub mod kernel;
pub mod ledgers;
pub mod list_worker;
pub mod lock_worker;
pub mod logs;
pub mod mail;
pub mod marks;
pub mod oracle;
pub mod plot;
pub mod programs;
pub mod real;
mod run;
pub mod scenario;
pub mod shrink;
mod sim_os;
pub mod swarm;
pub mod sweep;
pub mod timeline;
pub mod tool_lock_worker;
pub mod trace_filter;
pub mod trace_query;
pub mod verdict;

pub use run::{
    exit, fingerprint, nonzero_counters, run, run_checked, run_full, run_kept, Checked, Ending, Fingerprint, Heal,
    LockWaits, Report, RunOutput, FOR_ORACLES, FOR_ORACLES_AND_DIVERGENCE,
};
pub use scenario::{InputError, Scenario};
pub use sim_os::SimOs;
