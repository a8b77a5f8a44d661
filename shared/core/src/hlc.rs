//! Hybrid logical clocks: a `u64` of wall milliseconds and a logical counter, used only to order
//! concurrent values for display (the winner among siblings).
//!
//! An HLC never decides what replaces what: causality (the register's dots and contexts) does.
//! So a laptop whose clock runs days ahead can reorder siblings but never erase a write.

use serde::{Deserialize, Serialize};

use crate::clock::WallMs;
use crate::limits::HLC_LOGICAL_BITS;

/// A hybrid logical clock value: `(wall_ms << HLC_LOGICAL_BITS) | logical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Hlc(pub u64);

const LOGICAL_MASK: u64 = (1 << HLC_LOGICAL_BITS) - 1;

impl Hlc {
    /// The wall-clock part, in milliseconds since the epoch.
    pub fn wall_ms(self) -> WallMs {
        self.0 >> HLC_LOGICAL_BITS
    }
    /// The logical counter part.
    pub fn logical(self) -> u64 {
        self.0 & LOGICAL_MASK
    }
    /// The HLC for a wall time with a zero counter.
    pub fn from_wall(ms: WallMs) -> Self {
        Hlc(ms << HLC_LOGICAL_BITS)
    }
}

/// Produces strictly increasing HLC values for one replica.
#[derive(Debug, Clone, Copy, Default)]
pub struct HlcGen {
    last: Hlc,
}

impl HlcGen {
    /// Resume from the last value this replica issued or observed.
    pub fn new(last: Hlc) -> Self {
        Self { last }
    }
    /// The last value issued or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }
    /// A new value, greater than every value issued or observed so far.
    pub fn tick(&mut self, now: WallMs) -> Hlc {
        let physical = Hlc::from_wall(now);
        self.last = if physical > self.last {
            physical
        } else {
            Hlc(self.last.0.saturating_add(1))
        };
        self.last
    }
    /// Take a remote value into account so the next local value sorts after it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > self.last {
            self.last = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_strictly_increasing_even_when_the_wall_clock_goes_back() {
        let mut g = HlcGen::default();
        let a = g.tick(1_000);
        let b = g.tick(1_000);
        let c = g.tick(500);
        assert!(a < b && b < c);
        assert_eq!(c.wall_ms(), 1_000);
        assert_eq!(c.logical(), 2);
    }

    #[test]
    fn observe_moves_past_a_remote_value() {
        let mut g = HlcGen::default();
        g.observe(Hlc::from_wall(9_000));
        assert!(g.tick(1_000) > Hlc::from_wall(9_000));
    }
}
