//! The limit rule of DESIGN.md §1, as pure arithmetic on a problem's running
//! totals. The database applies the same rule atomically in a guarded update
//! (`db::spends`); this module decides what the outcome means and computes
//! the overrun, so both places agree by construction.

/// The budget alert thresholds of a policy that names none: announce at
/// 80% and at 100% of a problem's limit.
pub const ALERT_THRESHOLDS_PERCENT_DEFAULT: [u16; 2] = [80, 100];
/// Most thresholds a policy may name.
pub const ALERT_THRESHOLDS_MAX: usize = 10;
/// Highest threshold a policy may name: ten times the limit.
pub const ALERT_THRESHOLD_PERCENT_MAX: u16 = 1_000;

/// The thresholds (percentages of `limit_minor`) that a problem's total of
/// approved and pending spends crosses going from `before_minor` to
/// `after_minor`: below each before, at or above it after. Nothing for a
/// limit of zero or less, or a total that did not grow.
#[must_use]
pub fn thresholds_crossed(
    before_minor: i64,
    after_minor: i64,
    limit_minor: i64,
    thresholds_percent: &[u16],
) -> Vec<u16> {
    if limit_minor <= 0 || after_minor <= before_minor {
        return Vec::new();
    }
    let scaled = |minor: i64| i128::from(minor) * 100;
    thresholds_percent
        .iter()
        .copied()
        .filter(|percent| {
            let line = i128::from(limit_minor) * i128::from(*percent);
            scaled(before_minor) < line && scaled(after_minor) >= line
        })
        .collect()
}

/// A problem's budget and running totals, in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// The budget.
    pub limit_minor: i64,
    /// Approved spends, autonomous or by a manager.
    pub approved_minor: i64,
    /// Flagged spends awaiting a decision: they reserve their amount.
    pub pending_review_minor: i64,
}

impl Totals {
    /// `limit - approved - pending_review`: what may still be spent without
    /// asking. Negative once a manager approved past the limit.
    #[must_use]
    pub fn remaining_minor(self) -> i64 {
        self.limit_minor
            .saturating_sub(self.approved_minor)
            .saturating_sub(self.pending_review_minor)
    }

    /// Whether a spend of `amount_minor` fits inside the budget. The guarded
    /// update in `db::spends` is the SQL form of exactly this comparison.
    #[must_use]
    pub fn fits(self, amount_minor: i64) -> bool {
        amount_minor <= self.remaining_minor()
    }

    /// How far a flagged spend goes past the budget:
    /// `amount - max(headroom, 0)`.
    #[must_use]
    pub fn overrun_minor(self, amount_minor: i64) -> i64 {
        amount_minor.saturating_sub(self.remaining_minor().max(0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_threshold_is_crossed_once_going_up_to_or_past_it() {
        let both = ALERT_THRESHOLDS_PERCENT_DEFAULT;
        let none: Vec<u16> = Vec::new();
        assert_eq!(thresholds_crossed(0, 7_999, 10_000, &both), none);
        assert_eq!(thresholds_crossed(0, 8_000, 10_000, &both), [80]);
        assert_eq!(thresholds_crossed(7_999, 10_000, 10_000, &both), [80, 100]);
        assert_eq!(thresholds_crossed(8_000, 9_999, 10_000, &both), none);
        assert_eq!(thresholds_crossed(9_000, 12_000, 10_000, &both), [100]);
        assert_eq!(thresholds_crossed(10_000, 12_000, 10_000, &both), none);
        assert_eq!(thresholds_crossed(9_000, 8_000, 10_000, &both), none);
        assert_eq!(thresholds_crossed(0, 5, 0, &both), none);
        // 1 minor unit of a 3-unit limit is 33.3%: not yet 34%.
        assert_eq!(thresholds_crossed(0, 1, 3, &[34]), none);
        assert_eq!(thresholds_crossed(0, 2, 3, &[34, 66, 67]), [34, 66]);
        assert_eq!(
            thresholds_crossed(0, i64::MAX, i64::MAX, &[100, 1_000]),
            [100]
        );
    }

    fn totals(limit: i64, approved: i64, pending: i64) -> Totals {
        Totals {
            limit_minor: limit,
            approved_minor: approved,
            pending_review_minor: pending,
        }
    }

    #[test]
    fn inside_the_budget_fits_and_the_edge_is_inclusive() {
        assert!(totals(40_000, 0, 0).fits(40_000));
        assert!(totals(40_000, 30_000, 5_000).fits(5_000));
        assert!(!totals(40_000, 30_000, 5_000).fits(5_001));
    }

    #[test]
    fn overrun_counts_only_what_goes_past_the_headroom() {
        assert_eq!(totals(40_000, 35_000, 0).overrun_minor(10_000), 5_000);
        // Headroom already negative (a manager approved past the limit): the whole amount overruns.
        assert_eq!(totals(40_000, 45_000, 0).overrun_minor(10_000), 10_000);
        assert_eq!(totals(40_000, 45_000, 0).remaining_minor(), -5_000);
    }

    proptest! {
        #[test]
        fn a_flagged_spend_always_overruns_by_a_positive_amount_at_most_itself(
            limit in 0_i64..1_000_000, approved in 0_i64..1_000_000, pending in 0_i64..1_000_000, amount in 1_i64..1_000_000,
        ) {
            let totals = totals(limit, approved, pending);
            if !totals.fits(amount) {
                let overrun = totals.overrun_minor(amount);
                prop_assert!(overrun > 0 && overrun <= amount);
            }
        }
    }
}
