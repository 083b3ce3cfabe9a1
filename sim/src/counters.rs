//! The counters every report shows: what the NFS client, the RPC layer, the
//! server and the gate did, as counts. The world owns one set; mechanisms
//! bump them as they act, and nothing reads them to decide anything.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counters every report shows. All are counts of events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counters {
    /// RPCs by procedure (first transmissions).
    pub rpcs: BTreeMap<&'static str, u64>,
    pub retransmissions: u64,
    pub requests_dropped: u64,
    pub requests_duplicated: u64,
    pub replies_dropped: u64,
    /// Requests that reached the server while it was down.
    pub requests_dropped_server_down: u64,
    pub drc_hits: u64,
    pub drc_misses: u64,
    /// Duplicates dropped because the original was still in progress.
    pub drc_in_progress_drops: u64,
    /// Non-idempotent requests the server executed a second time.
    pub replays_executed: u64,
    /// Replays that answered EEXIST (or ENOENT) though the first execution succeeded.
    pub false_eexist_replies: u64,
    pub false_enoent_replies: u64,
    /// EEXIST turned into success by `map_eexist_to_success`.
    pub eexist_mapped_to_success: u64,
    /// ESTALE (or its ENOENT mapping) returned to an application.
    pub estale_returns: u64,
    /// Path walks retried once on ESTALE.
    pub estale_retries: u64,
    pub attr_cache_hits: u64,
    pub negative_dentry_hits: u64,
    pub positive_dentry_hits: u64,
    pub page_cache_hits: u64,
    pub readdir_cache_hits: u64,
    pub silly_renames: u64,
    /// Flushes of dirty pages that sent at least one WRITE.
    pub flushes: u64,
    /// Extents resent after a COMMIT showed a new write verifier.
    pub writes_resent: u64,
    pub server_reboots: u64,
    /// Files whose uncommitted UNSTABLE data a reboot lost.
    pub unstable_files_lost: u64,
    /// Reboots of an `async` export that rolled back acknowledged changes.
    pub rollbacks: u64,
    pub stalls: u64,
    pub stall_ms_total: u64,
    /// Acquisitions of a client's VFS directory lock that had to wait for
    /// another process of the same host (docs/semantics/dir-locking.md).
    pub dir_lock_waits: u64,
    pub dir_lock_wait_us_total: u64,
    pub calls: u64,
    pub processes_started: u64,
    pub process_crashes: u64,
    pub host_crashes: u64,
}
