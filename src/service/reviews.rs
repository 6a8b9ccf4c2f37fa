//! Reviews: a manager's decision on a flagged spend (approve in whole or
//! part, approve beyond their authority as an endorsement that moves it up,
//! or reject), and the caller's review queue.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::escalation::{Seat, Step, is_pending, move_to, next_up, record_step, reload_spend};
use super::ledger::stored_currency;
use super::problems::{change_limit, totals};
use super::spends::{ReviewPosition, find_visible_spend, record, review_position};
use super::{Error, Refusal};
use crate::db::problems::ProblemRow;
use crate::db::spends::{self, Decision, QueueScope, SpendRow};
use crate::db::{DbConnection, Page, PageRequest, delegations, policies, problems, teams};
use crate::domain::access::{Caller, Role};
use crate::domain::event::EventKind;
use crate::domain::ids::SpendId;
use crate::domain::money::Money;
use crate::domain::review::{Route, authority_covers};
use crate::domain::status::{ReviewAction, SpendStatus};

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The spend (or `approved_amount` of it) counts against the budget.
    Approve,
    /// The reservation is released; the spend does not count.
    Reject,
}

/// A checked `POST /v1/spends/{id}/review`.
#[derive(Debug)]
pub struct Review {
    /// Approve or reject.
    pub decision: DecisionKind,
    /// Why; required when rejecting, approving in part or changing the limit.
    pub note: Option<String>,
    /// Approve only this much; the rest is rejected.
    pub approved_amount: Option<Money>,
    /// The problem's new limit, set while approving.
    pub new_limit: Option<Money>,
}

/// Decides a flagged spend: approve (in whole or part, within the
/// position's authority, else endorse and move it up) or reject. Nobody
/// decides a spend they logged or one on a problem they own.
pub fn decide(
    connection: &mut DbConnection,
    caller: &Caller,
    spend_id: &SpendId,
    review: &Review,
    at: NaiveDateTime,
) -> Result<SpendRow, Error> {
    let spend_id = spend_id.as_str();
    let (spend, problem) = find_visible_spend(connection, caller, spend_id, at)?;
    if !is_pending(&spend) {
        return Err(Error::from(Refusal::AlreadyDecided));
    }
    if caller.is_own_spend(&problem.owner_id, &spend.logged_by) {
        return Err(Error::SelfReviewForbidden);
    }
    let position = review_position(connection, caller, &spend, at)?.ok_or_else(|| {
        Error::Forbidden(
            "this spend is not routed to you: only its reviewer (or their delegate) decides it"
                .to_owned(),
        )
    })?;
    let approved_minor = approved_part(&spend, &problem, review)?;
    let deciding = Deciding {
        caller,
        spend: &spend,
        problem: &problem,
        position: &position,
        review,
        at,
    };
    if review.decision == DecisionKind::Reject {
        return reject(connection, &deciding);
    }
    // Authority is measured against the budget as it stands: raising the
    // limit in the same breath cannot shrink the overrun being approved.
    let mut others = totals(&problem);
    others.pending_review_minor -= spend.amount_minor;
    let overrun_minor = approved_minor - others.remaining_minor().max(0);
    let authority_minor = approval_authority(connection, &spend, &position)?;
    if authority_covers(authority_minor, overrun_minor) {
        approve(connection, &deciding, approved_minor)
    } else {
        endorse(connection, &deciding, approved_minor)
    }
}

/// One decision's whole context.
struct Deciding<'a> {
    caller: &'a Caller,
    spend: &'a SpendRow,
    problem: &'a ProblemRow,
    position: &'a ReviewPosition,
    review: &'a Review,
    at: NaiveDateTime,
}

impl Deciding<'_> {
    /// The decision as stored on the spend.
    fn decision(&self, status: SpendStatus, approved_amount_minor: Option<i64>) -> Decision<'_> {
        Decision {
            status: status.as_str(),
            decided_by: &self.caller.person_id,
            on_behalf_of: self.position.on_behalf_of.as_deref(),
            decided_at: self.at,
            note: self.review.note.as_deref(),
            approved_amount_minor,
        }
    }
}

/// The part of the spend being approved: `approved_amount` in the
/// problem's currency, never more than the spend; the whole by default.
fn approved_part(spend: &SpendRow, problem: &ProblemRow, review: &Review) -> Result<i64, Error> {
    let Some(amount) = review.approved_amount else {
        return Ok(spend.amount_minor);
    };
    let amount = amount
        .require_currency(stored_currency(&problem.currency)?)
        .map_err(|error| Error::money("approved_amount", &error))?;
    if amount.minor() > spend.amount_minor {
        return Err(Error::field(
            "approved_amount.amount",
            "above_amount",
            "approved_amount cannot be more than the spend's amount",
        ));
    }
    Ok(amount.minor())
}

/// Rejects the spend: its reservation is released.
fn reject(connection: &mut DbConnection, deciding: &Deciding<'_>) -> Result<SpendRow, Error> {
    let decision = deciding.decision(SpendStatus::Rejected, None);
    let spend = deciding.spend;
    settle(connection, spend, &decision)?;
    problems::settle_pending(connection, &deciding.problem.id, spend.amount_minor, 0)?;
    finish(connection, deciding, &decision, ReviewAction::Rejected)
}

/// Approves `approved_minor` of the spend (the rest is released), setting
/// the problem's new limit first when one was given.
fn approve(
    connection: &mut DbConnection,
    deciding: &Deciding<'_>,
    approved_minor: i64,
) -> Result<SpendRow, Error> {
    let decision = deciding.decision(SpendStatus::ApprovedByManager, Some(approved_minor));
    let (spend, problem) = (deciding.spend, deciding.problem);
    // The spend's guard first, then the problem's row: the order every
    // writer of both takes (voids too), so two of them never deadlock.
    settle(connection, spend, &decision)?;
    if let Some(limit) = deciding.review.new_limit {
        let reason = deciding.review.note.as_deref().unwrap_or_default();
        change_limit(
            connection,
            deciding.caller,
            problem,
            limit,
            reason,
            deciding.at,
        )?;
    }
    problems::settle_pending(connection, &problem.id, spend.amount_minor, approved_minor)?;
    finish(connection, deciding, &decision, ReviewAction::Approved)
}

/// Records the decision on the spend, guarded: a spend decided, re-routed
/// or escalated since it was read is refused rather than decided twice.
fn settle(
    connection: &mut DbConnection,
    spend: &SpendRow,
    decision: &Decision<'_>,
) -> Result<(), Error> {
    if spends::decide(connection, &spend.id, spend.route_version, decision)? {
        return Ok(());
    }
    match spends::find(connection, &spend.id)? {
        Some(now) if is_pending(&now) => Err(Error::conflict(
            "the spend was re-routed while you decided it: read it and retry",
        )),
        _ => Err(Error::from(Refusal::AlreadyDecided)),
    }
}

/// Writes the decision's review step and event.
fn finish(
    connection: &mut DbConnection,
    deciding: &Deciding<'_>,
    decision: &Decision<'_>,
    action: ReviewAction,
) -> Result<SpendRow, Error> {
    let spend = reload_spend(connection, &deciding.spend.id)?;
    let step = Step {
        action,
        actor_id: Some(&deciding.caller.person_id),
        on_behalf_of_id: decision.on_behalf_of,
        approved_amount_minor: decision.approved_amount_minor,
        note: decision.note,
        at: decision.decided_at,
    };
    record_step(connection, &spend, step)?;
    let kind = if action == ReviewAction::Approved {
        EventKind::SpendApprovedByManager
    } else {
        EventKind::SpendRejected
    };
    record(
        connection,
        deciding.caller,
        kind,
        &spend,
        &deciding.problem.team_id,
        decision.decided_at,
    )?;
    Ok(spend)
}

/// The overrun the deciding position may approve alone: the approval limit
/// of the policy in force for the team it reviews for (`None`: no cap).
/// Authority belongs to the approver, so it is read at decision time; the
/// admins have no cap.
fn approval_authority(
    connection: &mut DbConnection,
    spend: &SpendRow,
    position: &ReviewPosition,
) -> Result<Option<i64>, Error> {
    if position.as_admin {
        return Ok(None);
    }
    let team_id = if position.current {
        &spend.review_team_id
    } else {
        &spend.original_review_team_id
    };
    let Some(team_id) = team_id else {
        return Ok(None);
    };
    let chain = teams::chain_upwards(connection, team_id)?;
    Ok(policies::effective(connection, &chain)?.and_then(|policy| policy.approval_limit_minor))
}

/// An approval beyond the reviewer's authority: recorded as an endorsement,
/// and the spend moves to the next manager up (from the current reviewer's
/// level; a reviewer deciding after SLA escalation leaves it where it is).
/// A `new_limit` sent with it is not applied: that too is for whoever has
/// the authority.
fn endorse(
    connection: &mut DbConnection,
    deciding: &Deciding<'_>,
    approved_minor: i64,
) -> Result<SpendRow, Error> {
    let Deciding {
        caller,
        spend,
        problem,
        position,
        review,
        at,
    } = *deciding;
    let next = match (&spend.review_team_id, position.current) {
        (Some(team_id), false) => Route::Manager {
            manager_id: spend.reviewer_id.clone().unwrap_or_default(),
            team_id: team_id.clone(),
        },
        _ => next_up(connection, spend, &problem.owner_id)?,
    };
    if !move_to(connection, spend, next, Seat::default(), at)? {
        return Err(Error::conflict(
            "the spend was decided or re-routed while you decided it: read it and retry",
        ));
    }
    let spend = reload_spend(connection, &spend.id)?;
    let step = Step {
        action: ReviewAction::Endorsed,
        actor_id: Some(&caller.person_id),
        on_behalf_of_id: position.on_behalf_of.as_deref(),
        approved_amount_minor: Some(approved_minor),
        note: review.note.as_deref(),
        at,
    };
    record_step(connection, &spend, step)?;
    record(
        connection,
        caller,
        EventKind::SpendEndorsed,
        &spend,
        &problem.team_id,
        at,
    )?;
    Ok(spend)
}

/// A pending spend in the caller's review queue.
#[derive(Debug)]
pub struct QueueItem {
    /// The spend.
    pub spend: SpendRow,
    /// Whether the caller may decide it (else it is shown read-only:
    /// routed to a manager below them).
    pub can_decide: bool,
    /// The reviewer the caller would decide for, as their delegate.
    pub on_behalf_of: Option<String>,
}

/// Flagged spends routed to the caller (or to whoever's queue they hold by
/// delegation at `at`, or to the admins for an admin), and, read-only,
/// those routed to managers in teams below them. Finance and admins see
/// every pending spend. Oldest first.
pub fn queue(
    connection: &mut DbConnection,
    caller: &Caller,
    page: &PageRequest,
    at: NaiveDateTime,
) -> Result<Page<QueueItem>, Error> {
    let mut reviewer_ids = delegations::active_delegators(connection, &caller.person_id, at)?;
    reviewer_ids.push(caller.person_id.clone());
    let scope = QueueScope {
        reviewer_ids,
        includes_admin_route: caller.administers(),
        scope_team_ids: if caller.role == Role::Manager {
            caller.scope_team_ids.iter().cloned().collect()
        } else {
            Vec::new()
        },
        everything: caller.reads_everything(),
    };
    let rows = spends::review_queue(connection, &scope, page)?;
    let mut items = Vec::with_capacity(rows.items.len());
    for spend in rows.items {
        let position = review_position(connection, caller, &spend, at)?;
        let owner_id = problems::find(connection, &spend.problem_id)?
            .map(|problem| problem.owner_id)
            .unwrap_or_default();
        let own = caller.is_own_spend(&owner_id, &spend.logged_by);
        items.push(QueueItem {
            can_decide: position.is_some() && !own,
            on_behalf_of: position.and_then(|position| position.on_behalf_of),
            spend,
        });
    }
    Ok(Page {
        items,
        next_after: rows.next_after,
    })
}
