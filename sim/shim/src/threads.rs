//! A program's threads, one at a time (docs/real-programs.md, "Threads").
//!
//! The world runs one simulated process per program; its threads share the
//! process's socket. Once the program starts a second thread, the shim turns
//! the threads' synchronisation into its own scheduling, so that exactly one
//! thread runs at a time and the order in which they run follows from the
//! program and the seed alone:
//! - a thread holds the *turn* from the moment it is chosen until it blocks in
//!   one of the calls below (never pre-empted, as under a cooperative
//!   scheduler); the others are parked on a futex, running no code;
//! - `pthread_mutex_lock` on a taken mutex, `pthread_cond_*wait`, `sem_*wait`
//!   on a process-private semaphore with no count, `pthread_join` on a live
//!   thread, and the sleeps block; `pthread_mutex_unlock`, `pthread_cond_signal`
//!   and `_broadcast`, and `sem_post` make waiters runnable;
//! - the next thread to run is the one that became runnable first; when none
//!   can run, the blocked thread with the earliest deadline (a timed wait, a
//!   sleep) times out, after the world sleeps until then: time passes in the
//!   world, not in the real kernel;
//! - a call that may block in the world (a pipe read, `poll`, `waitpid`, a named
//!   semaphore) first lets every other runnable thread run until it blocks or
//!   is about to make such a call itself, since the process's one socket can
//!   carry only one call at a time. A pipe write does not wait so: the writer
//!   going first is what lets a sibling's read return.
//!
//! What this does not do: a thread blocked in the world holds the socket, so
//! its siblings wait, past their own deadlines too, until that call returns;
//! and a thread that spins without blocking is never pre-empted.
//!
//! Mutexes and semaphores keep their real state (the real `trylock`, `post`);
//! only the waiting is the shim's. Condition variables are the shim's alone.
//! Before a second thread exists all of these go straight to libc.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use shim_proto::{Call, Clock};

use crate::{die, with_shim};

/// What a blocked thread waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Obj {
    Mutex(usize),
    Cond(usize),
    Sem(usize),
    Join(u64),
    /// A sleep: only its deadline ends it.
    Sleep,
}

struct Blocked {
    on: Obj,
    /// Simulated monotonic nanoseconds.
    deadline: Option<i128>,
    /// The order of blocking, so wake-ups go first come, first served.
    seq: u64,
}

#[derive(Default)]
struct Thread {
    blocked: Option<Blocked>,
    timed_out: bool,
    exited: bool,
}

#[derive(Default)]
pub(crate) struct Sched {
    running: u64,
    next_tid: u64,
    seq: u64,
    threads: BTreeMap<u64, Thread>,
    runnable: VecDeque<u64>,
    /// `pthread_t` to thread, for `pthread_join`.
    handles: BTreeMap<libc::pthread_t, u64>,
    /// Threads letting the others run before a call that may block in the world.
    yielding: BTreeSet<u64>,
}

static ACTIVE: AtomicBool = AtomicBool::new(false);
static SCHED: Mutex<Option<Sched>> = Mutex::new(None);
static TURN: Condvar = Condvar::new();

thread_local! {
    /// This thread's number; 0 until the scheduler knows it.
    static TID: Cell<u64> = const { Cell::new(0) };
    /// Set once this thread has exited the schedule (it is in `pthread_exit`).
    static GONE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the shim schedules threads: a second thread has started, and this one is scheduled.
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Acquire) && !GONE.with(Cell::get)
}

/// Whether this thread has left the schedule: what it still does on its way
/// out (`pthread_exit`'s unwinding) runs beside the next thread, so it must not
/// reach the world, and goes to the real kernel.
pub(crate) fn gone() -> bool {
    GONE.with(Cell::get)
}

fn lock() -> MutexGuard<'static, Option<Sched>> {
    SCHED.lock().unwrap_or_else(|p| p.into_inner())
}

fn me() -> u64 {
    TID.with(Cell::get)
}

/// Waits, parked, until this thread holds the turn.
fn wait_turn(mut g: MutexGuard<'static, Option<Sched>>, tid: u64) -> MutexGuard<'static, Option<Sched>> {
    while g.as_ref().expect("scheduler").running != tid {
        g = TURN.wait(g).unwrap_or_else(|p| p.into_inner());
    }
    g
}

/// The world's monotonic clock in nanoseconds.
fn now_ns(clock: Clock) -> i128 {
    let (s, ns) = with_shim(|s| Some(s.time(clock))).unwrap_or_else(|| die("mmsim-shim: no world for a thread\n"));
    s as i128 * 1_000_000_000 + ns as i128
}

fn world_sleep(ns: u64) {
    with_shim(|s| Some(s.status(Call::Sleep { ns })));
}

/// Gives the turn to the next thread: the first runnable one, or else the
/// blocked one with the earliest deadline, once the world has slept until it.
fn pick_next(s: &mut Sched) {
    loop {
        if let Some(next) = s.runnable.pop_front() {
            s.running = next;
            TURN.notify_all();
            return;
        }
        let earliest = s
            .threads
            .iter()
            .filter_map(|(&t, th)| th.blocked.as_ref().and_then(|b| b.deadline.map(|d| (d, b.seq, t))))
            .min();
        match earliest {
            Some((deadline, _, t)) => {
                let now = now_ns(Clock::Monotonic);
                if deadline > now {
                    world_sleep((deadline - now) as u64);
                }
                let th = s.threads.get_mut(&t).expect("thread");
                th.blocked = None;
                th.timed_out = true;
                s.runnable.push_back(t);
            }
            // Every thread waits on another, with no end: the program hangs, as it
            // would on a real kernel, and the world's time runs on toward its limit.
            None => world_sleep(3_600_000_000_000),
        }
    }
}

/// Blocks this thread on `on` until woken, or until `deadline` (simulated
/// monotonic ns); true when it timed out.
pub(crate) fn block(on: Obj, deadline: Option<i128>) -> bool {
    let tid = me();
    let mut g = lock();
    let s = g.as_mut().expect("scheduler");
    s.seq += 1;
    let seq = s.seq;
    s.threads.get_mut(&tid).expect("this thread").blocked = Some(Blocked { on, deadline, seq });
    pick_next(s);
    let mut g = wait_turn(g, tid);
    let th = g.as_mut().expect("scheduler").threads.get_mut(&tid).expect("this thread");
    std::mem::take(&mut th.timed_out)
}

/// Makes the threads blocked on `on` runnable: the first to block, or all.
pub(crate) fn wake(on: Obj, all: bool) {
    let mut g = lock();
    let s = g.as_mut().expect("scheduler");
    let mut waiting: Vec<(u64, u64)> = s
        .threads
        .iter()
        .filter_map(|(&t, th)| th.blocked.as_ref().filter(|b| b.on == on).map(|b| (b.seq, t)))
        .collect();
    waiting.sort_unstable();
    for (_, t) in waiting.into_iter().take(if all { usize::MAX } else { 1 }) {
        s.threads.get_mut(&t).expect("thread").blocked = None;
        s.runnable.push_back(t);
    }
}

/// Before a call that may block in the world: every other runnable thread runs
/// first, until it blocks or is itself about to make such a call (else two
/// threads would hand the turn to each other for ever).
pub(crate) fn let_others_run() {
    if !active() {
        return;
    }
    let tid = me();
    let mut g = lock();
    g.as_mut().expect("scheduler").yielding.insert(tid);
    loop {
        let s = g.as_mut().expect("scheduler");
        if s.runnable.iter().all(|t| s.yielding.contains(t)) {
            break;
        }
        s.runnable.push_back(tid);
        pick_next(s);
        g = wait_turn(g, tid);
    }
    g.as_mut().expect("scheduler").yielding.remove(&tid);
}

/// A sleep of `ns` simulated nanoseconds while other threads exist: the thread
/// blocks with a deadline, and the others run meanwhile.
pub(crate) fn sleep(ns: u64) {
    let deadline = now_ns(Clock::Monotonic) + ns as i128;
    block(Obj::Sleep, Some(deadline));
}

/// A deadline in simulated monotonic ns from an absolute time on `clock`.
pub(crate) fn deadline_of(clock: libc::clockid_t, abstime: &libc::timespec) -> i128 {
    let at = abstime.tv_sec as i128 * 1_000_000_000 + abstime.tv_nsec as i128;
    if clock == libc::CLOCK_REALTIME {
        at - now_ns(Clock::Wall) + now_ns(Clock::Monotonic)
    } else {
        at
    }
}

struct Start {
    start: extern "C-unwind" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
    tid: u64,
}

/// The new thread's start. `pthread_exit` unwinds through it (a forced
/// unwind), so it is `C-unwind` and holds nothing that needs dropping across
/// the start routine.
extern "C-unwind" fn trampoline(p: *mut c_void) -> *mut c_void {
    let Start { start, arg, tid } = *unsafe { Box::from_raw(p as *mut Start) };
    TID.with(|t| t.set(tid));
    drop(wait_turn(lock(), tid));
    let ret = start(arg);
    exited();
    ret
}

/// `pthread_create`: the new thread is runnable, and runs once this one blocks.
pub(crate) unsafe fn create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C-unwind" fn(*mut c_void) -> *mut c_void,
    arg: *mut c_void,
) -> c_int {
    let tid = {
        let mut g = lock();
        let s = g.get_or_insert_with(Sched::default);
        if me() == 0 {
            s.next_tid += 1;
            TID.with(|t| t.set(s.next_tid));
            s.threads.insert(s.next_tid, Thread::default());
            s.running = s.next_tid;
        }
        s.next_tid += 1;
        let tid = s.next_tid;
        s.threads.insert(tid, Thread::default());
        s.runnable.push_back(tid);
        ACTIVE.store(true, Ordering::Release);
        tid
    };
    let boxed = Box::into_raw(Box::new(Start { start, arg, tid })) as *mut c_void;
    type Create = unsafe extern "C" fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C-unwind" fn(*mut c_void) -> *mut c_void,
        *mut c_void,
    ) -> c_int;
    let r = real!(pthread_create: Create)(thread, attr, trampoline, boxed);
    let mut g = lock();
    let s = g.as_mut().expect("scheduler");
    if r == 0 {
        s.handles.insert(*thread, tid);
    } else {
        s.threads.remove(&tid);
        s.runnable.retain(|&t| t != tid);
        drop(Box::from_raw(boxed as *mut Start));
    }
    r
}

/// This thread leaves the schedule: its joiners wake, and the turn passes on.
pub(crate) fn exited() {
    if !active() {
        return;
    }
    let tid = me();
    wake(Obj::Join(tid), true);
    let mut g = lock();
    let s = g.as_mut().expect("scheduler");
    s.threads.get_mut(&tid).expect("this thread").exited = true;
    // The turn passes on while this thread may still reach the world (to sleep
    // until a deadline); only then does it leave, the schedule still locked.
    pick_next(s);
    GONE.with(|g| g.set(true));
}

/// `pthread_join`'s wait: until the thread has left the schedule.
pub(crate) fn join(handle: libc::pthread_t) {
    let target = {
        let g = lock();
        let s = g.as_ref().expect("scheduler");
        s.handles.get(&handle).copied().filter(|t| s.threads.get(t).is_some_and(|th| !th.exited))
    };
    if let Some(t) = target {
        block(Obj::Join(t), None);
    }
}

/// The schedule, held across a real `fork`, so that no thread holds it then
/// (a child would inherit it locked for ever). Taken before the shim's own lock.
pub(crate) fn hold_for_fork() -> MutexGuard<'static, Option<Sched>> {
    lock()
}

/// After the real fork, in the child: only the forking thread is left, and the
/// schedule starts over. In the parent the guard just goes.
pub(crate) fn after_fork(mut held: MutexGuard<'static, Option<Sched>>, child: bool) {
    if child {
        ACTIVE.store(false, Ordering::Release);
        *held = None;
        TID.with(|t| t.set(0));
    }
}

/// Whether a second thread ever started (this one may have left the schedule).
pub(crate) fn any() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

/// The clock each condition variable's timed waits count on (`pthread_condattr_setclock`).
pub(crate) static COND_CLOCKS: Mutex<BTreeMap<usize, libc::clockid_t>> = Mutex::new(BTreeMap::new());

pub(crate) fn cond_clock(cond: usize) -> libc::clockid_t {
    COND_CLOCKS.lock().unwrap_or_else(|p| p.into_inner()).get(&cond).copied().unwrap_or(libc::CLOCK_REALTIME)
}

/// A pointer-sized key for a synchronisation object.
pub(crate) fn key<T>(p: *const T) -> usize {
    p as usize
}
