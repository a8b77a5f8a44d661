//! Injected time: a `Clock` gives wall time in milliseconds; production reads the system clock,
//! tests set it by hand. Nothing else in `shared` reads the time.
//!
//! This module deliberately does not keep a monotonic timer for protocol timeouts; that arrives
//! with the sync session, which takes `now` as an argument instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, UTC.
pub type WallMs = u64;

/// A source of wall time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current wall time in milliseconds since the Unix epoch.
    fn now_ms(&self) -> WallMs;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> WallMs {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms`.
    pub fn new(ms: WallMs) -> Self {
        Self(Arc::new(AtomicU64::new(ms)))
    }
    /// Set the time shown.
    pub fn set(&self, ms: WallMs) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Move the time shown forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> WallMs {
        self.0.load(Ordering::SeqCst)
    }
}
