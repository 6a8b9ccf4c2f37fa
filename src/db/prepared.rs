//! Fixed SQL text with typed binds that both databases keep prepared.
//!
//! Diesel prepares each statement once per connection and keeps it, except
//! for three kinds it never caches: every `UPDATE` built with its DSL (a
//! changeset's shape may vary between calls), every `diesel::sql_query`, and
//! every upsert. Each of those is parsed and planned again on every call: on
//! SQLite that is CPU on the one writer thread, on PostgreSQL an extra round
//! trip (parse, then execute). The spend path runs half a dozen of them per
//! request, so they are written here instead: [`sql`] takes the text with
//! `$1`, `$2`, … placeholders, [`Prepared::bind`] adds the values in order,
//! and the statement is cached like any DSL query (keyed by its text).
//!
//! A placeholder may appear more than once and in any order: each `$N` is
//! sent as the Nth bound value, so the same text means the same on both
//! databases (SQLite alone would number `$N` by first appearance). The text
//! must not contain `$` anywhere else (no dollar quoting, no `$` in literals).

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// Starts a kept-prepared statement from its text; add its values with
/// [`Prepared::bind`], in the order of their numbers.
#[must_use]
pub fn sql(text: &str) -> Prepared<'_> {
    Prepared { text }
}

/// A statement's text, before its binds.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<'a> {
    text: &'a str,
}

/// A statement with one more bound value (of SQL type `ST`) than `Inner`.
#[derive(Debug, Clone, Copy)]
pub struct Bound<Inner, ST, T> {
    inner: Inner,
    value: T,
    sql_type: PhantomData<ST>,
}

impl Prepared<'_> {
    /// Binds `$1`.
    pub fn bind<ST, T>(self, value: T) -> Bound<Self, ST, T> {
        Bound {
            inner: self,
            value,
            sql_type: PhantomData,
        }
    }
}

impl<Inner, ST, T> Bound<Inner, ST, T> {
    /// Binds the next number.
    pub fn bind<ST2, T2>(self, value: T2) -> Bound<Self, ST2, T2> {
        Bound {
            inner: self,
            value,
            sql_type: PhantomData,
        }
    }
}

/// The text of a statement and how many values are bound to it.
pub trait Binds {
    /// Values bound so far.
    const COUNT: usize;
    /// The statement's text, placeholders included.
    fn text(&self) -> &str;
}

impl Binds for Prepared<'_> {
    const COUNT: usize = 0;
    fn text(&self) -> &str {
        self.text
    }
}

impl<Inner: Binds, ST, T> Binds for Bound<Inner, ST, T> {
    const COUNT: usize = Inner::COUNT + 1;
    fn text(&self) -> &str {
        self.inner.text()
    }
}

/// Sends one bound value, by its zero-based position, as a bind parameter.
pub trait WalkBind<DB: Backend>: Binds {
    /// Pushes the placeholder and value of bind `index` (`$index+1`).
    fn walk_bind<'b>(&'b self, index: usize, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<DB: Backend> WalkBind<DB> for Prepared<'_> {
    fn walk_bind<'b>(&'b self, index: usize, _out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        Err(DieselError::QueryBuilderError(
            format!("${} has no bound value", index + 1).into(),
        ))
    }
}

impl<DB, Inner, ST, T> WalkBind<DB> for Bound<Inner, ST, T>
where
    DB: Backend + HasSqlType<ST>,
    Inner: WalkBind<DB>,
    T: ToSql<ST, DB>,
{
    fn walk_bind<'b>(&'b self, index: usize, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if index == Inner::COUNT {
            out.push_bind_param::<ST, T>(&self.value)
        } else {
            self.inner.walk_bind(index, out)
        }
    }
}

/// Writes `statement`'s text, each `$N` replaced by the backend's own
/// placeholder for the Nth bound value.
fn walk_statement<'b, DB, S>(statement: &'b S, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()>
where
    DB: Backend,
    S: WalkBind<DB>,
{
    let mut rest = statement.text();
    while let Some(at) = rest.find('$') {
        out.push_sql(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let number: usize = after[..digits].parse().unwrap_or(0);
        if number == 0 {
            return Err(DieselError::QueryBuilderError(
                format!("a `$` not followed by a placeholder number in {rest:?}").into(),
            ));
        }
        statement.walk_bind(number - 1, out.reborrow())?;
        rest = &after[digits..];
    }
    out.push_sql(rest);
    Ok(())
}

impl<DB: Backend> QueryFragment<DB> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        walk_statement(self, out)
    }
}

impl<DB, Inner, ST, T> QueryFragment<DB> for Bound<Inner, ST, T>
where
    DB: Backend,
    Self: WalkBind<DB>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        walk_statement(self, out)
    }
}

// No static id: the statement cache keys these by their text, which is
// fixed per call site, so each is prepared once per connection.
impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Inner, ST, T> QueryId for Bound<Inner, ST, T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

// Rows come back by column name (`QueryableByName`), as from `sql_query`.
impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Inner, ST, T> Query for Bound<Inner, ST, T> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}
impl<Inner, ST, T, Conn> RunQueryDsl<Conn> for Bound<Inner, ST, T> {}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};
    use diesel::sqlite::Sqlite;

    use super::*;

    #[test]
    fn each_placeholder_sends_its_own_value_in_text_order() {
        let statement = sql("SELECT $2, $1 WHERE $2 IS NULL OR $3 > 0")
            .bind::<Text, _>("a")
            .bind::<Text, _>("b")
            .bind::<BigInt, _>(7_i64);
        let shown = diesel::debug_query::<Sqlite, _>(&statement).to_string();
        assert_eq!(
            shown,
            r#"SELECT ?, ? WHERE ? IS NULL OR ? > 0 -- binds: ["b", "a", "b", 7]"#
        );
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        let statement = sql("SELECT $1, $2").bind::<Text, _>("a");
        let mut text = String::new();
        let result = std::fmt::write(
            &mut text,
            format_args!("{}", diesel::debug_query::<Sqlite, _>(&statement)),
        );
        assert!(result.is_err());
        let bare = sql("SELECT $ 1").bind::<Text, _>("a");
        let result = std::fmt::write(
            &mut text,
            format_args!("{}", diesel::debug_query::<Sqlite, _>(&bare)),
        );
        assert!(result.is_err());
    }
}
