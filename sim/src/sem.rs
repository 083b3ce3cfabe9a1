//! POSIX named semaphores (`sem_open`), kept by the host's kernel
//! (docs/real-programs.md, "fork and pipes").
//!
//! On Linux a named semaphore is a file in the host's `/dev/shm` that each
//! process maps (glibc `sem_open.c`), so it belongs to one host. Here a name
//! table per host holds each semaphore's value; a process holds open
//! semaphores by number in its own table ([`Sems`]), which `fork` copies (the
//! child inherits the mapping). `sem_unlink` removes the name; the semaphore
//! lives on while a process holds it, as a mapped, unlinked file does.
//! `sem_wait` blocks while the value is 0; `sem_post` wakes the waiters, and the
//! first of them to run takes the count.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use tokio::sync::Notify;

/// `SEM_VALUE_MAX` on Linux.
pub const VALUE_MAX: u32 = i32::MAX as u32;

pub(crate) struct Sem {
    value: Cell<u32>,
    posted: Notify,
}

/// A host's semaphore names.
#[derive(Default)]
pub(crate) struct Names {
    names: RefCell<BTreeMap<String, Rc<Sem>>>,
}

impl Names {
    /// `sem_open(name, O_CREAT? O_EXCL?, value)`.
    pub(crate) fn open(&self, name: &str, create: bool, exclusive: bool, value: u32) -> Result<Rc<Sem>, i32> {
        let mut names = self.names.borrow_mut();
        match names.get(name) {
            Some(_) if create && exclusive => Err(libc::EEXIST),
            Some(s) => Ok(s.clone()),
            None if !create => Err(libc::ENOENT),
            None if value > VALUE_MAX => Err(libc::EINVAL),
            None => {
                let s = Rc::new(Sem { value: Cell::new(value), posted: Notify::new() });
                names.insert(name.to_string(), s.clone());
                Ok(s)
            }
        }
    }

    pub(crate) fn unlink(&self, name: &str) -> Result<(), i32> {
        self.names.borrow_mut().remove(name).map(drop).ok_or(libc::ENOENT)
    }
}

/// One process's open semaphores, by number.
#[derive(Default)]
pub(crate) struct Sems {
    sems: RefCell<BTreeMap<u32, Rc<Sem>>>,
    next: Cell<u32>,
}

impl Sems {
    pub(crate) fn insert(&self, sem: Rc<Sem>) -> u32 {
        let n = self.next.get() + 1;
        self.next.set(n);
        self.sems.borrow_mut().insert(n, sem);
        n
    }

    /// A copy for a forked child: the same semaphores under the same numbers.
    pub(crate) fn fork(&self) -> Sems {
        Sems { sems: RefCell::new(self.sems.borrow().clone()), next: Cell::new(self.next.get()) }
    }

    fn get(&self, n: u32) -> Result<Rc<Sem>, i32> {
        self.sems.borrow().get(&n).cloned().ok_or(libc::EINVAL)
    }

    pub(crate) fn close(&self, n: u32) -> Result<(), i32> {
        self.sems.borrow_mut().remove(&n).map(drop).ok_or(libc::EINVAL)
    }

    /// Takes one count, waiting while there is none; `try_only` fails with `EAGAIN` instead.
    pub(crate) async fn wait(&self, n: u32, try_only: bool) -> Result<(), i32> {
        let sem = self.get(n)?;
        loop {
            let posted = sem.posted.notified();
            let v = sem.value.get();
            if v > 0 {
                sem.value.set(v - 1);
                return Ok(());
            }
            if try_only {
                return Err(libc::EAGAIN);
            }
            posted.await;
        }
    }

    pub(crate) fn post(&self, n: u32) -> Result<(), i32> {
        let sem = self.get(n)?;
        let v = sem.value.get();
        if v >= VALUE_MAX {
            return Err(libc::EOVERFLOW);
        }
        sem.value.set(v + 1);
        sem.posted.notify_waiters();
        Ok(())
    }

    pub(crate) fn value(&self, n: u32) -> Result<u32, i32> {
        Ok(self.get(n)?.value.get())
    }
}
