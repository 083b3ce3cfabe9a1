//! `--trace-filter`: which events `mmsim run --trace FILE` writes.
//!
//! `path=lists/test,host=mail1,pid=12` keeps the events that match every
//! given key. `path` is a substring of a call's or a server apply's args or of
//! a note's text; `host` is the event's host (the client, for server applies);
//! `pid` is the event's process. An RPC is judged by the call it belongs to,
//! and a server apply by the call whose RPC it executed, so that filtering on
//! a process keeps its whole causal chain.

use std::collections::BTreeMap;

use sim::{Event, EventKind};

/// A parsed filter; an empty filter keeps everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceFilter {
    pub path: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u32>,
}

impl TraceFilter {
    /// Parses `key=value,key=value`. Unknown keys, repeated keys, a missing `=`
    /// or a bad pid are refused with one line.
    pub fn parse(text: &str) -> Result<TraceFilter, String> {
        let mut f = TraceFilter::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("--trace-filter {part:?}: expected key=value (keys: path, host, pid)"));
            };
            let repeated = match key {
                "path" => f.path.replace(value.to_string()).is_some(),
                "host" => f.host.replace(value.to_string()).is_some(),
                "pid" => {
                    let pid = value
                        .parse()
                        .map_err(|_| format!("--trace-filter pid={value:?}: expected an unsigned integer"))?;
                    f.pid.replace(pid).is_some()
                }
                other => {
                    return Err(format!("--trace-filter: unknown key {other:?}; expected one of: path, host, pid"))
                }
            };
            if repeated {
                return Err(format!("--trace-filter: key {key:?} given twice"));
            }
        }
        Ok(f)
    }

    /// The sequence numbers of the events of `events` the filter keeps.
    pub fn select(&self, events: &[Event]) -> Vec<bool> {
        // (host, span) -> (pid, args) of the call; (host, xid) -> span of the RPC.
        let mut calls: BTreeMap<u64, (u32, &str)> = BTreeMap::new();
        let mut spans: BTreeMap<(&str, u32), u64> = BTreeMap::new();
        for e in events {
            match &e.kind {
                EventKind::Call { span, pid, args, .. } => {
                    calls.insert(*span, (*pid, args.as_str()));
                }
                EventKind::Rpc { span, host, xid, .. } => {
                    spans.insert((&**host, *xid), *span);
                }
                _ => {}
            }
        }
        events
            .iter()
            .map(|e| {
                let (pid, text): (Option<u32>, Option<&str>) = match &e.kind {
                    EventKind::Call { pid, args, .. } => (Some(*pid), Some(args)),
                    EventKind::Note { pid, text, .. } => (Some(*pid), Some(text)),
                    EventKind::Rpc { span, .. } => match calls.get(span) {
                        Some((pid, args)) => (Some(*pid), Some(*args)),
                        None => (None, None),
                    },
                    EventKind::Apply { client, xid, args, .. } => {
                        let pid = spans.get(&(&**client, *xid)).and_then(|s| calls.get(s)).map(|c| c.0);
                        (pid, Some(args.as_str()))
                    }
                    EventKind::Start { args, .. } => (e.kind.pid(), args.first().map(String::as_str)),
                    other => (other.pid(), None),
                };
                self.host.as_deref().is_none_or(|h| e.kind.host() == Some(h))
                    && self.pid.is_none_or(|p| pid == Some(p))
                    && self.path.as_deref().is_none_or(|p| text.is_some_and(|t| t.contains(p)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_keys_parse_and_unknown_ones_are_refused() {
        let f = TraceFilter::parse("path=lists/test,host=mail1,pid=12").unwrap();
        assert_eq!(f.path.as_deref(), Some("lists/test"));
        assert_eq!(f.host.as_deref(), Some("mail1"));
        assert_eq!(f.pid, Some(12));
        assert!(TraceFilter::parse("colour=red").unwrap_err().contains("unknown key"));
        assert!(TraceFilter::parse("pid=x").is_err());
        assert!(TraceFilter::parse("host").is_err());
        assert!(TraceFilter::parse("host=a,host=b").is_err());
    }
}
