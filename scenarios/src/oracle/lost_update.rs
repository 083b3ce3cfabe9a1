//! `lost_update`: no update of the list config is lost.
//!
//! - The `post_id` of successive saves of one list never goes down, and goes up
//!   by at most one per save (an ArchRunner save leaves it unchanged).
//! - No two messages carry the same post number, at the pipeline or at the sink.
//! - Every bounce registered under the lock is still in the final config.

use std::collections::BTreeMap;

use model::ModelEvent;

use super::{History, OracleResult};

pub fn check(history: &History) -> OracleResult {
    let mut violations = Vec::new();
    let mut checked = 0u64;
    let mut last_saved: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut numbered: BTreeMap<(&str, u64), (&str, u64)> = BTreeMap::new();
    let mut sink: BTreeMap<u64, (&str, u64)> = BTreeMap::new();
    let mut registered: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (event, host, pid, note) in history.notes() {
        match note {
            ModelEvent::ListSaved { list, post_id, .. } => {
                checked += 1;
                if let Some((prev, prev_seq)) = last_saved.get(list.as_str()) {
                    if post_id < prev || *post_id > prev + 1 {
                        violations.push((
                            event.seq,
                            format!(
                                "t={:.3}s {host}/{pid} saved {list} with post_id {post_id} after a save with {prev} [events {prev_seq}, {}]",
                                event.t.as_secs_f64(),
                                event.seq
                            ),
                        ));
                    }
                }
                last_saved.insert(list, (*post_id, event.seq));
            }
            ModelEvent::PostNumbered { list, message_id, post_id } => {
                checked += 1;
                if let Some((other, seq)) = numbered.get(&(list.as_str(), *post_id)) {
                    if other != message_id {
                        violations.push((
                            event.seq,
                            format!(
                                "{list}: post number {post_id} given to {message_id} and to {other} [events {seq}, {}]",
                                event.seq
                            ),
                        ));
                    }
                }
                numbered.insert((list, *post_id), (message_id, event.seq));
            }
            ModelEvent::SinkReceived { message_id, post_number: Some(n), .. } => match sink.get(n) {
                Some((other, seq)) if other != message_id => {
                    violations.push((
                        event.seq,
                        format!(
                            "the sink saw post number {n} on {message_id} and on {other} [events {seq}, {}]",
                            event.seq
                        ),
                    ));
                }
                _ => {
                    sink.insert(*n, (message_id, event.seq));
                }
            },
            ModelEvent::BounceRegistered { list, address } => {
                registered.insert((list, address), event.seq);
            }
            _ => {}
        }
    }
    for ((list, address), seq) in &registered {
        checked += 1;
        if !history.final_bounce_addresses(list).contains(*address) {
            violations.push((*seq, format!("{list}: the bounce of {address} registered at event {seq} is not in the final config (lost update)")));
        }
    }
    OracleResult::new("lost_update", checked, violations)
}
