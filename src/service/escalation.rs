//! The review workflow's side effects, run inside the caller's transaction:
//! routing a flagged spend up the team tree, moving it up when a reviewer
//! lacks authority or its SLA passes, recording every step, and the
//! background task that escalates overdue reviews. The rules themselves are
//! pure functions in `domain::review`.
//!
//! Escalation is safe with any number of server processes on one database:
//! each process picks a bounded batch of overdue spends and moves each one
//! in its own transaction with a compare-and-set on `route_version`, so a
//! spend moved by one process (or decided by a reviewer meanwhile) is
//! skipped by the others.

use chrono::{NaiveDateTime, TimeDelta};

use super::Error;
use super::ledger::SpendV1;
use crate::db::audit;
use crate::db::events::Subject;
use crate::db::policies::PolicyRow;
use crate::db::review_steps::{self, ReviewStepRow};
use crate::db::spends::{self, Routing, SpendRow};
use crate::db::{self, Db, DbConnection, policies, teams};
use crate::domain::event::EventKind;
use crate::domain::review::{self, Route};
use crate::domain::status::{ReviewAction, SpendStatus};

/// Most overdue spends one process escalates per tick.
pub const ESCALATION_BATCH_MAX: i64 = 100;

/// The policy version a problem (and so its spends) is judged by.
pub fn pinned_policy(
    connection: &mut DbConnection,
    team_id: Option<&str>,
    version: Option<i32>,
) -> Result<Option<PolicyRow>, Error> {
    match (team_id, version) {
        (Some(team_id), Some(version)) => Ok(policies::find(connection, team_id, version)?),
        _ => Ok(None),
    }
}

/// Routes from `team_id` upwards (`above`: from its parent upwards),
/// skipping whoever logged the spend and the problem's owner.
pub fn route_from(
    connection: &mut DbConnection,
    team_id: &str,
    above: bool,
    spend: &SpendRow,
    owner_id: &str,
) -> Result<Route, Error> {
    let chain = if above {
        teams::chain_above(connection, team_id)?
    } else {
        teams::chain_with_managers(connection, team_id)?
    };
    Ok(review::route(&chain, &[&spend.logged_by, owner_id]))
}

/// The reviewer and team of a route; both null for the admins.
#[must_use]
pub fn route_parts(route: Route) -> (Option<String>, Option<String>) {
    match route {
        Route::Manager {
            manager_id,
            team_id,
        } => (Some(manager_id), Some(team_id)),
        Route::Admins => (None, None),
    }
}

/// When a review routed at `at` escalates: after the policy's SLA, unless
/// it already sits with the admins (nobody is above them) or no policy
/// judges it.
#[must_use]
pub fn review_due_at(
    policy: Option<&PolicyRow>,
    routed_to_manager: bool,
    at: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let policy = policy.filter(|_| routed_to_manager)?;
    at.checked_add_signed(TimeDelta::hours(i64::from(policy.review_sla_hours)))
}

/// One entry of a spend's review history.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// `routed`, `escalated`, `endorsed`, `approved` or `rejected`.
    pub action: ReviewAction,
    /// Who acted; `None` for the server.
    pub actor_id: Option<&'a str>,
    /// The reviewer a delegate acted for.
    pub on_behalf_of_id: Option<&'a str>,
    /// What was approved or endorsed.
    pub approved_amount_minor: Option<i64>,
    /// The reviewer's note.
    pub note: Option<&'a str>,
    /// When.
    pub at: NaiveDateTime,
}

/// Appends a step to the spend's history; where it went is read from the
/// spend as it now stands.
pub fn record_step(
    connection: &mut DbConnection,
    spend: &SpendRow,
    step: Step<'_>,
) -> Result<(), Error> {
    let moved = step.action.moves();
    review_steps::append(
        connection,
        ReviewStepRow {
            spend_id: spend.id.clone(),
            step: 0,
            action: step.action.as_str().to_owned(),
            actor_id: step.actor_id.map(str::to_owned),
            on_behalf_of_id: step.on_behalf_of_id.map(str::to_owned),
            reviewer_id: spend.reviewer_id.clone().filter(|_| moved),
            review_team_id: spend.review_team_id.clone().filter(|_| moved),
            approved_amount_minor: step.approved_amount_minor,
            note: step.note.map(str::to_owned),
            at: step.at,
        },
    )?;
    Ok(())
}

/// The next reviewer up from where a pending spend sits: the nearest
/// manager above its review team (skipping whoever logged it and the
/// problem's owner), or the admins when it already sits with them.
pub fn next_up(
    connection: &mut DbConnection,
    spend: &SpendRow,
    owner_id: &str,
) -> Result<Route, Error> {
    match &spend.review_team_id {
        Some(team_id) => route_from(connection, team_id, true, spend, owner_id),
        None => Ok(Route::Admins),
    }
}

/// A reviewer's seat a moved spend keeps beside its new reviewer (both
/// null: none).
#[derive(Debug, Clone, Default)]
pub struct Seat {
    /// The reviewer.
    pub reviewer_id: Option<String>,
    /// The team they review for.
    pub review_team_id: Option<String>,
}

/// Moves a pending spend to `next`, with `original` seated beside it and
/// its review deadline restarted under its pinned policy; guarded on the
/// route version it was read at. Returns whether it moved (false: decided
/// or re-routed meanwhile). Escalation and endorsement both move spends up
/// this way.
pub fn move_to(
    connection: &mut DbConnection,
    spend: &SpendRow,
    next: Route,
    original: Seat,
    at: NaiveDateTime,
) -> Result<bool, Error> {
    let policy = pinned_policy(
        connection,
        spend.policy_team_id.as_deref(),
        spend.policy_version,
    )?;
    let to_manager = matches!(next, Route::Manager { .. });
    let (reviewer_id, review_team_id) = route_parts(next);
    let routing = Routing {
        reviewer_id,
        review_team_id,
        original_reviewer_id: original.reviewer_id,
        original_review_team_id: original.review_team_id,
        review_due_at: review_due_at(policy.as_ref(), to_manager, at),
    };
    Ok(spends::reroute(
        connection,
        &spend.id,
        spend.route_version,
        &routing,
    )?)
}

/// Escalates one overdue spend to the next manager up (the reviewer it
/// leaves may still decide), in the caller's transaction. Returns the spend
/// as it now stands, or `None` when there was nothing to do: decided,
/// re-routed or escalated by another process meanwhile, or not due.
pub fn escalate(
    connection: &mut DbConnection,
    spend_id: &str,
    at: NaiveDateTime,
) -> Result<Option<SpendRow>, Error> {
    let Some(spend) = spends::find(connection, spend_id)? else {
        return Ok(None);
    };
    if !is_pending(&spend) || spend.review_due_at.is_none_or(|due| due > at) {
        return Ok(None);
    }
    let problem = super::problems::reload(connection, &spend.problem_id)?;
    let next = next_up(connection, &spend, &problem.owner_id)?;
    // The first escalation seats the reviewer it leaves beside the new one;
    // later ones keep that original seat.
    let seat = if spend.original_reviewer_id.is_some() {
        Seat {
            reviewer_id: spend.original_reviewer_id.clone(),
            review_team_id: spend.original_review_team_id.clone(),
        }
    } else {
        Seat {
            reviewer_id: spend.reviewer_id.clone(),
            review_team_id: spend.review_team_id.clone(),
        }
    };
    if !move_to(connection, &spend, next, seat, at)? {
        return Ok(None);
    }
    let spend = reload_spend(connection, spend_id)?;
    record_step(
        connection,
        &spend,
        Step {
            action: ReviewAction::Escalated,
            actor_id: None,
            on_behalf_of_id: None,
            approved_amount_minor: None,
            note: None,
            at,
        },
    )?;
    Ok(Some(spend))
}

/// Escalates every overdue spend of one batch, each in its own
/// transaction with its `spend.escalated` event. Returns how many moved.
pub async fn escalate_overdue(db: &Db, at: NaiveDateTime) -> Result<usize, Error> {
    let due = db
        .read(move |connection| spends::due_for_escalation(connection, at, ESCALATION_BATCH_MAX))
        .await?;
    let mut moved = 0;
    for spend_id in due {
        // One spend failing (say, a transient conflict) must not hold up
        // the rest of the batch: it is logged and retried next tick.
        match db
            .write({
                let spend_id = spend_id.clone();
                move |connection| escalate_with_event(connection, &spend_id, at)
            })
            .await
        {
            Ok(escalated) => moved += usize::from(escalated),
            Err(error) => tracing::warn!(%error, %spend_id, "could not escalate a review"),
        }
    }
    Ok(moved)
}

/// Escalates one spend with its `spend.escalated` event (no actor: the
/// server acted). Returns whether it moved.
fn escalate_with_event(
    connection: &mut DbConnection,
    spend_id: &str,
    at: NaiveDateTime,
) -> Result<bool, Error> {
    let Some(spend) = escalate(connection, spend_id, at)? else {
        return Ok(false);
    };
    let problem = super::problems::reload(connection, &spend.problem_id)?;
    let subject = Subject {
        subject_type: "spend",
        subject_id: &spend.id,
        team_id: Some(&problem.team_id),
        problem_id: Some(&spend.problem_id),
    };
    let payload = SpendV1::from_row(&spend)?;
    audit::append(
        connection,
        None,
        EventKind::SpendEscalated,
        subject,
        &payload,
        at,
    )?;
    Ok(true)
}

/// Whether a stored spend awaits review.
#[must_use]
pub fn is_pending(spend: &SpendRow) -> bool {
    SpendStatus::parse(&spend.status) == Some(SpendStatus::PendingReview)
}

/// Reloads a spend this transaction just changed: missing is a bug.
pub fn reload_spend(connection: &mut DbConnection, id: &str) -> Result<SpendRow, Error> {
    Ok(spends::find(connection, id)?.ok_or_else(|| db::Error::missing("spend"))?)
}
