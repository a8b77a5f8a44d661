//! The field register: a dotted multi-value register on `crdts::{VClock, Dot}`.
//!
//! Each write carries its writer's dot and the causal context (a per-field `VClock`) it saw. A
//! write whose context covers another value replaces it; concurrent values are all kept as
//! siblings, ordered for display by (HLC, device). The clock only ever holds the actors that wrote
//! this field.
//!
//! Deliberately not here: domain rules (the forward-only status guard lives in `model`, as a view
//! over the siblings, so merge stays a pure lattice join), and authorization of who may write.

use std::fmt;

use crdts::{CmRDT, CvRDT, Dot, VClock};
use serde::{Deserialize, Serialize};

use crate::hlc::Hlc;
use crate::limits::{FIELD_CLOCK_ACTORS_MAX, SIBLINGS_MAX};

/// A device's actor number, assigned by the server at enrolment.
pub type Actor = u32;

/// One value held by a register, with the dot that wrote it and its HLC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling<V> {
    /// The write's unique identity: (device, that device's n-th write of this field).
    pub dot: Dot<Actor>,
    /// Hybrid logical clock of the write, for display order only.
    pub hlc: Hlc,
    /// The value written.
    pub value: V,
}

/// A write of one field: the operation replicated between devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write<V> {
    /// The write's dot.
    pub dot: Dot<Actor>,
    /// HLC of the write.
    pub hlc: Hlc,
    /// What the writer had seen of this field: every value it covers is replaced.
    pub ctx: VClock<Actor>,
    /// The value written.
    pub value: V,
}

/// A dotted multi-value register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register<V> {
    /// Live values, sorted by (HLC, actor, counter); more than one is a conflict.
    siblings: Vec<Sibling<V>>,
    /// Every dot this replica has seen for this field.
    clock: VClock<Actor>,
}

impl<V> Default for Register<V> {
    fn default() -> Self {
        Self {
            siblings: Vec::new(),
            clock: VClock::new(),
        }
    }
}

/// Why a write or a state cannot be taken into a register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// The write's dot has counter zero, which no real write has.
    #[error("write dot {actor}:0 is invalid (counters start at 1)")]
    ZeroCounter {
        /// The writer.
        actor: Actor,
    },
    /// The write's context already covers its own dot, so it would replace itself.
    #[error("write {actor}:{counter} claims to have seen itself")]
    SelfCovered {
        /// The writer.
        actor: Actor,
        /// The counter.
        counter: u64,
    },
    /// Taking the write would exceed `SIBLINGS_MAX` concurrent values.
    #[error("field would hold more than {max} concurrent values")]
    TooManySiblings {
        /// The limit.
        max: usize,
    },
    /// The context names more actors than `FIELD_CLOCK_ACTORS_MAX`.
    #[error("field clock would hold more than {max} devices")]
    ClockTooWide {
        /// The limit.
        max: usize,
    },
}

fn covers(clock: &VClock<Actor>, dot: &Dot<Actor>) -> bool {
    clock.get(&dot.actor) >= dot.counter
}

fn order_key<V>(s: &Sibling<V>) -> (Hlc, Actor, u64) {
    (s.hlc, s.dot.actor, s.dot.counter)
}

impl<V: Clone + PartialEq> Register<V> {
    /// An empty register (never written).
    pub fn new() -> Self {
        Self::default()
    }

    /// All live values in display order (lowest first; the last one wins the display).
    pub fn siblings(&self) -> &[Sibling<V>] {
        &self.siblings
    }

    /// The value shown: the sibling with the highest (HLC, device), if any.
    pub fn value(&self) -> Option<&V> {
        self.siblings.last().map(|s| &s.value)
    }

    /// True when concurrent writes left more than one value.
    pub fn is_conflict(&self) -> bool {
        self.siblings.len() > 1
    }

    /// The causal context of this field: what a new local write must cover.
    pub fn clock(&self) -> &VClock<Actor> {
        &self.clock
    }

    /// Build the write this replica's `actor` makes to set `value`: it covers every dot seen,
    /// so it replaces every current sibling (this is also how a conflict is resolved).
    pub fn prepare(&self, actor: Actor, hlc: Hlc, value: V) -> Write<V> {
        Write {
            dot: Dot::new(actor, self.clock.get(&actor) + 1),
            hlc,
            ctx: self.clock.clone(),
            value,
        }
    }

    /// True when this replica has already seen (or seen past) the write.
    pub fn has_seen(&self, write: &Write<V>) -> bool {
        covers(&self.clock, &write.dot)
    }

    fn check_write(&self, write: &Write<V>) -> Result<(), RegisterError> {
        if write.dot.counter == 0 {
            return Err(RegisterError::ZeroCounter {
                actor: write.dot.actor,
            });
        }
        if covers(&write.ctx, &write.dot) {
            return Err(RegisterError::SelfCovered {
                actor: write.dot.actor,
                counter: write.dot.counter,
            });
        }
        if write.ctx.dots.len() > FIELD_CLOCK_ACTORS_MAX {
            return Err(RegisterError::ClockTooWide {
                max: FIELD_CLOCK_ACTORS_MAX,
            });
        }
        if !self.has_seen(write) {
            let kept = self
                .siblings
                .iter()
                .filter(|s| !covers(&write.ctx, &s.dot))
                .count();
            if kept + 1 > SIBLINGS_MAX {
                return Err(RegisterError::TooManySiblings { max: SIBLINGS_MAX });
            }
            let mut joined = self.clock.clone();
            joined.merge(write.ctx.clone());
            joined.apply(write.dot);
            if joined.dots.len() > FIELD_CLOCK_ACTORS_MAX {
                return Err(RegisterError::ClockTooWide {
                    max: FIELD_CLOCK_ACTORS_MAX,
                });
            }
        }
        Ok(())
    }

    fn check_state(&self, other: &Self) -> Result<(), RegisterError> {
        let mut joined = self.clone();
        joined.join(other.clone());
        if joined.siblings.len() > SIBLINGS_MAX {
            return Err(RegisterError::TooManySiblings { max: SIBLINGS_MAX });
        }
        if joined.clock.dots.len() > FIELD_CLOCK_ACTORS_MAX {
            return Err(RegisterError::ClockTooWide {
                max: FIELD_CLOCK_ACTORS_MAX,
            });
        }
        Ok(())
    }

    /// Take a write: the checked form of `CmRDT::apply`. Returns whether anything changed.
    pub fn try_apply(&mut self, write: Write<V>) -> Result<bool, RegisterError> {
        self.check_write(&write)?;
        Ok(self.apply_unchecked(write))
    }

    fn apply_unchecked(&mut self, write: Write<V>) -> bool {
        if self.has_seen(&write) {
            return false;
        }
        self.siblings.retain(|s| !covers(&write.ctx, &s.dot));
        self.clock.merge(write.ctx);
        self.clock.apply(write.dot);
        let sibling = Sibling {
            dot: write.dot,
            hlc: write.hlc,
            value: write.value,
        };
        let at = self
            .siblings
            .partition_point(|s| order_key(s) < order_key(&sibling));
        self.siblings.insert(at, sibling);
        true
    }

    fn join(&mut self, other: Self) {
        let mine = std::mem::take(&mut self.siblings);
        let mut out: Vec<Sibling<V>> = Vec::with_capacity(mine.len() + other.siblings.len());
        for s in mine {
            let in_other = other.siblings.iter().any(|o| o.dot == s.dot);
            if in_other || !covers(&other.clock, &s.dot) {
                out.push(s);
            }
        }
        for o in other.siblings {
            let in_self = out.iter().any(|s| s.dot == o.dot);
            if !in_self && !covers(&self.clock, &o.dot) {
                out.push(o);
            }
        }
        out.sort_by_key(order_key);
        self.siblings = out;
        self.clock.merge(other.clock);
    }
}

impl<V: Clone + PartialEq + fmt::Debug> CmRDT for Register<V> {
    type Op = Write<V>;
    type Validation = RegisterError;

    fn validate_op(&self, op: &Self::Op) -> Result<(), Self::Validation> {
        self.check_write(op)
    }

    /// Apply a write. Writes already seen are ignored, so replays and duplicates are harmless.
    /// Call `validate_op` first on untrusted input (or use `try_apply`).
    fn apply(&mut self, op: Self::Op) {
        self.apply_unchecked(op);
    }
}

impl<V: Clone + PartialEq + fmt::Debug> CvRDT for Register<V> {
    type Validation = RegisterError;

    fn validate_merge(&self, other: &Self) -> Result<(), Self::Validation> {
        self.check_state(other)
    }

    /// Join two states: values both hold, plus values one holds that the other has not seen.
    fn merge(&mut self, other: Self) {
        self.join(other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(
        reg: &Register<&'static str>,
        actor: Actor,
        hlc: u64,
        v: &'static str,
    ) -> Write<&'static str> {
        reg.prepare(actor, Hlc(hlc), v)
    }

    #[test]
    fn a_write_that_saw_the_others_replaces_them() {
        let mut r = Register::new();
        let a = w(&r, 1, 10, "a");
        r.apply(a);
        let b = w(&r, 2, 5, "b");
        r.apply(b);
        assert_eq!(r.value(), Some(&"b"));
        assert!(!r.is_conflict());
    }

    #[test]
    fn concurrent_writes_are_siblings_ordered_by_hlc_then_device() {
        let base = Register::new();
        let a = w(&base, 1, 20, "a");
        let b = w(&base, 2, 20, "b");
        let mut r1 = base.clone();
        r1.apply(a.clone());
        r1.apply(b.clone());
        let mut r2 = base;
        r2.apply(b);
        r2.apply(a);
        assert_eq!(r1, r2);
        assert!(r1.is_conflict());
        assert_eq!(
            r1.value(),
            Some(&"b"),
            "equal HLC: higher device wins the display"
        );
    }

    #[test]
    fn replay_and_stale_writes_change_nothing() {
        let mut r = Register::new();
        let first = w(&r, 1, 1, "x");
        r.apply(first.clone());
        let second = w(&r, 1, 2, "y");
        r.apply(second.clone());
        let before = r.clone();
        assert_eq!(r.try_apply(first), Ok(false));
        assert_eq!(r.try_apply(second), Ok(false));
        assert_eq!(r, before);
    }

    #[test]
    fn malformed_writes_are_refused() {
        let r: Register<&str> = Register::new();
        let mut bad = w(&r, 1, 1, "x");
        bad.dot.counter = 0;
        assert!(matches!(
            r.validate_op(&bad),
            Err(RegisterError::ZeroCounter { .. })
        ));
        let mut selfish = w(&r, 1, 1, "x");
        selfish.ctx.apply(Dot::new(1, 1));
        assert!(matches!(
            r.validate_op(&selfish),
            Err(RegisterError::SelfCovered { .. })
        ));
    }

    #[test]
    fn sibling_count_is_bounded() {
        let base: Register<u32> = Register::new();
        let mut r = base.clone();
        for actor in 1..=SIBLINGS_MAX as u32 {
            r.try_apply(base.prepare(actor, Hlc(1), actor))
                .expect("within the limit");
        }
        let extra = base.prepare(SIBLINGS_MAX as u32 + 1, Hlc(1), 0);
        assert_eq!(
            r.try_apply(extra),
            Err(RegisterError::TooManySiblings { max: SIBLINGS_MAX })
        );
    }
}
