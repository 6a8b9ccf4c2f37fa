//! List cursors: the sort key of the last item a page returned, one type
//! per kind of list. Each kind has one parse (from the `after` a client
//! sends, through `FromStr`) and one render (`Display`, the `next_cursor`
//! a page answers), so a cursor a page hands out always reads back, and a
//! query never receives a key it did not check. The text is opaque to
//! clients (DESIGN.md §3) and its format is part of the API: changing a
//! render breaks every cursor a client holds.

use std::fmt;
use std::str::FromStr;

/// Length of a UUID in its hyphenated form, the only form ids are written in.
const HYPHENATED_UUID_LENGTH: usize = 36;
/// Most digits of a version cursor (versions stay far below a billion).
const VERSION_DIGITS_MAX: usize = 9;
/// Largest version a cursor holds: the most [`VERSION_DIGITS_MAX`] digits say.
const VERSION_MAX: i32 = 999_999_999;
/// Length of a `YYYY-MM` period.
const PERIOD_LENGTH: usize = 7;
/// Where the `-` of a `YYYY-MM` period stands.
const PERIOD_DASH_INDEX: usize = 4;
/// Length of an ISO 4217 currency code.
const CURRENCY_CODE_LENGTH: usize = 3;
/// Joins the parts of a group cursor.
const GROUP_SEPARATOR: char = '|';

/// Text that is not a cursor of the list it was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor of this list")]
pub struct MalformedCursor;

/// A kind of cursor: parsed from a client's `after`, rendered as a page's
/// `next_cursor`.
pub trait Cursor: FromStr<Err = MalformedCursor> + fmt::Display {
    /// What a valid cursor of this kind is, for the refusal of one that is not.
    const EXPECTED: &'static str;
}

/// The cursor of a list in id order: the id of the last item read. Any id
/// is a valid position (the page starts after it), so a client may also
/// resume from an id it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCursor(String);

impl IdCursor {
    /// The id, lower-case and hyphenated as ids are stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdCursor {
    type Err = MalformedCursor;

    /// A hyphenated UUID in either case; other UUID forms are refused.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(text)
            .ok()
            .filter(|_| text.len() == HYPHENATED_UUID_LENGTH)
            .map(|id| Self(id.hyphenated().to_string()))
            .ok_or(MalformedCursor)
    }
}

impl fmt::Display for IdCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Cursor for IdCursor {
    const EXPECTED: &'static str = "the id of an item";
}

/// The cursor of a list in version order: the last version read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionCursor(i32);

impl VersionCursor {
    /// The version.
    #[must_use]
    pub fn version(self) -> i32 {
        self.0
    }
}

impl TryFrom<i32> for VersionCursor {
    type Error = MalformedCursor;

    /// A stored version: 0 to [`VERSION_MAX`], what the text form can say.
    fn try_from(version: i32) -> Result<Self, Self::Error> {
        if (0..=VERSION_MAX).contains(&version) {
            Ok(Self(version))
        } else {
            Err(MalformedCursor)
        }
    }
}

impl FromStr for VersionCursor {
    type Err = MalformedCursor;

    /// A whole number of 1 to [`VERSION_DIGITS_MAX`] digits, no sign.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = (1..=VERSION_DIGITS_MAX).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_digit());
        if !digits {
            return Err(MalformedCursor);
        }
        text.parse::<i32>()
            .map_err(|_| MalformedCursor)
            .and_then(Self::try_from)
    }
}

impl fmt::Display for VersionCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Cursor for VersionCursor {
    const EXPECTED: &'static str = "a version number";
}

/// The parts of a report group's key, as a report row holds them.
#[derive(Debug, Clone, Copy)]
pub struct GroupKey<'a> {
    /// The team, problem or person the group is about.
    pub group_id: &'a str,
    /// The month, `YYYY-MM`.
    pub period: &'a str,
    /// The ISO 4217 code.
    pub currency: &'a str,
}

/// The cursor of a report's groups: the last group's key, rendered
/// `GROUP_ID|YYYY-MM|CURRENCY` (lower-case hyphenated UUID, month,
/// upper-case code). Reports order groups by that text, so the cursor is
/// compared as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCursor(String);

impl GroupCursor {
    /// The rendered key, as the report query compares it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<GroupKey<'_>> for GroupCursor {
    type Error = MalformedCursor;

    fn try_from(key: GroupKey<'_>) -> Result<Self, Self::Error> {
        let GroupKey {
            group_id,
            period,
            currency,
        } = key;
        let id_ok = uuid::Uuid::parse_str(group_id)
            .is_ok_and(|uuid| uuid.hyphenated().to_string() == group_id);
        let period_ok = period.len() == PERIOD_LENGTH
            && period.bytes().enumerate().all(|(index, byte)| {
                if index == PERIOD_DASH_INDEX {
                    byte == b'-'
                } else {
                    byte.is_ascii_digit()
                }
            });
        let currency_ok = currency.len() == CURRENCY_CODE_LENGTH
            && currency.bytes().all(|byte| byte.is_ascii_uppercase());
        if id_ok && period_ok && currency_ok {
            Ok(Self(format!(
                "{group_id}{GROUP_SEPARATOR}{period}{GROUP_SEPARATOR}{currency}"
            )))
        } else {
            Err(MalformedCursor)
        }
    }
}

impl FromStr for GroupCursor {
    type Err = MalformedCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(GROUP_SEPARATOR);
        let (Some(group_id), Some(period), Some(currency), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MalformedCursor);
        };
        Self::try_from(GroupKey {
            group_id,
            period,
            currency,
        })
    }
}

impl fmt::Display for GroupCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Cursor for GroupCursor {
    const EXPECTED: &'static str = "a group key GROUP_ID|YYYY-MM|CURRENCY";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cursor a page renders reads back as itself.
    fn round_trips<C: Cursor + PartialEq + fmt::Debug>(cursor: &C) {
        assert_eq!(cursor.to_string().parse::<C>().as_ref(), Ok(cursor));
    }

    #[test]
    fn id_cursors_are_hyphenated_ids_in_either_case() {
        let id = "0190f2a0-0000-7000-8000-000000000000";
        let cursor: IdCursor = id.to_uppercase().parse().unwrap();
        assert_eq!(cursor.to_string(), id);
        round_trips(&cursor);
        for garbage in [
            "",
            "zz",
            "0190f2a0",
            "0190f2a000007000800000000000000",
            "0190f2a0000070008000000000000000",
            "{0190f2a0-0000-7000-8000-000000000000}",
        ] {
            assert_eq!(
                garbage.parse::<IdCursor>(),
                Err(MalformedCursor),
                "{garbage}"
            );
        }
    }

    #[test]
    fn version_cursors_are_whole_numbers_of_at_most_nine_digits() {
        assert_eq!(
            "7".parse::<VersionCursor>().map(VersionCursor::version),
            Ok(7)
        );
        assert_eq!(
            "007".parse::<VersionCursor>().map(|c| c.to_string()),
            Ok("7".to_owned())
        );
        round_trips(&VersionCursor::try_from(VERSION_MAX).unwrap());
        assert_eq!(VersionCursor::try_from(-1), Err(MalformedCursor));
        assert_eq!(
            VersionCursor::try_from(VERSION_MAX + 1),
            Err(MalformedCursor)
        );
        for garbage in ["", "-1", "+1", "1.5", "x", "1234567890", " 1"] {
            assert_eq!(
                garbage.parse::<VersionCursor>(),
                Err(MalformedCursor),
                "{garbage}"
            );
        }
    }

    #[test]
    fn group_cursors_are_group_keys() {
        let key = "0190f2a0-0000-7000-8000-000000000000|2026-11|USD";
        let cursor: GroupCursor = key.parse().unwrap();
        assert_eq!(cursor.as_str(), key);
        round_trips(&cursor);
        let from_row = GroupCursor::try_from(GroupKey {
            group_id: "0190f2a0-0000-7000-8000-000000000000",
            period: "2026-11",
            currency: "USD",
        });
        assert_eq!(from_row, Ok(cursor));
        for garbage in [
            "",
            "0190f2a0-0000-7000-8000-000000000000|2026-11",
            "0190F2A0-0000-7000-8000-000000000000|2026-11|USD",
            "0190f2a0-0000-7000-8000-000000000000|2026-1x|USD",
            "0190f2a0-0000-7000-8000-000000000000|2026/11|USD",
            "0190f2a0-0000-7000-8000-000000000000|2026-11|usd",
            "0190f2a0-0000-7000-8000-000000000000|2026-11|USD|",
        ] {
            assert_eq!(
                garbage.parse::<GroupCursor>(),
                Err(MalformedCursor),
                "{garbage}"
            );
        }
    }
}
