//! The lockstep protocol between an mmsim world and `mmsim-shim`, the
//! `LD_PRELOAD` library inside an external program (docs/real-programs.md).
//!
//! The program and the world share one `AF_UNIX` stream socket, inherited as
//! the descriptor named by [`ENV_FD`]. Every intercepted call is one [`Call`]
//! frame from the program, answered by one [`Reply`] frame from the world; the
//! program is blocked in between, so its calls happen in the order the world's
//! seed decides. The first frame is [`Call::Hello`], carrying [`VERSION`]; a
//! world that speaks another version refuses the program.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of
//! postcard. Paths are relative to the simulated mount point ([`ENV_MOUNT`]),
//! which the shim strips: `/mm/locks/x` travels as `locks/x`.

use serde::{Deserialize, Serialize};

/// The protocol version. Bump it on any change to [`Call`] or [`Reply`].
pub const VERSION: u32 = 3;

/// The environment variable holding the socket's descriptor number.
pub const ENV_FD: &str = "MMSIM_SHIM_FD";
/// The environment variable holding the simulated mount point (absolute, no trailing `/`).
pub const ENV_MOUNT: &str = "MMSIM_SHIM_MOUNT";

/// Which clock `clock_gettime` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clock {
    /// `CLOCK_REALTIME` and `gettimeofday`/`time`: the host's wall clock, with its offset and drift.
    Wall,
    /// `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME` and the CPU-time clocks: true simulated time.
    Monotonic,
}

/// What a `lseek` counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Whence {
    Set,
    Current,
    End,
}

/// `open(2)` flags the world models. The shim refuses any other flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub append: bool,
    /// `O_DIRECTORY`: only a directory may be opened.
    pub directory: bool,
}

/// One intercepted call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// The first frame: the shim's protocol version and the program's real pid.
    Hello {
        version: u32,
        real_pid: u32,
    },
    Open {
        path: String,
        flags: OpenFlags,
    },
    Close {
        fd: u32,
    },
    Read {
        fd: u32,
        len: u64,
    },
    /// `pread`: reads at `offset` without moving the descriptor's position.
    ReadAt {
        fd: u32,
        len: u64,
        offset: u64,
    },
    Write {
        fd: u32,
        data: Vec<u8>,
    },
    /// `pwrite`: writes at `offset` without moving the descriptor's position.
    WriteAt {
        fd: u32,
        data: Vec<u8>,
        offset: u64,
    },
    Seek {
        fd: u32,
        offset: i64,
        whence: Whence,
    },
    Fstat {
        fd: u32,
    },
    Ftruncate {
        fd: u32,
        len: u64,
    },
    Fsync {
        fd: u32,
    },
    /// `stat` and `lstat` alike: the world has no symbolic links.
    Stat {
        path: String,
    },
    Link {
        existing: String,
        new: String,
    },
    Unlink {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Mkdir {
        path: String,
    },
    Rmdir {
        path: String,
    },
    /// `utime`: `None` is the server's time now (`utime(path, NULL)`); else seconds and nanoseconds.
    SetTimes {
        path: String,
        time: Option<(i64, u32)>,
    },
    ReadDir {
        path: String,
    },
    Now {
        clock: Clock,
    },
    Sleep {
        ns: u64,
    },
    Pid,
    /// `getppid()`: the simulated parent (1 for a program the host booted).
    ParentPid,
    Hostname,
    Random {
        len: u32,
    },
    /// `kill(pid, sig)` on a simulated pid; signal 0 asks whether it is alive.
    Kill {
        pid: u32,
        signal: i32,
    },
    /// What the program wrote to its standard output (1) or error (2).
    Output {
        fd: u32,
        data: Vec<u8>,
    },
    /// `fork()`: the world starts the child as a new simulated process on the
    /// same host, holding the parent's pipe ends, and answers [`Reply::Forked`].
    Fork,
    /// `pipe()`/`pipe2()`: a pipe the host's kernel keeps; answered [`Reply::Pipe`].
    Pipe,
    PipeRead {
        end: u32,
        len: u64,
    },
    /// Answered with the count written, or `EPIPE`.
    PipeWrite {
        end: u32,
        data: Vec<u8>,
    },
    PipeClose {
        end: u32,
    },
    /// `poll`/`select` on pipe ends: `(end, poll events)`; `None` waits for ever.
    /// Answered [`Reply::Ready`], one `revents` per end.
    Poll {
        ends: Vec<(u32, u16)>,
        timeout_ns: Option<u64>,
    },
    /// `waitpid` on a simulated child; answered [`Reply::Exited`].
    Wait {
        pid: u32,
        nohang: bool,
    },
    /// `exit`/`_exit`: the status the program is about to exit with (the last one sent counts).
    Exit {
        code: i32,
    },
    /// `sem_open`: a named semaphore of the host; answered with its number.
    SemOpen {
        name: String,
        create: bool,
        exclusive: bool,
        value: u32,
    },
    /// `sem_wait` (`None`), `sem_trywait` (zero, `EAGAIN`) or a timed wait (`ETIMEDOUT`).
    SemWait {
        sem: u32,
        timeout_ns: Option<u64>,
    },
    SemPost {
        sem: u32,
    },
    /// `sem_getvalue`: answered with the value.
    SemValue {
        sem: u32,
    },
    SemClose {
        sem: u32,
    },
    SemUnlink {
        name: String,
    },
    /// A call the shim cannot represent: the world stops the run, naming it.
    Unsupported {
        call: String,
        detail: String,
    },
}

/// File metadata as the world returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub ino: u64,
    pub nlink: u64,
    pub size: u64,
    pub dir: bool,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

/// The world's answer to one [`Call`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Success with nothing to return.
    Done,
    /// Failure with this errno.
    Errno(i32),
    Fd(u32),
    Data(Vec<u8>),
    /// A count or a position.
    Value(u64),
    Stat(Stat),
    Names(Vec<String>),
    /// Seconds and nanoseconds.
    Time(i64, u32),
    Text(String),
    /// The child's simulated pid, and the abstract `AF_UNIX` socket name its shim
    /// connects to after the real `fork`.
    Forked {
        pid: u32,
        socket: String,
    },
    /// A pipe's read end and write end.
    Pipe(u32, u32),
    Ready(Vec<u16>),
    /// A child's wait status (as `waitpid` encodes it), or `None` for a `WNOHANG` wait on a live one.
    Exited(Option<i32>),
    /// The world refuses the program (a version mismatch); the shim exits at once.
    Refused(String),
}

/// One frame: the length, then the postcard bytes.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = postcard::to_stdvec(value).expect("protocol values always serialize");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Decodes a frame's body (without its length prefix).
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(body)
}

/// The longest frame either side accepts: a corrupt length stops the run instead of allocating.
pub const FRAME_MAX: u32 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_and_a_reply_survive_the_wire() {
        let call = Call::WriteAt { fd: 3, data: b"enter a 1\n".to_vec(), offset: 7 };
        let frame = encode(&call);
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode::<Call>(&frame[4..]).unwrap(), call);
        let reply = Reply::Stat(Stat { ino: 9, nlink: 2, size: 11, dir: false, mtime: (5, 6), ctime: (7, 8) });
        assert_eq!(decode::<Reply>(&encode(&reply)[4..]).unwrap(), reply);
    }
}
