//! ISO 4217 currencies Leeway accepts, each with its minor-unit exponent
//! (USD 2, JPY 0, BHD 3): the exponent decides how many decimals an amount
//! may carry and the scale of `*_minor` columns.

use std::fmt;

/// Active ISO 4217 codes and their exponents. Funds codes and metals (XAU,
/// XDR, ...) are left out on purpose: nobody logs a spend in them.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("ANG", 2), ("AOA", 2), ("ARS", 2),
    ("AUD", 2), ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2),
    ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2),
    ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2),
    ("CLP", 0), ("CNY", 2), ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2),
    ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2),
    ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2),
    ("GMD", 2), ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2),
    ("HUF", 2), ("IDR", 2), ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0),
    ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0),
    ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2),
    ("MKD", 2), ("MMK", 2), ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2),
    ("MWK", 2), ("MXN", 2), ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2),
    ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2),
    ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2),
    ("SGD", 2), ("SHP", 2), ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2),
    ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3),
    ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0),
    ("USD", 2), ("UYU", 2), ("UZS", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2),
    ("XAF", 0), ("XCD", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2),
];

/// A known ISO 4217 currency. Built only by [`Currency::from_code`], so
/// holding one means the code is known and its exponent is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    /// Looks up an upper-case ISO 4217 code; `None` for anything unknown
    /// (lower case included: codes are case-sensitive in ISO 4217).
    #[must_use]
    pub fn from_code(code: &str) -> Option<Self> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|&(code, exponent)| Self { code, exponent })
    }

    /// Every known currency, in code order (the spec's `CurrencyCode` lists
    /// the same codes).
    pub fn all() -> impl Iterator<Item = Self> {
        CURRENCIES
            .iter()
            .map(|&(code, exponent)| Self { code, exponent })
    }

    /// The three-letter code, e.g. `"USD"`.
    #[must_use]
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Number of decimals of the minor unit: 2 for USD, 0 for JPY, 3 for BHD.
    #[must_use]
    pub fn exponent(self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_carry_their_exponent() {
        let cases = [("USD", 2), ("JPY", 0), ("BHD", 3), ("EUR", 2), ("KWD", 3)];
        for (code, exponent) in cases {
            let currency = Currency::from_code(code);
            assert_eq!(currency.map(Currency::exponent), Some(exponent), "{code}");
        }
    }

    #[test]
    fn unknown_and_lower_case_codes_are_refused() {
        for code in ["usd", "XXX", "US", "USDD", "", "XAU"] {
            assert_eq!(Currency::from_code(code), None, "{code}");
        }
    }

    #[test]
    fn the_table_has_no_duplicates_and_only_upper_case_codes() {
        let mut codes: Vec<&str> = CURRENCIES.iter().map(|(code, _)| *code).collect();
        assert!(
            codes
                .iter()
                .all(|code| code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CURRENCIES.len());
    }
}
