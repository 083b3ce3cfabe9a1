//! The RPC layer: NFS calls over the engine's datagrams, with each
//! transmission's fate drawn from its link's own random stream.
//!
//! The engine's links are fixed (latency plus transmission time) and lose
//! nothing; under turmoil its own latency and `fail_rate` would draw from one
//! RNG shared by the whole world in global send order, so they stay fixed and
//! 0. Every transmission draws its fate here, from the stream
//! `link/<client>-><server>`: deliver, drop the request, drop the reply,
//! duplicate the request, or hold it back a uniform number of microseconds.
//! The reply's fate travels with the request, so the server honours it
//! without drawing itself.
//!
//! A call retransmits with the **same xid** after `timeo`, doubling up to
//! `timeo_max_ms` (or growing linearly, for TCP timing), and back to `timeo`
//! after each major timeout (docs/semantics/nfs-server.md §2). After `retrans` retransmissions a hard
//! mount logs "server not responding" and goes on forever; a soft mount fails
//! with EIO, or ETIMEDOUT under `softerr`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::engine::{Addr, Datagrams};
use crate::nfs::proto::{Reply, Request};
use crate::rng::Rng;
use crate::world::World;

pub const NFS_PORT: u16 = 2049;
/// The client's source port: a reserved port, as the Linux client uses.
pub const CLIENT_PORT: u16 = 800;

/// Per-link fault rates, in parts per million of transmissions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkFaults {
    pub drop_request_ppm: u32,
    pub drop_reply_ppm: u32,
    pub duplicate_ppm: u32,
    /// Chance that a request (and, separately, its reply) is held back.
    pub delay_ppm: u32,
    /// A held-back message waits a uniform 1..=delay_us_max microseconds more.
    pub delay_us_max: u64,
}

impl LinkFaults {
    /// Whether the link loses or duplicates messages (a delay is latency, not a loss).
    pub fn is_lossy(&self) -> bool {
        self.drop_request_ppm > 0 || self.drop_reply_ppm > 0 || self.duplicate_ppm > 0
    }

    /// The same link after the heal: it keeps its jitter and loses nothing.
    pub fn healed(&self) -> LinkFaults {
        LinkFaults { drop_request_ppm: 0, drop_reply_ppm: 0, duplicate_ppm: 0, ..self.clone() }
    }
}

/// The transport part of a mount (nfs(5) `timeo`, `retrans`, `hard`/`soft`, `softerr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransportOptions {
    /// First retransmission timeout. UDP default 1.1 s.
    pub timeo_ms: u64,
    pub timeo_max_ms: u64,
    /// Retransmissions before a major timeout. UDP default 3.
    pub retrans: u32,
    pub mount: MountKind,
    pub backoff: Backoff,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            timeo_ms: 1100,
            timeo_max_ms: 60_000,
            retrans: 3,
            mount: MountKind::Hard,
            backoff: Backoff::Exponential,
        }
    }
}

/// How the retransmission timeout grows (docs/semantics/nfs-server.md §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// UDP: the timeout doubles per retransmission, up to `timeo_max_ms`.
    #[default]
    Exponential,
    /// TCP timing: +`timeo_ms` per retransmission, up to `timeo_max_ms`.
    Linear,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    /// Retry forever; the caller blocks through an outage.
    #[default]
    Hard,
    /// Fail with EIO after a major timeout.
    Soft,
    /// Fail with ETIMEDOUT after a major timeout (`soft,softerr`).
    SoftErr,
}

/// What happens to a reply, decided by the client's link stream when it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyFate {
    Deliver,
    Drop,
    /// Held back this many nanoseconds beyond the link's own time.
    DelayNs(u64),
}

#[derive(Serialize, Deserialize)]
pub struct CallMsg {
    pub xid: u32,
    pub reply_fate: ReplyFate,
    pub request: Request,
}

#[derive(Serialize, Deserialize)]
pub struct ReplyMsg {
    pub xid: u32,
    /// Shared with the server's DRC, which may send it again.
    pub reply: Rc<Reply>,
}

/// How a call went, for `served_by` and the counters.
pub struct CallInfo {
    pub xid: u32,
    pub retransmits: u32,
    /// The sequence number of the `Rpc` event that recorded the reply.
    pub ev: u64,
}

/// One client host's RPC transport. Shared by the host's processes; dies with the host.
pub struct Transport {
    world: World,
    host: Rc<str>,
    socket: Datagrams<ReplyMsg, CallMsg>,
    server: Addr,
    pending: RefCell<BTreeMap<u32, oneshot::Sender<Reply>>>,
    xid_next: Cell<u32>,
    link: RefCell<Rng>,
    faults: RefCell<LinkFaults>,
    options: TransportOptions,
}

impl Transport {
    /// Binds the client socket and starts the task that routes replies to callers.
    pub async fn bind(
        world: World,
        host: Rc<str>,
        server: &str,
        incarnation: u32,
        faults: LinkFaults,
        options: TransportOptions,
    ) -> Rc<Transport> {
        let socket =
            Datagrams::bind(Addr { host: host.clone(), port: CLIENT_PORT }).await.expect("bind NFS client port");
        let server = Addr { host: server.into(), port: NFS_PORT };
        let link = Rng::stream(world.seed(), &format!("link/{host}->{}", server.host));
        let transport = Rc::new(Transport {
            world,
            host,
            socket,
            server,
            pending: RefCell::new(BTreeMap::new()),
            // xids start at a per-incarnation base, as a rebooted client picks a new one.
            xid_next: Cell::new(incarnation.wrapping_mul(0x0100_0000) + 1),
            link: RefCell::new(link),
            faults: RefCell::new(faults),
            options,
        });
        let receiver = transport.clone();
        let host = transport.host.clone();
        crate::engine::spawn(&host, async move { receiver.receive_loop().await });
        transport
    }

    async fn receive_loop(self: Rc<Self>) {
        loop {
            let (msg, _from) = self.socket.recv().await;
            // A reply to an xid nobody waits for (a duplicate, or one that arrives after a
            // soft timeout) is dropped, as the kernel drops it.
            let waiter = self.pending.borrow_mut().remove(&msg.xid);
            if let Some(tx) = waiter {
                let _ = tx.send(Rc::try_unwrap(msg.reply).unwrap_or_else(|shared| (*shared).clone()));
            }
        }
    }

    /// Changes this link's fault rates from now on.
    pub fn set_faults(&self, faults: LinkFaults) {
        *self.faults.borrow_mut() = faults;
    }

    /// A hold-back in ns: whole microseconds, drawn uniformly.
    fn draw_delay(faults: &LinkFaults, rng: &mut Rng) -> u64 {
        if faults.delay_us_max > 0 && rng.chance_ppm(faults.delay_ppm) {
            rng.between(1, faults.delay_us_max) * 1000
        } else {
            0
        }
    }

    /// Sends one transmission of `xid` with a freshly drawn fate.
    fn transmit(&self, xid: u32, request: &Request) {
        let (copies, request_delay, reply_fate) = {
            let mut rng = self.link.borrow_mut();
            let faults = self.faults.borrow();
            let drop_request = rng.chance_ppm(faults.drop_request_ppm);
            let duplicate = rng.chance_ppm(faults.duplicate_ppm);
            let request_delay = Self::draw_delay(&faults, &mut rng);
            let reply_fate = if rng.chance_ppm(faults.drop_reply_ppm) {
                ReplyFate::Drop
            } else {
                match Self::draw_delay(&faults, &mut rng) {
                    0 => ReplyFate::Deliver,
                    ns => ReplyFate::DelayNs(ns),
                }
            };
            let copies = if drop_request {
                0
            } else if duplicate {
                2
            } else {
                1
            };
            (copies, request_delay, reply_fate)
        };
        if copies == 0 {
            self.world.count(|c| c.requests_dropped += 1);
            return;
        }
        if copies == 2 {
            self.world.count(|c| c.requests_duplicated += 1);
        }
        let wire_bytes = request.wire_bytes();
        for _ in 0..copies {
            let msg = CallMsg { xid, reply_fate, request: request.clone() };
            self.socket.send(&self.server, msg, Duration::from_nanos(request_delay), wire_bytes);
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn host(&self) -> &Rc<str> {
        &self.host
    }

    /// Performs one RPC. `span` links the RPC events to the `Os` call that caused them.
    pub async fn call(&self, span: u64, request: &Request) -> Result<(Reply, CallInfo), i32> {
        let xid = self.xid_next.get();
        self.xid_next.set(xid.wrapping_add(1));
        let proc = request.proc();
        let (tx, mut rx) = oneshot::channel();
        self.pending.borrow_mut().insert(xid, tx);
        self.world.count(|c| *c.rpcs.entry(proc.name()).or_default() += 1);
        let initial = Duration::from_millis(self.options.timeo_ms.max(1));
        let mut timeo = initial;
        let timeo_max = Duration::from_millis(self.options.timeo_max_ms.max(self.options.timeo_ms).max(1));
        let mut retransmit = 0u32;
        let mut minor = 0u32;
        loop {
            self.transmit(xid, request);
            match crate::engine::timeout(timeo, &mut rx).await {
                Some(Ok(reply)) => {
                    let outcome = match &reply.status {
                        Ok(_) => "OK",
                        Err(stat) => stat.name(),
                    };
                    let ev = self.world.record_rpc(span, &self.host, xid, proc.name(), retransmit, outcome);
                    return Ok((reply, CallInfo { xid, retransmits: retransmit, ev }));
                }
                Some(Err(_)) => unreachable!("the reply router never drops a waiter it holds"),
                None => {
                    self.world.record_rpc(span, &self.host, xid, proc.name(), retransmit, "timeout");
                    retransmit += 1;
                    minor += 1;
                    if minor > self.options.retrans {
                        minor = 0;
                        // A major timeout resets the timeout to its initial value
                        // (`xprt_adjust_timeout`).
                        timeo = initial;
                        match self.options.mount {
                            MountKind::Hard => {
                                self.world.fault(format!(
                                    "nfs: server not responding, still trying ({} x{xid} {})",
                                    self.host,
                                    proc.name()
                                ));
                            }
                            MountKind::Soft | MountKind::SoftErr => {
                                self.pending.borrow_mut().remove(&xid);
                                return Err(if self.options.mount == MountKind::Soft {
                                    libc::EIO
                                } else {
                                    libc::ETIMEDOUT
                                });
                            }
                        }
                    }
                    self.world.count(|c| c.retransmissions += 1);
                    if minor > 0 {
                        timeo = match self.options.backoff {
                            Backoff::Exponential => (timeo * 2).min(timeo_max),
                            Backoff::Linear => (timeo + initial).min(timeo_max),
                        };
                    }
                }
            }
        }
    }
}
