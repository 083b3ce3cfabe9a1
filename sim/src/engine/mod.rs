//! The engine seam: what the world needs from its substrate, and nothing more.
//!
//! - a virtual clock in nanoseconds ([`now`]);
//! - tasks on a host ([`spawn`], [`TaskHandle::abort`]);
//! - sleeping until a deadline ([`sleep`], [`sleep_until`], [`timeout`], [`yield_now`]);
//! - datagrams between hosts, each delivered after its own delay ([`Datagrams`]);
//! - byte streams: listen, connect, accept, with a delay per segment ([`TcpListener`], [`TcpStream`]);
//! - crashing a host (its tasks are dropped, its endpoints close) and restarting it;
//! - partitions.
//!
//! Two engines stand behind it (see `docs/engines.md`):
//! - **`events`** (the default, [`events`]): discrete-event, nanosecond time,
//!   idle time skipped, link latency plus transmission time per message;
//! - **`turmoil`**, the reference: turmoil's fixed 1 ms step. Every sleep and
//!   every latency is rounded up to whole milliseconds (tokio's timer wheel and
//!   turmoil's `Link::delay`), links have no bandwidth, and loopback delivers on
//!   the next step.
//!
//! The world, processes, the sim gate, the RPC layer, the NFS server and client
//! and the trace sit above this seam and never name an engine.

pub mod events;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which engine runs a world.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// Discrete-event, nanosecond time.
    #[default]
    Events,
    /// turmoil's 1 ms step: the reference engine.
    Turmoil,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Events => "events",
            EngineKind::Turmoil => "turmoil",
        }
    }
}

/// The timing of a link: a fixed one-way latency plus the time its
/// transmitter needs for the message's bytes (0 bit/s: no bandwidth limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTiming {
    pub latency_ns: u64,
    pub bandwidth_bit_s: u64,
}

impl LinkTiming {
    pub fn transmission_ns(&self, bytes: usize) -> u64 {
        if self.bandwidth_bit_s == 0 {
            0
        } else {
            (bytes as u128 * 8 * 1_000_000_000 / self.bandwidth_bit_s as u128) as u64
        }
    }
}

/// The network's timing: between hosts, and a host to itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub lan: LinkTiming,
    pub loopback: LinkTiming,
}

/// Shipped link timings; every figure and its basis is in `docs/engines.md`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkProfile {
    /// Switched 10 GbE: 25 µs one way, 10 Gbit/s; loopback 10 µs.
    #[default]
    #[serde(rename = "lan-modern")]
    LanModern,
    /// Switched 100 Mbit/s Ethernet: 60 µs one way plus 80 ns per byte; loopback 25 µs.
    #[serde(rename = "lan-2002")]
    Lan2002,
    /// 1 ms one way, no bandwidth limit, loopback 1 ms: what turmoil's 1 ms step
    /// gives, for comparing the engines.
    #[serde(rename = "whole-ms")]
    WholeMs,
}

impl LinkProfile {
    pub fn net_config(self) -> NetConfig {
        let link = |latency_us: u64, mbit_s: u64| LinkTiming {
            latency_ns: latency_us * 1000,
            bandwidth_bit_s: mbit_s * 1_000_000,
        };
        match self {
            LinkProfile::LanModern => NetConfig { lan: link(25, 10_000), loopback: link(10, 0) },
            LinkProfile::Lan2002 => NetConfig { lan: link(60, 100), loopback: link(25, 0) },
            LinkProfile::WholeMs => NetConfig { lan: link(1000, 0), loopback: link(1000, 0) },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkProfile::LanModern => "lan-modern",
            LinkProfile::Lan2002 => "lan-2002",
            LinkProfile::WholeMs => "whole-ms",
        }
    }
}

/// A host and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr {
    pub host: Rc<str>,
    pub port: u16,
}

/// The engine the code on this thread runs under right now.
#[derive(Clone, Default)]
pub(crate) enum Current {
    #[default]
    None,
    Events(Rc<events::Runtime>),
    /// `elapsed` is the driver's view between steps (turmoil only knows the
    /// time inside a host).
    Turmoil {
        elapsed: Duration,
    },
}

thread_local! {
    static CURRENT: RefCell<Current> = const { RefCell::new(Current::None) };
}

pub(crate) fn enter(current: Current) {
    CURRENT.with(|c| *c.borrow_mut() = current);
}

/// Forgets `rt` if it is the current engine (its simulation is gone).
pub(crate) fn leave_events(rt: &Rc<events::Runtime>) {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if matches!(&*c, Current::Events(r) if Rc::ptr_eq(r, rt)) {
            *c = Current::None;
        }
    });
}

fn runtime() -> Option<Rc<events::Runtime>> {
    CURRENT.with(|c| match &*c.borrow() {
        Current::Events(rt) => Some(rt.clone()),
        _ => None,
    })
}

pub(crate) fn kind() -> EngineKind {
    CURRENT.with(|c| match &*c.borrow() {
        Current::Turmoil { .. } => EngineKind::Turmoil,
        _ => EngineKind::Events,
    })
}

/// True simulated time since the start of the run. Zero outside a simulation.
pub fn now() -> Duration {
    CURRENT.with(|c| match &*c.borrow() {
        Current::None => Duration::ZERO,
        Current::Events(rt) => rt.now(),
        Current::Turmoil { elapsed } => turmoil::sim_elapsed().unwrap_or(*elapsed),
    })
}

/// A sleep under either engine.
pub(crate) enum Sleep {
    Events(events::Sleep),
    Turmoil(Pin<Box<tokio::time::Sleep>>),
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Events(s) => Pin::new(s).poll(cx),
            Sleep::Turmoil(s) => s.as_mut().poll(cx),
        }
    }
}

pub(crate) fn sleep(d: Duration) -> Sleep {
    match runtime() {
        Some(rt) => {
            let deadline = rt.now() + d;
            Sleep::Events(events::Sleep::until(rt, deadline))
        }
        None => Sleep::Turmoil(Box::pin(tokio::time::sleep(d))),
    }
}

/// `f`, or `None` if `d` passes first (`f` is polled first: biased).
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut timer = std::pin::pin!(sleep(d));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = f.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Lets every other ready task run once before this one goes on.
pub(crate) async fn yield_now() {
    if kind() == EngineKind::Turmoil {
        return tokio::task::yield_now().await;
    }
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// A task that can be cancelled.
pub(crate) enum TaskHandle {
    Events(Rc<events::Runtime>, events::TaskId),
    Turmoil(tokio::task::JoinHandle<()>),
}

impl TaskHandle {
    /// Cancels the task: it is never polled again, and its future is dropped by the executor.
    pub(crate) fn abort(&self) {
        match self {
            TaskHandle::Events(rt, id) => rt.abort(*id),
            TaskHandle::Turmoil(j) => j.abort(),
        }
    }
}

/// Spawns `future` on `host` (under turmoil: on the host whose code runs now,
/// which must be `host`). `None` when the host is down.
pub(crate) fn spawn(host: &str, future: impl Future<Output = ()> + 'static) -> Option<TaskHandle> {
    match runtime() {
        Some(rt) => rt.spawn(host, future).map(|id| TaskHandle::Events(rt, id)),
        None => Some(TaskHandle::Turmoil(tokio::task::spawn_local(future))),
    }
}

// ---- datagrams ----

fn turmoil_addr(to: &Addr) -> SocketAddr {
    SocketAddr::new(turmoil::lookup(&*to.host), to.port)
}

fn turmoil_name(addr: SocketAddr) -> Addr {
    let host = turmoil::reverse_lookup(addr.ip()).unwrap_or_else(|| addr.ip().to_string());
    Addr { host: host.into(), port: addr.port() }
}

/// Large enough for any READ or WRITE of the largest rsize/wsize (turmoil only).
const DATAGRAM_BYTES_MAX: usize = 1 << 20;

enum DgInner {
    Events { rt: Rc<events::Runtime>, generation: u64 },
    Turmoil(Rc<turmoil::net::UdpSocket>),
}

/// A datagram socket that receives values of `In` and sends values of `Out`.
/// The events engine hands the value itself to the receiver (no bytes are
/// made; `wire_bytes` says how long it is on the wire); turmoil carries it
/// encoded with postcard.
pub(crate) struct Datagrams<In, Out> {
    inner: DgInner,
    local: Addr,
    /// turmoil only: the receive buffer.
    buf: std::cell::Cell<Option<Vec<u8>>>,
    _t: PhantomData<(In, Out)>,
}

impl<In: DeserializeOwned + 'static, Out: Serialize + 'static> Datagrams<In, Out> {
    pub(crate) async fn bind(local: Addr) -> Result<Datagrams<In, Out>, i32> {
        let inner = match runtime() {
            Some(rt) => {
                let generation = rt.bind(local.clone())?;
                DgInner::Events { rt, generation }
            }
            None => DgInner::Turmoil(Rc::new(
                turmoil::net::UdpSocket::bind(("0.0.0.0", local.port)).await.map_err(|e| io_errno(&e))?,
            )),
        };
        Ok(Datagrams { inner, local, buf: std::cell::Cell::new(None), _t: PhantomData })
    }

    /// Sends `msg` to `to`, held back `extra` beyond the link's own time.
    pub(crate) fn send(&self, to: &Addr, msg: Out, extra: Duration, wire_bytes: usize) {
        match &self.inner {
            DgInner::Events { rt, .. } => rt.send_datagram(&self.local, to, Box::new(msg), extra, wire_bytes),
            DgInner::Turmoil(socket) => {
                let bytes = postcard::to_allocvec(&msg).expect("encode datagram");
                let to = turmoil_addr(to);
                if extra.is_zero() {
                    let _ = socket.try_send_to(&bytes, to);
                } else {
                    let socket = socket.clone();
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(extra).await;
                        let _ = socket.try_send_to(&bytes, to);
                    });
                }
            }
        }
    }

    /// The next datagram and its sender.
    pub(crate) async fn recv(&self) -> (In, Addr) {
        match &self.inner {
            DgInner::Events { rt, .. } => {
                let (msg, from) = std::future::poll_fn(|cx| rt.poll_datagram(&self.local, cx)).await;
                (*msg.downcast::<In>().expect("one type per port"), from)
            }
            DgInner::Turmoil(socket) => {
                // One buffer per socket, taken out across the await (no borrow is held there).
                let mut buf = self.buf.take().unwrap_or_else(|| vec![0u8; DATAGRAM_BYTES_MAX]);
                let got = loop {
                    let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
                    if let Ok(msg) = postcard::from_bytes::<In>(&buf[..n]) {
                        break (msg, turmoil_name(from));
                    }
                };
                self.buf.set(Some(buf));
                got
            }
        }
    }

    /// A datagram already delivered, without waiting.
    pub(crate) fn try_recv(&self) -> Option<(In, Addr)> {
        match &self.inner {
            DgInner::Events { rt, .. } => {
                let (msg, from): (Box<dyn Any>, Addr) = rt.try_datagram(&self.local)?;
                Some((*msg.downcast::<In>().expect("one type per port"), from))
            }
            DgInner::Turmoil(socket) => {
                let mut buf = self.buf.take().unwrap_or_else(|| vec![0u8; DATAGRAM_BYTES_MAX]);
                let mut got = None;
                while let Ok((n, from)) = socket.try_recv_from(&mut buf) {
                    if let Ok(msg) = postcard::from_bytes::<In>(&buf[..n]) {
                        got = Some((msg, turmoil_name(from)));
                        break;
                    }
                }
                self.buf.set(Some(buf));
                got
            }
        }
    }
}

impl<In, Out> Drop for Datagrams<In, Out> {
    fn drop(&mut self) {
        if let DgInner::Events { rt, generation } = &self.inner {
            rt.unbind(&self.local, *generation);
        }
    }
}

// ---- streams ----

pub fn io_errno(e: &std::io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => libc::ECONNREFUSED,
        K::ConnectionReset | K::ConnectionAborted => libc::ECONNRESET,
        K::BrokenPipe => libc::EPIPE,
        K::NotConnected => libc::ENOTCONN,
        K::AddrInUse => libc::EADDRINUSE,
        K::TimedOut => libc::ETIMEDOUT,
        K::HostUnreachable | K::NetworkUnreachable => libc::EHOSTUNREACH,
        _ => libc::EIO,
    }
}

enum ListenerInner {
    Events { rt: Rc<events::Runtime>, addr: Addr, generation: u64 },
    Turmoil(turmoil::net::TcpListener),
}

pub struct TcpListener(ListenerInner);

enum StreamInner {
    Events(events::Stream),
    Turmoil(turmoil::net::TcpStream),
}

pub struct TcpStream(StreamInner);

impl Drop for TcpListener {
    fn drop(&mut self) {
        if let ListenerInner::Events { rt, addr, generation } = &self.0 {
            rt.unlisten(addr, *generation);
        }
    }
}

pub(crate) async fn listen(host: &Rc<str>, port: u16) -> Result<TcpListener, i32> {
    match runtime() {
        Some(rt) => {
            let addr = Addr { host: host.clone(), port };
            let generation = rt.listen(addr.clone())?;
            Ok(TcpListener(ListenerInner::Events { rt, addr, generation }))
        }
        None => turmoil::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map(|l| TcpListener(ListenerInner::Turmoil(l)))
            .map_err(|e| io_errno(&e)),
    }
}

/// The next connection and the peer's host name.
pub(crate) async fn accept(listener: &TcpListener) -> Result<(TcpStream, String), i32> {
    match &listener.0 {
        ListenerInner::Events { rt, addr, .. } => {
            let (s, peer) = std::future::poll_fn(|cx| rt.poll_accept(addr, cx)).await;
            Ok((TcpStream(StreamInner::Events(s)), peer.to_string()))
        }
        ListenerInner::Turmoil(l) => l
            .accept()
            .await
            .map(|(s, addr)| (TcpStream(StreamInner::Turmoil(s)), turmoil_name(addr).host.to_string()))
            .map_err(|e| io_errno(&e)),
    }
}

/// Connects from `host` to `to:port` (`localhost` is `host` itself).
pub(crate) async fn connect(host: &Rc<str>, to: &str, port: u16) -> Result<TcpStream, i32> {
    match runtime() {
        Some(rt) => {
            let target: Rc<str> = if to == "localhost" { host.clone() } else { to.into() };
            let reply = rt.connect(host.clone(), Addr { host: target, port });
            match reply.await {
                Ok(Ok(s)) => Ok(TcpStream(StreamInner::Events(s))),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(libc::ECONNRESET),
            }
        }
        None => turmoil::net::TcpStream::connect((to, port))
            .await
            .map(|s| TcpStream(StreamInner::Turmoil(s)))
            .map_err(|e| io_errno(&e)),
    }
}

impl TcpStream {
    /// Reads what is available, at most `buf.len()` bytes; 0 means the peer closed.
    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> Result<usize, i32> {
        match &mut self.0 {
            StreamInner::Events(s) => std::future::poll_fn(|cx| s.poll_read(cx, buf)).await,
            StreamInner::Turmoil(s) => s.read(buf).await.map_err(|e| io_errno(&e)),
        }
    }

    pub(crate) async fn write_all(&mut self, data: &[u8]) -> Result<(), i32> {
        match &mut self.0 {
            StreamInner::Events(s) => s.write(data),
            StreamInner::Turmoil(s) => s.write_all(data).await.map_err(|e| io_errno(&e)),
        }
    }
}
