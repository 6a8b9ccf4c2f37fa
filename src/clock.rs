//! The server's clock. Every time-dependent rule (review deadlines, SLA
//! escalation, delegation windows, the calendar month of a period
//! allowance) reads the time from here rather than from the system, so the
//! test suite can move time forward by hours without sleeping. In a running
//! server the offset is zero and nothing can change it. This is the only
//! place that reads the system's wall-clock time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{NaiveDateTime, SubsecRound, TimeDelta, Utc};

/// The system clock plus an offset that only tests move.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, with no offset.
    #[must_use]
    pub fn system() -> Self {
        Self::default()
    }

    /// The current UTC time at the precision both databases keep.
    #[must_use]
    pub fn now(&self) -> NaiveDateTime {
        let offset = TimeDelta::seconds(self.offset_secs.load(Ordering::SeqCst));
        let system = Utc::now().naive_utc().trunc_subsecs(6);
        system.checked_add_signed(offset).unwrap_or(system)
    }

    /// Moves this clock (and every clone of it) forward. For tests: a
    /// server's own code never calls it.
    pub fn advance(&self, delta: TimeDelta) {
        self.offset_secs
            .fetch_add(delta.num_seconds(), Ordering::SeqCst);
    }
}
