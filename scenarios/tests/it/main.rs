//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod bench;
mod cli;
mod conformance;
mod determinism;
mod profiles;
mod real;
mod snapshots;
mod sweep;
