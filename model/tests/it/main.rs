//! The `model` crate's one integration-test binary (STYLE.md §8). Read the
//! module list as a table of contents.
//!
//! - `real_os`: every `Os` operation of `RealOs` on a temporary directory.
//! - `fake_os`: a scripted `Os` for the lock and list unit tests (not a test itself).
//! - `support`: a temp-dir `Os` with a manual clock and in-memory TCP (not a test itself).
//! - `lockfile`: `LockFile`, step by step for each variant, and on `RealOs`.
//! - `mlist`: `MailList`: Save, Load, the fallback chain, repair, list_exists.
//! - `switchboard`, `runner`, `mta`, `programs`: queues, runners, the MTA, entry points.

mod fake_os;
mod lockfile;
mod mlist;
mod real_os;
mod support;

mod mta;
mod programs;
mod runner;
mod switchboard;
