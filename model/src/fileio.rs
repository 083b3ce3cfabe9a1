//! Python's file idioms over `Os` handles: `fp.read()`, `open(...).write(...)`,
//! `os.makedirs`. The one home of these helpers, shared by the list store, the
//! lock and the queues so that all read files in the same sequence of calls.
//!
//! Models the read and write loops only; every call still goes through `Os`
//! one operation at a time, so faults land where they would in Python. A
//! handle is always closed, also on error, as a Python `try/finally` or the
//! refcount collector would close it (the close error, if any, is dropped in
//! favour of the first error).

use std::io;

use crate::os::{Fd, OpenFlags, Os};

/// Bytes per `read` call of the queue files (`read_file`).
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// `fp.read()` without the close: reads from `fd` until EOF in `chunk_bytes` pieces.
pub async fn read_to_end<O: Os>(os: &O, fd: Fd, chunk_bytes: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let chunk = os.read(fd, chunk_bytes.max(1)).await?;
        if chunk.is_empty() {
            return Ok(out);
        }
        out.extend_from_slice(&chunk);
    }
}

/// `open(path).read()` in [`READ_CHUNK_BYTES`] pieces.
pub async fn read_file<O: Os>(os: &O, path: &str) -> io::Result<Vec<u8>> {
    read_file_chunked(os, path, READ_CHUNK_BYTES).await
}

/// `open(path).read()` in `chunk_bytes` pieces.
pub async fn read_file_chunked<O: Os>(os: &O, path: &str, chunk_bytes: usize) -> io::Result<Vec<u8>> {
    let fd = os.open(path, OpenFlags::read_only()).await?;
    let result = read_to_end(os, fd, chunk_bytes).await;
    close_after(os, fd, result).await
}

/// `fp = open(path, 'w'); fp.write(data); [os.fsync]; fp.close()`.
pub async fn write_file<O: Os>(os: &O, path: &str, data: &[u8], sync: Sync) -> io::Result<()> {
    let fd = os.open(path, OpenFlags::write_truncate()).await?;
    let result = async {
        os.write(fd, data).await?;
        if sync == Sync::Fsync {
            os.fsync(fd).await?;
        }
        Ok(())
    }
    .await;
    close_after(os, fd, result).await
}

/// Writes `data` to `tmp` (`write_file`), then `rename(tmp, path)`: the
/// atomic replace Mailman uses for queue entries.
pub async fn write_then_rename<O: Os>(os: &O, tmp: &str, path: &str, data: &[u8], sync: Sync) -> io::Result<()> {
    write_file(os, tmp, data, sync).await?;
    os.rename(tmp, path).await
}

/// Whether a write is followed by `fsync` before `close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sync {
    NoFsync,
    Fsync,
}

/// Closes `fd` and returns `result`, or the close error if `result` was fine.
pub async fn close_after<O: Os, T>(os: &O, fd: Fd, result: io::Result<T>) -> io::Result<T> {
    let closed = os.close(fd).await;
    match result {
        Ok(v) => closed.map(|()| v),
        Err(e) => Err(e),
    }
}

/// `os.mkdir(path)` ignoring EEXIST, as Mailman's `makedirs` callers do.
pub async fn mkdir_exist_ok<O: Os>(os: &O, path: &str) -> io::Result<()> {
    match os.mkdir(path).await {
        Ok(()) => Ok(()),
        Err(e) if crate::os::errno(&e) == libc::EEXIST => Ok(()),
        Err(e) => Err(e),
    }
}

/// `os.makedirs(path)` ignoring EEXIST at every level.
pub async fn makedirs<O: Os>(os: &O, path: &str) -> io::Result<()> {
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        mkdir_exist_ok(os, &prefix).await?;
    }
    Ok(())
}
