//! Per-caller rate limiting, keyed on the verified token subject (never the
//! IP address: many mobile callers share one carrier NAT, and one caller
//! roams across many addresses).
//!
//! The state lives in this process's memory, so each `leeway` process
//! enforces the limit on its own: behind a load balancer spreading requests
//! over N processes a caller may get up to N times the limit. That is a
//! deliberate trade: the limit protects each process and its pool from one
//! noisy caller, and correctness never depends on it (that lives in
//! database transactions).
//!
//! The algorithm is GCRA (the generic cell rate algorithm, a token bucket
//! kept as one timestamp per subject): a caller may send `burst` requests
//! at once, then `per_second` requests a second.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Sustained requests per second per caller, by default: generous enough
/// that no honest client (nor the test suite) meets it.
pub const RATE_LIMIT_PER_SECOND_DEFAULT: u32 = 100;
/// Requests a caller may send at once before the sustained rate applies, by default.
pub const RATE_LIMIT_BURST_DEFAULT: u32 = 200;
/// Most callers tracked at once per process. Idle callers are forgotten
/// when it is reached; if every tracked caller is still active, a new one
/// is refused until some go idle, so memory stays bounded.
pub const SUBJECTS_TRACKED_MAX: usize = 100_000;

/// A rate: `burst` requests at once, then `per_second` a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests admitted at once.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: RATE_LIMIT_PER_SECOND_DEFAULT,
            burst: RATE_LIMIT_BURST_DEFAULT,
        }
    }
}

/// Admits or refuses each caller's requests against a [`RateLimit`].
pub struct RateLimiter {
    /// Time one request costs.
    interval: Duration,
    /// How far ahead of now a caller's debt may run: `burst` requests.
    tolerance: Duration,
    /// Per subject, when its debt is paid off (GCRA's theoretical arrival time).
    subjects: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// A limiter enforcing `limit` (a zero rate or burst counts as one).
    #[must_use]
    pub fn new(limit: RateLimit) -> Self {
        let interval = Duration::from_secs(1) / limit.per_second.max(1);
        Self {
            interval,
            tolerance: interval.saturating_mul(limit.burst.max(1)),
            subjects: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request of `subject` now, or says how long to wait.
    pub fn check(&self, subject: &str) -> Result<(), Duration> {
        self.check_at(subject, Instant::now())
    }

    fn check_at(&self, subject: &str, now: Instant) -> Result<(), Duration> {
        // A panic elsewhere while holding the lock leaves the map usable: at
        // worst one caller's timestamp is stale.
        let mut subjects = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        let paid_off = subjects
            .get(subject)
            .copied()
            .filter(|at| *at > now)
            .unwrap_or(now);
        let next = paid_off + self.interval;
        let ahead = next.saturating_duration_since(now);
        if ahead > self.tolerance {
            return Err(ahead.saturating_sub(self.tolerance));
        }
        if !subjects.contains_key(subject) && subjects.len() >= SUBJECTS_TRACKED_MAX {
            subjects.retain(|_, at| *at > now);
            if subjects.len() >= SUBJECTS_TRACKED_MAX {
                return Err(self.tolerance);
            }
        }
        subjects.insert(subject.to_owned(), next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn a_burst_is_admitted_then_the_sustained_rate_applies() {
        let limiter = limiter(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("ada", start).is_ok());
        }
        let wait = limiter.check_at("ada", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        assert!(limiter.check_at("ada", start + wait).is_ok());
        assert!(limiter.check_at("ada", start + wait).is_err());
        // Idle long enough, the whole burst is available again.
        let later = start + Duration::from_secs(1);
        for _ in 0..3 {
            assert!(limiter.check_at("ada", later).is_ok());
        }
        assert!(limiter.check_at("ada", later).is_err());
    }

    #[test]
    fn each_subject_has_its_own_allowance() {
        let limiter = limiter(1, 1);
        let now = Instant::now();
        assert!(limiter.check_at("ada", now).is_ok());
        assert!(limiter.check_at("ada", now).is_err());
        assert!(limiter.check_at("bob", now).is_ok());
    }

    #[test]
    fn refused_requests_do_not_extend_the_wait() {
        let limiter = limiter(1, 1);
        let now = Instant::now();
        assert!(limiter.check_at("ada", now).is_ok());
        for _ in 0..10 {
            assert_eq!(
                limiter.check_at("ada", now).unwrap_err(),
                Duration::from_secs(1)
            );
        }
        assert!(
            limiter
                .check_at("ada", now + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn idle_subjects_are_forgotten_when_the_table_is_full() {
        let limiter = limiter(1, 1);
        let now = Instant::now();
        {
            let mut subjects = limiter.subjects.lock().unwrap();
            for index in 0..SUBJECTS_TRACKED_MAX {
                subjects.insert(format!("idle-{index}"), now);
            }
        }
        assert!(
            limiter
                .check_at("ada", now + Duration::from_secs(1))
                .is_ok()
        );
        assert_eq!(limiter.subjects.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_full_table_of_active_subjects_refuses_newcomers() {
        let limiter = limiter(1, 1);
        let now = Instant::now();
        {
            let mut subjects = limiter.subjects.lock().unwrap();
            for index in 0..SUBJECTS_TRACKED_MAX {
                subjects.insert(format!("busy-{index}"), now + Duration::from_secs(1));
            }
        }
        assert!(limiter.check_at("ada", now).is_err());
    }
}
