//! The smoke workload: processes take turns through an
//! exclusive-create lock file and append one record each turn to a shared file.
//!
//! This is not Mailman code. It exists to exercise the seam end to end before
//! the Mailman model is wired in, and it stays as the cheapest whole-stack
//! check: on a client where `O_EXCL` is atomic it is safe; on one where it is
//! not (the Linux 2.2 profile of the NFS issue), two holders can overlap, and
//! the oracles say so.

use std::time::Duration;

use crate::args::{ArgDefault, ArgError, ArgKind, ArgSpec, ProgramSpec};
use crate::event::ModelEvent;
use crate::os::{errno, OpenFlags, Os};

/// The smoke worker's arguments, all positional.
pub static SPEC: ProgramSpec = ProgramSpec {
    name: "smoke-worker",
    summary: "the smoke workload: an O_EXCL lock file and appends to a shared file",
    options: &[],
    positional: &[
        ArgSpec { name: "LOCK-PATH", kind: ArgKind::Path, default: ArgDefault::Required, help: "the lock file" },
        ArgSpec {
            name: "SHARED-PATH",
            kind: ArgKind::Path,
            default: ArgDefault::Required,
            help: "the file every turn appends to",
        },
        ArgSpec {
            name: "RECORDS",
            kind: ArgKind::UInt { min: 0, max: 1_000_000, unit: "records" },
            default: ArgDefault::Required,
            help: "turns to take",
        },
        ArgSpec { name: "TAG", kind: ArgKind::Token, default: ArgDefault::Required, help: "this worker's record tag" },
    ],
    command: false,
};

/// A worker's plan: lock path, shared path, records, tag.
pub struct Plan {
    pub lock: String,
    pub shared: String,
    pub records: u32,
    pub tag: String,
}

/// Parses and checks the arguments against [`SPEC`]. Pure: no I/O.
pub fn plan(args: &[String]) -> Result<Plan, ArgError> {
    let p = SPEC.parse(args)?;
    let at = |i| p.positional(i).expect("required").to_string();
    let records = at(2).parse().expect("checked when parsed");
    Ok(Plan { lock: at(0), shared: at(1), records, tag: at(3) })
}

/// Runs one worker; returns the exit code.
pub async fn worker<O: Os>(os: &O, args: &[String]) -> i32 {
    let Plan { lock, shared, records, tag } = match plan(args) {
        Ok(p) => p,
        Err(e) => {
            os.event(ModelEvent::Log { log: "error".into(), message: format!("smoke-worker: {e}") });
            return 2;
        }
    };
    let (lock, shared) = (&lock, &shared);
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
