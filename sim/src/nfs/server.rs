//! The NFS server host: drains its socket each step, serves the batch in a
//! seeded order, and replies with post-op attributes.
//!
//! turmoil hands a host every message due in a step in link-registration order,
//! so without a shuffle the earlier-registered client would always be served
//! first (spec/determinism.md §6). The server therefore drains the socket and
//! applies the batch in an order drawn from its own stream `server/order`.
//!
//! Not modelled yet: the duplicate request cache, unstable writes and reboots
//! (the NFS semantics issue adds them as their own modules).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use turmoil::net::UdpSocket;

use super::store::{ReaddirOrder, Store};
use crate::clock::{true_now, ClockConfig};
use crate::rng::Rng;
use crate::rpc::{CallMsg, ReplyFate, ReplyMsg, DATAGRAM_BYTES_MAX, NFS_PORT};
use crate::world::World;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub clock: ClockConfig,
    /// The exported filesystem's timestamp granularity: a jiffy (4 ms at HZ=250)
    /// on a modern Linux server, 1000 for old filesystems (spec/nfs.md §4, §12).
    pub timestamp_granularity_ms: u64,
    pub readdir_order: ReaddirOrder,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            clock: ClockConfig::default(),
            timestamp_granularity_ms: 4,
            readdir_order: ReaddirOrder::Creation,
        }
    }
}

/// Everything the server keeps. The store is durable; the rest is volatile.
pub struct ServerState {
    pub store: Store,
    pub config: ServerConfig,
    order: Rng,
    names: BTreeMap<IpAddr, Rc<str>>,
}

impl ServerState {
    pub fn new(seed: u64, config: ServerConfig) -> ServerState {
        let now = config.clock.wall_ns(Duration::ZERO);
        let order_seed = Rng::stream(seed, "server/readdir").u64();
        let store = Store::new(
            now,
            config.timestamp_granularity_ms.max(1) as i64 * 1_000_000,
            config.readdir_order,
            order_seed,
        );
        ServerState { store, config, order: Rng::stream(seed, "server/order"), names: BTreeMap::new() }
    }

    fn client_name(&mut self, ip: IpAddr) -> Rc<str> {
        self.names
            .entry(ip)
            .or_insert_with(|| turmoil::reverse_lookup(ip).unwrap_or_else(|| ip.to_string()).into())
            .clone()
    }
}

/// The server host's software.
pub async fn serve(world: World) -> turmoil::Result {
    let socket = Rc::new(UdpSocket::bind(("0.0.0.0", NFS_PORT)).await?);
    let mut buf = vec![0u8; DATAGRAM_BYTES_MAX];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        let mut batch: Vec<(Vec<u8>, SocketAddr)> = vec![(buf[..n].to_vec(), from)];
        while let Ok((n, from)) = socket.try_recv_from(&mut buf) {
            batch.push((buf[..n].to_vec(), from));
        }
        world.with_server(|s| s.order.shuffle(&mut batch));
        for (bytes, from) in batch {
            let Ok(call) = postcard::from_bytes::<CallMsg>(&bytes) else { continue };
            let reply = world.with_server(|s| {
                let now = s.config.clock.wall_ns(true_now());
                let reply = s.store.apply(&call.request, now);
                let client = s.client_name(from.ip());
                (reply, client)
            });
            let (reply, client) = reply;
            let status = match &reply.status {
                Ok(_) => "OK",
                Err(stat) => stat.name(),
            };
            world.record_apply(client, call.xid, call.request.proc().name(), call.request.describe(), status, false);
            let bytes = postcard::to_allocvec(&ReplyMsg { xid: call.xid, reply }).expect("encode reply");
            match call.reply_fate {
                ReplyFate::Deliver => {
                    let _ = socket.try_send_to(&bytes, from);
                }
                ReplyFate::Drop => world.count(|c| c.replies_dropped += 1),
                ReplyFate::DelayMs(ms) => {
                    let socket = socket.clone();
                    tokio::task::spawn_local(async move {
                        tokio::time::sleep(Duration::from_millis(ms as u64)).await;
                        let _ = socket.try_send_to(&bytes, from);
                    });
                }
            }
        }
    }
}
