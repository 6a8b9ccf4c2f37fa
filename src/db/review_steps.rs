//! A spend's review history: every routing, escalation, endorsement and
//! decision, numbered in order. Rows are only ever inserted.

use diesel::prelude::*;

use super::DbConnection;
use super::Error;
use super::schema::spend_review_steps;

/// Most steps of one spend's history that are read back. Each step moves
/// the spend up the tree (at most `TEAM_DEPTH_MAX` = 32 levels, once by SLA
/// escalation and once by endorsement) or ends its review, so a history
/// never comes near it.
pub const REVIEW_STEPS_MAX: i64 = 200;

/// A stored review step.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = spend_review_steps)]
pub struct ReviewStepRow {
    /// The spend.
    pub spend_id: String,
    /// 1, 2, 3, ... per spend.
    pub step: i32,
    /// `routed`, `escalated`, `endorsed`, `approved` or `rejected`.
    pub action: String,
    /// Who acted; null when the server did (routing, SLA escalation).
    pub actor_id: Option<String>,
    /// The reviewer a delegate acted for.
    pub on_behalf_of_id: Option<String>,
    /// Where the spend went; null with a null team means the admins.
    pub reviewer_id: Option<String>,
    /// The team whose manager reviews next.
    pub review_team_id: Option<String>,
    /// What the reviewer approved or endorsed.
    pub approved_amount_minor: Option<i64>,
    /// The reviewer's note.
    pub note: Option<String>,
    /// When.
    pub at: chrono::NaiveDateTime,
}

/// Appends a step, numbering it after the spend's last one. Runs inside the
/// transaction that changed the spend under its guard, so numbers never race.
pub fn append(connection: &mut DbConnection, mut step: ReviewStepRow) -> Result<(), Error> {
    let last: Option<i32> = spend_review_steps::table
        .filter(spend_review_steps::spend_id.eq(&step.spend_id))
        .select(diesel::dsl::max(spend_review_steps::step))
        .get_result(connection)?;
    step.step = last.unwrap_or(0) + 1;
    diesel::insert_into(spend_review_steps::table)
        .values(step)
        .execute(connection)?;
    Ok(())
}

/// A spend's history, oldest first.
pub fn list(connection: &mut DbConnection, spend_id: &str) -> Result<Vec<ReviewStepRow>, Error> {
    Ok(spend_review_steps::table
        .filter(spend_review_steps::spend_id.eq(spend_id))
        .order(spend_review_steps::step.asc())
        .limit(REVIEW_STEPS_MAX)
        .select(ReviewStepRow::as_select())
        .load(connection)?)
}
