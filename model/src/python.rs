//! Python idioms Mailman relies on, over [`Os`]: `fp.read()` of a whole file
//! and `int(time.time())`. Shared by `lockfile` and `mlist` so that both read
//! files in the same sequence of calls.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::os::{Fd, Os};

/// `fp.read(); fp.close()`: reads `fd` to EOF in `chunk_bytes` pieces, then
/// closes it. A read error propagates; the descriptor is closed either way
/// (Python closes the file object when it is collected).
pub(crate) async fn read_to_end<O: Os>(os: &O, fd: Fd, chunk_bytes: usize) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    loop {
        match os.read(fd, chunk_bytes).await {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => content.extend(chunk),
            Err(e) => {
                let _ = os.close(fd).await;
                return Err(e);
            }
        }
    }
    os.close(fd).await?;
    Ok(content)
}

/// `int(t)` of a time in seconds: whole seconds, toward zero.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(e) => UNIX_EPOCH - Duration::from_secs(e.duration().as_secs()),
    }
}
