//! The `model` crate's one integration-test binary (STYLE.md §8). Read the
//! module list as a table of contents.
//!
//! - `real_os`: every `Os` operation of `RealOs` on a temporary directory.
//! - `fake_os`: a scripted `Os` for the unit tests below (not a test itself).
//! - `lockfile`: `LockFile`, step by step for each variant, and on `RealOs`.
//! - `mlist`: `MailList`: Save, Load, the fallback chain, repair, list_exists.

mod fake_os;
mod lockfile;
mod mlist;
mod real_os;
