//! People: who can call the API, their role and team.

use diesel::prelude::*;

use super::Error;
use super::schema::people;
use super::{DbConnection, Page, PageRequest};

/// A stored person.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = people)]
pub struct PersonRow {
    /// Id.
    pub id: String,
    /// The JWT `sub` that identifies them.
    pub subject: String,
    /// Display name.
    pub name: String,
    /// Email, optional.
    pub email: Option<String>,
    /// Their team; admins and finance may have none.
    pub team_id: Option<String>,
    /// `member`, `manager`, `finance` or `admin`.
    pub role: String,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
    /// What mail they get: `immediate`, `daily_digest` or `off`.
    pub notify: String,
}

/// Sets what mail a person gets. Returns whether they exist.
pub fn set_notify(
    connection: &mut DbConnection,
    id: &str,
    notify: &str,
    at: chrono::NaiveDateTime,
) -> Result<bool, Error> {
    let updated = diesel::update(people::table.find(id))
        .set((people::notify.eq(notify), people::updated_at.eq(at)))
        .execute(connection)?;
    Ok(updated == 1)
}

/// Inserts a person; a taken subject is `Error::UniqueViolation`.
pub fn insert(connection: &mut DbConnection, person: &PersonRow) -> Result<(), Error> {
    diesel::insert_into(people::table)
        .values(person.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a person by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<PersonRow>, Error> {
    Ok(people::table
        .find(id)
        .select(PersonRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// Finds a person by JWT subject.
pub fn find_by_subject(
    connection: &mut DbConnection,
    subject: &str,
) -> Result<Option<PersonRow>, Error> {
    Ok(people::table
        .filter(people::subject.eq(subject))
        .select(PersonRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// How many people hold `role`.
pub fn count_with_role(connection: &mut DbConnection, role: &str) -> Result<i64, Error> {
    Ok(people::table
        .filter(people::role.eq(role))
        .count()
        .get_result(connection)?)
}

/// The ids of up to `limit` people holding `role`, in id order.
pub fn ids_with_role(
    connection: &mut DbConnection,
    role: &str,
    limit: i64,
) -> Result<Vec<String>, Error> {
    Ok(people::table
        .filter(people::role.eq(role))
        .order(people::id.asc())
        .select(people::id)
        .limit(limit)
        .load(connection)?)
}

/// Lists people in id order: everyone, or only one person and the people
/// of some teams (`(person_id, team_ids)`).
pub fn list(
    connection: &mut DbConnection,
    self_and_teams: Option<&(String, Vec<String>)>,
    page: &PageRequest,
) -> Result<Page<PersonRow>, Error> {
    let mut query = people::table
        .select(PersonRow::as_select())
        .order(people::id.asc())
        .into_boxed();
    if let Some((person_id, team_ids)) = self_and_teams {
        query = query.filter(
            people::id
                .eq(person_id.clone())
                .or(people::team_id.eq_any(team_ids.clone())),
        );
    }
    if let Some(after) = &page.after {
        query = query.filter(people::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Writes a person's name, email, team and role.
pub fn update(connection: &mut DbConnection, person: &PersonRow) -> Result<(), Error> {
    diesel::update(people::table.find(&person.id))
        .set((
            people::name.eq(&person.name),
            people::email.eq(&person.email),
            people::team_id.eq(&person.team_id),
            people::role.eq(&person.role),
            people::updated_at.eq(person.updated_at),
        ))
        .execute(connection)?;
    Ok(())
}
