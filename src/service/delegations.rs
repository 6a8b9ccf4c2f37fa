//! Delegated review authority's use cases: a manager hands their review
//! queue to another manager for a window; the delegator or an admin can
//! revoke it early; those involved (finance and admins: everyone) read it.
//! Whether a delegation is in force is decided where it is used, against
//! the server's clock.

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::db::audit;
use crate::db::delegations::{self, DelegationRow, DelegationVisibility};
use crate::db::events::Subject;
use crate::db::{DbConnection, Page, PageRequest, new_id, people};
use crate::domain::access::{Caller, Role};
use crate::domain::event::EventKind;
use crate::domain::ids::{PersonId, Reference};
use crate::encoding::rfc3339;
use crate::service::Error;
use crate::service::organisation::is_manager;

/// A delegation as its audit events record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DelegationRecorded {
    id: String,
    delegator_id: String,
    delegate_id: String,
    from: String,
    until: String,
    note: Option<String>,
    created_by: String,
    created_at: String,
    revoked_by: Option<String>,
    revoked_at: Option<String>,
}

impl From<&DelegationRow> for DelegationRecorded {
    fn from(row: &DelegationRow) -> Self {
        Self {
            id: row.id.clone(),
            delegator_id: row.delegator_id.clone(),
            delegate_id: row.delegate_id.clone(),
            from: rfc3339(row.starts_at),
            until: rfc3339(row.ends_at),
            note: row.note.clone(),
            created_by: row.created_by.clone(),
            created_at: rfc3339(row.created_at),
            revoked_by: row.revoked_by.clone(),
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// A new delegation, its window and note already checked.
#[derive(Debug, Clone)]
pub struct CreateDelegation {
    /// The manager who decides in the delegator's place.
    pub delegate_id: Reference<PersonId>,
    /// Whose queue is handed over: the caller when none.
    pub delegator_id: Option<Reference<PersonId>>,
    /// Start of the window (inclusive).
    pub starts_at: NaiveDateTime,
    /// End of the window (exclusive).
    pub ends_at: NaiveDateTime,
    /// Why, e.g. "vacation".
    pub note: Option<String>,
}

/// Only managers review, so only managers hand over or take a queue. A
/// person the caller cannot see is unknown to them unless a manager (whose
/// seats the team tree shows anyway): no answer tells a hidden person's role.
/// Answers the manager's id.
fn require_manager(
    connection: &mut DbConnection,
    caller: &Caller,
    field: &'static str,
    person_id: &Reference<PersonId>,
) -> Result<String, Error> {
    let unknown = Error::UnknownReference {
        field,
        names: "person",
    };
    let Reference::Id(person_id) = person_id else {
        return Err(unknown);
    };
    let person = people::find(connection, person_id.as_str())?
        .filter(|person| {
            is_manager(person) || caller.may_see_person(&person.id, person.team_id.as_deref())
        })
        .ok_or(unknown)?;
    if is_manager(&person) {
        Ok(person.id)
    } else {
        Err(Error::field(
            field,
            "not_a_manager",
            "this person is not a manager: review queues pass only between managers",
        ))
    }
}

fn record(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: EventKind,
    row: &DelegationRow,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let subject = Subject {
        subject_type: "delegation",
        subject_id: &row.id,
        team_id: None,
        problem_id: None,
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject,
        &DelegationRecorded::from(row),
        at,
    )?;
    Ok(())
}

/// Hands a manager's review queue to another manager: a manager their own,
/// an admin anyone's.
pub fn create_delegation(
    connection: &mut DbConnection,
    caller: &Caller,
    command: CreateDelegation,
    at: NaiveDateTime,
) -> Result<DelegationRow, Error> {
    let is_callers = |reference: &Reference<PersonId>| {
        reference.id().map(PersonId::as_str) == Some(caller.person_id.as_str())
    };
    let delegator = match command.delegator_id {
        Some(reference) if !is_callers(&reference) && !caller.administers() => {
            return Err(Error::Forbidden(
                "only an admin can hand over another manager's queue".to_owned(),
            ));
        }
        Some(reference) => reference,
        // The caller's own id was read from storage, so it always parses.
        None => Reference::from(caller.person_id.parse::<PersonId>()),
    };
    if is_callers(&delegator) && caller.role != Role::Manager {
        return Err(Error::Forbidden(
            "only managers have a review queue to hand over".to_owned(),
        ));
    }
    let delegator_id = require_manager(connection, caller, "delegator_id", &delegator)?;
    let delegate_id = require_manager(connection, caller, "delegate_id", &command.delegate_id)?;
    if delegate_id == delegator_id {
        return Err(Error::field(
            "delegate_id",
            "self_delegation",
            "a manager cannot delegate to themselves",
        ));
    }
    let row = DelegationRow {
        id: new_id(),
        delegator_id,
        delegate_id,
        starts_at: command.starts_at,
        ends_at: command.ends_at,
        note: command.note,
        created_by: caller.person_id.clone(),
        created_at: at,
        revoked_by: None,
        revoked_at: None,
    };
    delegations::insert(connection, &row)?;
    record(connection, caller, EventKind::DelegationCreated, &row, at)?;
    Ok(row)
}

/// A page of the delegations the caller gave or received (finance and
/// admins: all), in id order.
pub fn list_delegations(
    connection: &mut DbConnection,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<DelegationRow>, Error> {
    let visibility = if caller.reads_everything() {
        DelegationVisibility::All
    } else {
        DelegationVisibility::Involving(caller.person_id.clone())
    };
    Ok(delegations::list(connection, &visibility, page)?)
}

/// One delegation the caller gave or received (finance and admins: any).
pub fn find_delegation(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<DelegationRow, Error> {
    delegations::find(connection, id)?
        .filter(|row| {
            caller.reads_everything()
                || row.delegator_id == caller.person_id
                || row.delegate_id == caller.person_id
        })
        .ok_or(Error::NotFound("delegation"))
}

/// Ends a delegation now (the delegator or an admin).
pub fn revoke_delegation(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
    at: NaiveDateTime,
) -> Result<DelegationRow, Error> {
    let row = find_delegation(connection, caller, id)?;
    if row.delegator_id != caller.person_id && !caller.administers() {
        return Err(Error::Forbidden(
            "only the delegator or an admin can revoke a delegation".to_owned(),
        ));
    }
    if !delegations::revoke(connection, id, &caller.person_id, at)? {
        return Err(Error::conflict("this delegation is already revoked"));
    }
    let row = delegations::find(connection, id)?.ok_or(Error::NotFound("delegation"))?;
    record(connection, caller, EventKind::DelegationRevoked, &row, at)?;
    Ok(row)
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::{DelegationRecorded, DelegationRow};

    fn at(hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|day| day.and_hms_opt(hour, 0, 0))
            .unwrap()
    }

    /// Pinned: the audit hash chain and exports hash these exact bytes,
    /// which are those `DelegationJson` wrote before the service layer.
    #[test]
    fn a_delegation_is_recorded_as_before() {
        let row = DelegationRow {
            id: "d-1".to_owned(),
            delegator_id: "p-1".to_owned(),
            delegate_id: "p-2".to_owned(),
            starts_at: at(1),
            ends_at: at(2),
            note: None,
            created_by: "p-0".to_owned(),
            created_at: at(0),
            revoked_by: Some("p-1".to_owned()),
            revoked_at: Some(at(3)),
        };
        assert_eq!(
            serde_json::to_string(&DelegationRecorded::from(&row)).unwrap(),
            r#"{"id":"d-1","delegator_id":"p-1","delegate_id":"p-2","from":"2026-12-01T01:00:00.000000Z","until":"2026-12-01T02:00:00.000000Z","note":null,"created_by":"p-0","created_at":"2026-12-01T00:00:00.000000Z","revoked_by":"p-1","revoked_at":"2026-12-01T03:00:00.000000Z"}"#
        );
    }
}
