//! The NFS server host: drains its socket of every request delivered at one
//! instant, serves the batch in a seeded order, answers duplicates from the
//! DRC, and replies with post-op attributes.
//!
//! Requests that arrive at one instant (one turmoil step, or one nanosecond of
//! the events engine) are queued in the order their links delivered them, so
//! without a shuffle one client would always be served first. The server
//! therefore drains the socket and applies the batch in an order drawn from
//! its own stream `server/order`.
//!
//! **Crash and reboot** (docs/semantics/nfs-server.md §5): while down, the server drops every
//! request it receives (and any reply it was still holding back). A crash
//! empties the DRC, drops uncommitted UNSTABLE data, changes the write verifier,
//! and under an `async` export reverts the namespace to the last durable
//! snapshot, which a background "sync" advances every `async_sync_ms` (plus a
//! seeded jitter). File handles survive a reboot, as a v3 server's do.
//!
//! **Replays.** The server keeps, for the trace only, which (client, port, xid)
//! of a non-idempotent procedure it has already executed, so an `Apply` of a
//! re-execution is marked `replay`, and a replay that answers EEXIST or ENOENT
//! after a successful first execution counts as a false reply (docs/semantics/nfs-server.md §4).
//!
//! **Synchronous metadata** (`sync_metadata_us`, docs/semantics/nfs-server-sync.md):
//! under a `sync` export a successful metadata change (CREATE, MKDIR, REMOVE,
//! RMDIR, RENAME, LINK, SETATTR, COMMIT, a WRITE that is not UNSTABLE) is
//! applied at arrival, so every client sees it at once, as knfsd changes its
//! dcache first; its reply leaves when the one disk has committed it, at
//! `max(now, disk free) + sync_metadata_us`, so commits queue behind each
//! other. Until then a retransmission is dropped as in progress. Reads,
//! lookups and failed requests do not wait. 0 (every shipped scenario):
//! replies leave at once.
//!
//! Not modelled: server processing time other than the reply delay drawn by the
//! link (a delayed reply stands for a request still in progress) and the disk
//! wait above; a bounded pool of nfsd threads (a request never waits for a
//! thread busy on the disk); a crash losing a change applied but not yet
//! committed; NLM, v4 state.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::drc::{Drc, DrcKey, DrcLookup};
use super::proto::{NfsStat, Request, Stable};
use super::store::{ReaddirOrder, Store};
use crate::clock::{true_now, ClockConfig};
use crate::engine::{Addr, Datagrams};
use crate::rng::Rng;
use crate::rpc::{CallMsg, ReplyFate, ReplyMsg, NFS_PORT};
use crate::trace::EventKind;
use crate::world::World;

/// `exports(5)` `sync` / `async`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Export {
    /// Reply only after changes are on stable storage (the default since nfs-utils 1.0.0).
    #[default]
    Sync,
    /// Reply before changes are durable: a crash can roll back acknowledged operations.
    Async,
}

/// Named server settings, matching the client profiles (docs/semantics/nfs-server.md §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerProfile {
    /// A jiffy of timestamp granularity, a DRC of 8192 entries.
    #[serde(rename = "linux-modern")]
    LinuxModern,
    /// 1 s timestamp granularity and a small DRC (256 entries).
    #[serde(rename = "linux-2.2")]
    Linux22,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub clock: ClockConfig,
    /// The exported filesystem's timestamp granularity: a jiffy (4 ms at HZ=250)
    /// on a modern Linux server, 1000 for old filesystems (docs/semantics/nfs-server.md §7).
    pub timestamp_granularity_ms: u64,
    pub readdir_order: ReaddirOrder,
    /// DRC entries kept before LRU eviction (knfsd: 8192 at 64 MB of memory).
    pub drc_capacity: usize,
    /// DRC entry lifetime (`RC_EXPIRE`).
    pub drc_ttl_s: u64,
    pub export: Export,
    /// Under `async`, how often the durable snapshot catches up (a seeded jitter
    /// of up to the same again is added to each interval).
    pub async_sync_ms: u64,
    /// Under `sync`: how long the disk takes to commit one metadata change
    /// (docs/semantics/nfs-server-sync.md). A request that changes metadata
    /// is applied at arrival, visible to every client at once, and its reply
    /// leaves when the disk has committed it; the one disk serialises the
    /// commits. 0: replies leave at once (every shipped scenario).
    pub sync_metadata_us: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::profile(ServerProfile::LinuxModern)
    }
}

impl ServerConfig {
    pub fn profile(profile: ServerProfile) -> ServerConfig {
        let base = ServerConfig {
            clock: ClockConfig::default(),
            timestamp_granularity_ms: 4,
            readdir_order: ReaddirOrder::Creation,
            drc_capacity: 8192,
            drc_ttl_s: 120,
            export: Export::Sync,
            async_sync_ms: 5000,
            sync_metadata_us: 0,
        };
        match profile {
            ServerProfile::LinuxModern => base,
            ServerProfile::Linux22 => ServerConfig { timestamp_granularity_ms: 1000, drc_capacity: 256, ..base },
        }
    }
}

/// Everything the server keeps. The store is durable (but see `async`); the rest is volatile.
pub struct ServerState {
    pub store: Store,
    pub config: ServerConfig,
    order: Rng,
    boot_rng: Rng,
    drc: Drc,
    /// Under `async`: the namespace as last made durable.
    durable: Option<Store>,
    /// Boots so far; a reply held back across a crash is dropped.
    boot: u32,
    down_until: Option<Duration>,
    /// Trace bookkeeping, not server state: non-idempotent requests already
    /// executed, and whether the first execution succeeded. Survives reboots.
    executed: BTreeMap<(Addr, u32), bool>,
    /// Under `sync` with `sync_metadata_us`: when the disk finishes the last
    /// commit queued on it (true time).
    disk_free_at: Duration,
}

impl ServerState {
    pub fn new(seed: u64, config: ServerConfig) -> ServerState {
        let now = config.clock.wall_ns(Duration::ZERO);
        let order_seed = Rng::stream(seed, "server/readdir").u64();
        let mut store = Store::new(
            now,
            config.timestamp_granularity_ms.max(1) as i64 * 1_000_000,
            config.readdir_order,
            order_seed,
        );
        let mut boot_rng = Rng::stream(seed, "server/boot");
        store.write_verf = boot_rng.u64();
        let durable = (config.export == Export::Async).then(|| store.clone());
        ServerState {
            store,
            drc: Drc::new(config.drc_capacity, Duration::from_secs(config.drc_ttl_s)),
            config,
            order: Rng::stream(seed, "server/order"),
            boot_rng,
            durable,
            boot: 1,
            down_until: None,
            executed: BTreeMap::new(),
            disk_free_at: Duration::ZERO,
        }
    }

    /// Whether the server is down at true time `now`.
    pub fn is_down(&self, now: Duration) -> bool {
        self.down_until.is_some_and(|t| now < t)
    }

    pub fn drc_len(&self) -> usize {
        self.drc.len()
    }

    /// Crashes the server now; it serves again `down_for` later. Returns
    /// (files whose uncommitted data was lost, whether an async rollback happened).
    pub fn crash(&mut self, now: Duration, down_for: Duration) -> (usize, bool) {
        self.drc.clear();
        let mut rolled_back = false;
        if let Some(durable) = &self.durable {
            rolled_back = durable.dump() != self.store.dump();
            let newer = std::mem::replace(&mut self.store, durable.clone());
            self.store.keep_handles_unique(&newer);
        }
        let lost = self.store.lose_unstable();
        self.store.write_verf = self.boot_rng.u64();
        if let Some(durable) = &mut self.durable {
            *durable = self.store.clone();
        }
        self.boot += 1;
        self.down_until = Some(now + down_for);
        (lost, rolled_back)
    }

    /// How long the reply to `request`, applied at `now` with status `ok`,
    /// waits for the disk: a successful metadata change (or stable write)
    /// under a `sync` export with `sync_metadata_us` set queues behind the
    /// commits already on the one disk, then takes `sync_metadata_us`.
    fn disk_wait(&mut self, request: &Request, ok: bool, now: Duration) -> Duration {
        let latency = Duration::from_micros(self.config.sync_metadata_us);
        if latency.is_zero() || self.config.export != Export::Sync || !ok || !changes_metadata(request) {
            return Duration::ZERO;
        }
        let done = self.disk_free_at.max(now) + latency;
        self.disk_free_at = done;
        done - now
    }

    /// The `async` export's background writeback: the snapshot catches up.
    fn sync_durable(&mut self) {
        if self.durable.is_some() {
            self.durable = Some(self.store.clone());
        }
    }
}

/// The procedures a `sync` export commits before replying (RFC 1813 §3.3;
/// knfsd's `commit_metadata`): every namespace or attribute change, COMMIT,
/// and a WRITE that asks for stable storage.
fn changes_metadata(request: &Request) -> bool {
    match request {
        Request::Write { stable, .. } => *stable != Stable::Unstable,
        Request::Setattr { .. }
        | Request::Commit { .. }
        | Request::Create { .. }
        | Request::Mkdir { .. }
        | Request::Remove { .. }
        | Request::Rmdir { .. }
        | Request::Rename { .. }
        | Request::Link { .. } => true,
        Request::Getattr { .. } | Request::Lookup { .. } | Request::Read { .. } | Request::Readdir { .. } => false,
    }
}

/// XXH3 of the first `RC_CSUMLEN` (256) bytes of the request's postcard
/// encoding. The encoding goes into a fixed buffer that keeps those bytes
/// and then stops the encoder, so a WRITE's data is neither copied into a
/// heap buffer nor walked byte by byte past the cut; the bytes hashed are
/// the same.
fn checksum(call: &CallMsg) -> u64 {
    use serde::Serialize as _;
    let mut encoder = postcard::Serializer { output: Head { bytes: [0; CSUMLEN], len: 0 } };
    // A full head ends the encoding with `SerializeBufferFull`, which is
    // the expected way out for every request longer than the head.
    match call.request.serialize(&mut encoder) {
        Ok(()) | Err(postcard::Error::SerializeBufferFull) => {}
        Err(e) => panic!("encode request: {e}"),
    }
    let head = &encoder.output;
    xxhash_rust::xxh3::xxh3_64(&head.bytes[..head.len])
}

/// knfsd's `RC_CSUMLEN`: how much of a request the DRC checksum covers.
const CSUMLEN: usize = 256;

/// A postcard flavor that keeps the first `CSUMLEN` bytes of an encoding
/// and refuses more.
struct Head {
    bytes: [u8; CSUMLEN],
    len: usize,
}

impl postcard::ser_flavors::Flavor for Head {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let n = data.len().min(CSUMLEN - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        if n < data.len() {
            Err(postcard::Error::SerializeBufferFull)
        } else {
            Ok(())
        }
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<Self::Output> {
        Ok(())
    }
}

/// The server host's software.
pub async fn serve(world: World) -> Result<(), String> {
    let host: Rc<str> = crate::SERVER_HOST.into();
    let socket: Rc<ServerSocket> = Rc::new(
        Datagrams::bind(Addr { host: host.clone(), port: NFS_PORT })
            .await
            .map_err(|e| format!("bind the NFS port: {}", crate::errno::errno_name(e)))?,
    );
    if world.config().server.export == Export::Async {
        let w = world.clone();
        crate::engine::spawn(&host, async move {
            let interval = w.config().server.async_sync_ms.max(1);
            let mut rng = Rng::stream(w.seed(), "server/sync");
            loop {
                crate::engine::sleep(Duration::from_millis(interval + rng.below(interval + 1))).await;
                w.with_server(|s| {
                    if !s.is_down(true_now()) {
                        s.sync_durable()
                    }
                });
            }
        });
    }
    loop {
        let first = socket.recv().await;
        let mut batch: Vec<(CallMsg, Addr)> = vec![first];
        while let Some(next) = socket.try_recv() {
            batch.push(next);
        }
        if world.with_server(|s| s.is_down(true_now())) {
            world.count(|c| c.requests_dropped_server_down += batch.len() as u64);
            continue;
        }
        world.with_server(|s| s.order.shuffle(&mut batch));
        for (call, from) in batch {
            serve_one(&world, &socket, call, from);
        }
    }
}

type ServerSocket = Datagrams<CallMsg, ReplyMsg>;

fn serve_one(world: &World, socket: &Rc<ServerSocket>, call: CallMsg, from: Addr) {
    let proc = call.request.proc();
    let now = true_now();
    let key = proc.is_non_idempotent().then(|| DrcKey {
        client: from.clone(),
        xid: call.xid,
        proc,
        checksum: checksum(&call),
    });
    let client = from.host.clone();
    if let Some(key) = &key {
        let found = world.with_server(|s| s.drc.lookup(key, now));
        match found {
            DrcLookup::Miss => world.count(|c| c.drc_misses += 1),
            DrcLookup::InProgress => {
                world.count(|c| c.drc_in_progress_drops += 1);
                world.record(EventKind::Drc {
                    client: client.clone(),
                    xid: call.xid,
                    proc: proc.name(),
                    outcome: "in-progress",
                });
                return;
            }
            DrcLookup::Done(reply) => {
                world.count(|c| c.drc_hits += 1);
                world.record(EventKind::Drc { client, xid: call.xid, proc: proc.name(), outcome: "hit" });
                let boot = world.with_server(|s| s.boot);
                send(
                    world,
                    socket,
                    call.reply_fate,
                    ReplyMsg { xid: call.xid, reply },
                    from,
                    None,
                    boot,
                    Duration::ZERO,
                );
                return;
            }
        }
    }
    let (reply, replay, boot, disk) = world.with_server(|s| {
        let wall = s.config.clock.wall_ns(now);
        let reply = s.store.apply(&call.request, wall);
        let ok = reply.status.is_ok();
        let disk = s.disk_wait(&call.request, ok, now);
        let replay = match key {
            Some(_) => match s.executed.get(&(from.clone(), call.xid)) {
                Some(first_ok) => Some(*first_ok),
                None => {
                    s.executed.insert((from.clone(), call.xid), ok);
                    None
                }
            },
            None => None,
        };
        (reply, replay, s.boot, disk)
    });
    let status = match &reply.status {
        Ok(_) => "OK",
        Err(stat) => stat.name(),
    };
    if let Some(first_ok) = replay {
        world.count(|c| {
            c.replays_executed += 1;
            match reply.status {
                Err(NfsStat::Exist) if first_ok => c.false_eexist_replies += 1,
                Err(NfsStat::Noent) if first_ok => c.false_enoent_replies += 1,
                _ => {}
            }
        });
    }
    world.record_apply(client, call.xid, proc.name(), call.request.describe(), status, replay.is_some());
    let reply = Rc::new(reply);
    if let Some(key) = key {
        // A reply held back by the link, or waiting for the disk, stands for
        // a request still in progress.
        let done = !matches!(call.reply_fate, ReplyFate::DelayNs(_)) && disk.is_zero();
        world.with_server(|s| s.drc.insert(key.clone(), done.then(|| reply.clone()), now));
        let pending = (!done).then_some(key);
        send(world, socket, call.reply_fate, ReplyMsg { xid: call.xid, reply }, from, pending, boot, disk);
    } else {
        send(world, socket, call.reply_fate, ReplyMsg { xid: call.xid, reply }, from, None, boot, disk);
    }
}

/// Sends a reply as its fate says, once the disk has committed (`disk`
/// later). A held-back reply is dropped if the server rebooted meanwhile;
/// `pending` names the DRC entry it completes.
#[allow(clippy::too_many_arguments)]
fn send(
    world: &World,
    socket: &Rc<ServerSocket>,
    fate: ReplyFate,
    msg: ReplyMsg,
    to: Addr,
    pending: Option<DrcKey>,
    boot: u32,
    disk: Duration,
) {
    let wire_bytes = msg.reply.wire_bytes();
    if !disk.is_zero() {
        // The disk's wait comes first; the link's hold-back (or loss) after it.
        let (hold, lost) = match fate {
            ReplyFate::Deliver => (Duration::ZERO, false),
            ReplyFate::Drop => (Duration::ZERO, true),
            ReplyFate::DelayNs(ns) => (Duration::from_nanos(ns), false),
        };
        let socket = socket.clone();
        let world = world.clone();
        crate::engine::spawn(crate::SERVER_HOST, async move {
            crate::engine::sleep(disk + hold).await;
            let alive = world.with_server(|s| {
                let alive = s.boot == boot && !s.is_down(true_now());
                if let (true, Some(key)) = (alive, pending) {
                    s.drc.complete(&key, msg.reply.clone(), true_now());
                }
                alive
            });
            if alive && lost {
                world.count(|c| c.replies_dropped += 1);
            } else if alive {
                socket.send(&to, msg, Duration::ZERO, wire_bytes);
            }
        });
        return;
    }
    match fate {
        ReplyFate::Deliver => socket.send(&to, msg, Duration::ZERO, wire_bytes),
        ReplyFate::Drop => world.count(|c| c.replies_dropped += 1),
        ReplyFate::DelayNs(ns) => {
            let socket = socket.clone();
            let world = world.clone();
            crate::engine::spawn(crate::SERVER_HOST, async move {
                crate::engine::sleep(Duration::from_nanos(ns)).await;
                let alive = world.with_server(|s| {
                    let alive = s.boot == boot && !s.is_down(true_now());
                    if let (true, Some(key)) = (alive, pending) {
                        s.drc.complete(&key, msg.reply.clone(), true_now());
                    }
                    alive
                });
                if alive {
                    socket.send(&to, msg, Duration::ZERO, wire_bytes);
                }
            });
        }
    }
}
