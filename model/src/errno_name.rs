//! Symbolic errno names for events, so that traces read `ESTALE`, not `116`.
//!
//! Models nothing of Mailman; it only renders the values the model branches on.
//! Unknown values render as `E<number>`.

use std::io;

pub use crate::os::errno_name;

/// The errno symbol of an I/O error (`none` when it carries no errno).
pub fn io_errno_name(e: &io::Error) -> String {
    errno_name(crate::os::errno(e))
}
