//! Delegated review authority: a manager hands their review queue to
//! another manager for a time window. A delegation is revoked, never
//! deleted; whether one is in force is always decided against the server's
//! clock inside the transaction that uses it.

use diesel::prelude::*;

use super::Error;
use super::schema::review_delegations;
use super::{DbConnection, Page, PageRequest};

/// Most delegators one person can act for at a time (bounds the review
/// queue's query).
pub const ACTIVE_DELEGATORS_MAX: i64 = 100;

/// A stored delegation.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = review_delegations)]
pub struct DelegationRow {
    /// Id.
    pub id: String,
    /// The manager whose queue is handed over.
    pub delegator_id: String,
    /// The manager who decides in their place.
    pub delegate_id: String,
    /// Start of the window (inclusive).
    pub starts_at: chrono::NaiveDateTime,
    /// End of the window (exclusive).
    pub ends_at: chrono::NaiveDateTime,
    /// Why, e.g. "vacation".
    pub note: Option<String>,
    /// Who created it (the delegator or an admin).
    pub created_by: String,
    /// When.
    pub created_at: chrono::NaiveDateTime,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

/// Which delegations a caller may list.
#[derive(Debug, Clone)]
pub enum DelegationVisibility {
    /// Finance and admin.
    All,
    /// Those the person gave or received.
    Involving(String),
}

/// Inserts a delegation.
pub fn insert(connection: &mut DbConnection, delegation: &DelegationRow) -> Result<(), Error> {
    diesel::insert_into(review_delegations::table)
        .values(delegation.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a delegation by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<DelegationRow>, Error> {
    Ok(review_delegations::table
        .find(id)
        .select(DelegationRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// Lists visible delegations in id order.
pub fn list(
    connection: &mut DbConnection,
    visibility: &DelegationVisibility,
    page: &PageRequest,
) -> Result<Page<DelegationRow>, Error> {
    let mut query = review_delegations::table
        .select(DelegationRow::as_select())
        .order(review_delegations::id.asc())
        .into_boxed();
    if let DelegationVisibility::Involving(person_id) = visibility {
        query = query.filter(
            review_delegations::delegator_id
                .eq(person_id.clone())
                .or(review_delegations::delegate_id.eq(person_id.clone())),
        );
    }
    if let Some(after) = &page.after {
        query = query.filter(review_delegations::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Revokes a delegation that is not revoked yet. Returns whether it was.
pub fn revoke(
    connection: &mut DbConnection,
    id: &str,
    revoked_by: &str,
    at: chrono::NaiveDateTime,
) -> Result<bool, Error> {
    let changed = diesel::update(
        review_delegations::table
            .filter(review_delegations::id.eq(id))
            .filter(review_delegations::revoked_at.is_null()),
    )
    .set((
        review_delegations::revoked_by.eq(revoked_by),
        review_delegations::revoked_at.eq(at),
    ))
    .execute(connection)?;
    Ok(changed == 1)
}

/// The people who may decide for `delegator_id` at `at`: the delegates of
/// delegations in force, at most [`ACTIVE_DELEGATORS_MAX`].
pub fn active_delegates(
    connection: &mut DbConnection,
    delegator_id: &str,
    at: chrono::NaiveDateTime,
) -> Result<Vec<String>, Error> {
    Ok(review_delegations::table
        .filter(review_delegations::delegator_id.eq(delegator_id))
        .filter(review_delegations::starts_at.le(at))
        .filter(review_delegations::ends_at.gt(at))
        .filter(review_delegations::revoked_at.is_null())
        .select(review_delegations::delegate_id)
        .distinct()
        .order(review_delegations::delegate_id.asc())
        .limit(ACTIVE_DELEGATORS_MAX)
        .load(connection)?)
}

/// The people `delegate_id` may decide for at `at`: delegations in force
/// (inside their window and not revoked), at most [`ACTIVE_DELEGATORS_MAX`].
pub fn active_delegators(
    connection: &mut DbConnection,
    delegate_id: &str,
    at: chrono::NaiveDateTime,
) -> Result<Vec<String>, Error> {
    Ok(review_delegations::table
        .filter(review_delegations::delegate_id.eq(delegate_id))
        .filter(review_delegations::starts_at.le(at))
        .filter(review_delegations::ends_at.gt(at))
        .filter(review_delegations::revoked_at.is_null())
        .select(review_delegations::delegator_id)
        .distinct()
        .order(review_delegations::delegator_id.asc())
        .limit(ACTIVE_DELEGATORS_MAX)
        .load(connection)?)
}
