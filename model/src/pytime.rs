//! Python's view of time and floats, as Mailman writes them into file names.
//!
//! Models `time.time()` (a float of seconds since the epoch, read from the
//! process's own clock through `Os::now`) and `repr(float)`, which Mailman
//! uses in queue file names (spec/mailman.md §3.2). Leaves out Python's
//! exponent notation, which only appears for values Mailman never produces.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::os::Os;

/// Python `time.time()` on this process's clock.
pub fn time_s<O: Os>(os: &O) -> f64 {
    system_time_s(os.now())
}

/// Seconds since the epoch of a `SystemTime`, as Python's float.
pub fn system_time_s(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Python `repr(float)`: the shortest string that round-trips, with `.0`
/// appended to integral values (`repr(3.0) == '3.0'`).
pub fn repr_f64(x: f64) -> String {
    let s = format!("{x}");
    if s.contains(['.', 'e', 'E', 'n', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A duration given in (possibly fractional) seconds, as Mailman's settings are.
/// Negative and non-finite values count as zero.
pub fn duration_s(seconds: f64) -> Duration {
    if seconds.is_finite() && seconds > 0.0 {
        Duration::from_secs_f64(seconds)
    } else {
        Duration::ZERO
    }
}
