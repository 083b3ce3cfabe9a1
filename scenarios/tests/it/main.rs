//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod cli;
mod determinism;
mod snapshots;
