//! Money: integer minor units at the currency's fixed scale, parsed from and
//! formatted to decimal strings. Every arithmetic step is checked; nothing
//! here ever touches a float.

use std::fmt;

use rust_decimal::Decimal;

use super::currency::Currency;

/// Largest amount Leeway accepts in one value, in minor units (10^15, i.e.
/// ten trillion dollars). Far below `i64::MAX`, so running totals of many
/// such amounts stay representable.
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// Longest decimal string accepted for an amount, before any other check.
pub const AMOUNT_TEXT_LENGTH_MAX: usize = 32;

/// Why a money value was refused. Each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency code is not a known ISO 4217 code.
    #[error("unknown currency {0:?}: send an upper-case ISO 4217 code such as \"USD\"")]
    UnknownCurrency(String),
    /// The text is not a plain decimal number.
    #[error(
        "amount {0:?} is not a decimal string: send digits with an optional '.' and fraction, such as \"400.00\" (no sign, exponent, spaces or separators)"
    )]
    NotADecimal(String),
    /// More decimals than the currency's minor unit.
    #[error("amount {amount:?} has more decimals than {currency} allows ({exponent})")]
    TooManyDecimals {
        /// The amount as sent.
        amount: String,
        /// The currency code.
        currency: &'static str,
        /// Decimals the currency allows.
        exponent: u32,
    },
    /// Zero or negative where a positive amount is required.
    #[error("amount must be greater than zero")]
    NotPositive,
    /// Larger than [`AMOUNT_MINOR_MAX`].
    #[error("amount is too large: at most {max} minor units")]
    TooLarge {
        /// The bound, in minor units.
        max: i64,
    },
    /// The currency differs from the one this value must share.
    #[error("currency {got} does not match {expected}: send amounts in {expected}")]
    CurrencyMismatch {
        /// The currency required here.
        expected: &'static str,
        /// The currency sent.
        got: &'static str,
    },
}

/// An amount of money in a known currency, held as integer minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// Builds a value from stored minor units. Used for database rows, which
    /// the schema already constrains; any `i64` formats correctly.
    #[must_use]
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a positive amount such as `"400.00"` in the currency `code`.
    /// Refuses unknown currencies, signs, exponents, more decimals than the
    /// currency allows, zero, and values above [`AMOUNT_MINOR_MAX`].
    pub fn parse_positive(amount: &str, code: &str) -> Result<Self, MoneyError> {
        let currency = Currency::from_code(code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        let minor = parse_minor(amount, currency)?;
        if minor == 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(Self { minor, currency })
    }

    /// Minor units: cents for USD, yen for JPY.
    #[must_use]
    pub fn minor(self) -> i64 {
        self.minor
    }

    /// The currency.
    #[must_use]
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount as a decimal string at the currency's scale: `"400.00"`,
    /// `"5"` for JPY, `"-1.250"` for BHD.
    #[must_use]
    pub fn amount_text(self) -> String {
        Decimal::new(self.minor, self.currency.exponent()).to_string()
    }

    /// Writes [`Money::amount_text`] to `out` without allocating: exports
    /// write millions of amounts.
    pub fn write_amount(self, out: &mut impl fmt::Write) -> fmt::Result {
        write!(
            out,
            "{}",
            Decimal::new(self.minor, self.currency.exponent())
        )
    }

    /// Refuses a value whose currency is not `expected`.
    pub fn require_currency(self, expected: Currency) -> Result<Self, MoneyError> {
        if self.currency == expected {
            Ok(self)
        } else {
            Err(MoneyError::CurrencyMismatch {
                expected: expected.code(),
                got: self.currency.code(),
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency)
    }
}

/// Parses a non-negative plain decimal into minor units of `currency`.
fn parse_minor(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let not_decimal =
        || MoneyError::NotADecimal(text.chars().take(AMOUNT_TEXT_LENGTH_MAX).collect());
    if text.len() > AMOUNT_TEXT_LENGTH_MAX {
        return Err(MoneyError::TooLarge {
            max: AMOUNT_MINOR_MAX,
        });
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    // Why so strict: "1e3", "+5", " 5", "1_000" and ".5" all parse somewhere,
    // and a ledger must never guess what a client meant.
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || text.ends_with('.') {
        return Err(not_decimal());
    }
    let exponent = currency.exponent();
    let significant_fraction = fraction.trim_end_matches('0');
    if significant_fraction.len() > exponent as usize {
        return Err(MoneyError::TooManyDecimals {
            amount: text.to_owned(),
            currency: currency.code(),
            exponent,
        });
    }
    let too_large = MoneyError::TooLarge {
        max: AMOUNT_MINOR_MAX,
    };
    let whole_value: i64 = whole.parse().map_err(|_| too_large.clone())?;
    let mut fraction_minor: i64 = 0;
    for position in 0..exponent as usize {
        let digit = significant_fraction
            .as_bytes()
            .get(position)
            .map_or(0, |byte| byte - b'0');
        fraction_minor = fraction_minor * 10 + i64::from(digit);
    }
    let scale = 10_i64.pow(exponent);
    let minor = whole_value
        .checked_mul(scale)
        .and_then(|value| value.checked_add(fraction_minor))
        .ok_or_else(|| too_large.clone())?;
    if minor > AMOUNT_MINOR_MAX {
        return Err(too_large);
    }
    Ok(minor)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    #[test]
    fn parses_at_the_currency_scale() {
        assert_eq!(
            Money::parse_positive("400.00", "USD").unwrap().minor(),
            40_000
        );
        assert_eq!(Money::parse_positive("400", "USD").unwrap().minor(), 40_000);
        assert_eq!(Money::parse_positive("0.5", "USD").unwrap().minor(), 50);
        assert_eq!(Money::parse_positive("1500", "JPY").unwrap().minor(), 1_500);
        assert_eq!(
            Money::parse_positive("1.250", "BHD").unwrap().minor(),
            1_250
        );
        // Trailing zeros beyond the scale say nothing new and are accepted.
        assert_eq!(Money::parse_positive("1.5000", "USD").unwrap().minor(), 150);
        assert_eq!(Money::parse_positive("7.0", "JPY").unwrap().minor(), 7);
    }

    #[test]
    fn refuses_what_a_ledger_must_not_guess() {
        for text in [
            "", ".5", "5.", "-5", "+5", "1e3", "1E3", " 5", "5 ", "1,000", "1_000", "0x10", "NaN",
            "five", "1..2",
        ] {
            assert!(
                matches!(
                    Money::parse_positive(text, "USD"),
                    Err(MoneyError::NotADecimal(_))
                ),
                "{text:?}"
            );
        }
        assert_eq!(
            Money::parse_positive("0", "USD"),
            Err(MoneyError::NotPositive)
        );
        assert_eq!(
            Money::parse_positive("0.00", "USD"),
            Err(MoneyError::NotPositive)
        );
        assert!(matches!(
            Money::parse_positive("1.001", "USD"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse_positive("1.5", "JPY"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse_positive("1", "usd"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            Money::parse_positive("1", "ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
    }

    #[test]
    fn refuses_overflow() {
        let too_large = Err(MoneyError::TooLarge {
            max: AMOUNT_MINOR_MAX,
        });
        assert_eq!(
            Money::parse_positive("99999999999999999999", "USD"),
            too_large
        );
        assert_eq!(Money::parse_positive("10000000000000.01", "USD"), too_large);
        assert_eq!(Money::parse_positive(&"9".repeat(100), "USD"), too_large);
        assert_eq!(
            Money::parse_positive("10000000000000.00", "USD")
                .unwrap()
                .minor(),
            AMOUNT_MINOR_MAX
        );
    }

    #[test]
    fn formats_at_the_currency_scale() {
        assert_eq!(Money::from_minor(40_000, usd()).amount_text(), "400.00");
        assert_eq!(Money::from_minor(5, usd()).amount_text(), "0.05");
        assert_eq!(Money::from_minor(-5_000, usd()).amount_text(), "-50.00");
        assert_eq!(Money::from_minor(0, usd()).amount_text(), "0.00");
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(Money::from_minor(1_500, jpy).amount_text(), "1500");
        let bhd = Currency::from_code("BHD").unwrap();
        assert_eq!(Money::from_minor(1_250, bhd).amount_text(), "1.250");
    }

    #[test]
    fn currency_mismatch_is_refused() {
        let eur = Currency::from_code("EUR").unwrap();
        let money = Money::parse_positive("1", "USD").unwrap();
        assert!(matches!(
            money.require_currency(eur),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(money.require_currency(usd()), Ok(money));
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop::sample::select(vec!["USD", "JPY", "BHD", "EUR", "KWD", "CLP"])
            .prop_map(|code| Currency::from_code(code).unwrap())
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(minor in 1..=AMOUNT_MINOR_MAX, currency in any_currency()) {
            let text = Money::from_minor(minor, currency).amount_text();
            let parsed = Money::parse_positive(&text, currency.code()).unwrap();
            prop_assert_eq!(parsed.minor(), minor);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_plain_decimals(text in "\\PC{0,40}") {
            if let Ok(money) = Money::parse_positive(&text, "USD") {
                prop_assert!(money.minor() > 0 && money.minor() <= AMOUNT_MINOR_MAX);
                prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
        }

        #[test]
        fn parse_agrees_with_decimal_arithmetic(whole in 0_u64..10_000_000_000_000, cents in 0_u32..100) {
            let text = format!("{whole}.{cents:02}");
            let expected = Decimal::from(whole) * Decimal::from(100) + Decimal::from(cents);
            match Money::parse_positive(&text, "USD") {
                Ok(money) => prop_assert_eq!(Decimal::from(money.minor()), expected),
                Err(MoneyError::NotPositive) => prop_assert_eq!(expected, Decimal::ZERO),
                Err(MoneyError::TooLarge { .. }) => prop_assert!(expected > Decimal::from(AMOUNT_MINOR_MAX)),
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn written_amounts_are_the_amount_text(minor in any::<i64>(), currency in any_currency()) {
            let money = Money::from_minor(minor, currency);
            let mut written = String::new();
            money.write_amount(&mut written).unwrap();
            prop_assert_eq!(written, money.amount_text());
        }
    }
}
