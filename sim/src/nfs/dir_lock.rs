//! The VFS directory locks of one client host (docs/semantics/dir-locking.md).
//!
//! One reader-writer lock per directory this client has touched, keyed by the
//! directory's file handle, plus the per-mount rename mutex. They are the
//! host's `i_rwsem` (or, in Linux 2.2, `i_sem`) and `s_vfs_rename_mutex`: they
//! order the processes of this host only; other hosts never see them.
//!
//! The locks are `tokio::sync::RwLock`s: executor-agnostic and fair (a waiting
//! writer blocks later readers, waiters are served in arrival order). An
//! uncontended acquisition never suspends: it is tried first, and only a
//! failed try waits (and is counted: `dir_lock_waits`, `dir_lock_wait_us_total`).
//!
//! Who takes what is the client's business ([`super::client`]); this module
//! only hands out guards in a deadlock-free order for two directories.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::proto::Fh;
use crate::clock::true_now;

/// How a holder takes a directory's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// One held lock; released when dropped.
#[allow(dead_code)] // held for its Drop only
enum Guard {
    Shared(OwnedRwLockReadGuard<()>),
    Exclusive(OwnedRwLockWriteGuard<()>),
}

/// The locks one operation holds, released together when this is dropped.
#[derive(Default)]
#[must_use = "the locks are released when this is dropped"]
pub struct Held {
    guards: Vec<Guard>,
    /// Whether any acquisition had to wait.
    pub waited: bool,
}

/// A wait for a lock: how long it took, for the counters.
pub type Waited = Option<Duration>;

#[derive(Default)]
pub struct DirLocks {
    dirs: RefCell<BTreeMap<Fh, Arc<RwLock<()>>>>,
    rename: Arc<RwLock<()>>,
}

async fn take(lock: Arc<RwLock<()>>, mode: Mode) -> (Guard, Waited) {
    let tried = match mode {
        Mode::Shared => lock.clone().try_read_owned().map(Guard::Shared).ok(),
        Mode::Exclusive => lock.clone().try_write_owned().map(Guard::Exclusive).ok(),
    };
    if let Some(g) = tried {
        return (g, None);
    }
    let start = true_now();
    let g = match mode {
        Mode::Shared => Guard::Shared(lock.read_owned().await),
        Mode::Exclusive => Guard::Exclusive(lock.write_owned().await),
    };
    (g, Some(true_now().saturating_sub(start)))
}

impl DirLocks {
    fn of(&self, dir: Fh) -> Arc<RwLock<()>> {
        self.dirs.borrow_mut().entry(dir).or_default().clone()
    }

    /// Takes `dir`'s lock; `on_wait` is called with the time spent waiting, if any.
    pub async fn lock(&self, dir: Fh, mode: Mode, on_wait: impl Fn(Duration)) -> Held {
        let mut held = Held::default();
        let (g, waited) = take(self.of(dir), mode).await;
        held.push(g, waited, &on_wait);
        held
    }

    /// `lock_rename`: both parents exclusively, once if they are the same
    /// directory; for two directories, first the per-mount rename mutex (when
    /// `rename_mutex`), then the two in file-handle order, so two renames
    /// never wait for each other in a cycle.
    pub async fn lock_rename(&self, a: Fh, b: Fh, rename_mutex: bool, on_wait: impl Fn(Duration)) -> Held {
        let mut held = Held::default();
        if a == b {
            let (g, waited) = take(self.of(a), Mode::Exclusive).await;
            held.push(g, waited, &on_wait);
            return held;
        }
        if rename_mutex {
            let (g, waited) = take(self.rename.clone(), Mode::Exclusive).await;
            held.push(g, waited, &on_wait);
        }
        for dir in [a.min(b), a.max(b)] {
            let (g, waited) = take(self.of(dir), Mode::Exclusive).await;
            held.push(g, waited, &on_wait);
        }
        held
    }
}

impl Held {
    fn push(&mut self, g: Guard, waited: Waited, on_wait: &impl Fn(Duration)) {
        if let Some(d) = waited {
            self.waited = true;
            on_wait(d);
        }
        self.guards.push(g);
    }
}
