//! scenarios' integration tests: determinism, the CLI's contract, snapshots.

mod bench;
mod chrome_trace;
mod cli;
mod conformance;
mod corrupt;
mod determinism;
mod experiment;
mod explain;
mod format_doc;
mod frontdoor;
mod fuzz;
mod inspect;
mod mail;
mod marks;
mod oracles;
mod profiles;
mod real;
mod real_programs;
mod safe;
mod sched;
mod shrink;
mod snapshots;
mod sweep;
mod timeline;
mod verdict;

use std::process::{Command, Output};

/// The `mmsim` binary as every test starts it: isolated from the seed and
/// crash-hook variables of the environment (a test that wants one sets it).
pub fn mmsim_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mmsim"));
    c.env_remove("MMSIM_SEED").env_remove("MMSIM_WORKER_ABORT_ON_SEED").env_remove("MMSIM_WORKER_RSS_MAX_BYTES");
    c
}

/// Runs the `mmsim` binary (see [`mmsim_command`]) and waits for it.
pub fn mmsim(args: &[&str]) -> Output {
    mmsim_command().args(args).output().unwrap()
}

/// Pins `text` as `snapshots/<name>.snap` beside the seed snapshots; accept an
/// intended change with `cargo insta review`.
pub fn pin(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name.to_string(), text);
    });
}

/// Asserts exit 2, a single stderr line containing `needle`, and no panic.
pub fn check_bad_input(args: &[&str], needle: &str) {
    let out = mmsim(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line expected, got {stderr:?}");
    assert!(stderr.contains(needle), "{args:?}: {stderr:?} lacks {needle:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
