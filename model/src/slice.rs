//! Hash-space slices of a queue directory (docs/semantics/mailman-queues-runners.md §5).
//!
//! Models the bounds Mailman computes with Python's unbounded integers:
//! `shamax = 2**160-1`, `lower = ((shamax+1)*slice)/numslices`,
//! `upper = ((shamax+1)*(slice+1))/numslices - 1`, compared against
//! `int(digest, 16)`. Rust has no 160-bit integer, so the arithmetic is done
//! exactly on big-endian 32-bit limbs (224 bits, enough for `2**160 * 2**32`).
//! Leaves out nothing of the rule; the per-version test is chosen by
//! [`SliceRule`].

use serde::{Deserialize, Serialize};

/// How a digest is tested against the slice bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliceRule {
    /// 2.1.1–2.1.5: `if not lower or (lower <= d < upper)`. Slice 0 has
    /// `lower == 0` and so takes the whole hash space (SF 1008983, R14).
    SliceZeroTakesAll,
    /// 2.1.6–2.1.8: `lower <= d < upper`, an exclusive upper bound (R15).
    ExclusiveUpper,
    /// 2.1.9+: `lower <= d <= upper`.
    InclusiveUpper,
}

/// One slice of a queue: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub index: u32,
    pub count: u32,
}

impl Slice {
    /// The whole hash space (`numslices == 1`).
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };
}

const LIMBS: usize = 7;

/// An unsigned 224-bit integer, big-endian 32-bit limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Wide([u32; LIMBS]);

impl Wide {
    /// `2**160 * k`.
    fn pow160_times(k: u32) -> Wide {
        let mut w = [0u32; LIMBS];
        // 2**160 is limb index 1 from the top (limbs 2..7 are the low 160 bits).
        w[1] = k;
        Wide(w)
    }

    fn from_digest(d: &[u8; 20]) -> Wide {
        let mut w = [0u32; LIMBS];
        for (i, chunk) in d.chunks(4).enumerate() {
            w[2 + i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Wide(w)
    }

    fn div_small(self, divisor: u32) -> Wide {
        assert!(divisor != 0, "slice count must be positive");
        let mut out = [0u32; LIMBS];
        let mut rem: u64 = 0;
        for (i, limb) in self.0.iter().enumerate() {
            let cur = (rem << 32) | u64::from(*limb);
            out[i] = (cur / u64::from(divisor)) as u32;
            rem = cur % u64::from(divisor);
        }
        Wide(out)
    }

    /// `self - 1`, saturating at zero.
    fn minus_one(self) -> Wide {
        let mut w = self.0;
        for limb in w.iter_mut().rev() {
            if *limb > 0 {
                *limb -= 1;
                return Wide(w);
            }
            *limb = u32::MAX;
        }
        Wide([0; LIMBS])
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|l| *l == 0)
    }
}

/// Parses a 40-digit hex sha1 digest. Anything else is `None`.
pub fn parse_digest(hex_digest: &str) -> Option<[u8; 20]> {
    if hex_digest.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

/// Whether a digest belongs to `slice` under `rule` (docs/semantics/mailman-queues-runners.md §5).
pub fn in_slice(digest: &[u8; 20], slice: Slice, rule: SliceRule) -> bool {
    if slice.count <= 1 {
        return true;
    }
    let lower = Wide::pow160_times(slice.index).div_small(slice.count);
    let upper = Wide::pow160_times(slice.index.saturating_add(1)).div_small(slice.count).minus_one();
    let d = Wide::from_digest(digest);
    match rule {
        SliceRule::SliceZeroTakesAll => lower.is_zero() || (lower <= d && d < upper),
        SliceRule::ExclusiveUpper => lower <= d && d < upper,
        SliceRule::InclusiveUpper => lower <= d && d <= upper,
    }
}
