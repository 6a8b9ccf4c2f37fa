//! Spends: logging money against a problem, where the limit rule decides on
//! the spot (atomically with the running totals) whether it is approved or
//! flagged and routed for review; voiding one logged in error; and which
//! spends a caller may see and in what capacity they may decide one.

use chrono::{NaiveDate, NaiveDateTime};

use super::escalation::{
    Step, is_pending, record_step, reload_spend, review_due_at, route_from, route_parts,
};
use super::ledger::{SpendV1, stored_currency};
use super::problems::{
    announce_budget_thresholds, find_visible_with_policy, is_open, problem_ref, reload, totals,
    visibility,
};
use super::{Error, Refusal};
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::period_totals::{self, PeriodKey};
use crate::db::policies::PolicyRow;
use crate::db::problems::{BudgetUse, ProblemRow};
use crate::db::review_steps::{self, ReviewStepRow};
use crate::db::spends::{self, SpendFilter, SpendRow};
use crate::db::{DbConnection, Page, PageRequest, delegations, new_id, problems, teams};
use crate::domain::access::Caller;
use crate::domain::event::EventKind;
use crate::domain::money::Money;
use crate::domain::review::{
    FlagReason, Route, allowance_overrun_minor, encode_reasons, period_of,
};
use crate::domain::status::{ReviewAction, SpendStatus};

/// A checked `POST /v1/problems/{id}/spends`, ready to log.
#[derive(Debug)]
pub struct LogSpend {
    /// What was spent, in the currency sent (it must be the problem's).
    pub amount: Money,
    /// Who was paid.
    pub merchant: String,
    /// What for.
    pub description: String,
    /// Optional category.
    pub category: Option<String>,
    /// The date of the purchase.
    pub spent_on: NaiveDate,
    /// Optional link to the receipt.
    pub receipt_url: Option<String>,
}

/// Logs a spend under the limit rule, atomically with its totals, its
/// routing and its event.
pub fn log(
    connection: &mut DbConnection,
    caller: &Caller,
    problem_id: &str,
    new: LogSpend,
    at: NaiveDateTime,
) -> Result<SpendRow, Error> {
    let (problem, policy) = find_visible_with_policy(connection, caller, problem_id)?;
    if !caller.may_log_spend(problem_ref(&problem)) {
        return Err(Error::Forbidden(
            "only the problem's owner or a manager of its team can log spends".to_owned(),
        ));
    }
    let amount = new
        .amount
        .require_currency(stored_currency(&problem.currency)?)
        .map_err(|error| Error::money("amount", &error))?;
    if !is_open(&problem) {
        return Err(Error::from(Refusal::ProblemClosed));
    }
    let period = period_of(at);
    let rule = LimitRule {
        problem_id,
        period: PeriodKey {
            person_id: &problem.owner_id,
            period: &period,
            currency: &problem.currency,
        },
        amount_minor: amount.minor(),
        allowance_minor: policy
            .as_ref()
            .and_then(|policy| policy.period_allowance_minor),
        acknowledged: is_acknowledged(&problem),
    };
    let (judgement, used) = apply_limit_rule(connection, &rule)?;
    let mut spend = new_row(&problem, &caller.person_id, new, amount.minor(), at);
    match judgement {
        Judgement::Approved => {
            spends::insert(connection, &spend)?;
            record(
                connection,
                caller,
                EventKind::SpendApproved,
                &spend,
                &problem.team_id,
                at,
            )?;
        }
        Judgement::Flagged {
            reasons,
            overrun_minor,
        } => {
            let flagged = Flagged {
                reasons,
                overrun_minor,
                policy: policy.as_ref(),
            };
            route_flagged(connection, caller, &problem, &mut spend, &flagged, at)?;
        }
    }
    let before_minor = used.used_minor.saturating_sub(amount.minor());
    announce_budget_thresholds(
        connection,
        &problem,
        policy.as_ref(),
        before_minor,
        used,
        Some(&spend.id),
        at,
    )?;
    Ok(spend)
}

/// Why a spend was flagged and the policy that judged it.
struct Flagged<'a> {
    reasons: Vec<FlagReason>,
    overrun_minor: Option<i64>,
    policy: Option<&'a PolicyRow>,
}

/// Stores a flagged spend routed to its reviewer, with its first review
/// step and its `spend.flagged` event.
fn route_flagged(
    connection: &mut DbConnection,
    caller: &Caller,
    problem: &ProblemRow,
    spend: &mut SpendRow,
    flagged: &Flagged<'_>,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let route = route_from(
        connection,
        &problem.team_id,
        false,
        spend,
        &problem.owner_id,
    )?;
    let to_manager = matches!(route, Route::Manager { .. });
    let (reviewer_id, review_team_id) = route_parts(route);
    SpendStatus::PendingReview
        .as_str()
        .clone_into(&mut spend.status);
    spend.overrun_minor = flagged.overrun_minor;
    spend.flag_reasons = encode_reasons(&flagged.reasons);
    spend.reviewer_id = reviewer_id;
    spend.review_team_id = review_team_id;
    spend.review_due_at = review_due_at(flagged.policy, to_manager, at);
    spends::insert(connection, spend)?;
    let routed = Step {
        action: ReviewAction::Routed,
        actor_id: None,
        on_behalf_of_id: None,
        approved_amount_minor: None,
        note: None,
        at,
    };
    record_step(connection, spend, routed)?;
    record(
        connection,
        caller,
        EventKind::SpendFlagged,
        spend,
        &problem.team_id,
        at,
    )
}

/// Whether the owner has acknowledged the problem's current success
/// criteria, or its pinned policy does not ask for it.
fn is_acknowledged(problem: &ProblemRow) -> bool {
    !problem.require_acknowledgement
        || problem.acknowledged_version == Some(problem.criteria_version)
}

/// A spend as logged, approved on the spot until the limit rule says otherwise.
fn new_row(
    problem: &ProblemRow,
    logged_by: &str,
    new: LogSpend,
    amount_minor: i64,
    at: NaiveDateTime,
) -> SpendRow {
    SpendRow {
        id: new_id(),
        problem_id: problem.id.clone(),
        amount_minor,
        currency: problem.currency.clone(),
        status: SpendStatus::Approved.as_str().to_owned(),
        overrun_minor: None,
        merchant: new.merchant,
        description: new.description,
        category: new.category,
        spent_on: new.spent_on,
        receipt_url: new.receipt_url,
        logged_by: logged_by.to_owned(),
        logged_at: at,
        decided_by: None,
        decided_at: None,
        decision_note: None,
        voided_by: None,
        voided_at: None,
        void_reason: None,
        flag_reasons: None,
        policy_team_id: problem.policy_team_id.clone(),
        policy_version: problem.policy_version,
        approved_amount_minor: None,
        reviewer_id: None,
        review_team_id: None,
        original_reviewer_id: None,
        original_review_team_id: None,
        review_due_at: None,
        decided_on_behalf_of: None,
        route_version: 0,
    }
}

/// What the limit rule is asked about one spend.
struct LimitRule<'a> {
    problem_id: &'a str,
    /// The owner's autonomous total for the month the spend counts in.
    period: PeriodKey<'a>,
    amount_minor: i64,
    /// The pinned policy's period allowance, if any.
    allowance_minor: Option<i64>,
    /// Whether the owner has acknowledged the current success criteria
    /// (or the pinned policy does not ask for it).
    acknowledged: bool,
}

/// What the limit rule decided.
enum Judgement {
    /// Inside every budget: approved on the spot.
    Approved,
    /// Flagged for review, with why and by how much it overruns (null when
    /// only the acknowledgement is missing).
    Flagged {
        reasons: Vec<FlagReason>,
        overrun_minor: Option<i64>,
    },
}

/// The limit rule against the problem's and the owner's running totals.
/// An acknowledged spend first tries the guarded update that approves only
/// inside the problem's headroom, then the guarded update that adds it to
/// the owner's period total only inside the allowance; if the second fails
/// the first is undone in the same transaction. A spend that is not
/// approved is reserved as pending. That reservation locks the problem row
/// (PostgreSQL) or runs under the write lock (SQLite), so the totals read
/// next are stable: if a concurrent decision freed headroom in between, the
/// spend is approved after all; otherwise they say why it was flagged.
fn apply_limit_rule(
    connection: &mut DbConnection,
    rule: &LimitRule<'_>,
) -> Result<(Judgement, BudgetUse), Error> {
    let amount_minor = rule.amount_minor;
    let approved = if rule.acknowledged {
        problems::try_approve_within_limit(connection, rule.problem_id, amount_minor)?
    } else {
        None
    };
    if let Some(used) = approved {
        if period_totals::try_consume(connection, rule.period, amount_minor, rule.allowance_minor)?
        {
            return Ok((Judgement::Approved, used));
        }
        problems::release(connection, rule.problem_id, amount_minor, false)?;
    }
    if !problems::reserve_pending(connection, rule.problem_id, amount_minor)? {
        return Err(Error::from(Refusal::ProblemClosed));
    }
    let problem = reload(connection, rule.problem_id)?;
    // Settling a reservation moves it to approved: the use stays this.
    let used = BudgetUse::of(&problem);
    let mut before = totals(&problem);
    before.pending_review_minor -= amount_minor;
    let fits_problem = before.fits(amount_minor);
    // Read from the locked row: a criteria change committed meanwhile counts.
    let acknowledged = is_acknowledged(&problem);
    if acknowledged
        && fits_problem
        && period_totals::try_consume(connection, rule.period, amount_minor, rule.allowance_minor)?
    {
        problems::settle_pending(connection, rule.problem_id, amount_minor, amount_minor)?;
        return Ok((Judgement::Approved, used));
    }
    let spent_minor = period_totals::spent(connection, rule.period)?;
    let allowance_overrun =
        allowance_overrun_minor(rule.allowance_minor, spent_minor, amount_minor);
    let problem_overrun = (!fits_problem).then(|| before.overrun_minor(amount_minor));
    let mut reasons = Vec::new();
    if problem_overrun.is_some() {
        reasons.push(FlagReason::OverProblemLimit);
    }
    if allowance_overrun.is_some() {
        reasons.push(FlagReason::OverPeriodAllowance);
    }
    if !acknowledged {
        reasons.push(FlagReason::NotAcknowledged);
    }
    if reasons.is_empty() {
        return Err(Error::Internal(
            "a spend was neither approved nor given a reason to flag it".to_owned(),
        ));
    }
    let flagged = Judgement::Flagged {
        reasons,
        overrun_minor: problem_overrun.max(allowance_overrun),
    };
    Ok((flagged, used))
}

/// Writes the spend's event: the spend as it now stands.
pub fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: EventKind,
    spend: &SpendRow,
    team_id: &str,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let payload = SpendV1::from_row(spend)?;
    let subject = Subject {
        subject_type: "spend",
        subject_id: &spend.id,
        team_id: Some(team_id),
        problem_id: Some(&spend.problem_id),
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject,
        &payload,
        at,
    )?;
    Ok(())
}

/// Loads a spend the caller may see: one on a problem they may read, or
/// one routed to them (or to someone whose queue they hold by delegation
/// at `at`). Anything else is 404.
pub fn find_visible_spend(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<(SpendRow, ProblemRow), Error> {
    let spend = spends::find(connection, id)?.ok_or(Error::NotFound("spend"))?;
    let problem = problems::find(connection, &spend.problem_id)?.ok_or(Error::NotFound("spend"))?;
    if caller.may_read_problem(problem_ref(&problem))
        || review_position(connection, caller, &spend, at)?.is_some()
    {
        Ok((spend, problem))
    } else {
        Err(Error::NotFound("spend"))
    }
}

/// In what capacity a caller may decide a pending spend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPosition {
    /// Deciding as the current reviewer (else as the reviewer it was routed
    /// to before SLA escalation).
    pub current: bool,
    /// The reviewer a delegate decides for.
    pub on_behalf_of: Option<String>,
    /// Deciding as an admin on a spend routed to the admins.
    pub as_admin: bool,
}

/// Whether the caller may decide this pending spend, and as whom: the
/// manager of the team it is routed to, the manager of the team it was
/// routed to before SLA escalation, an admin when it is routed to the
/// admins, or a delegate of either manager inside the delegation's window.
/// `None` when none of these.
pub fn review_position(
    connection: &mut DbConnection,
    caller: &Caller,
    spend: &SpendRow,
    at: NaiveDateTime,
) -> Result<Option<ReviewPosition>, Error> {
    if !is_pending(spend) {
        return Ok(None);
    }
    if spend.reviewer_id.is_none() && caller.administers() {
        return Ok(Some(ReviewPosition {
            current: true,
            on_behalf_of: None,
            as_admin: true,
        }));
    }
    let me = caller.person_id.as_str();
    let seats = [
        (true, &spend.review_team_id),
        (false, &spend.original_review_team_id),
    ];
    let mut delegators: Option<Vec<String>> = None;
    for (current, team) in seats {
        let Some(team) = team else {
            continue;
        };
        // The seat belongs to whoever manages the team now: after a change
        // of manager the new one decides, the former one no longer does.
        let Some(reviewer) = teams::find(connection, team)?.and_then(|row| row.manager_id) else {
            continue;
        };
        let on_behalf_of = if reviewer == me {
            None
        } else {
            let delegators = match &mut delegators {
                Some(loaded) => loaded,
                empty => empty.insert(delegations::active_delegators(connection, me, at)?),
            };
            if !delegators.contains(&reviewer) {
                continue;
            }
            Some(reviewer)
        };
        return Ok(Some(ReviewPosition {
            current,
            on_behalf_of,
            as_admin: false,
        }));
    }
    Ok(None)
}

pub fn void(
    connection: &mut DbConnection,
    caller: &Caller,
    spend_id: &str,
    reason: &str,
    at: NaiveDateTime,
) -> Result<SpendRow, Error> {
    let (spend, problem) = find_visible_spend(connection, caller, spend_id, at)?;
    let status = SpendStatus::parse(&spend.status).ok_or_else(|| {
        Error::Internal(format!("spend {spend_id} has status {:?}", spend.status))
    })?;
    let was_pending = status == SpendStatus::PendingReview;
    if !caller.may_void(problem_ref(&problem), &spend.logged_by, was_pending) {
        return Err(Error::Forbidden(
            "whoever logged a spend may void it while it awaits review; a manager of the team at any time".to_owned(),
        ));
    }
    if !status.counts() {
        return Err(Error::from(Refusal::NotVoidable(spend.status)));
    }
    if !spends::void(
        connection,
        spend_id,
        &spend.status,
        &caller.person_id,
        at,
        reason,
    )? {
        return Err(Error::conflict(
            "the spend changed while it was being voided: read it and retry",
        ));
    }
    let counted_minor = spend.approved_amount_minor.unwrap_or(spend.amount_minor);
    problems::release(connection, &problem.id, counted_minor, was_pending)?;
    if status == SpendStatus::Approved {
        let period = period_of(spend.logged_at);
        let key = PeriodKey {
            person_id: &problem.owner_id,
            period: &period,
            currency: &spend.currency,
        };
        period_totals::release(connection, key, spend.amount_minor)?;
    }
    let spend = reload_spend(connection, spend_id)?;
    record(
        connection,
        caller,
        EventKind::SpendVoided,
        &spend,
        &problem.team_id,
        at,
    )?;
    Ok(spend)
}

/// One page of the spends the caller may see.
pub fn list(
    connection: &mut DbConnection,
    caller: &Caller,
    filter: &SpendFilter,
    page: &PageRequest,
) -> Result<Page<SpendRow>, Error> {
    Ok(spends::list(connection, &visibility(caller), filter, page)?)
}

/// A spend the caller may see, with its review history.
pub fn show(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<(SpendRow, Vec<ReviewStepRow>), Error> {
    let (spend, _) = find_visible_spend(connection, caller, id, at)?;
    let history = review_steps::list(connection, id)?;
    Ok((spend, history))
}
