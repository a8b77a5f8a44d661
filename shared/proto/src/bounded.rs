//! `BVec<T, N>`: a `Vec` whose length is checked while decoding, before anything is allocated
//! beyond `N` elements. Every sequence in a wire message is one of these.
//!
//! Deliberately flat: wire messages are structs of arrays, so bounds do not multiply through
//! nesting (a `Vec` of `Vec`s of 1,024 each would allow a million elements).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// A vector of at most `N` elements, enforced when decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BVec<T, const N: usize>(pub Vec<T>);

impl<T, const N: usize> BVec<T, N> {
    /// The most elements allowed.
    pub const MAX: usize = N;
    /// An empty vector.
    pub fn new() -> Self {
        Self(Vec::new())
    }
    /// Push, or give the element back when full.
    pub fn try_push(&mut self, v: T) -> Result<(), T> {
        if self.0.len() >= N {
            return Err(v);
        }
        self.0.push(v);
        Ok(())
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T, const N: usize> Default for BVec<T, N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Serialize, const N: usize> Serialize for BVec<T, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

struct BVecVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for BVecVisitor<T, N> {
    type Value = BVec<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {N} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if let Some(n) = seq.size_hint() {
            if n > N {
                return Err(A::Error::custom(format!(
                    "sequence of {n} elements exceeds the limit of {N}"
                )));
            }
        }
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
        while let Some(x) = seq.next_element()? {
            if v.len() >= N {
                return Err(A::Error::custom(format!(
                    "sequence exceeds the limit of {N}"
                )));
            }
            v.push(x);
        }
        Ok(BVec(v))
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BVecVisitor::<T, N>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_prefix_over_the_limit_fails_before_allocating() {
        // postcard: varint length 1_000_000 then nothing. Decoding must refuse on the prefix.
        let mut bytes = Vec::new();
        let mut n: u32 = 1_000_000;
        while n >= 0x80 {
            bytes.push((n as u8) | 0x80);
            n >>= 7;
        }
        bytes.push(n as u8);
        let r: Result<BVec<[u64; 32], 8>, _> = postcard::from_bytes(&bytes);
        assert!(r.is_err());
        let ok: BVec<u8, 8> = postcard::from_bytes(&[3, 1, 2, 3]).expect("within limit");
        assert_eq!(ok.0, vec![1, 2, 3]);
        let full: Result<BVec<u8, 2>, _> = postcard::from_bytes(&[3, 1, 2, 3]);
        assert!(full.is_err());
    }
}
