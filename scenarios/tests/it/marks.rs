//! Coverage marks read the world's counters by field: each counter-backed
//! mark reports its own counter, a trace mark counts its events, and every
//! mark is in the report.

use scenarios::marks::{Marks, MARKS};
use sim::Counters;

#[test]
fn each_counter_backed_mark_reports_its_own_counter() {
    let counters = Counters {
        drc_hits: 1,
        false_eexist_replies: 2,
        false_enoent_replies: 3,
        estale_retries: 4,
        negative_dentry_hits: 5,
        attr_cache_hits: 6,
        silly_renames: 7,
        ..Counters::default()
    };
    let marks = Marks::default().finish(&counters);
    let names: Vec<&str> = marks.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = MARKS.iter().map(|m| m.name).collect();
    expected.sort_unstable();
    assert_eq!(names, expected, "every mark, once");
    let hit: Vec<(&str, u64)> = marks.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.as_str(), *n)).collect();
    assert_eq!(
        hit,
        [
            ("attr_cache_hit", 6),
            ("drc_hit", 1),
            ("estale_retry", 4),
            ("false_eexist", 2),
            ("false_enoent", 3),
            ("negative_dentry_hit", 5),
            ("silly_rename", 7),
        ]
    );
}

#[test]
fn a_trace_mark_counts_its_events() {
    use std::rc::Rc;
    let broken = model::ModelEvent::LockBroken { lock: "l".into(), claim: "c".into(), winner: None };
    let event = sim::Event {
        seq: 0,
        t: std::time::Duration::ZERO,
        kind: sim::EventKind::Note { host: "h".into(), pid: 1, text: String::new(), payload: Rc::new(broken) },
    };
    let mut marks = Marks::default();
    marks.observe(&event);
    marks.observe(&event);
    assert_eq!(marks.finish(&Counters::default()).get("lock_broken"), Some(&2));
}
