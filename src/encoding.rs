//! Text encodings shared by storage, the ledger and the API: hex for
//! digests and generated secrets, RFC 3339 for timestamps.

use std::fmt::Write;

use chrono::{DateTime, NaiveDateTime, Utc};

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

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_lower_case_pairs() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(super::hex(&[]), "");
    }
}
