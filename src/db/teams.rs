//! Teams: the organisation tree and who manages each node.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use super::Error;
use super::schema::teams;
use super::{DbConnection, Page, PageRequest};
use crate::domain::review::TeamNode;

/// Deepest team tree Leeway walks; a deeper tree is refused when built.
pub const TEAM_DEPTH_MAX: i32 = 32;
/// Most teams one manager's scope may hold.
pub const SCOPE_TEAMS_MAX: i64 = 10_000;

/// A stored team.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent team; null at the root.
    pub parent_id: Option<String>,
    /// The team's manager, if set.
    pub manager_id: Option<String>,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Last changed.
    pub updated_at: chrono::NaiveDateTime,
}

/// Inserts a team.
pub fn insert(connection: &mut DbConnection, team: &TeamRow) -> Result<(), Error> {
    diesel::insert_into(teams::table)
        .values(team.clone())
        .execute(connection)?;
    Ok(())
}

/// Finds a team by id.
pub fn find(connection: &mut DbConnection, id: &str) -> Result<Option<TeamRow>, Error> {
    Ok(teams::table
        .find(id)
        .select(TeamRow::as_select())
        .get_result(connection)
        .optional()?)
}

/// Lists teams in id order.
pub fn list(connection: &mut DbConnection, page: &PageRequest) -> Result<Page<TeamRow>, Error> {
    let mut query = teams::table
        .select(TeamRow::as_select())
        .order(teams::id.asc())
        .into_boxed();
    if let Some(after) = &page.after {
        query = query.filter(teams::id.gt(after.as_str().to_owned()));
    }
    let rows = query.limit(page.limit + 1).load(connection)?;
    Page::from_rows(rows, page, |row| row.id.parse())
}

/// Writes a team's name, parent and manager.
pub fn update(connection: &mut DbConnection, team: &TeamRow) -> Result<(), Error> {
    diesel::update(teams::table.find(&team.id))
        .set((
            teams::name.eq(&team.name),
            teams::parent_id.eq(&team.parent_id),
            teams::manager_id.eq(&team.manager_id),
            teams::updated_at.eq(team.updated_at),
        ))
        .execute(connection)?;
    Ok(())
}

#[derive(QueryableByName)]
struct TeamIdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// The team and every team above it, nearest first, at most
/// [`TEAM_DEPTH_MAX`] + 1 of them.
pub fn chain_upwards(connection: &mut DbConnection, team_id: &str) -> Result<Vec<String>, Error> {
    // Portable SQL: both databases run WITH RECURSIVE, and SQLite reads `$1`
    // as the first bound parameter just as PostgreSQL does.
    let rows: Vec<TeamIdRow> = diesel::sql_query(
        "WITH RECURSIVE chain (id, parent_id, depth) AS ( \
             SELECT id, parent_id, 0 FROM teams WHERE id = $1 \
             UNION ALL \
             SELECT teams.id, teams.parent_id, chain.depth + 1 FROM teams \
             JOIN chain ON teams.id = chain.parent_id WHERE chain.depth < $2 \
         ) SELECT id FROM chain ORDER BY depth",
    )
    .bind::<Text, _>(team_id)
    .bind::<Integer, _>(TEAM_DEPTH_MAX)
    .load(connection)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}

#[derive(QueryableByName)]
struct TeamNodeRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    manager_id: Option<String>,
}

/// The team and every team above it with their managers, nearest first:
/// the path a flagged spend is routed along.
pub fn chain_with_managers(
    connection: &mut DbConnection,
    team_id: &str,
) -> Result<Vec<TeamNode>, Error> {
    // Portable SQL, as in `chain_upwards`.
    let rows: Vec<TeamNodeRow> = diesel::sql_query(
        "WITH RECURSIVE chain (id, parent_id, manager_id, depth) AS ( \
             SELECT id, parent_id, manager_id, 0 FROM teams WHERE id = $1 \
             UNION ALL \
             SELECT teams.id, teams.parent_id, teams.manager_id, chain.depth + 1 FROM teams \
             JOIN chain ON teams.id = chain.parent_id WHERE chain.depth < $2 \
         ) SELECT id, manager_id FROM chain ORDER BY depth",
    )
    .bind::<Text, _>(team_id)
    .bind::<Integer, _>(TEAM_DEPTH_MAX)
    .load(connection)?;
    Ok(rows
        .into_iter()
        .map(|row| TeamNode {
            team_id: row.id,
            manager_id: row.manager_id,
        })
        .collect())
}

/// The chain above `team_id` (its parent upwards), or empty at the root.
pub fn chain_above(connection: &mut DbConnection, team_id: &str) -> Result<Vec<TeamNode>, Error> {
    let mut chain = chain_with_managers(connection, team_id)?;
    if !chain.is_empty() {
        chain.remove(0);
    }
    Ok(chain)
}

/// Teams the person manages directly.
pub fn managed_by(connection: &mut DbConnection, person_id: &str) -> Result<Vec<String>, Error> {
    Ok(teams::table
        .filter(teams::manager_id.eq(person_id))
        .select(teams::id)
        .order(teams::id.asc())
        .limit(SCOPE_TEAMS_MAX)
        .load(connection)?)
}

/// Teams the person manages and every team below them, bounded by
/// [`SCOPE_TEAMS_MAX`] and [`TEAM_DEPTH_MAX`].
pub fn scope_of_manager(
    connection: &mut DbConnection,
    person_id: &str,
) -> Result<Vec<String>, Error> {
    let rows: Vec<TeamIdRow> = diesel::sql_query(
        "WITH RECURSIVE scope (id, depth) AS ( \
             SELECT id, 0 FROM teams WHERE manager_id = $1 \
             UNION ALL \
             SELECT teams.id, scope.depth + 1 FROM teams \
             JOIN scope ON teams.parent_id = scope.id WHERE scope.depth < $2 \
         ) SELECT DISTINCT id FROM scope ORDER BY id LIMIT $3",
    )
    .bind::<Text, _>(person_id)
    .bind::<Integer, _>(TEAM_DEPTH_MAX)
    .bind::<diesel::sql_types::BigInt, _>(SCOPE_TEAMS_MAX)
    .load(connection)?;
    Ok(rows.into_iter().map(|row| row.id).collect())
}
