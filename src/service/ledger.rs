//! The ledger's payloads for problems and spends: what an event's `data`
//! holds, version 1. These types are the ledger's own, not the API's JSON:
//! the API may grow or rename fields while every stored event (and so every
//! hash in the audit chain) keeps its shape. A change to a field here is a
//! new version, never an edit; the unit tests pin the exact bytes.

use serde::{Deserialize, Serialize};

use super::Error;
use crate::db::limit_changes::LimitChangeRow;
use crate::db::problems::ProblemRow;
use crate::db::spends::SpendRow;
use crate::domain::currency::Currency;
use crate::domain::limit::Totals;
use crate::domain::money::Money;
use crate::domain::review::decode_reasons;
use crate::encoding::rfc3339;

/// Money in a payload: the decimal string at the currency's scale and the
/// ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyV1 {
    /// e.g. `"400.00"`.
    pub amount: String,
    /// e.g. `"USD"`.
    pub currency: String,
}

impl MoneyV1 {
    /// Money read back from storage; an unknown stored currency is a bug.
    pub fn stored(minor: i64, code: &str) -> Result<Self, Error> {
        let currency = stored_currency(code)?;
        let money = Money::from_minor(minor, currency);
        Ok(Self {
            amount: money.amount_text(),
            currency: code.to_owned(),
        })
    }
}

/// A currency read back from the database; an unknown one is a bug.
pub fn stored_currency(code: &str) -> Result<Currency, Error> {
    Currency::from_code(code)
        .ok_or_else(|| Error::Internal(format!("stored currency {code:?} is unknown")))
}

/// The policy version a problem's limit (or a spend) was pinned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRefV1 {
    /// The team whose policy it is.
    pub team_id: String,
    /// The version.
    pub version: i32,
}

fn policy_ref(team_id: Option<String>, version: Option<i32>) -> Option<PolicyRefV1> {
    team_id
        .zip(version)
        .map(|(team_id, version)| PolicyRefV1 { team_id, version })
}

/// A problem as it stands after the change (`problem.*` events).
#[derive(Debug, Clone, Serialize)]
pub struct ProblemV1 {
    id: String,
    team_id: String,
    owner_id: String,
    title: String,
    success_criteria: String,
    status: String,
    limit: MoneyV1,
    approved: MoneyV1,
    pending_review: MoneyV1,
    remaining: MoneyV1,
    policy: Option<PolicyRefV1>,
    opened_by: String,
    opened_at: String,
    closed_at: Option<String>,
    updated_at: String,
    limit_version: i32,
    criteria_version: i32,
    acknowledgement_required: bool,
    acknowledged_at: Option<String>,
}

impl ProblemV1 {
    /// The payload of a stored problem.
    pub fn from_row(row: &ProblemRow) -> Result<Self, Error> {
        let totals = Totals {
            limit_minor: row.limit_minor,
            approved_minor: row.approved_minor,
            pending_review_minor: row.pending_review_minor,
        };
        let money = |minor| MoneyV1::stored(minor, &row.currency);
        Ok(Self {
            id: row.id.clone(),
            team_id: row.team_id.clone(),
            owner_id: row.owner_id.clone(),
            title: row.title.clone(),
            success_criteria: row.success_criteria.clone(),
            status: row.status.clone(),
            limit: money(totals.limit_minor)?,
            approved: money(totals.approved_minor)?,
            pending_review: money(totals.pending_review_minor)?,
            remaining: money(totals.remaining_minor())?,
            policy: policy_ref(row.policy_team_id.clone(), row.policy_version),
            opened_by: row.opened_by.clone(),
            opened_at: rfc3339(row.opened_at),
            closed_at: row.closed_at.map(rfc3339),
            updated_at: rfc3339(row.updated_at),
            limit_version: row.limit_version,
            criteria_version: row.criteria_version,
            acknowledgement_required: row.require_acknowledgement,
            acknowledged_at: row
                .acknowledged_at
                .filter(|_| row.acknowledged_version == Some(row.criteria_version))
                .map(rfc3339),
        })
    }
}

/// A new version of a problem's limit (`problem.limit_changed`).
#[derive(Debug, Clone, Serialize)]
pub struct LimitChangeV1 {
    problem_id: String,
    version: i32,
    limit: MoneyV1,
    previous_limit: Option<MoneyV1>,
    policy: Option<PolicyRefV1>,
    changed_by: String,
    changed_at: String,
    reason: Option<String>,
}

impl LimitChangeV1 {
    /// The payload of a stored limit version, in the problem's currency.
    pub fn from_row(row: &LimitChangeRow, currency: &str) -> Result<Self, Error> {
        Ok(Self {
            problem_id: row.problem_id.clone(),
            version: row.version,
            limit: MoneyV1::stored(row.limit_minor, currency)?,
            previous_limit: row
                .previous_limit_minor
                .map(|minor| MoneyV1::stored(minor, currency))
                .transpose()?,
            policy: policy_ref(row.policy_team_id.clone(), row.policy_version),
            changed_by: row.changed_by.clone(),
            changed_at: rfc3339(row.changed_at),
            reason: row.reason.clone(),
        })
    }
}

/// A problem's total reaching an alert threshold
/// (`problem.budget_threshold` events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetThresholdV1 {
    /// The problem.
    pub problem_id: String,
    /// The threshold reached, in percent of the limit.
    pub threshold_percent: u16,
    /// The limit's version it was reached under.
    pub limit_version: i32,
    /// The limit.
    pub limit: MoneyV1,
    /// approved + pending review, once it got there.
    pub used: MoneyV1,
    /// The spend that took it there; null when a lower limit did.
    pub spend_id: Option<String>,
}

/// A spend as it stands after the change (`spend.*` events). The as-of
/// exports read it back as [`SpendV1`] too, so its fields are the
/// snapshot finance exports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpendV1 {
    /// The spend.
    pub id: String,
    /// Its problem.
    pub problem_id: String,
    /// What was spent.
    pub amount: MoneyV1,
    /// Where it stands (`approved`, `pending_review`, ...).
    pub status: String,
    /// By how much it overran; null when approved on the spot.
    pub overrun: Option<MoneyV1>,
    /// Where.
    pub merchant: String,
    /// What for.
    pub description: String,
    /// Optional category.
    pub category: Option<String>,
    /// The purchase date, `YYYY-MM-DD`.
    pub spent_on: String,
    /// Optional receipt link.
    pub receipt_url: Option<String>,
    /// Who logged it.
    pub logged_by: String,
    /// When, RFC 3339.
    pub logged_at: String,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<String>,
    /// The reviewer's note.
    pub decision_note: Option<String>,
    /// Who voided it.
    pub voided_by: Option<String>,
    /// When.
    pub voided_at: Option<String>,
    /// Why.
    pub void_reason: Option<String>,
    /// Why it was flagged.
    pub flag_reasons: Vec<String>,
    /// The part a reviewer approved, when partial.
    pub approved_amount: Option<MoneyV1>,
    /// The policy version that judged it.
    pub policy: Option<PolicyRefV1>,
    /// Who reviews it now.
    pub reviewer_id: Option<String>,
    /// For which team.
    pub review_team_id: Option<String>,
    /// Who it was routed to before escalation.
    pub original_reviewer_id: Option<String>,
    /// When its review escalates.
    pub review_due_at: Option<String>,
    /// The reviewer a delegate decided for.
    pub decided_on_behalf_of: Option<String>,
}

impl SpendV1 {
    /// The payload of a stored spend.
    pub fn from_row(row: &SpendRow) -> Result<Self, Error> {
        let money = |minor| MoneyV1::stored(minor, &row.currency);
        Ok(Self {
            id: row.id.clone(),
            problem_id: row.problem_id.clone(),
            amount: money(row.amount_minor)?,
            status: row.status.clone(),
            overrun: row.overrun_minor.map(money).transpose()?,
            merchant: row.merchant.clone(),
            description: row.description.clone(),
            category: row.category.clone(),
            spent_on: row.spent_on.format("%Y-%m-%d").to_string(),
            receipt_url: row.receipt_url.clone(),
            logged_by: row.logged_by.clone(),
            logged_at: rfc3339(row.logged_at),
            decided_by: row.decided_by.clone(),
            decided_at: row.decided_at.map(rfc3339),
            decision_note: row.decision_note.clone(),
            voided_by: row.voided_by.clone(),
            voided_at: row.voided_at.map(rfc3339),
            void_reason: row.void_reason.clone(),
            flag_reasons: decode_reasons(row.flag_reasons.as_deref()),
            approved_amount: row.approved_amount_minor.map(money).transpose()?,
            policy: policy_ref(row.policy_team_id.clone(), row.policy_version),
            reviewer_id: row.reviewer_id.clone(),
            review_team_id: row.review_team_id.clone(),
            original_reviewer_id: row.original_reviewer_id.clone(),
            review_due_at: row.review_due_at.map(rfc3339),
            decided_on_behalf_of: row.decided_on_behalf_of.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::*;

    fn at() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_micro_opt(10, 30, 0, 123_456)
            .unwrap()
    }

    /// Pins version 1 of the spend payload byte for byte: stored events are
    /// hashed, so a change here must be a new version, never an edit.
    #[test]
    fn the_spend_payload_is_pinned() {
        let row = SpendRow {
            id: "s1".into(),
            problem_id: "p1".into(),
            amount_minor: 12_345,
            currency: "USD".into(),
            status: "pending_review".into(),
            overrun_minor: Some(45),
            merchant: "Shop".into(),
            description: "Cable".into(),
            category: Some("it".into()),
            spent_on: at().date(),
            receipt_url: Some("https://r.example/1".into()),
            logged_by: "u1".into(),
            logged_at: at(),
            decided_by: Some("m1".into()),
            decided_at: Some(at()),
            decision_note: Some("ok".into()),
            voided_by: None,
            voided_at: None,
            void_reason: None,
            flag_reasons: Some("over_problem_limit,not_acknowledged".into()),
            policy_team_id: Some("t1".into()),
            policy_version: Some(3),
            approved_amount_minor: Some(100),
            reviewer_id: Some("m1".into()),
            review_team_id: Some("t1".into()),
            original_reviewer_id: None,
            original_review_team_id: None,
            review_due_at: Some(at()),
            decided_on_behalf_of: None,
            route_version: 2,
        };
        let payload = serde_json::to_string(&SpendV1::from_row(&row).unwrap()).unwrap();
        assert_eq!(
            payload,
            r#"{"id":"s1","problem_id":"p1","amount":{"amount":"123.45","currency":"USD"},"status":"pending_review","overrun":{"amount":"0.45","currency":"USD"},"merchant":"Shop","description":"Cable","category":"it","spent_on":"2026-11-25","receipt_url":"https://r.example/1","logged_by":"u1","logged_at":"2026-11-25T10:30:00.123456Z","decided_by":"m1","decided_at":"2026-11-25T10:30:00.123456Z","decision_note":"ok","voided_by":null,"voided_at":null,"void_reason":null,"flag_reasons":["over_problem_limit","not_acknowledged"],"approved_amount":{"amount":"1.00","currency":"USD"},"policy":{"team_id":"t1","version":3},"reviewer_id":"m1","review_team_id":"t1","original_reviewer_id":null,"review_due_at":"2026-11-25T10:30:00.123456Z","decided_on_behalf_of":null}"#
        );
        let read_back: SpendV1 = serde_json::from_str(&payload).unwrap();
        assert_eq!(serde_json::to_string(&read_back).unwrap(), payload);
    }

    #[test]
    fn the_problem_and_limit_payloads_are_pinned() {
        let row = ProblemRow {
            id: "p1".into(),
            team_id: "t1".into(),
            owner_id: "u1".into(),
            title: "Fix".into(),
            success_criteria: "Works".into(),
            status: "open".into(),
            currency: "JPY".into(),
            limit_minor: 40_000,
            approved_minor: 1_000,
            pending_review_minor: 500,
            policy_team_id: Some("t1".into()),
            policy_version: Some(2),
            opened_by: "m1".into(),
            opened_at: at(),
            closed_at: None,
            updated_at: at(),
            limit_version: 2,
            criteria_version: 3,
            acknowledged_version: Some(3),
            acknowledged_at: Some(at()),
            require_acknowledgement: true,
        };
        assert_eq!(
            serde_json::to_string(&ProblemV1::from_row(&row).unwrap()).unwrap(),
            r#"{"id":"p1","team_id":"t1","owner_id":"u1","title":"Fix","success_criteria":"Works","status":"open","limit":{"amount":"40000","currency":"JPY"},"approved":{"amount":"1000","currency":"JPY"},"pending_review":{"amount":"500","currency":"JPY"},"remaining":{"amount":"38500","currency":"JPY"},"policy":{"team_id":"t1","version":2},"opened_by":"m1","opened_at":"2026-11-25T10:30:00.123456Z","closed_at":null,"updated_at":"2026-11-25T10:30:00.123456Z","limit_version":2,"criteria_version":3,"acknowledgement_required":true,"acknowledged_at":"2026-11-25T10:30:00.123456Z"}"#
        );
        let change = LimitChangeRow {
            problem_id: "p1".into(),
            version: 2,
            limit_minor: 40_000,
            previous_limit_minor: Some(30_000),
            policy_team_id: None,
            policy_version: None,
            changed_by: "m1".into(),
            changed_at: at(),
            reason: Some("more".into()),
        };
        assert_eq!(
            serde_json::to_string(&LimitChangeV1::from_row(&change, "JPY").unwrap()).unwrap(),
            r#"{"problem_id":"p1","version":2,"limit":{"amount":"40000","currency":"JPY"},"previous_limit":{"amount":"30000","currency":"JPY"},"policy":null,"changed_by":"m1","changed_at":"2026-11-25T10:30:00.123456Z","reason":"more"}"#
        );
    }

    #[test]
    fn an_unknown_stored_currency_is_a_bug_not_a_default() {
        assert!(matches!(MoneyV1::stored(1, "XXX"), Err(Error::Internal(_))));
    }
}
