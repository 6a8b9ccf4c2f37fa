//! The limit rule of DESIGN.md §1, as pure arithmetic on a problem's running
//! totals. The database applies the same rule atomically in a guarded update
//! (`db::spends`); this module decides what the outcome means and computes
//! the overrun, so both places agree by construction.

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
