//! Pipes between the processes of one host, kept by the host's kernel
//! (docs/real-programs.md, "fork and pipes").
//!
//! A pipe is a bounded byte queue with a count of open read ends and of open
//! write ends across every process that holds one. A process holds ends by
//! number in its own table ([`Ends`]); `fork` gives the child the parent's
//! table, each end counted once more, as the kernel's `dup_fd` does for
//! descriptors. The semantics are Linux's `fs/pipe.c` (`pipe_read`,
//! `pipe_write`, `pipe_poll`; read at v5.4, whose `pipe_poll` tests `nrbufs`):
//! - `read` blocks while the pipe is empty and a write end is open, and
//!   returns 0 (end of file) once none is;
//! - `write` fails with `EPIPE` when no read end is open, and otherwise blocks
//!   until all of its bytes are in (a write of at most [`PIPE_BUF`] bytes goes
//!   in whole, never interleaved with another writer's);
//! - the capacity is [`CAPACITY`], the kernel's default of 16 pages
//!   (`PIPE_DEF_BUFFERS`);
//! - `poll` (`pipe_poll`) reports a read end readable when bytes wait
//!   (`nrbufs > 0`), with `POLLHUP` once no writer is left, and a write end
//!   writable while one of its page buffers is free (`nrbufs < buffers`), with
//!   `POLLERR` once no reader is left. The model keeps bytes, not pages, so a
//!   write end is writable while a page's worth ([`PIPE_BUF`]) is free.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future as _;
use std::rc::Rc;

use tokio::sync::Notify;

/// A pipe's capacity in bytes (`PIPE_DEF_BUFFERS` pages of 4 KiB).
pub const CAPACITY: usize = 16 * 4096;
/// Writes of at most this many bytes are atomic (POSIX `PIPE_BUF` on Linux).
pub const PIPE_BUF: usize = 4096;

pub const POLLIN: u16 = libc::POLLIN as u16;
pub const POLLOUT: u16 = libc::POLLOUT as u16;
pub const POLLERR: u16 = libc::POLLERR as u16;
pub const POLLHUP: u16 = libc::POLLHUP as u16;

/// Which end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Read,
    Write,
}

struct Pipe {
    buf: RefCell<VecDeque<u8>>,
    readers: Cell<u32>,
    writers: Cell<u32>,
    /// Woken on every change: bytes in or out, an end closed.
    changed: Notify,
}

#[derive(Clone)]
struct End {
    pipe: Rc<Pipe>,
    side: Side,
}

impl End {
    fn open(&self) {
        let count = match self.side {
            Side::Read => &self.pipe.readers,
            Side::Write => &self.pipe.writers,
        };
        count.set(count.get() + 1);
    }

    fn close(&self) {
        let count = match self.side {
            Side::Read => &self.pipe.readers,
            Side::Write => &self.pipe.writers,
        };
        count.set(count.get() - 1);
        self.pipe.changed.notify_waiters();
    }

    /// The `poll` bits this end shows now, of those `events` asks for (`POLLERR`
    /// and `POLLHUP` are always reported, as poll(2) says).
    fn ready(&self, events: u16) -> u16 {
        let p = &self.pipe;
        let len = p.buf.borrow().len();
        match self.side {
            Side::Read => {
                let mut r = 0;
                if len > 0 {
                    r |= POLLIN & events;
                }
                if p.writers.get() == 0 {
                    r |= POLLHUP;
                }
                r
            }
            Side::Write => {
                let mut r = 0;
                if CAPACITY - len >= PIPE_BUF {
                    r |= POLLOUT & events;
                }
                if p.readers.get() == 0 {
                    r |= POLLERR;
                }
                r
            }
        }
    }
}

/// One process's pipe ends, by number.
#[derive(Default)]
pub(crate) struct Ends {
    ends: RefCell<BTreeMap<u32, End>>,
    next: Cell<u32>,
}

impl Ends {
    /// A new pipe: (read end, write end).
    pub(crate) fn pipe(&self) -> (u32, u32) {
        let pipe = Rc::new(Pipe {
            buf: RefCell::new(VecDeque::new()),
            readers: Cell::new(0),
            writers: Cell::new(0),
            changed: Notify::new(),
        });
        let r = self.insert(End { pipe: pipe.clone(), side: Side::Read });
        let w = self.insert(End { pipe, side: Side::Write });
        (r, w)
    }

    fn insert(&self, end: End) -> u32 {
        end.open();
        let n = self.next.get() + 1;
        self.next.set(n);
        self.ends.borrow_mut().insert(n, end);
        n
    }

    fn get(&self, n: u32, side: Side) -> Result<End, i32> {
        match self.ends.borrow().get(&n) {
            Some(e) if e.side == side => Ok(e.clone()),
            Some(_) | None => Err(libc::EBADF),
        }
    }

    /// A copy for a forked child: the same pipes under the same numbers, each end counted again.
    pub(crate) fn fork(&self) -> Ends {
        let ends = self.ends.borrow().clone();
        for e in ends.values() {
            e.open();
        }
        Ends { ends: RefCell::new(ends), next: Cell::new(self.next.get()) }
    }

    pub(crate) fn close(&self, n: u32) -> Result<(), i32> {
        let end = self.ends.borrow_mut().remove(&n).ok_or(libc::EBADF)?;
        end.close();
        Ok(())
    }

    /// Closes every end, as the kernel does when a process exits or is killed.
    pub(crate) fn close_all(&self) {
        let ends = std::mem::take(&mut *self.ends.borrow_mut());
        for e in ends.values() {
            e.close();
        }
    }

    /// Reads up to `len` bytes, blocking while the pipe is empty and a writer is left.
    pub(crate) async fn read(&self, n: u32, len: usize) -> Result<Vec<u8>, i32> {
        let end = self.get(n, Side::Read)?;
        let p = &end.pipe;
        loop {
            let changed = p.changed.notified();
            {
                let mut buf = p.buf.borrow_mut();
                if !buf.is_empty() || len == 0 {
                    let take = len.min(buf.len());
                    let out: Vec<u8> = buf.drain(..take).collect();
                    drop(buf);
                    p.changed.notify_waiters();
                    return Ok(out);
                }
            }
            if p.writers.get() == 0 {
                return Ok(Vec::new());
            }
            changed.await;
        }
    }

    /// Writes all of `data`, blocking while the pipe is full; `EPIPE` once no reader is left.
    pub(crate) async fn write(&self, n: u32, data: &[u8]) -> Result<usize, i32> {
        let end = self.get(n, Side::Write)?;
        let p = &end.pipe;
        // pipe_write returns at once for nothing to write, reader or none.
        if data.is_empty() {
            return Ok(0);
        }
        let mut done = 0;
        loop {
            let changed = p.changed.notified();
            if p.readers.get() == 0 {
                return if done > 0 { Ok(done) } else { Err(libc::EPIPE) };
            }
            let free = CAPACITY - p.buf.borrow().len();
            let rest = data.len() - done;
            // An atomic write waits until it fits whole; a larger one goes in by parts.
            let take = if rest <= PIPE_BUF {
                if free >= rest {
                    rest
                } else {
                    0
                }
            } else {
                free.min(rest)
            };
            if take > 0 {
                p.buf.borrow_mut().extend(&data[done..done + take]);
                done += take;
                p.changed.notify_waiters();
            }
            if done == data.len() {
                return Ok(done);
            }
            changed.await;
        }
    }

    /// `poll`: the bits each `(end, events)` shows; waits while none shows one,
    /// until `timeout` (or for ever with `None`). The caller races the timeout.
    pub(crate) async fn poll(&self, asked: &[(u32, u16)]) -> Result<Vec<u16>, i32> {
        let ends: Vec<(End, u16)> = asked
            .iter()
            .map(|&(n, ev)| {
                let e = self.ends.borrow().get(&n).cloned().ok_or(libc::EBADF)?;
                Ok((e, ev))
            })
            .collect::<Result<_, i32>>()?;
        loop {
            let waits: Vec<_> = ends.iter().map(|(e, _)| e.pipe.changed.notified()).collect();
            let ready: Vec<u16> = ends.iter().map(|(e, ev)| e.ready(*ev)).collect();
            if ready.iter().any(|&r| r != 0) {
                return Ok(ready);
            }
            let mut waits: Vec<_> = waits.into_iter().map(Box::pin).collect();
            std::future::poll_fn(|cx| {
                for w in &mut waits {
                    if w.as_mut().poll(cx).is_ready() {
                        return std::task::Poll::Ready(());
                    }
                }
                std::task::Poll::Pending
            })
            .await;
        }
    }

    /// What `poll` would show now, without waiting.
    pub(crate) fn ready_now(&self, asked: &[(u32, u16)]) -> Result<Vec<u16>, i32> {
        let ends = self.ends.borrow();
        asked.iter().map(|&(n, ev)| ends.get(&n).map(|e| e.ready(ev)).ok_or(libc::EBADF)).collect()
    }
}
