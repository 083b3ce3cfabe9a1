//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod cli;
mod conformance;
mod determinism;
mod explain;
mod inspect;
mod profiles;
mod real;
mod snapshots;
mod sweep;
mod timeline;
