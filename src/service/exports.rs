//! The finance export use cases: resolving what an export holds (its
//! `as_of`, its teams) once, then one page at a time as the client reads.
//! A spend's state as of the export is what its newest spend event at or
//! below `as_of` recorded, a [`SpendSnapshotV1`]: built from the row when
//! nothing happened to the spend after `as_of` (the row holds what that
//! event recorded), decoded from the event otherwise.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::Deserialize;

use super::Error;
use super::audit::{require_finance, resolve_as_of};
use super::ledger::MoneyV1;
use crate::db::events::EventRow;
use crate::db::exports::{
    self, EventExportFilter, ExportSpend, ExportSpendRow, SpendEventData, SpendExportFilter,
};
use crate::db::{DbConnection, teams};
use crate::domain::access::Caller;
use crate::domain::review::decode_reasons;
use crate::domain::status::SpendStatus;
use crate::encoding::rfc3339;

/// Why a caller who is not finance or an admin may not export or read
/// reports.
pub const FINANCE_ONLY: &str = "exports are for finance and admins";

/// The spend event payload, version 1: the spend as it was after the change
/// (what the spend handlers record). Only the fields exports read; unknown
/// fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SpendSnapshotV1 {
    /// The status after the change; an event without one is no snapshot.
    pub status: String,
    /// Who decided it, if anyone.
    pub decided_by: Option<String>,
    /// When it was decided (RFC 3339), if it was.
    pub decided_at: Option<String>,
    /// Why it was flagged; absent in events older than review routing.
    #[serde(default)]
    pub flag_reasons: Option<Vec<String>>,
    /// Who it is waiting for; absent in events older than review routing.
    #[serde(default)]
    pub reviewer_id: Option<String>,
    /// A partial approval's amount; absent in events older than it.
    #[serde(default)]
    pub approved_amount: Option<AmountV1>,
    /// When it was voided; absent in events older than voiding.
    #[serde(default)]
    pub voided_at: Option<String>,
}

/// A money value in a spend event: only its decimal amount is read (the
/// currency is the spend's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AmountV1 {
    /// The decimal amount, e.g. `12.50`.
    pub amount: String,
}

impl SpendSnapshotV1 {
    /// The snapshot a spend event records of `row` (what
    /// [`SpendV1::from_row`](super::ledger::SpendV1::from_row) stores, read
    /// back), built without the JSON: the state of a spend with no event
    /// after an export's `as_of`.
    pub fn from_row(row: &ExportSpend) -> Result<Self, Error> {
        Ok(Self {
            status: row.status.clone(),
            decided_by: row.decided_by.clone(),
            decided_at: row.decided_at.map(rfc3339),
            flag_reasons: Some(decode_reasons(row.flag_reasons.as_deref())),
            reviewer_id: row.reviewer_id.clone(),
            approved_amount: row
                .approved_amount_minor
                .map(|minor| {
                    MoneyV1::stored(minor, &row.currency).map(|money| AmountV1 {
                        amount: money.amount,
                    })
                })
                .transpose()?,
            voided_at: row.voided_at.map(rfc3339),
        })
    }

    /// Decodes an event's stored `data`; `None` when the JSON is not a
    /// spend snapshot (no string `status`).
    fn decode(data: &str) -> Result<Option<Self>, Error> {
        match serde_json::from_str(data) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) if error.is_data() => Ok(None),
            Err(error) => Err(Error::Internal(error.to_string())),
        }
    }

    /// Whether the spend counts as approved (on the spot or by a manager).
    #[must_use]
    pub fn is_approved(&self) -> bool {
        matches!(
            SpendStatus::parse(&self.status),
            Some(SpendStatus::Approved | SpendStatus::ApprovedByManager)
        )
    }

    /// What counts towards the problem's `approved`: a partial approval's
    /// amount, else `whole` (the spend's amount) once approved.
    #[must_use]
    pub fn approved_amount_or<'a>(&'a self, whole: &'a str) -> Option<&'a str> {
        self.approved_amount
            .as_ref()
            .map(|money| money.amount.as_str())
            .or_else(|| self.is_approved().then_some(whole))
    }
}

/// A spend as it stood at an export's `as_of`.
#[derive(Debug, Clone)]
pub struct SpendAsOf {
    /// The row: its immutable fields are the spend's.
    pub spend: ExportSpend,
    /// The problem's team.
    pub team_id: String,
    /// The problem's owner.
    pub owner_id: String,
    /// The spend's state as of `as_of`: status, decision, void.
    pub snapshot: SpendSnapshotV1,
    /// The sequence of the event that snapshot comes from.
    pub sequence: i64,
}

/// What a spend export asks for, parsed.
#[derive(Debug, Clone)]
pub struct SpendExportQuery {
    /// Only this team and the teams below it (as the tree stood at `as_of`).
    pub team_id: Option<String>,
    /// Only spends made on or after this date.
    pub from: Option<NaiveDate>,
    /// Only spends made before this date.
    pub to: Option<NaiveDate>,
    /// Only spends in this status as of `as_of`.
    pub status: Option<String>,
    /// The event sequence to export as of; default the newest safe one.
    pub as_of: Option<i64>,
}

/// A resolved spend export: obtained only through [`spend_export`], so a
/// page is read only for a caller allowed to export.
#[derive(Debug, Clone)]
pub struct SpendExport {
    filter: SpendExportFilter,
    status: Option<String>,
}

impl SpendExport {
    /// The event sequence the export is as of.
    #[must_use]
    pub fn as_of(&self) -> i64 {
        self.filter.as_of
    }
}

/// What an events export asks for, parsed.
#[derive(Debug, Clone)]
pub struct EventExportQuery {
    /// Only events of this team and the teams below it.
    pub team_id: Option<String>,
    /// Only events at or after this time.
    pub from: Option<NaiveDateTime>,
    /// Only events before this time.
    pub to: Option<NaiveDateTime>,
    /// The event sequence to export as of; default the newest safe one.
    pub as_of: Option<i64>,
}

/// A resolved events export: obtained only through [`event_export`].
#[derive(Debug, Clone)]
pub struct EventExport {
    filter: EventExportFilter,
}

impl EventExport {
    /// The event sequence the export is as of.
    #[must_use]
    pub fn as_of(&self) -> i64 {
        self.filter.as_of
    }
}

/// The team filter: the team and every team below it, as the tree stood at
/// `as_of` (exports) or as it stands (`None`, reports). `NotFound` when no
/// such team exists now.
pub fn team_scope(
    connection: &mut DbConnection,
    team_id: Option<&str>,
    as_of: Option<i64>,
) -> Result<Option<Vec<String>>, Error> {
    let Some(team_id) = team_id else {
        return Ok(None);
    };
    if teams::find(connection, team_id)?.is_none() {
        return Err(Error::NotFound("team"));
    }
    // Empty when the team came after `as_of`: then nothing matches.
    Ok(Some(exports::team_subtree(connection, team_id, as_of)?))
}

/// Resolves a spend export for `caller` (finance or an admin): its `as_of`
/// and its teams.
pub fn spend_export(
    connection: &mut DbConnection,
    caller: &Caller,
    query: &SpendExportQuery,
) -> Result<SpendExport, Error> {
    require_finance(caller, FINANCE_ONLY)?;
    let as_of = resolve_as_of(connection, query.as_of)?;
    let team_ids = team_scope(connection, query.team_id.as_deref(), Some(as_of))?;
    Ok(SpendExport {
        filter: SpendExportFilter {
            team_ids,
            from: query.from,
            to: query.to,
            as_of,
        },
        status: query.status.clone(),
    })
}

/// Resolves an events export for `caller` (finance or an admin).
pub fn event_export(
    connection: &mut DbConnection,
    caller: &Caller,
    query: &EventExportQuery,
) -> Result<EventExport, Error> {
    require_finance(caller, FINANCE_ONLY)?;
    let as_of = resolve_as_of(connection, query.as_of)?;
    let team_ids = team_scope(connection, query.team_id.as_deref(), Some(as_of))?;
    Ok(EventExport {
        filter: EventExportFilter {
            team_ids,
            from: query.from,
            to: query.to,
            as_of,
        },
    })
}

/// One page of a spend export after spend id `after`: the spends as of the
/// export's `as_of` that pass its status filter (a page may hold fewer
/// than it read, even none), and the id to continue after, `None` on the
/// last page.
pub fn spends_page(
    connection: &mut DbConnection,
    export: &SpendExport,
    after: Option<&str>,
) -> Result<(Vec<SpendAsOf>, Option<String>), Error> {
    let (rows, next_after) = exports::spends_page(connection, &export.filter, after)?;
    let as_of = export.filter.as_of;
    // Only spends changed after `as_of` need their history read back.
    let changed: Vec<String> = rows
        .iter()
        .filter(|row| row.changed_after(as_of))
        .map(|row| row.spend.id.clone())
        .collect();
    let mut snapshots = if changed.is_empty() {
        HashMap::new()
    } else {
        states_as_of(exports::spend_events(connection, changed, as_of)?)?
    };
    let mut spends = Vec::with_capacity(rows.len());
    for row in rows {
        let state = match row.newest_sequence {
            Some(sequence) if row.row_is_as_of(as_of) => {
                Some((SpendSnapshotV1::from_row(&row.spend)?, sequence))
            }
            // Changed after `as_of`: its newest snapshot at or below it,
            // none when the spend did not exist yet at `as_of`.
            Some(_) => snapshots.remove(&row.spend.id),
            // No event in the audit chain: not in any export.
            None => None,
        };
        let ExportSpendRow {
            spend,
            team_id,
            owner_id,
            ..
        } = row;
        let Some((snapshot, sequence)) = state else {
            continue;
        };
        if export
            .status
            .as_deref()
            .is_some_and(|wanted| snapshot.status != wanted)
        {
            continue;
        }
        spends.push(SpendAsOf {
            spend,
            team_id,
            owner_id,
            snapshot,
            sequence,
        });
    }
    Ok((spends, next_after))
}

/// Each spend's newest event whose data is a spend snapshot, with its
/// sequence.
fn states_as_of(
    history: Vec<SpendEventData>,
) -> Result<HashMap<String, (SpendSnapshotV1, i64)>, Error> {
    let mut states: HashMap<String, (SpendSnapshotV1, i64)> = HashMap::new();
    for event in history {
        let sequence = event.sequence.unwrap_or_default();
        if states
            .get(&event.spend_id)
            .is_some_and(|(_, newest)| *newest >= sequence)
        {
            continue;
        }
        if let Some(snapshot) = SpendSnapshotV1::decode(&event.data)? {
            states.insert(event.spend_id, (snapshot, sequence));
        }
    }
    Ok(states)
}

/// One page of an events export after sequence `after`, oldest first, and
/// the sequence to continue after.
pub fn events_page(
    connection: &mut DbConnection,
    export: &EventExport,
    after: i64,
) -> Result<(Vec<EventRow>, Option<i64>), Error> {
    Ok(exports::events_page(connection, &export.filter, after)?)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::db::spends::SpendRow;
    use crate::service::ledger::SpendV1;

    /// The columns of `row` an export reads, as it reads them.
    fn exported(row: &SpendRow) -> ExportSpend {
        let row = row.clone();
        ExportSpend {
            id: row.id,
            problem_id: row.problem_id,
            amount_minor: row.amount_minor,
            currency: row.currency,
            status: row.status,
            overrun_minor: row.overrun_minor,
            merchant: row.merchant,
            description: row.description,
            category: row.category,
            spent_on: row.spent_on,
            logged_by: row.logged_by,
            logged_at: row.logged_at,
            decided_by: row.decided_by,
            decided_at: row.decided_at,
            voided_at: row.voided_at,
            flag_reasons: row.flag_reasons,
            policy_team_id: row.policy_team_id,
            policy_version: row.policy_version,
            approved_amount_minor: row.approved_amount_minor,
            reviewer_id: row.reviewer_id,
        }
    }

    fn row() -> SpendRow {
        let at = NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_micro_opt(10, 30, 0, 123_456)
            .unwrap();
        SpendRow {
            id: "s1".into(),
            problem_id: "p1".into(),
            amount_minor: 12_345,
            currency: "JPY".into(),
            status: "approved".into(),
            overrun_minor: None,
            merchant: "Shop".into(),
            description: "Cable".into(),
            category: None,
            spent_on: at.date(),
            receipt_url: None,
            logged_by: "u1".into(),
            logged_at: at,
            decided_by: None,
            decided_at: None,
            decision_note: None,
            voided_by: None,
            voided_at: None,
            void_reason: None,
            flag_reasons: None,
            policy_team_id: None,
            policy_version: None,
            approved_amount_minor: None,
            reviewer_id: None,
            review_team_id: None,
            original_reviewer_id: None,
            original_review_team_id: None,
            review_due_at: None,
            decided_on_behalf_of: None,
            route_version: 1,
        }
    }

    /// The row-built snapshot is exactly what decoding the stored event
    /// gives, in every state a spend passes through: exports take one for
    /// the other.
    #[test]
    fn a_snapshot_from_the_row_equals_the_stored_event_read_back() {
        let approved = row();
        let flagged = SpendRow {
            status: "pending_review".into(),
            overrun_minor: Some(45),
            flag_reasons: Some("over_problem_limit,not_acknowledged".into()),
            reviewer_id: Some("m1".into()),
            ..row()
        };
        let partly_approved = SpendRow {
            status: "approved_by_manager".into(),
            decided_by: Some("m1".into()),
            decided_at: Some(approved.logged_at),
            approved_amount_minor: Some(100),
            ..flagged.clone()
        };
        let voided = SpendRow {
            status: "voided".into(),
            voided_by: Some("u1".into()),
            voided_at: Some(approved.logged_at),
            void_reason: Some("duplicate".into()),
            currency: "BHD".into(),
            ..partly_approved.clone()
        };
        let empty_reasons = SpendRow {
            flag_reasons: Some(String::new()),
            ..row()
        };
        for spend in [approved, flagged, partly_approved, voided, empty_reasons] {
            let stored = serde_json::to_string(&SpendV1::from_row(&spend).unwrap()).unwrap();
            let decoded = SpendSnapshotV1::decode(&stored).unwrap().unwrap();
            assert_eq!(
                SpendSnapshotV1::from_row(&exported(&spend)).unwrap(),
                decoded,
                "{stored}"
            );
        }
    }
}
