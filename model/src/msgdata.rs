//! The metadata dictionary that travels with a queued message (`msgdata`).
//!
//! Models the keys of Mailman's `msgdata` dict that the queue and runner paths
//! read or write (docs/semantics/mailman-queues-runners.md §3–§15). Keys the model does not know are
//! kept in `other`, so an entry written by a richer producer round-trips.
//! Python drops keys starting with `_` on 2.1.5+ enqueue; `plaintext` is such
//! a key (`_plaintext`), and `parsemsg` is the one the Switchboard adds back.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MsgData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_time: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub tolist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whichq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recips: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undelivered: Option<Vec<Vec<String>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_after: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_until: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recip_count: Option<usize>,
    /// `_plaintext`: the producer hands over text, not a parsed message.
    #[serde(rename = "_plaintext", default, skip_serializing_if = "is_false")]
    pub plaintext: bool,
    /// `_parsemsg`: the entry holds text that dequeue must parse (2.1.5+).
    #[serde(rename = "_parsemsg", default, skip_serializing_if = "is_false")]
    pub parsemsg: bool,
    /// `_bak_count`: how often this entry was recovered from `.bak` (2.1.10+).
    #[serde(rename = "_bak_count", default, skip_serializing_if = "Option::is_none")]
    pub bak_count: Option<u32>,
    /// Keys the model does not interpret, kept for round trips.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl MsgData {
    /// A copy without the `_`-prefixed keys, as 2.1.5+ `enqueue` writes it.
    pub fn without_private_keys(&self) -> MsgData {
        let mut d = self.clone();
        d.plaintext = false;
        d.parsemsg = false;
        d.bak_count = None;
        d.other.retain(|k, _| !k.starts_with('_'));
        d
    }
}
