//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod bench;
mod cli;
mod conformance;
mod determinism;
mod experiment;
mod explain;
mod format_doc;
mod inspect;
mod oracles;
mod profiles;
mod real;
mod sched;
mod shrink;
mod snapshots;
mod sweep;
mod timeline;
