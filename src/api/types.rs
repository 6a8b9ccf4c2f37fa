//! Request and response building blocks shared by every resource: money in
//! JSON, list pages and cursors, ids in paths, and field checks that collect
//! every refusal of a body into one 422.

use std::ops::Deref;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::db::cursor::Cursor;
use crate::db::{Page, PageRequest};
use crate::domain::currency::Currency;
use crate::domain::ids::{MalformedId, canonical_uuid};
use crate::domain::money::{AMOUNT_TEXT_LENGTH_MAX, Money};
use crate::domain::status::SpendStatus;
use crate::error::ApiError;
use crate::service::FieldError;

/// Page size when `limit` is not given.
pub const PAGE_SIZE_DEFAULT: i64 = 50;
/// Largest page size a client may ask for.
pub const PAGE_SIZE_MAX: i64 = 200;
/// Longest name (team, person, merchant), in characters.
pub const NAME_LENGTH_MAX: usize = 200;
/// Longest title, in characters.
pub const TITLE_LENGTH_MAX: usize = 200;
/// Longest free text (success criteria, description, note), in characters.
pub const TEXT_LENGTH_MAX: usize = 4_000;
/// Longest category, in characters.
pub const CATEGORY_LENGTH_MAX: usize = 100;
/// Longest URL, in characters.
pub const URL_LENGTH_MAX: usize = 2_048;
/// Longest JWT subject, in characters.
pub const SUBJECT_LENGTH_MAX: usize = 255;
/// Longest email, in characters (RFC 5321).
pub const EMAIL_LENGTH_MAX: usize = 254;

/// A request body: one JSON object parsed into `T`. Unlike `web::Json`, it
/// refuses a JSON array, from which serde would fill a struct's fields by
/// position. Size, content type and syntax are checked by the `JsonConfig`
/// registered in `app.rs`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The parsed body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Body<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = web::Json::<serde_json::Value>::from_request(request, payload);
        Box::pin(async move {
            let value = json.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::field(
                    "body",
                    "not_an_object",
                    "send the body as a JSON object",
                )
                .into());
            }
            serde_path_to_error::deserialize(value)
                .map(Body)
                .map_err(|error| shape_error(&error).into())
        })
    }
}

/// A body whose shape serde refused, as a field error naming the field: the
/// path to a value of the wrong type (`amount.currency`), or the field that
/// is missing or unknown; `body` only when nothing narrower applies.
fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let message = in_json_terms(&error.inner().to_string());
    let path = error.path().to_string();
    // serde's path ends at the object that lacks a missing field, but at
    // an unknown field itself.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    let field = match (path.as_str(), missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (path, None) => path.to_owned(),
    };
    let code = if message.starts_with("missing field") {
        "required"
    } else if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid_field"
    };
    ApiError::Validation(vec![FieldError {
        field,
        code,
        message,
    }])
}

/// A serde message in the words of the JSON a client sent, not of the Rust
/// types it was read into: serde's derived and primitive deserializers name
/// the expected type (`expected struct MoneyInput`, `expected u32`) and
/// call `null` a `unit value`. Every message built from a serde error goes
/// through here before it reaches a client (bodies and query strings).
#[must_use]
pub fn in_json_terms(message: &str) -> String {
    let Some((head, expected)) = message.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    let head = match head.strip_prefix("invalid type: ") {
        Some(unexpected) => format!("invalid type: {}", json_kind(unexpected)),
        None => head.to_owned(),
    };
    format!("{head}, expected {}", json_expectation(expected))
}

/// serde's name of an unexpected value (`Unexpected`), as JSON calls it.
fn json_kind(unexpected: &str) -> &str {
    match unexpected {
        "unit value" | "unit" => "null",
        "map" => "an object",
        "sequence" => "an array",
        other => other,
    }
}

/// serde's `Expected` of a derived or primitive type, as JSON calls it;
/// a description written for clients (`a decimal string ...`) is kept.
fn json_expectation(expected: &str) -> &str {
    let named = |prefix: &str| expected.starts_with(prefix);
    if named("struct ") || named("struct variant ") || expected == "a map" {
        "a JSON object"
    } else if named("tuple struct ")
        || named("tuple variant ")
        || named("a tuple of size ")
        || expected == "a sequence"
    {
        "a JSON array"
    } else if named("unit struct ") || named("unit variant ") || expected == "unit" {
        "null"
    } else if named("enum ") {
        "one of the values the API documents for this field"
    } else {
        match expected {
            "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number of 0 or more",
            "f32" | "f64" => "a number",
            "a borrowed string" | "a string" => "a string",
            "a character" | "char" => "a string of one character",
            "option" => "a value or null",
            other => other,
        }
    }
}

/// Money as JSON: `{"amount": "400.00", "currency": "USD"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyJson {
    /// Decimal string at the currency's scale.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<Money> for MoneyJson {
    fn from(money: Money) -> Self {
        Self {
            amount: money.amount_text(),
            currency: money.currency().code().to_owned(),
        }
    }
}

/// The policy version a problem's limit or a spend was pinned from, as JSON.
#[derive(Debug, Serialize)]
pub struct PolicyRefJson {
    /// The team whose policy it is.
    pub team_id: String,
    /// The version.
    pub version: i32,
}

/// Money as a client sends it. The amount must be a JSON string: a JSON
/// number may already have lost precision in the client's parser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyInput {
    /// Decimal string such as `"400.00"`.
    pub amount: String,
    /// ISO 4217 code such as `"USD"`.
    pub currency: String,
}

/// The members of a money object, read by serde's derive.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyMembers {
    #[serde(deserialize_with = "amount_text")]
    amount: String,
    currency: String,
}

/// Reads money from a JSON object only. serde's derive would also fill the
/// two members by position from an array (`["400.00", "USD"]`), which
/// nobody means; the members are then read by the derive, through the same
/// map, so a refused member keeps its path (`amount.currency`).
impl<'de> Deserialize<'de> for MoneyInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = MoneyInput;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str(
                    "a money object such as {\"amount\": \"400.00\", \"currency\": \"USD\"}",
                )
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<MoneyInput, A::Error> {
                let members =
                    MoneyMembers::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(MoneyInput {
                    amount: members.amount,
                    currency: members.currency,
                })
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

fn amount_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct AmountVisitor;
    impl serde::de::Visitor<'_> for AmountVisitor {
        type Value = String;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a decimal string such as \"400.00\" (not a JSON number)")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            if value.len() > AMOUNT_TEXT_LENGTH_MAX {
                return Err(E::custom("the amount is too long"));
            }
            Ok(value.to_owned())
        }
    }
    deserializer.deserialize_str(AmountVisitor)
}

/// A page of items as JSON.
#[derive(Debug, Serialize)]
pub struct ListJson<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListJson<T> {
    /// Builds the JSON page from a database page, converting each row and
    /// rendering the cursor.
    pub fn from_page<R, C: Cursor>(
        page: Page<R, C>,
        convert: impl FnMut(R) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let next_cursor = page.next_after.as_ref().map(ToString::to_string);
        let items = page
            .items
            .into_iter()
            .map(convert)
            .collect::<Result<_, _>>()?;
        Ok(Self { items, next_cursor })
    }
}

/// `?limit=&after=` for lists with no other filter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1 to [`PAGE_SIZE_MAX`].
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub after: Option<String>,
}

/// Turns `?limit=&after=` into a bounded page request of the list's cursor
/// kind `C` (ids, versions or report groups: `db::cursor`). A cursor that
/// does not parse is refused with what the list expects.
pub fn page_request<C: Cursor>(
    limit: Option<i64>,
    after: Option<&str>,
) -> Result<PageRequest<C>, ApiError> {
    let after = after
        .map(|cursor| {
            cursor.parse::<C>().map_err(|_| {
                ApiError::InvalidQuery(format!(
                    "after must be {}: pass next_cursor from a previous page",
                    C::EXPECTED
                ))
            })
        })
        .transpose()?;
    let limit = limit.unwrap_or(PAGE_SIZE_DEFAULT);
    if !(1..=PAGE_SIZE_MAX).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {PAGE_SIZE_MAX}"
        )));
    }
    Ok(PageRequest { limit, after })
}

/// Money read back from the database. The currency was checked when it was
/// written, so an unknown one here is a bug, not bad input.
pub fn stored_money(minor: i64, code: &str) -> Result<MoneyJson, ApiError> {
    Currency::from_code(code)
        .map(|currency| Money::from_minor(minor, currency).into())
        .ok_or_else(|| ApiError::Internal(format!("stored currency {code:?} is unknown")))
}

/// Reads an id from a path. Anything that is not a UUID names no object: 404.
pub fn parse_id(text: &str, what: &'static str) -> Result<String, ApiError> {
    canonical_uuid(text).ok_or(ApiError::NotFound(what))
}

/// Like [`parse_id`], into one of the typed ids (`domain::ids`).
pub fn parse_typed_id<I>(text: &str, what: &'static str) -> Result<I, ApiError>
where
    I: FromStr<Err = MalformedId>,
{
    text.parse().map_err(|_| ApiError::NotFound(what))
}

/// Reads an id from a query parameter.
pub fn parse_query_id(text: &str, name: &str) -> Result<String, ApiError> {
    parse_id(text, "id").map_err(|_| ApiError::InvalidQuery(format!("{name} must be a UUID")))
}

/// Reads an RFC 3339 timestamp from a query parameter, as UTC.
pub fn parse_time(text: &str, name: &str) -> Result<NaiveDateTime, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.naive_utc())
        .map_err(|_| {
            ApiError::InvalidQuery(format!(
                "{name} must be an RFC 3339 time such as 2026-11-25T00:00:00Z"
            ))
        })
}

/// Reads a `YYYY-MM-DD` query parameter.
pub fn parse_date(text: &str, name: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| ApiError::InvalidQuery(format!("{name} must be a date such as 2026-11-25")))
}

/// Checks a spend `status` query value.
pub fn parse_status(status: Option<String>) -> Result<Option<String>, ApiError> {
    match status {
        Some(status) if SpendStatus::parse(&status).is_none() => {
            let all: Vec<&str> = SpendStatus::ALL.iter().map(|s| s.as_str()).collect();
            Err(ApiError::InvalidQuery(format!(
                "status must be one of {}",
                all.join(", ")
            )))
        }
        other => Ok(other),
    }
}

/// For integer body fields. JSON Schema counts `24.0` as the integer 24, so
/// the server does too; a fraction, or a number outside `i32`, is refused.
pub fn whole_number<'de, D>(deserializer: D) -> Result<i32, D::Error>
where
    D: Deserializer<'de>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = match number.as_i64() {
        Some(integer) => i32::try_from(integer).ok(),
        None => number
            .as_f64()
            .filter(|float| {
                float.fract() == 0.0 && (f64::from(i32::MIN)..=f64::from(i32::MAX)).contains(float)
            })
            .and_then(|float| format!("{float:.0}").parse().ok()),
    };
    whole.ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{number} is not a whole number between {} and {}",
            i32::MIN,
            i32::MAX
        ))
    })
}

/// Like [`whole_number`], for 64-bit fields such as a sequence: an integer,
/// or a number with no fraction (`1.0`, which JSON Schema counts as an
/// integer) up to 2^53, where floats stop being exact.
pub fn whole_number_i64<'de, D>(deserializer: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    const EXACT_MAX: f64 = 9_007_199_254_740_992.0;
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|float| float.fract() == 0.0 && (-EXACT_MAX..=EXACT_MAX).contains(float))
            .and_then(|float| format!("{float:.0}").parse().ok())
    });
    whole.ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{number} is not a whole number between {} and {}",
            i64::MIN,
            i64::MAX
        ))
    })
}

/// For PATCH bodies: tells an absent field (`None`) from an explicit null
/// (`Some(None)`).
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Collects every refused field of a body, so one 422 lists them all.
#[derive(Debug, Default)]
pub struct Checks {
    errors: Vec<FieldError>,
}

impl Checks {
    /// Records a refusal.
    pub fn refuse(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        });
    }

    /// A required text: at most `max` characters as sent, not blank, no
    /// control characters but tab, CR and LF; kept trimmed.
    pub fn text(&mut self, field: &str, sent: &str, max: usize) -> String {
        let value = sent.trim();
        if value.is_empty() {
            self.refuse(field, "required", format!("{field} must not be empty"));
        } else if sent.chars().count() > max {
            self.refuse(
                field,
                "too_long",
                format!("{field} must be at most {max} characters"),
            );
        } else if sent
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.refuse(
                field,
                "invalid_characters",
                format!("{field} must not contain control characters"),
            );
        }
        value.to_owned()
    }

    /// An optional text: absent, or checked as [`Checks::text`].
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        value.map(|value| self.text(field, value, max))
    }

    /// A positive amount of money, the money object at `field`.
    pub fn money(&mut self, field: &str, input: &MoneyInput) -> Option<Money> {
        match Money::parse_positive(&input.amount, &input.currency) {
            Ok(money) => Some(money),
            Err(error) => {
                self.errors.push(FieldError::money(field, &error));
                None
            }
        }
    }

    /// A URL: `http(s)://`, at most [`URL_LENGTH_MAX`] characters.
    pub fn url(&mut self, field: &str, sent: Option<&str>) -> Option<String> {
        let value = self.optional_text(field, sent, URL_LENGTH_MAX)?;
        let lower = value.to_ascii_lowercase();
        let after_scheme = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if after_scheme.is_none_or(str::is_empty)
            || sent.is_some_and(|sent| sent.contains(char::is_whitespace))
        {
            self.refuse(
                field,
                "invalid_url",
                format!("{field} must be an http:// or https:// URL"),
            );
        }
        Some(value)
    }

    /// `Ok` when nothing was refused, else one 422 listing every refusal.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cursor::{GroupCursor, IdCursor, VersionCursor};

    /// The 400 a malformed cursor gets, as clients have always read it.
    fn refusal<C: Cursor + std::fmt::Debug>(after: &str) -> String {
        match page_request::<C>(None, Some(after)) {
            Err(ApiError::InvalidQuery(detail)) => detail,
            other => panic!("{after:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn id_cursors_are_ids_and_garbage_is_refused() {
        let id = "0190f2a0-0000-7000-8000-000000000000";
        let page = page_request::<IdCursor>(None, Some(&id.to_uppercase())).unwrap();
        assert_eq!(page.after.as_ref().map(IdCursor::as_str), Some(id));
        for garbage in [
            "",
            "zz",
            "0190f2a0",
            "0190f2a000007000800000000000000",
            "{0190f2a0-0000-7000-8000-000000000000}",
        ] {
            assert_eq!(
                refusal::<IdCursor>(garbage),
                "after must be the id of an item: pass next_cursor from a previous page"
            );
        }
    }

    #[test]
    fn version_cursors_are_whole_numbers() {
        let page = page_request::<VersionCursor>(None, Some("7")).unwrap();
        assert_eq!(page.after.map(VersionCursor::version), Some(7));
        for garbage in ["", "-1", "+1", "1.5", "x", "1234567890"] {
            assert_eq!(
                refusal::<VersionCursor>(garbage),
                "after must be a version number: pass next_cursor from a previous page"
            );
        }
    }

    #[test]
    fn group_cursors_are_group_keys() {
        let key = "0190f2a0-0000-7000-8000-000000000000|2026-11|USD";
        assert_eq!(
            page_request::<GroupCursor>(None, Some(key))
                .unwrap()
                .after
                .as_ref()
                .map(GroupCursor::as_str),
            Some(key)
        );
        for garbage in [
            "",
            "0190f2a0-0000-7000-8000-000000000000|2026-11",
            "0190F2A0-0000-7000-8000-000000000000|2026-11|USD",
            "0190f2a0-0000-7000-8000-000000000000|2026-1x|USD",
            "0190f2a0-0000-7000-8000-000000000000|2026-11|usd",
            "0190f2a0-0000-7000-8000-000000000000|2026-11|USD|",
        ] {
            assert_eq!(
                refusal::<GroupCursor>(garbage),
                "after must be a group key GROUP_ID|YYYY-MM|CURRENCY: pass next_cursor from a previous page"
            );
        }
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction() {
        let read = |json: &str| {
            whole_number(&mut serde_json::Deserializer::from_str(json)).map_err(|e| e.to_string())
        };
        assert_eq!(read("24"), Ok(24));
        assert_eq!(read("24.0"), Ok(24));
        assert_eq!(read("2.4e1"), Ok(24));
        assert_eq!(read("-3"), Ok(-3));
        for refused in [
            "24.5",
            "2147483648",
            "-2147483649",
            "1e300",
            "\"24\"",
            "null",
        ] {
            assert!(read(refused).is_err(), "{refused}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialised")]
    struct Shape {
        title: String,
        amount: Option<MoneyInput>,
    }

    fn shape(json: serde_json::Value) -> FieldError {
        let error = serde_path_to_error::deserialize::<_, Shape>(json).unwrap_err();
        let ApiError::Validation(mut errors) = shape_error(&error) else {
            panic!("not a validation error")
        };
        errors.remove(0)
    }

    #[test]
    fn shape_errors_name_the_field() {
        let missing = shape(serde_json::json!({}));
        assert_eq!(
            (missing.field.as_str(), missing.code),
            ("title", "required")
        );
        let unknown = shape(serde_json::json!({"title": "T", "status": "approved"}));
        assert_eq!(
            (unknown.field.as_str(), unknown.code),
            ("status", "unknown_field")
        );
        let wrong_type = shape(serde_json::json!({"title": 7}));
        assert_eq!(
            (wrong_type.field.as_str(), wrong_type.code),
            ("title", "invalid_field")
        );
        let nested =
            shape(serde_json::json!({"title": "T", "amount": {"amount": "1", "currency": 9}}));
        assert_eq!(
            (nested.field.as_str(), nested.code),
            ("amount.currency", "invalid_field")
        );
        let nested_missing = shape(serde_json::json!({"title": "T", "amount": {"amount": "1"}}));
        assert_eq!(nested_missing.field.as_str(), "amount.currency");
    }

    #[test]
    fn shape_errors_never_name_a_rust_type() {
        for (amount, field) in [
            (serde_json::json!("400.00"), "amount"),
            (serde_json::json!(400), "amount"),
            (serde_json::json!(["400.00", "USD"]), "amount"),
            (serde_json::json!(true), "amount"),
            (
                serde_json::json!({"amount": "1", "currency": "USD", "x": 1}),
                "amount.x",
            ),
            (
                serde_json::json!({"amount": "1", "currency": null}),
                "amount.currency",
            ),
            (
                serde_json::json!({"amount": {}, "currency": "USD"}),
                "amount.amount",
            ),
        ] {
            let error = shape(serde_json::json!({"title": "T", "amount": amount}));
            assert_eq!(error.field, field, "{amount}");
            for rust in ["struct", "MoneyInput", "unit value", "sequence", "map"] {
                assert!(!error.message.contains(rust), "{amount}: {}", error.message);
            }
        }
        let null_title = shape(serde_json::json!({"title": null}));
        assert_eq!(null_title.message, "invalid type: null, expected a string");
    }

    #[test]
    fn serde_messages_speak_json() {
        assert_eq!(
            in_json_terms("invalid type: string \"400\", expected struct MoneyInput"),
            "invalid type: string \"400\", expected a JSON object"
        );
        assert_eq!(
            in_json_terms("invalid type: sequence, expected u32"),
            "invalid type: an array, expected a whole number of 0 or more"
        );
        assert_eq!(
            in_json_terms("invalid type: map, expected enum Decision"),
            "invalid type: an object, expected one of the values the API documents for this field"
        );
        let kept = "unknown field `status`, expected one of `title`, `amount`";
        assert_eq!(in_json_terms(kept), kept);
        assert_eq!(
            in_json_terms("missing field `title`"),
            "missing field `title`"
        );
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(
            page_request::<IdCursor>(None, None).unwrap().limit,
            PAGE_SIZE_DEFAULT
        );
        assert!(page_request::<IdCursor>(Some(0), None).is_err());
        assert!(page_request::<IdCursor>(Some(PAGE_SIZE_MAX + 1), None).is_err());
    }
}
