//! The simulated NFSv3 filesystem: wire shapes, the server's inode store, the
//! server host with its duplicate request cache, and each client host's kernel
//! client with its caches. Each behaviour of docs/semantics/linux-nfs-client.md and
//! docs/semantics/nfs-server.md is one module:
//! - `proto`: the wire shapes. `store`: the server's inodes (atomic procedures,
//!   UNSTABLE data). `drc`: the duplicate request cache. `server`: the host loop,
//!   crash and reboot, the `async` export.
//! - `mount`: mount options and client profiles. `client`: the path walk, CTO, the
//!   calls. `attr_cache`, `dentry_cache`, `readdir_cache`, `pages`: the client
//!   caches. `silly`: silly rename. `dir_lock`: the VFS directory locks of one
//!   client host.

pub mod attr_cache;
pub mod client;
pub mod dentry_cache;
pub mod dir_lock;
pub mod drc;
pub mod mount;
pub mod pages;
pub mod proto;
pub mod readdir_cache;
pub mod server;
pub mod silly;
pub mod store;
