//! `Kernel`: what an external program needs of its host beyond the model's
//! `Os` (docs/real-programs.md, "fork and pipes"): `fork`, pipes and named
//! semaphores.
//!
//! The model's Mailman code never forks or pipes, so `model::Os` stays as small
//! as Mailman's needs; only `exec` (scenarios/src/external.rs) asks for these.
//! In the world they are the host kernel's (`sim::Proc`); an `Os` without them
//! answers `ENOSYS`.

use std::io;
use std::time::Duration;

use model::{Os, Pid};

fn enosys<T>() -> io::Result<T> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[allow(async_fn_in_trait)]
pub trait Kernel: Os {
    /// Starts `program` as a child that holds this process's pipe ends.
    async fn fork(&self, _program: &str, _args: &[String]) -> io::Result<Pid> {
        enosys()
    }
    /// A new pipe: (read end, write end).
    async fn pipe(&self) -> io::Result<(u32, u32)> {
        enosys()
    }
    async fn pipe_read(&self, _end: u32, _len: usize) -> io::Result<Vec<u8>> {
        enosys()
    }
    async fn pipe_write(&self, _end: u32, _data: &[u8]) -> io::Result<usize> {
        enosys()
    }
    async fn pipe_close(&self, _end: u32) -> io::Result<()> {
        enosys()
    }
    async fn sem_open(&self, _name: &str, _create: bool, _exclusive: bool, _value: u32) -> io::Result<u32> {
        enosys()
    }
    async fn sem_wait(&self, _sem: u32, _timeout: Option<Duration>) -> io::Result<()> {
        enosys()
    }
    async fn sem_post(&self, _sem: u32) -> io::Result<()> {
        enosys()
    }
    async fn sem_value(&self, _sem: u32) -> io::Result<u32> {
        enosys()
    }
    async fn sem_close(&self, _sem: u32) -> io::Result<()> {
        enosys()
    }
    async fn sem_unlink(&self, _name: &str) -> io::Result<()> {
        enosys()
    }
    /// Each `(end, poll events)`'s ready bits once one shows any, or all zero after `timeout`.
    async fn poll(&self, _asked: &[(u32, u16)], _timeout: Option<Duration>) -> io::Result<Vec<u16>> {
        enosys()
    }
}

/// The real kernel's pipes are not a world's: `exec` needs a simulation.
impl Kernel for model::RealOs {}
