//! The pure rules of mail to people: each person's choice of what they
//! get, when a failed send is tried again, and when the daily digest is
//! due. The mail itself is composed in `service::mail` and sent by
//! `outbound::mail`.

use std::time::Duration;

use chrono::{NaiveDateTime, Timelike};

/// What mail a person gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// A mail for each thing that needs them, as it happens (the default).
    Immediate,
    /// One mail a day listing what waits for them.
    DailyDigest,
    /// No mail.
    Off,
}

impl Notify {
    /// Every choice.
    pub const ALL: [Self; 3] = [Self::Immediate, Self::DailyDigest, Self::Off];

    /// The stored and API spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediate => "immediate",
            Self::DailyDigest => "daily_digest",
            Self::Off => "off",
        }
    }

    /// Reads a spelling; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|notify| notify.as_str() == text)
    }
}

/// The waits before each retry of a mail the server could not hand to the
/// mail server: 1 min, 5 min, 15 min, then every hour. Mail is never given
/// up: a mail server that is down delays mail, never loses it.
pub const MAIL_RETRY_DELAYS_SECS: [u64; 4] = [60, 300, 900, 3_600];

/// The wait after `attempts` failed sends (1 for the first).
#[must_use]
pub fn mail_retry_delay(attempts: u32) -> Duration {
    let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
    let last = MAIL_RETRY_DELAYS_SECS[MAIL_RETRY_DELAYS_SECS.len() - 1];
    Duration::from_secs(MAIL_RETRY_DELAYS_SECS.get(index).copied().unwrap_or(last))
}

/// Whether the day's digest is due at `at` (UTC): from `hour_utc` on.
/// Whether it was already sent today is the database's to say.
#[must_use]
pub fn digest_due(at: NaiveDateTime, hour_utc: u32) -> bool {
    at.hour() >= hour_utc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_reads_back_from_its_spelling() {
        for notify in Notify::ALL {
            assert_eq!(Notify::parse(notify.as_str()), Some(notify));
        }
        assert_eq!(Notify::parse("weekly"), None);
    }

    #[test]
    fn retries_back_off_to_hourly_and_never_stop() {
        assert_eq!(mail_retry_delay(1), Duration::from_secs(60));
        assert_eq!(mail_retry_delay(3), Duration::from_secs(900));
        assert_eq!(mail_retry_delay(4), Duration::from_secs(3_600));
        assert_eq!(mail_retry_delay(400), Duration::from_secs(3_600));
        assert_eq!(mail_retry_delay(0), Duration::from_secs(60));
    }

    #[test]
    fn the_digest_is_due_from_its_hour() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert!(!digest_due(day.and_hms_opt(7, 59, 59).unwrap(), 8));
        assert!(digest_due(day.and_hms_opt(8, 0, 0).unwrap(), 8));
        assert!(digest_due(day.and_hms_opt(0, 0, 0).unwrap(), 0));
    }
}
