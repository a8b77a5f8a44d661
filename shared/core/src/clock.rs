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

/// Environment variable that shifts a binary's clock by a number of milliseconds (may be
/// negative). A diagnostic and test knob: it lets end-to-end tests run a laptop whose clock is
/// days ahead without touching the machine's clock.
pub const CLOCK_SKEW_ENV: &str = "TOURNEE_CLOCK_SKEW_MS";

/// The system clock shifted by a fixed offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct SkewedClock {
    /// Milliseconds added to the system time.
    pub skew_ms: i64,
}

impl SkewedClock {
    /// The system clock shifted by `$TOURNEE_CLOCK_SKEW_MS` (0 when unset or unreadable).
    pub fn from_env() -> Self {
        let skew_ms = std::env::var(CLOCK_SKEW_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Self { skew_ms }
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> WallMs {
        SystemClock.now_ms().saturating_add_signed(self.skew_ms)
    }
}
