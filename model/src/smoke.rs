//! The Foundation's smoke workload: processes take turns through an
//! exclusive-create lock file and append one record each turn to a shared file.
//!
//! This is not Mailman code. It exists to exercise the seam end to end before
//! the Mailman model is wired in, and it stays as the cheapest whole-stack
//! check: on a client where `O_EXCL` is atomic it is safe; on one where it is
//! not (the Linux 2.2 profile of the NFS issue), two holders can overlap, and
//! the oracles say so.

use std::time::Duration;

use crate::event::ModelEvent;
use crate::os::{errno, OpenFlags, Os};

/// Arguments: `<lock path> <shared path> <records> <tag>`.
pub const USAGE: &str = "smoke-worker <lock-path> <shared-path> <records> <tag>";

/// Runs one worker; returns the exit code.
pub async fn worker<O: Os>(os: &O, args: &[String]) -> i32 {
    let [lock, shared, records, tag] = args else {
        os.event(ModelEvent::Log { log: "error".into(), message: format!("usage: {USAGE}") });
        return 2;
    };
    let Ok(records) = records.parse::<u32>() else {
        os.event(ModelEvent::Log { log: "error".into(), message: format!("bad record count {records:?}") });
        return 2;
    };
    for seq in 0..records {
        // Acquire: O_CREAT|O_EXCL, retrying after a random pause on EEXIST.
        loop {
            match os.open(lock, OpenFlags::create_exclusive()).await {
                Ok(fd) => {
                    if os.close(fd).await.is_err() {
                        return 1;
                    }
                    break;
                }
                Err(e) if errno(&e) == libc::EEXIST => {
                    let pause_ms = 5 + (os.random() * 20.0) as u64;
                    os.sleep(Duration::from_millis(pause_ms)).await;
                }
                Err(e) => {
                    os.event(ModelEvent::Log { log: "error".into(), message: format!("lock open failed: {e}") });
                    return 1;
                }
            }
        }
        let claim = format!("{}.{}", os.hostname(), os.pid());
        os.event(ModelEvent::LockAcquired { lock: lock.clone(), claim: claim.clone() });
        let record = format!("{tag} {seq}");
        let appended = async {
            let fd = os.open(shared, OpenFlags::append()).await?;
            os.write(fd, format!("{record}\n").as_bytes()).await?;
            os.close(fd).await
        }
        .await;
        if let Err(e) = appended {
            os.event(ModelEvent::Log { log: "error".into(), message: format!("append failed: {e}") });
            return 1;
        }
        os.event(ModelEvent::Appended { path: shared.clone(), record });
        os.event(ModelEvent::LockReleasing { lock: lock.clone(), claim });
        if let Err(e) = os.unlink(lock).await {
            os.event(ModelEvent::Log { log: "error".into(), message: format!("unlock failed: {e}") });
            return 1;
        }
        let think_ms = (os.random() * 10.0) as u64;
        os.sleep(Duration::from_millis(think_ms)).await;
    }
    0
}
