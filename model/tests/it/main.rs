//! The `model` crate's one integration-test binary (one per crate, as in `sim`
//! and `scenarios`). Read the module list as a table of contents.
//!
//! - `real_os`: every `Os` operation of `RealOs` on a temporary directory.
//! - `fake_os`: a scripted `Os` for the lock and list unit tests (not a test itself).
//! - `support`: a temp-dir `Os` with a manual clock and in-memory TCP (not a test itself).
//! - `lockfile`: `LockFile`, step by step for each variant, and on `RealOs`.
//! - `mlist`: `MailList`: Save, Load, the fallback chain, repair, list_exists.
//! - `switchboard`, `runner`, `mta`, `programs`: queues, runners, the MTA, entry points.
//! - `list_locking`: runners, `post` and the 2.0 qrunner against the real list
//!   store and lock: timeouts, contention, the fallback chain and repair.

mod fake_os;
mod list_locking;
mod lockfile;
mod mlist;
mod real_os;
mod support;

mod mta;
mod programs;
mod runner;
mod switchboard;
