//! Ids that must not be mistaken for one another: a person's, a team's, a
//! problem's and a spend's. Each is its own type, built only by parsing
//! UUID text, so a use case that takes a team and a manager cannot be handed
//! them the wrong way round. Rows read from storage keep plain text ids;
//! these types are for what crosses from a request into a use case.

use std::fmt;
use std::str::FromStr;

/// Text that is not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a UUID")]
pub struct MalformedId;

/// A UUID in any form the `uuid` crate reads (hyphenated, simple, braced,
/// URN; either case), written the one way ids are stored: lower-case and
/// hyphenated.
#[must_use]
pub fn canonical_uuid(text: &str) -> Option<String> {
    uuid::Uuid::parse_str(text)
        .ok()
        .map(|id| id.hyphenated().to_string())
}

/// Defines an id type: a private canonical string, parsed from UUID text.
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The id as stored: a lower-case, hyphenated UUID.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = MalformedId;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                canonical_uuid(text).map(Self).ok_or(MalformedId)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = MalformedId;

            fn try_from(text: &str) -> Result<Self, Self::Error> {
                text.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An id as the client sent it: one of the typed ids, or text that is not
/// an id at all. The use case decides, at the point the id is needed, how a
/// malformed one is refused (a bad field, or an unknown reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference<I> {
    /// A well-formed id.
    Id(I),
    /// Text that is not an id.
    Malformed,
}

impl<I> Reference<I> {
    /// The id, when the text was one.
    pub fn id(&self) -> Option<&I> {
        match self {
            Self::Id(id) => Some(id),
            Self::Malformed => None,
        }
    }
}

impl<I, E> From<Result<I, E>> for Reference<I> {
    /// An id as the api read it: well-formed, or refused as malformed.
    fn from(parsed: Result<I, E>) -> Self {
        parsed.map_or(Self::Malformed, Self::Id)
    }
}

id_type!(
    /// A person's id.
    PersonId
);
id_type!(
    /// A team's id.
    TeamId
);
id_type!(
    /// A problem's id.
    ProblemId
);
id_type!(
    /// A spend's id.
    SpendId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_written_lower_case_and_hyphenated() {
        let id = "0190f2a0-0000-7000-8000-00000000000a";
        for form in [
            id.to_owned(),
            id.to_uppercase(),
            id.replace('-', ""),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
        ] {
            assert_eq!(
                form.parse::<TeamId>().map(|t| t.to_string()),
                Ok(id.to_owned())
            );
        }
        assert_eq!(PersonId::try_from(id).unwrap().as_str(), id);
        for garbage in ["", "me", "0190f2a0", "0190f2a0-0000-7000-8000-00000000000g"] {
            assert_eq!(garbage.parse::<ProblemId>(), Err(MalformedId), "{garbage}");
            assert_eq!(SpendId::try_from(garbage), Err(MalformedId), "{garbage}");
        }
    }
}
