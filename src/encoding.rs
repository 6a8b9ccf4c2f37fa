//! Text encodings shared by storage, the ledger and the API: hex for
//! digests and generated secrets, RFC 3339 for timestamps, and the same
//! timestamps and dates written on the stack ([`ShortText`]) for exports,
//! which render millions of them.

use std::fmt::{self, Write};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// An RFC 3339 UTC timestamp with `Z` and microseconds, as every JSON
/// timestamp and every hashed timestamp is written.
#[must_use]
pub fn rfc3339(at: NaiveDateTime) -> String {
    DateTime::<Utc>::from_naive_utc_and_offset(at, Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Bytes a [`ShortText`] holds: the longest RFC 3339 timestamp chrono can
/// hold (a signed six-digit year) is 30, an `i64` 20, an amount 21.
pub const SHORT_TEXT_BYTES_MAX: usize = 40;

/// A short text written on the stack, so that formatting a timestamp, a
/// date or a number in a hot loop does not allocate. Writing past
/// [`SHORT_TEXT_BYTES_MAX`] fails (`fmt::Error`) and leaves it unchanged.
#[derive(Clone, Copy)]
pub struct ShortText {
    bytes: [u8; SHORT_TEXT_BYTES_MAX],
    len: usize,
}

impl ShortText {
    /// The empty text.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            bytes: [0; SHORT_TEXT_BYTES_MAX],
            len: 0,
        }
    }

    /// The text. Only whole `str`s are ever written, so it is UTF-8.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    /// Appends ASCII bytes, or fails if they do not fit.
    fn push_ascii(&mut self, ascii: &[u8]) -> fmt::Result {
        self.write_str(std::str::from_utf8(ascii).map_err(|_| fmt::Error)?)
    }

    /// Appends the last two decimal digits of `value`.
    fn push_two_digits(&mut self, value: u32) -> fmt::Result {
        // Each is a single digit, so the conversions cannot fail.
        let tens = u8::try_from(value / 10 % 10).map_err(|_| fmt::Error)?;
        let ones = u8::try_from(value % 10).map_err(|_| fmt::Error)?;
        self.push_ascii(&[b'0' + tens, b'0' + ones])
    }

    /// Appends a date as chrono's `%Y-%m-%d` and RFC 3339 write it: four
    /// digits for years 0 to 9999, else a sign and at least four digits.
    fn push_date(&mut self, date: NaiveDate) -> fmt::Result {
        let year = date.year();
        if (0..=9999).contains(&year) {
            let year = year.unsigned_abs();
            self.push_two_digits(year / 100)?;
            self.push_two_digits(year % 100)?;
        } else {
            write!(self, "{year:+05}")?;
        }
        self.push_ascii(b"-")?;
        self.push_two_digits(date.month())?;
        self.push_ascii(b"-")?;
        self.push_two_digits(date.day())
    }
}

impl Default for ShortText {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for ShortText {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl fmt::Display for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ShortText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// [`rfc3339`] written on the stack: the same text, without allocating.
#[must_use]
pub fn rfc3339_short(at: NaiveDateTime) -> ShortText {
    let mut text = ShortText::new();
    // At most 30 bytes are written, well within the buffer.
    let _ = write_rfc3339(&mut text, at);
    text
}

/// A date as `YYYY-MM-DD` (chrono's `%Y-%m-%d`), written on the stack.
#[must_use]
pub fn date_short(date: NaiveDate) -> ShortText {
    let mut text = ShortText::new();
    // At most 13 bytes are written, well within the buffer.
    let _ = text.push_date(date);
    text
}

/// What chrono's `to_rfc3339_opts(SecondsFormat::Micros, true)` writes for
/// a UTC time, a leap second (nanoseconds past 10^9) included.
fn write_rfc3339(text: &mut ShortText, at: NaiveDateTime) -> fmt::Result {
    text.push_date(at.date())?;
    text.push_ascii(b"T")?;
    let mut second = at.second();
    let mut nanosecond = at.nanosecond();
    if nanosecond >= 1_000_000_000 {
        second += 1;
        nanosecond -= 1_000_000_000;
    }
    text.push_two_digits(at.hour())?;
    text.push_ascii(b":")?;
    text.push_two_digits(at.minute())?;
    text.push_ascii(b":")?;
    text.push_two_digits(second)?;
    text.push_ascii(b".")?;
    let micros = nanosecond / 1000;
    text.push_two_digits(micros / 10_000)?;
    text.push_two_digits(micros / 100 % 100)?;
    text.push_two_digits(micros % 100)?;
    text.push_ascii(b"Z")
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;

    /// Years at and past the four-digit edges, every month's first and last
    /// day, leap days, and times from midnight to a leap second.
    #[test]
    fn short_dates_and_timestamps_are_what_chrono_writes() {
        let years = [
            -262_143, -10_000, -9999, -1, 0, 1, 9, 10, 99, 100, 999, 1000, 1969, 1970, 2000, 2024,
            2026, 2100, 9998, 9999, 10_000, 99_999, 262_142,
        ];
        let times = [
            (0, 0, 0, 0),
            (0, 0, 0, 1),
            (0, 0, 0, 999),
            (0, 0, 0, 1000),
            (1, 2, 3, 4_005_000),
            (9, 59, 59, 999_999_999),
            (12, 30, 0, 123_456_789),
            (23, 59, 59, 999_999_000),
            (23, 59, 59, 1_000_000_000),
            (23, 59, 59, 1_999_999_999),
        ];
        let mut checked = 0;
        for year in years {
            for month in 1..=12 {
                for day in [1, 9, 10, 28, 29, 30, 31] {
                    let Some(date) = NaiveDate::from_ymd_opt(year, month, day) else {
                        continue;
                    };
                    assert_eq!(
                        date_short(date).as_str(),
                        date.format("%Y-%m-%d").to_string()
                    );
                    for (hour, minute, second, nano) in times {
                        let time =
                            NaiveTime::from_hms_nano_opt(hour, minute, second, nano).unwrap();
                        let at = date.and_time(time);
                        assert_eq!(rfc3339_short(at).as_str(), rfc3339(at), "{at:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn a_short_text_refuses_what_does_not_fit() {
        let mut text = ShortText::new();
        assert!(text.write_str(&"x".repeat(SHORT_TEXT_BYTES_MAX)).is_ok());
        assert!(text.write_str("y").is_err());
        assert_eq!(text.as_str(), "x".repeat(SHORT_TEXT_BYTES_MAX));
    }

    #[test]
    fn encodes_lower_case_pairs() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(super::hex(&[]), "");
    }
}
