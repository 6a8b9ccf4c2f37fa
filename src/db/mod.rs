//! The database: one connection enum over PostgreSQL and SQLite (diesel's
//! `MultiConnection`), the pool, migrations, and the two ways to run a unit
//! of work (`Db::read`, `Db::write`). Dialect-specific SQL lives only in this
//! folder, each piece with a comment saying why.
//!
//! Two rules keep statements prepared (see `prepared.rs` for the first):
//! the hot path's UPDATEs and upserts go through `prepared`, and a lookup by
//! a unique key ends in `get_result`, not `first`. `first` adds `LIMIT ?`,
//! and the bundled SQLite (3.50) plans a bound LIMIT by its value, so it
//! prepares the statement again every time the value is bound, even to 1.

pub mod audit;
pub mod checkpoints;
pub mod cursor;
pub mod delegations;
pub mod error;
pub mod events;
pub mod exports;
pub mod idempotency;
pub mod limit_changes;
pub mod mail;
pub mod people;
pub mod period_totals;
pub mod policies;
pub mod prepared;
pub mod problems;
pub mod reports;
pub mod review_steps;
pub mod schema;
pub mod spends;
pub mod teams;
pub mod webhooks;
pub mod writer;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use cursor::{IdCursor, MalformedCursor};
pub use error::Error;
pub use writer::{GROUP_COMMIT_UNITS_DEFAULT, GROUP_COMMIT_UNITS_MAX, Writer};

/// Connections kept open per server process on PostgreSQL.
pub const POSTGRES_POOL_SIZE: u32 = 10;
/// Connections kept open on SQLite (one writer at a time; readers run beside it).
pub const SQLITE_POOL_SIZE: u32 = 8;
/// How long a request waits for a pooled connection before answering 503, by default.
pub const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most connections an operator may ask one process to pool: PostgreSQL's
/// own default `max_connections` is 100, shared by every process.
pub const POOL_SIZE_MAX: u32 = 100;
/// Longest one statement may run or wait for a lock, by default, before its
/// request answers 503 (PostgreSQL's `statement_timeout`, SQLite's
/// `busy_timeout`): a stuck lock or query never hangs a request.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Every migration, compiled into the binary: one portable set for both databases.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A connection to either database. Query code is written once against this.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL: production, several processes share one database.
    Postgres(PgConnection),
    /// SQLite: the embedded zero-setup default.
    Sqlite(SqliteConnection),
}

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// A SQLite file path.
    Sqlite(String),
}

impl DatabaseUrl {
    /// Reads the backend from the URL's scheme: `postgres://`/`postgresql://`,
    /// `sqlite://PATH`, or a bare file path for SQLite. Any other scheme is an
    /// error, so a mistyped URL never silently creates an empty SQLite file.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Self::Sqlite(path.to_owned()))
        } else if url.contains("://") {
            Err(format!(
                "unsupported database URL scheme in {url:?}: use postgres://, postgresql:// or sqlite://"
            ))
        } else if url.is_empty() {
            Err("the database URL is empty".to_owned())
        } else {
            Ok(Self::Sqlite(url.to_owned()))
        }
    }
}

/// Opens connections of the configured backend for the pool (and the writer).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    statement_timeout_ms: u128,
}

impl ConnectionManager {
    /// Opens one connection with the per-connection settings applied.
    fn open(&self) -> Result<DbConnection, diesel::ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut connection = PgConnection::establish(url)?;
                // PostgreSQL-only: text renderings of timestamps (the period
                // backfill in the delegation migration reads `YYYY-MM`) must
                // not depend on a server's or database's DateStyle.
                // A statement that runs or waits longer fails, and its request
                // answers 503 instead of hanging.
                connection
                    .batch_execute(&format!(
                        "SET datestyle = 'ISO, YMD'; SET statement_timeout = {}",
                        self.statement_timeout_ms
                    ))
                    .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
                Ok(DbConnection::Postgres(connection))
            }
            DatabaseUrl::Sqlite(path) => {
                let mut connection = SqliteConnection::establish(path)?;
                // SQLite-only pragmas, per connection: WAL lets readers run beside
                // the writer; busy_timeout queues writers instead of failing, up
                // to the statement timeout (then the request answers 503);
                // foreign keys are off by default in SQLite; synchronous=FULL so
                // no acknowledged spend is lost to a power cut.
                let pragmas = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
                    self.statement_timeout_ms
                );
                connection
                    .batch_execute(&pragmas)
                    .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
                Ok(DbConnection::Sqlite(connection))
            }
        }
    }
}

/// A pooled connection and whether it failed in a way that may mean it is
/// dead. Connections are not pinged on every checkout (a round trip per
/// request); instead a unit of work that fails pings its connection once,
/// and one that does not answer is dropped rather than returned to the pool.
pub struct TrackedConnection {
    connection: DbConnection,
    broken: bool,
}

impl TrackedConnection {
    /// Runs `work` on the connection; after a failure, checks that the
    /// connection still answers and marks it for dropping if not.
    fn run<T, E>(&mut self, work: impl FnOnce(&mut DbConnection) -> Result<T, E>) -> Result<T, E> {
        let result = work(&mut self.connection);
        if result.is_err() && !self.broken {
            self.broken = self.connection.is_broken() || self.connection.ping().is_err();
        }
        result
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = TrackedConnection;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<TrackedConnection, Self::Error> {
        Ok(TrackedConnection {
            connection: self.open()?,
            broken: false,
        })
    }

    fn is_valid(&self, pooled: &mut TrackedConnection) -> Result<(), Self::Error> {
        pooled
            .connection
            .ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, pooled: &mut TrackedConnection) -> bool {
        pooled.broken || pooled.connection.is_broken()
    }
}

/// The connection pool.
pub type Pool = r2d2::Pool<ConnectionManager>;

/// How many connections one process pools, and how long a request waits
/// for one before it answers 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections kept per process; `None` picks the backend's default
    /// ([`POSTGRES_POOL_SIZE`], [`SQLITE_POOL_SIZE`]).
    pub size: Option<u32>,
    /// How long a request waits for a pooled connection.
    pub checkout_timeout: Duration,
    /// Longest one statement may run or wait for a lock.
    pub statement_timeout: Duration,
    /// Most write units the SQLite writer commits together (1: every unit
    /// commits alone, group commit off).
    pub group_commit_units_max: usize,
    /// PostgreSQL: whether writes go through one writer with group commit
    /// too (off by default: one transaction per request on its own pooled
    /// connection).
    pub group_commit_postgres: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: None,
            checkout_timeout: POOL_CHECKOUT_TIMEOUT,
            statement_timeout: STATEMENT_TIMEOUT,
            group_commit_units_max: GROUP_COMMIT_UNITS_DEFAULT,
            group_commit_postgres: false,
        }
    }
}

/// A handle to the database shared by all requests of one process.
#[derive(Clone)]
pub struct Db {
    /// Connections for reads, and for writes when there is no writer.
    pool: Pool,
    /// The one connection every write goes through, with group commit:
    /// always on SQLite, on PostgreSQL when configured.
    writer: Option<Writer>,
    statement_timeout_ms: u128,
}

impl Db {
    /// Builds the pool lazily (no connection is opened yet, so a server can
    /// start while its database is still coming up), with default settings.
    pub fn new(url: &DatabaseUrl) -> Result<Self, String> {
        Self::with_pool(url, PoolSettings::default())
    }

    /// Like [`Db::new`], with the pool's size and checkout timeout given.
    pub fn with_pool(url: &DatabaseUrl, settings: PoolSettings) -> Result<Self, String> {
        let default_size = match url {
            DatabaseUrl::Postgres(_) => POSTGRES_POOL_SIZE,
            DatabaseUrl::Sqlite(path) => {
                if let Some(parent) = std::path::Path::new(path)
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(parent)
                        .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
                }
                SQLITE_POOL_SIZE
            }
        };
        let manager = ConnectionManager {
            url: url.clone(),
            statement_timeout_ms: settings.statement_timeout.as_millis(),
        };
        let uses_writer = match url {
            DatabaseUrl::Postgres(_) => settings.group_commit_postgres,
            DatabaseUrl::Sqlite(_) => true,
        };
        let writer = if uses_writer {
            let writer_manager = manager.clone();
            let connect = move || {
                let mut connection = writer_manager
                    .open()
                    .map_err(|error| Error::Unavailable(error.to_string()))?;
                if let DbConnection::Sqlite(sqlite) = &mut connection {
                    // SQLite-only: every unit of a batch runs in a savepoint,
                    // which copies each page the unit changes into a
                    // sub-journal; past 64 KiB (almost every batch) SQLite
                    // spills it to a temporary file, a write per page. Kept
                    // in memory instead: at most the pages one batch changes.
                    sqlite.batch_execute("PRAGMA temp_store = MEMORY")?;
                }
                Ok(connection)
            };
            Some(
                Writer::start(connect, settings.group_commit_units_max)
                    .map_err(|error| error.to_string())?,
            )
        } else {
            None
        };
        let pool = r2d2::Pool::builder()
            .max_size(settings.size.unwrap_or(default_size))
            .min_idle(Some(0))
            .connection_timeout(settings.checkout_timeout)
            // A ping per checkout is a round trip per request; a connection
            // is checked after it fails instead (`TrackedConnection::run`).
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Self {
            pool,
            writer,
            statement_timeout_ms: settings.statement_timeout.as_millis(),
        })
    }

    /// Write units waiting for the writer now (0 without one).
    #[must_use]
    pub fn write_queue_depth(&self) -> usize {
        self.writer.as_ref().map_or(0, Writer::queue_depth)
    }

    /// Applies pending migrations.
    pub fn migrate(&self) -> Result<(), String> {
        let mut pooled = self.pool.get().map_err(|error| error.to_string())?;
        migrate(&mut pooled.connection, self.statement_timeout_ms)
    }

    /// Runs `work` on a pooled connection on the blocking thread pool, outside
    /// any transaction: for reads that need no consistency across queries.
    /// `work` fails in its own error type, which storage failures convert into.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || checkout(&pool)?.run(work)).await
    }

    /// Runs `work` as one write transaction: through the writer when there
    /// is one (committed together with the units queued beside it, each in
    /// its own savepoint), otherwise on a pooled connection on the blocking
    /// thread pool. Either way the answer comes after the commit.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write(work).await;
        }
        let pool = self.pool.clone();
        blocking(move || checkout(&pool)?.run(|connection| write_transaction(connection, work)))
            .await
    }

    /// The same as [`Db::read`], for the CLI where no async runtime runs.
    pub fn read_blocking<T, E: From<Error>>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        checkout(&self.pool)?.run(work)
    }

    /// The same as [`Db::write`], for the CLI where no async runtime runs.
    pub fn write_blocking<T, E: From<Error>>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
    ) -> Result<T, E> {
        checkout(&self.pool)?.run(|connection| write_transaction(connection, work))
    }
}

/// Runs blocking database work on the runtime's blocking thread pool, so a
/// request's worker thread never waits on the database.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| E::from(Error::Internal(format!("database task failed: {error}"))))?
}

fn checkout(pool: &Pool) -> Result<r2d2::PooledConnection<ConnectionManager>, Error> {
    crate::metrics::measure_pool_wait(|| pool.get())
        .map_err(|error| Error::Unavailable(error.to_string()))
}

/// The locking clause of a queue claim (`SELECT ... LIMIT n` + this):
/// PostgreSQL-only `FOR UPDATE SKIP LOCKED`, so processes claiming at the
/// same moment take different rows instead of waiting on each other.
/// SQLite has no row locks and needs none: every write goes through the one
/// writer, so claims never overlap.
pub(crate) fn skip_locked(connection: &DbConnection) -> &'static str {
    match connection {
        DbConnection::Postgres(_) => "FOR UPDATE SKIP LOCKED",
        DbConnection::Sqlite(_) => "",
    }
}

/// Begins a transaction that holds the write lock from its first statement.
pub(crate) fn begin_write(connection: &mut DbConnection) -> Result<(), Error> {
    let begun = match connection {
        DbConnection::Postgres(inner) => AnsiTransactionManager::begin_transaction(inner),
        // SQLite-only: a plain BEGIN takes the write lock at the first write and
        // fails with SQLITE_BUSY if another writer (the CLI, another process)
        // got there first; BEGIN IMMEDIATE takes it up front so busy_timeout
        // queues writers instead.
        DbConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")
        }
    };
    begun.map_err(Error::from)
}

/// Runs `work` in a transaction that holds the write lock from its first statement.
pub fn write_transaction<T, E: From<Error>>(
    connection: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E> {
    begin_write(connection).map_err(E::from)?;
    match work(connection) {
        Ok(value) => {
            <DbConnection as Connection>::TransactionManager::commit_transaction(connection)
                .map_err(|error| E::from(error.into()))?;
            Ok(value)
        }
        Err(error) => {
            // The work's error is what the caller needs; a failed rollback is
            // logged and the connection is marked broken by diesel.
            if let Err(rollback) =
                <DbConnection as Connection>::TransactionManager::rollback_transaction(connection)
            {
                tracing::error!(%rollback, "rollback failed");
            }
            Err(error)
        }
    }
}

/// Applies pending migrations on one connection.
fn migrate(connection: &mut DbConnection, statement_timeout_ms: u128) -> Result<(), String> {
    // PostgreSQL-only: several server processes may start at once on one
    // database; a session advisory lock lets exactly one migrate at a time.
    const MIGRATION_LOCK_KEY: i64 = 0x6c65_6577_6179;
    // Waiting for another process's migration, or a long migration itself,
    // may take longer than a request's statement timeout: lifted here, put
    // back after.
    let is_postgres = matches!(connection, DbConnection::Postgres(_));
    if is_postgres {
        connection
            .batch_execute(&format!(
                "SET statement_timeout = 0; SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"
            ))
            .map_err(|error| error.to_string())?;
    }
    let outcome = connection
        .run_pending_migrations(MIGRATIONS)
        .map(|_| ())
        .and_then(|()| Ok(install_append_only_guards(connection)?))
        .and_then(|()| Ok(audit::install(connection)?))
        .map_err(|error| error.to_string());
    if is_postgres {
        connection
            .batch_execute(&format!(
                "SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY}); \
                 SET statement_timeout = {statement_timeout_ms}"
            ))
            .map_err(|error| error.to_string())?;
    }
    outcome
}

/// Tables whose rows are never changed or removed once written: the audit
/// trail, the policy versions, spends' review histories, problems' limit
/// versions and the sealed audit checkpoints.
pub const APPEND_ONLY_TABLES: [&str; 5] = [
    "events",
    "policies",
    "spend_review_steps",
    "problem_limit_changes",
    "audit_checkpoints",
];

/// Makes the database itself refuse UPDATE and DELETE on the append-only
/// tables, so not even a hand-typed statement rewrites history. Trigger
/// syntax differs between the two databases (PL/pgSQL versus SQLite's
/// RAISE), which is why this lives here and not in the portable migrations;
/// both forms are idempotent and run after every migration.
fn install_append_only_guards(connection: &mut DbConnection) -> diesel::QueryResult<()> {
    let mut statements = Vec::new();
    match connection {
        DbConnection::Postgres(_) => {
            statements.push(
                "CREATE OR REPLACE FUNCTION leeway_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'the % table is append-only: % is refused', TG_TABLE_NAME, TG_OP; END $$"
                    .to_owned(),
            );
            for table in APPEND_ONLY_TABLES {
                statements.push(format!(
                    "DROP TRIGGER IF EXISTS {table}_append_only ON {table}; \
                     CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION leeway_refuse_change(); \
                     DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}; \
                     CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} \
                     FOR EACH STATEMENT EXECUTE FUNCTION leeway_refuse_change()"
                ));
            }
        }
        DbConnection::Sqlite(_) => {
            for table in APPEND_ONLY_TABLES {
                for operation in ["UPDATE", "DELETE"] {
                    let name = format!("{table}_no_{}", operation.to_lowercase());
                    statements.push(format!(
                        "CREATE TRIGGER IF NOT EXISTS {name} BEFORE {operation} ON {table} \
                         BEGIN SELECT RAISE(ABORT, 'the {table} table is append-only: {operation} is refused'); END"
                    ));
                }
            }
        }
    }
    statements
        .iter()
        .try_for_each(|statement| connection.batch_execute(statement))
}

/// A new UUIDv7 id as a string: time-ordered, so ids sort by creation.
#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Whether a diesel error is a unique-constraint violation.
#[must_use]
pub fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Whether the database answers a trivial query, for `/readyz`.
pub async fn is_ready(db: &Db) -> bool {
    db.read(|connection| connection.ping().map_err(Error::from))
        .await
        .is_ok()
}

/// A page of a list, by default one ordered by id (ids are UUIDv7, so
/// this is creation order); `C` is the kind of cursor the list reads.
#[derive(Debug, Clone)]
pub struct PageRequest<C = IdCursor> {
    /// Rows wanted; the API layer bounds it.
    pub limit: i64,
    /// Only rows whose sort key comes after this one.
    pub after: Option<C>,
}

/// One page of rows and the cursor to continue after, if more rows follow.
#[derive(Debug)]
pub struct Page<T, C = IdCursor> {
    /// The rows.
    pub items: Vec<T>,
    /// The last row's sort key when another page exists.
    pub next_after: Option<C>,
}

impl<T, C> Page<T, C> {
    /// Turns `limit + 1` fetched rows into a page: the extra row only tells
    /// that another page exists. A last row whose key is no cursor is a
    /// stored value the list's order cannot continue from: a bug, not input.
    pub fn from_rows(
        mut rows: Vec<T>,
        request: &PageRequest<C>,
        cursor_of: impl Fn(&T) -> Result<C, MalformedCursor>,
    ) -> Result<Self, Error> {
        let limit = usize::try_from(request.limit).unwrap_or(0);
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next_after = if has_more {
            rows.last()
                .map(cursor_of)
                .transpose()
                .map_err(|_| Error::Internal("a stored sort key is no cursor".to_owned()))?
        } else {
            None
        };
        Ok(Self {
            items: rows,
            next_after,
        })
    }

    /// Converts every row, keeping the cursor.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U, C> {
        Page {
            items: self.items.into_iter().map(convert).collect(),
            next_after: self.next_after,
        }
    }
}
