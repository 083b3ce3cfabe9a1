//! sim's integration tests: the server's inode semantics, the gate, and determinism.

mod gate;
mod store;
