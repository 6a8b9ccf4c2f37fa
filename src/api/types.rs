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
    let message = error.inner().to_string();
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Decimal string such as `"400.00"`.
    #[serde(deserialize_with = "amount_text")]
    pub amount: String,
    /// ISO 4217 code such as `"USD"`.
    pub currency: String,
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

    /// A positive amount of money.
    pub fn money(&mut self, field: &str, input: &MoneyInput) -> Option<Money> {
        match Money::parse_positive(&input.amount, &input.currency) {
            Ok(money) => Some(money),
            Err(error) => {
                if let ApiError::Validation(mut errors) = ApiError::money(field, &error) {
                    self.errors.append(&mut errors);
                }
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
    fn page_size_is_bounded() {
        assert_eq!(
            page_request::<IdCursor>(None, None).unwrap().limit,
            PAGE_SIZE_DEFAULT
        );
        assert!(page_request::<IdCursor>(Some(0), None).is_err());
        assert!(page_request::<IdCursor>(Some(PAGE_SIZE_MAX + 1), None).is_err());
    }
}
