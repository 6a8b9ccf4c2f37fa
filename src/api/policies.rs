//! Team policies over HTTP: `PUT` makes a new version (nothing is
//! overwritten), `GET` returns the version in force (the team's own newest,
//! else the nearest ancestor's), and the version history is listed. The use
//! cases live in `service::policies`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::types::{
    Body, Checks, ListJson, MoneyInput, MoneyJson, PageQuery, nullable, page_request, parse_id,
    stored_money, whole_number,
};
use crate::db::policies::PolicyRow;
use crate::domain::access::Caller;
use crate::domain::limit::{
    ALERT_THRESHOLD_PERCENT_MAX, ALERT_THRESHOLDS_MAX, ALERT_THRESHOLDS_PERCENT_DEFAULT,
};
use crate::domain::money::Money;
use crate::encoding::rfc3339;
use crate::error::ApiError;
use crate::service::policies;
use crate::state::AppState;

/// Longest review SLA accepted, in hours (one year).
pub const REVIEW_SLA_HOURS_MAX: i32 = 24 * 366;

/// A policy version as JSON.
#[derive(Debug, Serialize)]
pub struct PolicyJson {
    team_id: String,
    version: i32,
    per_problem_limit: MoneyJson,
    review_sla_hours: i32,
    effective_from: String,
    created_by: String,
    approval_limit: Option<MoneyJson>,
    period_allowance: Option<MoneyJson>,
    require_acknowledgement: bool,
    alert_thresholds_percent: Vec<u16>,
    /// On `GET /v1/teams/{id}/policy`: whether the policy comes from an ancestor team.
    #[serde(skip_serializing_if = "Option::is_none")]
    inherited: Option<bool>,
}

impl PolicyJson {
    fn from_row(row: PolicyRow, inherited: Option<bool>) -> Result<Self, ApiError> {
        Ok(Self {
            per_problem_limit: stored_money(row.per_problem_limit_minor, &row.currency)?,
            approval_limit: row
                .approval_limit_minor
                .map(|minor| stored_money(minor, &row.currency))
                .transpose()?,
            period_allowance: row
                .period_allowance_minor
                .map(|minor| stored_money(minor, &row.currency))
                .transpose()?,
            require_acknowledgement: row.require_acknowledgement,
            alert_thresholds_percent: policies::alert_thresholds(Some(&row))?,
            team_id: row.team_id,
            version: row.version,
            review_sla_hours: row.review_sla_hours,
            effective_from: rfc3339(row.effective_from),
            created_by: row.created_by,
            inherited,
        })
    }
}

/// `PUT /v1/teams/{id}/policy` body.
#[derive(Debug, Deserialize)]
#[expect(
    clippy::option_option,
    reason = "an absent alert_thresholds_percent (the default) differs from a refused null"
)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    per_problem_limit: MoneyInput,
    #[serde(deserialize_with = "whole_number")]
    review_sla_hours: i32,
    /// The largest overrun a manager of the team may approve alone.
    #[serde(default)]
    approval_limit: Option<MoneyInput>,
    /// What each person may spend autonomously per calendar month.
    #[serde(default)]
    period_allowance: Option<MoneyInput>,
    /// Whether owners must acknowledge success criteria before autonomy.
    #[serde(default)]
    require_acknowledgement: bool,
    /// When to announce a problem's approved + pending total, in percent
    /// of its limit; `[80, 100]` when absent. Numbers, not just integers:
    /// `80.0` is a whole number to JSON Schema, and so here; null is refused.
    #[serde(default, deserialize_with = "nullable")]
    alert_thresholds_percent: Option<Option<Vec<serde_json::Number>>>,
}

/// The alert thresholds: at most [`ALERT_THRESHOLDS_MAX`], each 1 to
/// [`ALERT_THRESHOLD_PERCENT_MAX`]; kept ascending, repeats dropped.
#[expect(
    clippy::option_option,
    reason = "absent (the default) differs from a refused null"
)]
fn check_thresholds(checks: &mut Checks, sent: Option<Option<&[serde_json::Number]>>) -> Vec<u16> {
    let sent = match sent {
        None => return ALERT_THRESHOLDS_PERCENT_DEFAULT.to_vec(),
        Some(None) => {
            checks.refuse(
                "alert_thresholds_percent",
                "invalid_field",
                "alert_thresholds_percent must be an array of whole percents (omit it for [80, 100])",
            );
            return Vec::new();
        }
        Some(Some(sent)) => sent,
    };
    if sent.len() > ALERT_THRESHOLDS_MAX {
        checks.refuse(
            "alert_thresholds_percent",
            "too_many",
            format!("alert_thresholds_percent names at most {ALERT_THRESHOLDS_MAX} thresholds"),
        );
    }
    let mut thresholds = Vec::with_capacity(sent.len());
    for (index, percent) in sent.iter().enumerate() {
        let whole = percent.as_u64().or_else(|| {
            percent
                .as_f64()
                .filter(|float| float.fract() == 0.0 && (0.0..=65_535.0).contains(float))
                .and_then(|float| format!("{float:.0}").parse().ok())
        });
        match whole.and_then(|whole| u16::try_from(whole).ok()) {
            Some(percent) if (1..=ALERT_THRESHOLD_PERCENT_MAX).contains(&percent) => {
                thresholds.push(percent);
            }
            _ => checks.refuse(
                &format!("alert_thresholds_percent[{index}]"),
                "out_of_range",
                format!(
                    "each threshold is a whole percent from 1 to {ALERT_THRESHOLD_PERCENT_MAX}"
                ),
            ),
        }
    }
    thresholds.sort_unstable();
    thresholds.dedup();
    thresholds
}

/// A checked policy body, in the limit's currency.
struct NewPolicy {
    limit: Money,
    approval_limit: Option<Money>,
    period_allowance: Option<Money>,
}

/// Reads the money fields of a policy body; every amount must be in the
/// currency of `per_problem_limit`, the currency of the team's problems.
fn check_money(checks: &mut Checks, body: &PutPolicy) -> Option<NewPolicy> {
    let limit = checks.money("per_problem_limit", &body.per_problem_limit);
    let mut optional = |field: &str, input: Option<&MoneyInput>| {
        let money = checks.money(field, input?)?;
        match limit.map(|limit| money.require_currency(limit.currency())) {
            Some(Err(error)) => {
                checks.refuse(
                    &format!("{field}.currency"),
                    "currency_mismatch",
                    error.to_string(),
                );
                None
            }
            _ => Some(money),
        }
    };
    let approval_limit = optional("approval_limit", body.approval_limit.as_ref());
    let period_allowance = optional("period_allowance", body.period_allowance.as_ref());
    Some(NewPolicy {
        limit: limit?,
        approval_limit,
        period_allowance,
    })
}

/// `PUT /v1/teams/{id}/policy`: a new version.
pub async fn put(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Body<PutPolicy>,
) -> Result<HttpResponse, ApiError> {
    let at = state.clock.now();
    let team_id = parse_id(&path, "team")?;
    let mut checks = Checks::default();
    let new = check_money(&mut checks, &body);
    if !(1..=REVIEW_SLA_HOURS_MAX).contains(&body.review_sla_hours) {
        checks.refuse(
            "review_sla_hours",
            "out_of_range",
            format!("review_sla_hours must be 1 to {REVIEW_SLA_HOURS_MAX}"),
        );
    }
    let alert_thresholds_percent = check_thresholds(
        &mut checks,
        body.alert_thresholds_percent.as_ref().map(Option::as_deref),
    );
    checks.finish()?;
    let new = new.ok_or_else(|| ApiError::Internal("policy passed checks unparsed".to_owned()))?;
    let command = policies::PutPolicy {
        per_problem_limit: new.limit,
        review_sla_hours: body.review_sla_hours,
        approval_limit: new.approval_limit,
        period_allowance: new.period_allowance,
        require_acknowledgement: body.require_acknowledgement,
        alert_thresholds_percent,
    };
    let policy = state
        .db
        .write(move |connection| policies::put_policy(connection, &caller, &team_id, &command, at))
        .await?;
    Ok(HttpResponse::Ok().json(PolicyJson::from_row(policy, None)?))
}

/// `GET /v1/teams/{id}/policy`: the version in force.
pub async fn show_effective(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let team_id = parse_id(&path, "team")?;
    let effective = state
        .db
        .read(move |connection| policies::effective_policy(connection, &team_id))
        .await?;
    Ok(HttpResponse::Ok().json(PolicyJson::from_row(
        effective.policy,
        Some(effective.inherited),
    )?))
}

/// `GET /v1/teams/{id}/policy/versions`: the team's own versions, oldest first.
pub async fn versions(
    state: web::Data<AppState>,
    _caller: Caller,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let team_id = parse_id(&path, "team")?;
    let page = page_request(query.limit, query.after.as_deref())?;
    let rows = state
        .db
        .read(move |connection| policies::policy_versions(connection, &team_id, &page))
        .await?;
    Ok(HttpResponse::Ok().json(ListJson::from_page(rows, |row| {
        PolicyJson::from_row(row, None)
    })?))
}
