//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod cli;
mod conformance;
mod determinism;
mod snapshots;
mod sweep;
