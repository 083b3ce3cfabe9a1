//! Symbolic errno names for events, so that traces read `ESTALE`, not `116`.
//!
//! Models nothing of Mailman; it only renders the values the model branches on.
//! Unknown values render as `E<number>`.

use std::io;

/// The symbol of an errno value (`libc` numbering of the build host).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        0 => "none",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ESTALE => "ESTALE",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENOTCONN => "ENOTCONN",
        libc::EINTR => "EINTR",
        libc::ECHILD => "ECHILD",
        libc::ESRCH => "ESRCH",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// The errno symbol of an I/O error (`none` when it carries no errno).
pub fn io_errno_name(e: &io::Error) -> String {
    errno_name(crate::os::errno(e))
}
