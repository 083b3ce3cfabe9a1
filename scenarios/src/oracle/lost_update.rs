//! `lost_update`: no update of the list config is lost.
//!
//! - The `post_id` of successive saves of one list never goes down, and goes up
//!   by at most one per save (an ArchRunner save leaves it unchanged).
//! - No two messages carry the same post number, at the pipeline or at the sink.
//! - Every bounce registered under the lock is still in the final config.
//!
//! The first two are facts of the moment they happen. The third is judged at
//! the end; a registration is made in memory and becomes durable with its
//! process's next save of the list, so in a run cut off before that save
//! (`End::cut`) it is pending, not lost.

use std::collections::{BTreeMap, BTreeSet};

use model::ModelEvent;

use super::{End, Oracle, OracleResult, Property, Seen, Violations};

/// A safety property: a save that goes backwards, a post number given twice or a saved bounce that vanished happened.
pub const PROPERTY: Property = Property::Safety;

#[derive(Default)]
pub struct LostUpdate {
    violations: Violations,
    checked: u64,
    /// list -> (post_id, event) of its last save.
    last_saved: BTreeMap<String, (u64, u64)>,
    /// list -> post number -> (message, event) that last got it.
    numbered: BTreeMap<String, BTreeMap<u64, (String, u64)>>,
    /// post number -> (message, event) the sink last saw it on.
    sink: BTreeMap<u64, (String, u64)>,
    /// list -> address -> event of its last registration.
    registered: BTreeMap<String, BTreeMap<String, u64>>,
    /// (host, pid, list) -> addresses it registered and has not yet saved.
    unsaved: BTreeMap<(String, u32, String), BTreeSet<String>>,
}

impl Oracle for LostUpdate {
    fn observe(&mut self, seen: &Seen) {
        let Some((host, pid, note)) = seen.note else { return };
        let event = seen.event;
        match note {
            ModelEvent::ListSaved { list, post_id, .. } => {
                self.checked += 1;
                if !self.unsaved.is_empty() {
                    self.unsaved.remove(&(host.to_string(), pid, list.clone()));
                }
                match self.last_saved.get_mut(list.as_str()) {
                    Some(last) => {
                        let (prev, prev_seq) = *last;
                        if *post_id < prev || *post_id > prev + 1 {
                            self.violations.push(event.seq, || {
                                format!(
                                    "t={:.3}s {host}/{pid} saved {list} with post_id {post_id} after a save with {prev} [events {prev_seq}, {}]",
                                    event.t.as_secs_f64(),
                                    event.seq
                                )
                            });
                        }
                        *last = (*post_id, event.seq);
                    }
                    None => {
                        self.last_saved.insert(list.clone(), (*post_id, event.seq));
                    }
                }
            }
            ModelEvent::PostNumbered { list, message_id, post_id } => {
                self.checked += 1;
                let numbered = match self.numbered.get_mut(list.as_str()) {
                    Some(numbered) => numbered,
                    None => self.numbered.entry(list.clone()).or_default(),
                };
                if let Some((other, seq)) = numbered.get(post_id) {
                    if other != message_id {
                        self.violations.push(event.seq, || {
                            format!(
                                "{list}: post number {post_id} given to {message_id} and to {other} [events {seq}, {}]",
                                event.seq
                            )
                        });
                    }
                }
                numbered.insert(*post_id, (message_id.clone(), event.seq));
            }
            ModelEvent::SinkReceived { message_id, post_number: Some(n), .. } => match self.sink.get_mut(n) {
                Some((other, seq)) if other != message_id => {
                    let (other, seq) = (other.as_str(), *seq);
                    self.violations.push(event.seq, || {
                        format!(
                            "the sink saw post number {n} on {message_id} and on {other} [events {seq}, {}]",
                            event.seq
                        )
                    });
                }
                Some((_, seq)) => *seq = event.seq,
                None => {
                    self.sink.insert(*n, (message_id.clone(), event.seq));
                }
            },
            ModelEvent::BounceRegistered { list, address } => {
                let addresses = match self.registered.get_mut(list.as_str()) {
                    Some(addresses) => addresses,
                    None => self.registered.entry(list.clone()).or_default(),
                };
                addresses.insert(address.clone(), event.seq);
                self.unsaved.entry((host.to_string(), pid, list.clone())).or_default().insert(address.clone());
            }
            _ => {}
        }
    }

    fn finish(self: Box<Self>, end: &End) -> OracleResult {
        let LostUpdate { mut violations, mut checked, registered, unsaved, .. } = *self;
        // Registrations whose save the cut came before: in flight, not judged.
        let pending: BTreeSet<(&str, &str)> = if end.cut {
            unsaved.iter().flat_map(|((_, _, list), a)| a.iter().map(move |a| (list.as_str(), a.as_str()))).collect()
        } else {
            BTreeSet::new()
        };
        let configs = if registered.is_empty() { BTreeMap::new() } else { end.final_configs() };
        for (list, addresses) in &registered {
            let config = configs.get(list);
            for (address, seq) in addresses {
                if pending.contains(&(list.as_str(), address.as_str())) {
                    continue;
                }
                checked += 1;
                if !config.is_some_and(|c| c.bounce_info.contains_key(address)) {
                    violations.push(*seq, || format!("{list}: the bounce of {address} registered at event {seq} is not in the final config (lost update)"));
                }
            }
        }
        OracleResult::new("lost_update", checked, violations)
    }
}
