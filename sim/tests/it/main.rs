//! sim's integration tests: the server's inode semantics, the gate, and one
//! module per NFS mechanism (docs/semantics/linux-nfs-client.md,
//! docs/semantics/nfs-server.md), driven through `Simulation` and programs that
//! make `Proc` calls.

mod attr_cache;
mod close_to_open;
mod dentry_cache;
mod dir_lock;
mod drc;
mod engine;
mod gate;
mod harness;
mod linux22;
mod pages;
mod profiles;
mod sched;
mod server;
mod silly;
mod stalls;
mod store;
mod sync_metadata;
mod timestamps;
mod transport;
