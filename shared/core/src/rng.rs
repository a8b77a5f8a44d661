//! The one seeded generator of the workspace, for what must replay bit for bit from a seed: the
//! demo's week, the fault simulation's schedules, the benchmark workloads, the UDP relay's
//! faults and the tests' delivery orders.
//!
//! It wraps `rand`'s ChaCha8 (a reproducible stream for a given seed, documented as portable
//! across platforms) and takes its ranges from `rand`'s unbiased uniform sampling, so
//! `below(n)` has no modulo bias (the workspace enables `rand`'s `unbiased` feature). A seed's
//! stream can change when `rand` or `chacha20` are upgraded; `Cargo.lock` pins both.
//!
//! Not for anything secret, even though ChaCha is a cipher: the seed is a `u64` chosen to be
//! replayed. Keys come from rustls/rcgen, record ids from UUIDv7 with the OS generator.

use rand::rngs::ChaCha8Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng as _, RngExt as _, SeedableRng as _};
use uuid::Uuid;

/// A seeded, reproducible generator (not for secrets). Not `Clone`: a copy would replay the
/// same stream; derive a second generator from a second seed instead.
#[derive(Debug)]
pub struct SeededRng(ChaCha8Rng);

impl SeededRng {
    /// A generator for `seed`: equal seeds give equal streams.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n`, every value equally likely (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.0.random_range(0..n)
    }

    /// True with probability `percent` / 100 (always when `percent` >= 100).
    pub fn chance_percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// True with probability `per_mille` / 1000 (always when `per_mille` >= 1000).
    pub fn chance_per_mille(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// True with probability `p`, clamped to `0.0..=1.0` (NaN counts as 0).
    pub fn with_probability(&mut self, p: f64) -> bool {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.0.random_bool(p)
    }

    /// One element of `items`, each equally likely.
    ///
    /// # Panics
    ///
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        items
            .choose(&mut self.0)
            .expect("SeededRng::pick needs a non-empty slice")
    }

    /// `items` in a uniformly random order (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        items.shuffle(&mut self.0);
    }

    /// A UUID made of 128 random bits (version and variant bits set as "custom").
    pub fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        self.0.fill_bytes(&mut b);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    }

    /// A UUIDv7 for `unix_ms` (milliseconds since the Unix epoch), its random part drawn here.
    pub fn uuid_v7(&mut self, unix_ms: u64) -> Uuid {
        let mut b = [0u8; 10];
        self.0.fill_bytes(&mut b);
        uuid::Builder::from_unix_timestamp_millis(unix_ms, &b).into_uuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_seeds_give_equal_streams_and_ranges_hold() {
        let (mut a, mut b) = (SeededRng::new(7), SeededRng::new(7));
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| *x < 10));
        assert!(xs.iter().any(|x| *x != xs[0]), "not constant");
        assert_eq!(SeededRng::new(1).below(0), 0);
        assert_ne!(SeededRng::new(1).next_u64(), SeededRng::new(2).next_u64());
    }

    #[test]
    fn below_has_no_modulo_bias() {
        // n = 3 * 2^62: `next_u64() % n` lands in the lowest third twice as often as in either
        // other third (2^64 = n + 2^62, so 0..2^62 has two preimages). Unbiased: a third each.
        let n = 3u64 << 62;
        let mut rng = SeededRng::new(11);
        let draws = 30_000;
        let low = (0..draws).filter(|_| rng.below(n) < (1u64 << 62)).count();
        // Expected 10_000 unbiased, 15_000 with the modulo bias; 5 sigma is about 400.
        assert!(
            (9_400..10_600).contains(&low),
            "low third drawn {low} times of {draws}"
        );
    }

    #[test]
    fn chances_pick_shuffle_and_uuids_behave() {
        let mut rng = SeededRng::new(3);
        assert!((0..200).all(|_| rng.chance_percent(100)));
        assert!(!(0..200).any(|_| rng.chance_percent(0)));
        assert!((0..200).all(|_| rng.chance_per_mille(1000)));
        assert!(!(0..200).any(|_| rng.chance_per_mille(0)));
        assert!((0..200).all(|_| rng.with_probability(2.0)));
        assert!(!(0..200).any(|_| rng.with_probability(f64::NAN)));
        let hits = (0..10_000).filter(|_| rng.chance_per_mille(300)).count();
        assert!((2_800..3_200).contains(&hits), "{hits}");

        let items = [1, 2, 3, 4];
        let mut seen = [false; 4];
        for _ in 0..200 {
            seen[*rng.pick(&items) as usize - 1] = true;
        }
        assert_eq!(seen, [true; 4], "every element can be picked");

        let mut v: Vec<u32> = (0..50).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..50).collect::<Vec<_>>(), "shuffled");
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>(), "a permutation");

        assert_ne!(rng.uuid(), rng.uuid());
        let id = rng.uuid_v7(1_700_000_000_000);
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!(secs, 1_700_000_000);
    }
}
