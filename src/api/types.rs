//! Request and response building blocks shared by every resource: money in
//! JSON, list pages and cursors, ids in paths, and field checks that collect
//! every refusal of a body into one 422.

use std::ops::Deref;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::db::{Page, PageRequest};
use crate::domain::currency::Currency;
use crate::domain::money::{AMOUNT_TEXT_LENGTH_MAX, Money};
use crate::error::{ApiError, FieldError};

/// Largest request body accepted, in bytes.
pub const BODY_SIZE_MAX: usize = 64 * 1024;
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
/// Prefix that versions the cursor format.
const CURSOR_VERSION: &str = "v1:";

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
            serde_json::from_value(value).map(Body).map_err(|error| {
                ApiError::Validation(vec![FieldError {
                    field: "body".to_owned(),
                    code: "invalid_field",
                    message: error.to_string(),
                }])
                .into()
            })
        })
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
    /// Builds the JSON page from a database page, converting each row.
    pub fn from_page<R>(
        page: Page<R>,
        convert: impl FnMut(R) -> Result<T, ApiError>,
    ) -> Result<Self, ApiError> {
        let next_cursor = page.next_after.as_deref().map(encode_cursor);
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

/// Turns `?limit=&after=` into a bounded page request.
pub fn page_request(limit: Option<i64>, after: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = limit.unwrap_or(PAGE_SIZE_DEFAULT);
    if !(1..=PAGE_SIZE_MAX).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {PAGE_SIZE_MAX}"
        )));
    }
    let after = after.map(decode_cursor).transpose()?;
    Ok(PageRequest { limit, after })
}

/// Cursors are opaque to clients: the sort key, versioned and hex-encoded.
fn encode_cursor(key: &str) -> String {
    crate::encoding::hex(format!("{CURSOR_VERSION}{key}").as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::InvalidQuery(
            "the cursor is not valid: pass next_cursor from a previous page".to_owned(),
        )
    };
    if cursor.len() % 2 != 0 || cursor.len() > 256 {
        return Err(invalid());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|index| {
            cursor
                .get(index..index + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(CURSOR_VERSION)
        .map(str::to_owned)
        .ok_or_else(invalid)
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
    uuid::Uuid::parse_str(text)
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| ApiError::NotFound(what))
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

    /// A required text: trimmed, not empty, at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let value = value.trim();
        if value.is_empty() {
            self.refuse(field, "required", format!("{field} must not be empty"));
        } else if value.chars().count() > max {
            self.refuse(
                field,
                "too_long",
                format!("{field} must be at most {max} characters"),
            );
        } else if value
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
    pub fn url(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let value = self.optional_text(field, value, URL_LENGTH_MAX)?;
        let lower = value.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || value.contains(char::is_whitespace)
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

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = encode_cursor("0190f2a0-0000-7000-8000-000000000000");
        assert_eq!(
            decode_cursor(&cursor).unwrap(),
            "0190f2a0-0000-7000-8000-000000000000"
        );
        for garbage in ["zz", "abc", "00", &encode_cursor("x")[6..]] {
            assert!(decode_cursor(garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(page_request(None, None).unwrap().limit, PAGE_SIZE_DEFAULT);
        assert!(page_request(Some(0), None).is_err());
        assert!(page_request(Some(PAGE_SIZE_MAX + 1), None).is_err());
    }
}
