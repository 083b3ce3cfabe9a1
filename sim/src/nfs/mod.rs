//! The simulated NFSv3 filesystem: wire shapes, the server's inode store, the
//! server host, and each client host's kernel client.

pub mod client;
pub mod proto;
pub mod server;
pub mod store;
