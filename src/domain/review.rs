//! The review workflow's pure rules: why a spend is flagged, where in the
//! team tree a flagged spend goes, whether a reviewer's authority covers an
//! approval, and which calendar period a spend counts in. The database
//! applies these inside the spend's transaction (`api::spends`,
//! `api::reviews`, `api::escalation`).

use chrono::NaiveDateTime;

/// Why a spend was flagged for review instead of approved on the spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagReason {
    /// The spend goes past the problem's remaining budget.
    OverProblemLimit,
    /// The spend would take the owner's autonomous total for the calendar
    /// month past the policy's period allowance.
    OverPeriodAllowance,
    /// The owner has not acknowledged the problem's current success criteria.
    NotAcknowledged,
}

impl FlagReason {
    /// Every reason, in the order they are reported.
    pub const ALL: [Self; 3] = [
        Self::OverProblemLimit,
        Self::OverPeriodAllowance,
        Self::NotAcknowledged,
    ];

    /// The stored and JSON spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OverProblemLimit => "over_problem_limit",
            Self::OverPeriodAllowance => "over_period_allowance",
            Self::NotAcknowledged => "not_acknowledged",
        }
    }
}

/// Stores reasons as comma-separated codes; `None` when there are none.
#[must_use]
pub fn encode_reasons(reasons: &[FlagReason]) -> Option<String> {
    if reasons.is_empty() {
        return None;
    }
    Some(
        FlagReason::ALL
            .iter()
            .filter(|reason| reasons.contains(reason))
            .map(|reason| reason.as_str())
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Reads stored reasons back as their codes.
#[must_use]
pub fn decode_reasons(stored: Option<&str>) -> Vec<String> {
    stored
        .map(|text| {
            text.split(',')
                .filter(|code| !code.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// One team on the way up the tree, and its manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamNode {
    /// The team.
    pub team_id: String,
    /// Its manager, if it has one.
    pub manager_id: Option<String>,
}

/// Where a flagged spend waits for a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A manager, reviewing as the manager of `team_id`.
    Manager {
        /// The reviewer.
        manager_id: String,
        /// The highest team in an unbroken run of teams this manager runs:
        /// the next level up starts above it.
        team_id: String,
    },
    /// Nobody suitable is above: any admin decides.
    Admins,
}

/// Routes a flagged spend: the first manager on `chain` (teams from the
/// starting one upwards) who is not in `excluded` (whoever logged the spend
/// and the problem's owner: nobody reviews their own spend). A manager who
/// runs several consecutive teams of the chain reviews as the highest of
/// them, so moving up never lands on the same person again. With no such
/// manager the spend goes to the admins.
#[must_use]
pub fn route(chain: &[TeamNode], excluded: &[&str]) -> Route {
    for (index, node) in chain.iter().enumerate() {
        let Some(manager_id) = node
            .manager_id
            .as_deref()
            .filter(|manager| !excluded.contains(manager))
        else {
            continue;
        };
        let top = chain[index..]
            .iter()
            .take_while(|above| above.manager_id.as_deref() == Some(manager_id))
            .last()
            .unwrap_or(node);
        return Route::Manager {
            manager_id: manager_id.to_owned(),
            team_id: top.team_id.clone(),
        };
    }
    Route::Admins
}

/// Whether a reviewer whose authority is `approval_limit_minor` (`None`:
/// no cap) may approve a spend whose approval would overrun the problem's
/// budget by `overrun_minor`. Approving what fits the budget needs no
/// authority.
#[must_use]
pub fn authority_covers(approval_limit_minor: Option<i64>, overrun_minor: i64) -> bool {
    overrun_minor <= 0 || approval_limit_minor.is_none_or(|limit| overrun_minor <= limit)
}

/// The calendar month (UTC) a spend logged at `at` counts in, as `YYYY-MM`.
#[must_use]
pub fn period_of(at: NaiveDateTime) -> String {
    at.format("%Y-%m").to_string()
}

/// Whether an autonomous spend of `amount_minor` stays inside a period
/// allowance (`None`: no allowance) given what was already spent
/// autonomously in the period. The guarded update in `db::period_totals`
/// is the SQL form of exactly this comparison.
#[must_use]
pub fn fits_allowance(allowance_minor: Option<i64>, spent_minor: i64, amount_minor: i64) -> bool {
    allowance_minor.is_none_or(|allowance| spent_minor.saturating_add(amount_minor) <= allowance)
}

/// How far a spend goes past a period allowance, if it does.
#[must_use]
pub fn allowance_overrun_minor(
    allowance_minor: Option<i64>,
    spent_minor: i64,
    amount_minor: i64,
) -> Option<i64> {
    let allowance = allowance_minor?;
    let over = spent_minor
        .saturating_add(amount_minor)
        .saturating_sub(allowance);
    (over > 0).then_some(over.min(amount_minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(team: &str, manager: Option<&str>) -> TeamNode {
        TeamNode {
            team_id: team.to_owned(),
            manager_id: manager.map(str::to_owned),
        }
    }

    fn manager(manager_id: &str, team_id: &str) -> Route {
        Route::Manager {
            manager_id: manager_id.to_owned(),
            team_id: team_id.to_owned(),
        }
    }

    #[test]
    fn a_flagged_spend_goes_to_the_manager_of_the_problems_team() {
        let chain = [node("east", Some("eve")), node("ops", Some("mia"))];
        assert_eq!(route(&chain, &["sam"]), manager("eve", "east"));
    }

    #[test]
    fn a_manager_never_reviews_their_own_spend_it_goes_up() {
        let chain = [node("east", Some("eve")), node("ops", Some("mia"))];
        assert_eq!(route(&chain, &["eve"]), manager("mia", "ops"));
        assert_eq!(route(&chain, &["eve", "mia"]), Route::Admins);
    }

    #[test]
    fn teams_without_a_manager_are_skipped_and_the_top_goes_to_admins() {
        let chain = [node("east", None), node("ops", Some("mia"))];
        assert_eq!(route(&chain, &["sam"]), manager("mia", "ops"));
        assert_eq!(route(&[node("solo", None)], &[]), Route::Admins);
        assert_eq!(route(&[], &[]), Route::Admins);
    }

    #[test]
    fn a_manager_of_consecutive_teams_reviews_as_the_highest_of_them() {
        let chain = [
            node("east", Some("mia")),
            node("ops", Some("mia")),
            node("org", Some("ceo")),
        ];
        assert_eq!(route(&chain, &[]), manager("mia", "ops"));
        assert_eq!(route(&chain[2..], &[]), manager("ceo", "org"));
    }

    #[test]
    fn authority_caps_only_what_goes_past_the_budget() {
        assert!(authority_covers(Some(100), 0));
        assert!(authority_covers(Some(100), -5));
        assert!(authority_covers(Some(100), 100));
        assert!(!authority_covers(Some(100), 101));
        assert!(authority_covers(None, i64::MAX));
    }

    #[test]
    fn allowances_are_inclusive_and_report_the_overrun() {
        assert!(fits_allowance(Some(1_000), 600, 400));
        assert!(!fits_allowance(Some(1_000), 600, 401));
        assert!(fits_allowance(None, i64::MAX, 1));
        assert_eq!(allowance_overrun_minor(Some(1_000), 600, 500), Some(100));
        assert_eq!(allowance_overrun_minor(Some(1_000), 1_200, 500), Some(500));
        assert_eq!(allowance_overrun_minor(Some(1_000), 0, 500), None);
        assert_eq!(allowance_overrun_minor(None, 0, 500), None);
    }

    #[test]
    fn reasons_round_trip_in_a_stable_order() {
        let stored = encode_reasons(&[FlagReason::NotAcknowledged, FlagReason::OverProblemLimit]);
        assert_eq!(
            stored.as_deref(),
            Some("over_problem_limit,not_acknowledged")
        );
        assert_eq!(
            decode_reasons(stored.as_deref()),
            ["over_problem_limit", "not_acknowledged"]
        );
        assert_eq!(encode_reasons(&[]), None);
        assert!(decode_reasons(None).is_empty());
    }

    #[test]
    fn periods_are_utc_calendar_months() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
            .and_then(|date| date.and_hms_opt(23, 59, 59))
            .unwrap_or_default();
        assert_eq!(period_of(at), "2026-11");
    }
}
