//! Team policies' use cases: a new version on every change (nothing is
//! overwritten), the version in force (the team's own newest, else the
//! nearest ancestor's), and the version history.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::db::audit;
use crate::db::cursor::VersionCursor;
use crate::db::events::Subject;
use crate::db::policies::{self, PolicyRow};
use crate::db::teams;
use crate::db::{DbConnection, Page, PageRequest};
use crate::domain::access::Caller;
use crate::domain::currency::Currency;
use crate::domain::event::EventKind;
use crate::domain::limit::ALERT_THRESHOLDS_PERCENT_DEFAULT;
use crate::domain::money::Money;
use crate::encoding::rfc3339;
use crate::service::Error;

/// Money as audit events record it: `{"amount": "400.00", "currency": "USD"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoneyRecorded {
    amount: String,
    currency: String,
}

impl MoneyRecorded {
    /// Money read back from the database. The currency was checked when it
    /// was written, so an unknown one here is a bug, not bad input.
    pub fn stored(minor: i64, code: &str) -> Result<Self, Error> {
        let currency = Currency::from_code(code)
            .ok_or_else(|| Error::Internal(format!("stored currency {code:?} is unknown")))?;
        let money = Money::from_minor(minor, currency);
        Ok(Self {
            amount: money.amount_text(),
            currency: currency.code().to_owned(),
        })
    }
}

/// A policy version as its audit event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyRecorded {
    team_id: String,
    version: i32,
    per_problem_limit: MoneyRecorded,
    review_sla_hours: i32,
    effective_from: String,
    created_by: String,
    approval_limit: Option<MoneyRecorded>,
    period_allowance: Option<MoneyRecorded>,
    require_acknowledgement: bool,
    alert_thresholds_percent: Vec<u16>,
}

impl PolicyRecorded {
    fn from_row(row: &PolicyRow) -> Result<Self, Error> {
        let money = |minor: Option<i64>| {
            minor
                .map(|minor| MoneyRecorded::stored(minor, &row.currency))
                .transpose()
        };
        Ok(Self {
            team_id: row.team_id.clone(),
            version: row.version,
            per_problem_limit: MoneyRecorded::stored(row.per_problem_limit_minor, &row.currency)?,
            review_sla_hours: row.review_sla_hours,
            effective_from: rfc3339(row.effective_from),
            created_by: row.created_by.clone(),
            approval_limit: money(row.approval_limit_minor)?,
            period_allowance: money(row.period_allowance_minor)?,
            require_acknowledgement: row.require_acknowledgement,
            alert_thresholds_percent: alert_thresholds(Some(row))?,
        })
    }
}

/// The budget alert thresholds of a policy, in percent of a problem's
/// limit, ascending; the default ones when there is no policy.
pub fn alert_thresholds(policy: Option<&PolicyRow>) -> Result<Vec<u16>, Error> {
    let Some(policy) = policy else {
        return Ok(ALERT_THRESHOLDS_PERCENT_DEFAULT.to_vec());
    };
    serde_json::from_str(&policy.alert_thresholds_percent)
        .map_err(|error| Error::Internal(format!("stored alert_thresholds_percent: {error}")))
}

/// A new policy version, checked: every amount in the limit's currency,
/// the SLA in range, the alert thresholds ascending, without repeats.
#[derive(Debug, Clone)]
pub struct PutPolicy {
    /// Budget given to each new problem; its currency is the team's.
    pub per_problem_limit: Money,
    /// Hours a flagged spend may wait for a decision.
    pub review_sla_hours: i32,
    /// The largest overrun a manager of the team may approve alone.
    pub approval_limit: Option<Money>,
    /// What each person may spend autonomously per calendar month.
    pub period_allowance: Option<Money>,
    /// Whether owners must acknowledge success criteria before autonomy.
    pub require_acknowledgement: bool,
    /// When to announce a problem's total, in percent of its limit.
    pub alert_thresholds_percent: Vec<u16>,
}

/// Refuses a caller who may not set this team's policy, or who would
/// change its approval authority without standing above the team.
fn authorize(
    connection: &mut DbConnection,
    caller: &Caller,
    team: &teams::TeamRow,
    approval_limit_minor: Option<i64>,
) -> Result<(), Error> {
    if !caller.may_set_policy(&team.id) {
        return Err(Error::Forbidden(
            "only an admin or a manager of this team can set its policy".to_owned(),
        ));
    }
    // Compared with the policy in force (possibly inherited), so a first
    // policy of its own cannot drop a cap set from above.
    let chain = teams::chain_upwards(connection, &team.id)?;
    let in_force =
        policies::effective(connection, &chain)?.and_then(|policy| policy.approval_limit_minor);
    if in_force != approval_limit_minor && !caller.may_grant_authority(team.parent_id.as_deref()) {
        return Err(Error::Forbidden(
            "approval authority is granted from above: only an admin or a manager of a parent team can change approval_limit".to_owned(),
        ));
    }
    Ok(())
}

/// Sets a new version of a team's policy (an admin or a manager of the team).
pub fn put_policy(
    connection: &mut DbConnection,
    caller: &Caller,
    team_id: &str,
    command: &PutPolicy,
    at: NaiveDateTime,
) -> Result<PolicyRow, Error> {
    let team = teams::find(connection, team_id)?.ok_or(Error::NotFound("team"))?;
    let approval_limit_minor = command.approval_limit.map(Money::minor);
    authorize(connection, caller, &team, approval_limit_minor)?;
    let latest = policies::latest(connection, team_id)?;
    let policy = PolicyRow {
        team_id: team.id,
        version: latest.map_or(1, |latest| latest.version + 1),
        per_problem_limit_minor: command.per_problem_limit.minor(),
        currency: command.per_problem_limit.currency().code().to_owned(),
        review_sla_hours: command.review_sla_hours,
        effective_from: at,
        created_by: caller.person_id.clone(),
        approval_limit_minor,
        period_allowance_minor: command.period_allowance.map(Money::minor),
        require_acknowledgement: command.require_acknowledgement,
        alert_thresholds_percent: serde_json::to_string(&command.alert_thresholds_percent)
            .map_err(|error| Error::Internal(error.to_string()))?,
    };
    policies::insert(connection, &policy).map_err(|error| match error {
        crate::db::Error::UniqueViolation(_) => {
            Error::conflict("the policy changed concurrently: retry")
        }
        other => other.into(),
    })?;
    let subject = Subject {
        subject_type: "policy",
        subject_id: &policy.team_id,
        team_id: Some(&policy.team_id),
        problem_id: None,
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        EventKind::PolicyVersioned,
        subject,
        &PolicyRecorded::from_row(&policy)?,
        at,
    )?;
    Ok(policy)
}

/// The policy in force for a team.
#[derive(Debug, Clone)]
pub struct EffectivePolicy {
    /// The version in force.
    pub policy: PolicyRow,
    /// Whether it comes from an ancestor team.
    pub inherited: bool,
}

/// The policy in force for a team: its own newest version, else the
/// nearest ancestor's. Every caller reads policies.
pub fn effective_policy(
    connection: &mut DbConnection,
    team_id: &str,
) -> Result<EffectivePolicy, Error> {
    teams::find(connection, team_id)?.ok_or(Error::NotFound("team"))?;
    let chain = teams::chain_upwards(connection, team_id)?;
    let policy = policies::effective(connection, &chain)?.ok_or(Error::NotFound("policy"))?;
    let inherited = policy.team_id != team_id;
    Ok(EffectivePolicy { policy, inherited })
}

/// A page of the team's own versions, oldest first.
pub fn policy_versions(
    connection: &mut DbConnection,
    team_id: &str,
    page: &PageRequest<VersionCursor>,
) -> Result<Page<PolicyRow, VersionCursor>, Error> {
    teams::find(connection, team_id)?.ok_or(Error::NotFound("team"))?;
    Ok(policies::versions(connection, team_id, page)?)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{PolicyRecorded, PolicyRow};

    /// Pinned: the audit hash chain and exports hash these exact bytes,
    /// which are those `PolicyJson` wrote before the service layer, with
    /// `alert_thresholds_percent` added last (issue 12; events recorded
    /// before keep their bytes).
    #[test]
    fn a_policy_is_recorded_as_before() {
        let policy = PolicyRow {
            team_id: "t-1".to_owned(),
            version: 3,
            per_problem_limit_minor: 40_000,
            currency: "USD".to_owned(),
            review_sla_hours: 24,
            effective_from: NaiveDate::from_ymd_opt(2026, 12, 1)
                .and_then(|day| day.and_hms_micro_opt(9, 30, 0, 5))
                .unwrap(),
            created_by: "p-1".to_owned(),
            approval_limit_minor: Some(5_000),
            period_allowance_minor: None,
            require_acknowledgement: true,
            alert_thresholds_percent: "[50,90,100]".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&PolicyRecorded::from_row(&policy).unwrap()).unwrap(),
            r#"{"team_id":"t-1","version":3,"per_problem_limit":{"amount":"400.00","currency":"USD"},"review_sla_hours":24,"effective_from":"2026-12-01T09:30:00.000005Z","created_by":"p-1","approval_limit":{"amount":"50.00","currency":"USD"},"period_allowance":null,"require_acknowledgement":true,"alert_thresholds_percent":[50,90,100]}"#
        );
    }
}
