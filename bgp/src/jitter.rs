//! Timer jitter (RFC 4271 §10): a tiny xorshift64* generator seeded from the clock and the peer
//! address, so that peers (and speakers) restarting together do not retry in lockstep. Not for
//! anything that needs real randomness.

use std::net::IpAddr;
use std::time::Duration;

/// Tiny xorshift64* generator for timer jitter; seeded from the clock and the peer address.
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(addr: IpAddr) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let a = match addr {
            IpAddr::V4(a) => u64::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a) as u64,
        };
        Self((t ^ a.rotate_left(17)) | 1)
    }

    /// `d` scaled by a factor in [0.75, 1.0] (RFC 4271 §10).
    pub(crate) fn apply(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 random bits
        let factor = 0.75 + 0.25 * (r as f64 / f64::from(1u32 << 24));
        d.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn jitter_stays_within_three_quarters_and_one() {
        let mut j = Jitter::new("10.0.0.1".parse().expect("ip"));
        let d = Duration::from_secs(8);
        let mut seen = BTreeSet::new();
        for _ in 0..1000 {
            let x = j.apply(d);
            assert!(x >= Duration::from_secs(6) && x <= d, "{x:?}");
            seen.insert(x.as_millis() / 100);
        }
        // Actually spread, not constant.
        assert!(seen.len() > 10, "{seen:?}");
    }
}
