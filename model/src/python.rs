//! Python's view of time and floats, as Mailman uses them: `time.time()`,
//! `int(time.time())`, `repr(float)` in queue file names
//! (docs/semantics/mailman-queues-runners.md §3), `time.localtime()[:3]` for bounce dates, and seconds-as-floats for
//! settings. The one home of these idioms; file idioms live in `fileio`.
//!
//! Leaves out Python's exponent notation in `repr`, which only appears for
//! values Mailman never produces, and time zones (the model's local time is UTC).

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

/// `int(t)` of a time in seconds: whole seconds, toward zero.
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(e) => UNIX_EPOCH - Duration::from_secs(e.duration().as_secs()),
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

/// `time.localtime(t)[:3]` in UTC: `(year, month, day)` of a Unix time in seconds.
pub fn localtime_ymd(t_s: f64) -> (i64, u32, u32) {
    civil_from_days((t_s / 86_400.0).floor() as i64)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Seconds and nanoseconds since the epoch, with the nanoseconds in [0, 1e9)
/// as `timespec` wants them, also for times before 1970.
pub fn unix_seconds(t: SystemTime) -> (i64, i64) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, i64::from(d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let (secs, nanos) = (-(d.as_secs() as i64), i64::from(d.subsec_nanos()));
            if nanos == 0 {
                (secs, 0)
            } else {
                (secs - 1, 1_000_000_000 - nanos)
            }
        }
    }
}

/// Mailman's log stamp, `time.strftime('%b %d %H:%M:%S %Y')`, in UTC.
pub fn mailman_timestamp(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (secs, _) = unix_seconds(t);
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (day_secs / 3600, day_secs % 3600 / 60, day_secs % 60);
    format!("{} {day:02} {h:02}:{m:02}:{s:02} {year}", MONTHS[month as usize - 1])
}

/// Serde for a `Duration` setting written as float seconds (`"lifetime_s": 18000.0`),
/// so that every time knob reads the same way in `--settings` JSON. Use with
/// `#[serde(rename = "<name>_s", with = "crate::python::serde_seconds")]`.
pub mod serde_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(d)?;
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(serde::de::Error::custom(format!(
                "a duration in seconds must be finite and >= 0, not {seconds}"
            )));
        }
        Ok(Duration::from_secs_f64(seconds))
    }
}
