//! The organisation's use cases: teams (the tree and its managers), people
//! (who they are, their role and team), who may see whom, and the caller's
//! own view (`/v1/me`). Admins change teams and people; everyone reads the
//! tree; a person's role decides which people they see.

use crate::domain::mail::Notify;
use chrono::NaiveDateTime;
use serde::Serialize;

use crate::db::audit;
use crate::db::events::Subject;
use crate::db::people::{self, PersonRow};
use crate::db::teams::{self, TEAM_DEPTH_MAX, TeamRow};
use crate::db::{DbConnection, Page, PageRequest, new_id};
use crate::domain::access::{Caller, Role};
use crate::domain::event::EventKind;
use crate::domain::ids::{PersonId, Reference, TeamId};
use crate::encoding::rfc3339;
use crate::service::Error;

/// What only an admin may do to the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    /// Create or change teams.
    Teams,
    /// Add people.
    AddPeople,
    /// Change people.
    People,
}

/// Refuses a caller who is not an admin. Each use case asks it itself; the
/// api also asks it before reading the body, so a caller who may not act
/// learns that before any field error.
pub fn require_admin(caller: &Caller, change: AdminChange) -> Result<(), Error> {
    if caller.administers() {
        return Ok(());
    }
    let refusal = match change {
        AdminChange::Teams => "only an admin can change teams",
        AdminChange::AddPeople => "only an admin can add people",
        AdminChange::People => "only an admin can change people",
    };
    Err(Error::Forbidden(refusal.to_owned()))
}

/// Whether a stored person has the manager role.
#[must_use]
pub fn is_manager(person: &PersonRow) -> bool {
    person.role.parse() == Ok(Role::Manager)
}

/// A team as its audit events record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamRecorded {
    id: String,
    name: String,
    parent_id: Option<String>,
    manager_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&TeamRow> for TeamRecorded {
    fn from(row: &TeamRow) -> Self {
        Self {
            id: row.id.clone(),
            name: row.name.clone(),
            parent_id: row.parent_id.clone(),
            manager_id: row.manager_id.clone(),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// A person as their audit events record them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRecorded {
    id: String,
    subject: String,
    name: String,
    email: Option<String>,
    team_id: Option<String>,
    role: String,
    created_at: String,
    updated_at: String,
}

impl From<&PersonRow> for PersonRecorded {
    fn from(row: &PersonRow) -> Self {
        Self {
            id: row.id.clone(),
            subject: row.subject.clone(),
            name: row.name.clone(),
            email: row.email.clone(),
            team_id: row.team_id.clone(),
            role: row.role.clone(),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// A new team, its name already checked.
#[derive(Debug, Clone)]
pub struct CreateTeam {
    /// Display name.
    pub name: String,
    /// Parent team; none at the root.
    pub parent_id: Option<Reference<TeamId>>,
    /// The team's manager, if set.
    pub manager_id: Option<Reference<PersonId>>,
}

/// A change to a team: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone)]
pub struct UpdateTeam {
    /// New display name.
    pub name: Option<String>,
    /// New parent.
    pub parent_id: Option<Option<Reference<TeamId>>>,
    /// New manager.
    pub manager_id: Option<Option<Reference<PersonId>>>,
}

/// Checks that a manager id names a person with the manager role.
fn check_manager(
    connection: &mut DbConnection,
    manager_id: &Reference<PersonId>,
) -> Result<String, Error> {
    let refuse = |message: &str| Error::field("manager_id", "invalid_manager", message);
    let Reference::Id(id) = manager_id else {
        return Err(refuse("manager_id must be a person's id"));
    };
    let person = people::find(connection, id.as_str())?.ok_or(Error::UnknownReference {
        field: "manager_id",
        names: "person",
    })?;
    if is_manager(&person) {
        Ok(person.id)
    } else {
        Err(refuse("the person must have the manager role"))
    }
}

/// Checks that `parent_id` exists and is not `team_id` or below it, and
/// that the tree stays within [`TEAM_DEPTH_MAX`].
fn check_parent(
    connection: &mut DbConnection,
    team_id: &str,
    parent_id: &Reference<TeamId>,
) -> Result<String, Error> {
    let refuse = |message: &str| Error::field("parent_id", "invalid_parent", message);
    let Reference::Id(parent_id) = parent_id else {
        return Err(refuse("parent_id must be a team's id"));
    };
    let parent_id = parent_id.as_str();
    if teams::find(connection, parent_id)?.is_none() {
        return Err(Error::UnknownReference {
            field: "parent_id",
            names: "team",
        });
    }
    let chain = teams::chain_upwards(connection, parent_id)?;
    if chain.iter().any(|id| id == team_id) {
        return Err(refuse(
            "a team cannot be placed under itself or one of its sub-teams",
        ));
    }
    if chain.len() >= usize::try_from(TEAM_DEPTH_MAX).unwrap_or(usize::MAX) {
        return Err(refuse("the team tree would be too deep"));
    }
    Ok(parent_id.to_owned())
}

fn record_team(
    connection: &mut DbConnection,
    caller: &Caller,
    kind: EventKind,
    team: &TeamRow,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let subject = Subject {
        subject_type: "team",
        subject_id: &team.id,
        team_id: Some(&team.id),
        problem_id: None,
    };
    audit::append(
        connection,
        Some(&caller.person_id),
        kind,
        subject,
        &TeamRecorded::from(team),
        at,
    )?;
    Ok(())
}

/// Creates a team (admins only).
pub fn create_team(
    connection: &mut DbConnection,
    caller: &Caller,
    command: CreateTeam,
    at: NaiveDateTime,
) -> Result<TeamRow, Error> {
    require_admin(caller, AdminChange::Teams)?;
    let id = new_id();
    let parent_id = command
        .parent_id
        .map(|parent_id| check_parent(connection, &id, &parent_id))
        .transpose()?;
    let manager_id = command
        .manager_id
        .map(|manager_id| check_manager(connection, &manager_id))
        .transpose()?;
    let team = TeamRow {
        id,
        name: command.name,
        parent_id,
        manager_id,
        created_at: at,
        updated_at: at,
    };
    teams::insert(connection, &team)?;
    record_team(connection, caller, EventKind::TeamCreated, &team, at)?;
    Ok(team)
}

/// Changes a team's name, parent or manager (admins only).
pub fn update_team(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &TeamId,
    command: UpdateTeam,
    at: NaiveDateTime,
) -> Result<TeamRow, Error> {
    require_admin(caller, AdminChange::Teams)?;
    let mut team = find_team(connection, id.as_str())?;
    if let Some(name) = command.name {
        team.name = name;
    }
    if let Some(parent_id) = command.parent_id {
        team.parent_id = parent_id
            .map(|parent_id| check_parent(connection, &team.id, &parent_id))
            .transpose()?;
    }
    if let Some(manager_id) = command.manager_id {
        team.manager_id = manager_id
            .map(|manager_id| check_manager(connection, &manager_id))
            .transpose()?;
    }
    team.updated_at = at;
    teams::update(connection, &team)?;
    record_team(connection, caller, EventKind::TeamUpdated, &team, at)?;
    Ok(team)
}

/// A page of teams in id order; every caller reads the whole tree.
pub fn list_teams(
    connection: &mut DbConnection,
    page: &PageRequest,
) -> Result<Page<TeamRow>, Error> {
    Ok(teams::list(connection, page)?)
}

/// One team; every caller reads the whole tree.
pub fn find_team(connection: &mut DbConnection, id: &str) -> Result<TeamRow, Error> {
    teams::find(connection, id)?.ok_or(Error::NotFound("team"))
}

/// A new person, their fields already checked.
#[derive(Debug, Clone)]
pub struct NewPerson {
    /// The JWT `sub` that identifies them.
    pub subject: String,
    /// Display name.
    pub name: String,
    /// Email, optional.
    pub email: Option<String>,
    /// Their team; members and managers need one.
    pub team_id: Option<Reference<TeamId>>,
    /// Their role.
    pub role: Role,
}

/// A change to a person: `None` keeps a field, `Some(None)` clears it.
#[derive(Debug, Clone)]
pub struct UpdatePerson {
    /// New display name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<Option<String>>,
    /// New team.
    pub team_id: Option<Option<Reference<TeamId>>>,
    /// New role.
    pub role: Option<Role>,
}

/// Members and managers need a team; the team must exist.
fn check_team(
    connection: &mut DbConnection,
    role: Role,
    team_id: Option<&Reference<TeamId>>,
) -> Result<Option<String>, Error> {
    let Some(team_id) = team_id else {
        return if role.needs_team() {
            Err(Error::field(
                "team_id",
                "required",
                "members and managers belong to a team",
            ))
        } else {
            Ok(None)
        };
    };
    let Reference::Id(team_id) = team_id else {
        return Err(Error::field(
            "team_id",
            "invalid_team",
            "team_id must be a team's id",
        ));
    };
    teams::find(connection, team_id.as_str())?.ok_or(Error::UnknownReference {
        field: "team_id",
        names: "team",
    })?;
    Ok(Some(team_id.as_str().to_owned()))
}

fn record_person(
    connection: &mut DbConnection,
    actor_id: Option<&str>,
    kind: EventKind,
    person: &PersonRow,
    at: NaiveDateTime,
) -> Result<(), Error> {
    let subject = Subject {
        subject_type: "person",
        subject_id: &person.id,
        team_id: person.team_id.as_deref(),
        problem_id: None,
    };
    audit::append(
        connection,
        actor_id,
        kind,
        subject,
        &PersonRecorded::from(person),
        at,
    )?;
    Ok(())
}

/// Adds a person on behalf of `actor_id` (none for `leeway bootstrap`,
/// which creates the first admin before anyone can call). A taken subject
/// is refused as a conflict.
pub fn add_person(
    connection: &mut DbConnection,
    actor_id: Option<&str>,
    command: NewPerson,
    at: NaiveDateTime,
) -> Result<PersonRow, Error> {
    let team_id = check_team(connection, command.role, command.team_id.as_ref())?;
    let person = PersonRow {
        id: new_id(),
        subject: command.subject,
        name: command.name,
        email: command.email,
        team_id,
        role: command.role.as_str().to_owned(),
        created_at: at,
        updated_at: at,
        notify: Notify::Immediate.as_str().to_owned(),
    };
    people::insert(connection, &person).map_err(|error| match error {
        crate::db::Error::UniqueViolation(_) => Error::conflict(format!(
            "a person with subject {:?} already exists",
            person.subject
        )),
        other => other.into(),
    })?;
    record_person(connection, actor_id, EventKind::PersonCreated, &person, at)?;
    Ok(person)
}

/// What `leeway bootstrap` did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The admin was created.
    Created(PersonRow),
    /// Nothing was changed: the database already has this many admins and
    /// another was not asked for.
    AdminsExist(i64),
}

/// Whether the database has an admin: until it does, nobody can use the
/// API (every role comes from a person record an admin creates).
pub fn has_admin(connection: &mut DbConnection) -> Result<bool, Error> {
    Ok(people::count_with_role(connection, Role::Admin.as_str())? > 0)
}

/// Creates an admin from the command line, where there is no caller: the
/// way in to an empty database. Refused while the database has an admin
/// unless `another` is asked for, so repeating a first-run step never
/// quietly adds an admin. The count and the insert share the transaction
/// (on SQLite it holds the write lock from its start).
pub fn bootstrap_admin(
    connection: &mut DbConnection,
    subject: String,
    name: String,
    email: Option<String>,
    another: bool,
    at: NaiveDateTime,
) -> Result<Bootstrap, Error> {
    let admins = people::count_with_role(connection, Role::Admin.as_str())?;
    if admins > 0 && !another {
        return Ok(Bootstrap::AdminsExist(admins));
    }
    let command = NewPerson {
        subject,
        name,
        email,
        team_id: None,
        role: Role::Admin,
    };
    add_person(connection, None, command, at).map(Bootstrap::Created)
}

/// Adds a person (admins only).
pub fn create_person(
    connection: &mut DbConnection,
    caller: &Caller,
    command: NewPerson,
    at: NaiveDateTime,
) -> Result<PersonRow, Error> {
    require_admin(caller, AdminChange::AddPeople)?;
    add_person(connection, Some(&caller.person_id), command, at)
}

/// Changes a person's name, email, team or role (admins only).
pub fn update_person(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &PersonId,
    command: UpdatePerson,
    at: NaiveDateTime,
) -> Result<PersonRow, Error> {
    require_admin(caller, AdminChange::People)?;
    let mut person = people::find(connection, id.as_str())?.ok_or(Error::NotFound("person"))?;
    if let Some(name) = command.name {
        person.name = name;
    }
    if let Some(email) = command.email {
        person.email = email;
    }
    // Both given and contradictory is a bad request (422, in check_team);
    // one given that contradicts the stored other is a conflict with the
    // person's state.
    let both_in_command = command.role.is_some() && matches!(command.team_id, Some(None));
    let role = match command.role {
        Some(role) => role,
        None => person
            .role
            .parse()
            .map_err(|()| Error::Internal("stored role is unknown".to_owned()))?,
    };
    let team_id = match command.team_id {
        Some(team_id) => team_id,
        // A stored id always reads back; were one not to, it is refused
        // as any malformed team id would be.
        None => person
            .team_id
            .as_deref()
            .map(|team_id| Reference::from(team_id.parse::<TeamId>())),
    };
    if !both_in_command && team_id.is_none() && role.needs_team() {
        return Err(Error::conflict(format!(
            "a {} belongs to a team and this person would have none: give a team_id",
            role.as_str()
        )));
    }
    person.team_id = check_team(connection, role, team_id.as_ref())?;
    role.as_str().clone_into(&mut person.role);
    person.updated_at = at;
    people::update(connection, &person)?;
    record_person(
        connection,
        Some(&caller.person_id),
        EventKind::PersonUpdated,
        &person,
        at,
    )?;
    Ok(person)
}

/// A page of the people the caller may see, in id order.
pub fn list_people(
    connection: &mut DbConnection,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<PersonRow>, Error> {
    let in_teams = if caller.reads_everything() {
        None
    } else {
        Some((
            caller.person_id.clone(),
            caller.scope_team_ids.iter().cloned().collect::<Vec<_>>(),
        ))
    };
    Ok(people::list(connection, in_teams.as_ref(), page)?)
}

/// One person the caller may see.
pub fn find_person(
    connection: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<PersonRow, Error> {
    people::find(connection, id)?
        .filter(|person| caller.may_see_person(&person.id, person.team_id.as_deref()))
        .ok_or(Error::NotFound("person"))
}

/// The caller's own record, for `/v1/me`.
pub fn me(connection: &mut DbConnection, caller: &Caller) -> Result<PersonRow, Error> {
    people::find(connection, &caller.person_id)?.ok_or(Error::NotFound("person"))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveDateTime};

    use super::{PersonRecorded, PersonRow, TeamRecorded, TeamRow};

    fn at(second: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 1)
            .and_then(|day| day.and_hms_micro_opt(9, 30, second, 123_456))
            .unwrap()
    }

    /// Pinned: the audit hash chain and exports hash these exact bytes,
    /// which are those `TeamJson` wrote before the service layer.
    #[test]
    fn a_team_is_recorded_as_before() {
        let team = TeamRow {
            id: "t-1".to_owned(),
            name: "Ops".to_owned(),
            parent_id: Some("t-0".to_owned()),
            manager_id: None,
            created_at: at(1),
            updated_at: at(2),
        };
        assert_eq!(
            serde_json::to_string(&TeamRecorded::from(&team)).unwrap(),
            r#"{"id":"t-1","name":"Ops","parent_id":"t-0","manager_id":null,"created_at":"2026-12-01T09:30:01.123456Z","updated_at":"2026-12-01T09:30:02.123456Z"}"#
        );
    }

    /// Pinned as `PersonJson` wrote it before the service layer.
    #[test]
    fn a_person_is_recorded_as_before() {
        let person = PersonRow {
            id: "p-1".to_owned(),
            subject: "sam".to_owned(),
            name: "Sam".to_owned(),
            email: Some("sam@example.com".to_owned()),
            team_id: None,
            role: "finance".to_owned(),
            created_at: at(1),
            updated_at: at(2),
            notify: "daily_digest".to_owned(),
        };
        assert_eq!(
            serde_json::to_string(&PersonRecorded::from(&person)).unwrap(),
            r#"{"id":"p-1","subject":"sam","name":"Sam","email":"sam@example.com","team_id":null,"role":"finance","created_at":"2026-12-01T09:30:01.123456Z","updated_at":"2026-12-01T09:30:02.123456Z"}"#
        );
    }
}
