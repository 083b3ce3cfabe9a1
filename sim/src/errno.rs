//! Errno symbols for the trace. The trace never contains OS error text, which
//! differs between libc versions and locales; it names errnos by their symbol
//! (`ENOENT`), as `nix` knows them, and unknown values as `E<number>`.

pub fn errno_name(e: i32) -> String {
    match nix::errno::Errno::from_raw(e) {
        nix::errno::Errno::UnknownErrno => format!("E{e}"),
        known => format!("{known:?}"),
    }
}
