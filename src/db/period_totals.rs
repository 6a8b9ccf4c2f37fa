//! Per-person, per-calendar-month running totals of autonomously approved
//! spends: the period allowance check is one guarded update on one row,
//! never a sum over history, and as race-free as the per-problem limit.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::DbConnection;
use super::Error;
use super::prepared;
use super::schema::period_totals;

/// Which running total: a person's autonomous spending in one currency in
/// one calendar month (`YYYY-MM`, UTC).
#[derive(Debug, Clone, Copy)]
pub struct PeriodKey<'a> {
    /// The problem owner whose allowance it is.
    pub person_id: &'a str,
    /// `YYYY-MM`.
    pub period: &'a str,
    /// ISO 4217 code.
    pub currency: &'a str,
}

/// Adds an autonomous spend to the period total only if it stays inside
/// `allowance_minor` (`None`: no allowance, always added), creating the
/// month's row on its first spend. Returns whether it was added. One
/// statement: PostgreSQL waits for a concurrent insert or update of the
/// same row and re-checks the condition on its newest version; SQLite runs
/// one writer.
pub fn try_consume(
    connection: &mut DbConnection,
    key: PeriodKey<'_>,
    amount_minor: i64,
    allowance_minor: Option<i64>,
) -> Result<bool, Error> {
    // Portable SQL: diesel's MultiConnection has no ON CONFLICT builder, and
    // both PostgreSQL and SQLite (3.24+) accept this upsert as written (the
    // SELECT's WHERE is what lets SQLite parse ON CONFLICT after it).
    let changed = prepared::sql(
        "INSERT INTO period_totals (person_id, period, currency, autonomous_minor) \
         SELECT $1, $2, $3, $4 WHERE $5 IS NULL OR $4 <= $5 \
         ON CONFLICT (person_id, period, currency) DO UPDATE \
         SET autonomous_minor = period_totals.autonomous_minor + excluded.autonomous_minor \
         WHERE $5 IS NULL OR period_totals.autonomous_minor + excluded.autonomous_minor <= $5",
    )
    .bind::<Text, _>(key.person_id)
    .bind::<Text, _>(key.period)
    .bind::<Text, _>(key.currency)
    .bind::<BigInt, _>(amount_minor)
    .bind::<Nullable<BigInt>, _>(allowance_minor)
    .execute(connection)?;
    Ok(changed == 1)
}

/// What the person has spent autonomously in the period so far.
pub fn spent(connection: &mut DbConnection, key: PeriodKey<'_>) -> Result<i64, Error> {
    Ok(period_totals::table
        .filter(period_totals::person_id.eq(key.person_id))
        .filter(period_totals::period.eq(key.period))
        .filter(period_totals::currency.eq(key.currency))
        .select(period_totals::autonomous_minor)
        .get_result(connection)
        .optional()?
        .unwrap_or(0))
}

/// Takes a voided autonomous spend back out of its period total.
pub fn release(
    connection: &mut DbConnection,
    key: PeriodKey<'_>,
    amount_minor: i64,
) -> Result<(), Error> {
    let changed = diesel::update(
        period_totals::table
            .filter(period_totals::person_id.eq(key.person_id))
            .filter(period_totals::period.eq(key.period))
            .filter(period_totals::currency.eq(key.currency))
            .filter(period_totals::autonomous_minor.ge(amount_minor)),
    )
    .set(period_totals::autonomous_minor.eq(period_totals::autonomous_minor - amount_minor))
    .execute(connection)?;
    if changed != 1 {
        // The total never held this spend: the ledger and the running total
        // disagree. The void itself stands; the drift must be looked into.
        tracing::error!(
            person_id = key.person_id,
            period = key.period,
            amount_minor,
            "a voided spend was not in its period total"
        );
    }
    Ok(())
}
