//! Typed configuration, read once at start-up from flags and `LEEWAY_*`
//! environment variables (a flag wins over its variable). Each command takes
//! only the settings it uses, so `leeway token --help` lists what shapes a
//! token and nothing a server needs. Also here: how this process was started
//! ([`Launcher`]) and the flags that point another command at the same data
//! ([`DatabaseSettings::flags`]), so the commands Leeway suggests can be
//! pasted as printed.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::db::{
    DatabaseUrl, GROUP_COMMIT_UNITS_DEFAULT, GROUP_COMMIT_UNITS_MAX, POOL_CHECKOUT_TIMEOUT,
    POOL_SIZE_MAX, PoolSettings, STATEMENT_TIMEOUT,
};
use crate::rate_limit::{RATE_LIMIT_BURST_DEFAULT, RATE_LIMIT_PER_SECOND_DEFAULT, RateLimit};
use crate::tokens::{
    JWT_LEEWAY_SECS_DEFAULT, JWT_LEEWAY_SECS_MAX, JWT_LIFETIME_MAX_SECS_DEFAULT, JwtConfig,
    PublicKey,
};

/// Most origins that may be configured: a handful of form hosts, not a
/// list of customers.
pub const CORS_ORIGINS_MAX: usize = 32;
/// How long a client may take to send a request body, by default.
pub const BODY_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Shortest HS256 secret accepted, in bytes: RFC 7518 §3.2 asks for a key at
/// least as long as the hash output (256 bits).
pub const JWT_SECRET_LENGTH_MIN: usize = 32;
/// Name of the generated secret file inside the data directory.
pub const JWT_SECRET_FILE_NAME: &str = "jwt-secret";
/// Name of the embedded database file inside the data directory.
pub const SQLITE_FILE_NAME: &str = "leeway.db";
/// Default lifetime of a token printed by `leeway token`: an hour.
pub const TOKEN_TTL_SECS_DEFAULT: u64 = 3_600;
/// Data directory used when none is configured.
pub const DATA_DIR_DEFAULT: &str = "./leeway-data";
/// Stands for the database password in a command Leeway prints: the
/// password itself is never printed.
pub const PASSWORD_PLACEHOLDER: &str = "PASSWORD";
/// Default seconds between two runs of the review SLA escalation task.
pub const ESCALATION_INTERVAL_SECS_DEFAULT: u64 = 60;
/// Address served when none is configured.
pub const BIND_DEFAULT: &str = "127.0.0.1:8080";
/// Open connections each HTTP worker serves at once, by default; past it the
/// worker stops accepting until one closes (new ones wait in the backlog).
pub const CONNECTIONS_PER_WORKER_MAX_DEFAULT: u64 = 1_024;
/// Smallest connection limit accepted: actix-server 2 resumes accepting only
/// once the count drops two below the limit (actix/actix-web#2703), so a
/// limit of 1 would stop a worker accepting for good.
pub const CONNECTIONS_PER_WORKER_MAX_MIN: u64 = 2;
/// Longest body read time an operator may configure, in milliseconds.
pub const BODY_READ_TIMEOUT_MS_MAX: u64 = 120_000;
/// Longest pool checkout timeout an operator may configure, in milliseconds:
/// past a minute the client has long given up.
pub const POOL_CHECKOUT_TIMEOUT_MS_MAX: u64 = 60_000;
/// How often the webhook delivery loop looks for work, by default.
pub const WEBHOOK_POLL_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// Webhook deliveries in flight at once per process, by default.
pub const WEBHOOK_CONCURRENCY_DEFAULT: u64 = 8;
/// How often the mail loop looks for work, by default.
pub const MAIL_POLL_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
/// The hour (UTC) from which each day's digest is sent, by default.
pub const MAIL_DIGEST_HOUR_UTC_DEFAULT: u32 = 8;
/// Longest statement timeout an operator may set, in milliseconds (an hour).
pub const STATEMENT_TIMEOUT_MS_MAX: u64 = 3_600_000;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "leeway",
    version,
    about = "Delegation budget and approval ledger service",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The server's settings, for `leeway` with no command (which serves).
    #[command(flatten)]
    pub settings: Settings,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The data directory: the embedded database and the generated signing
/// secret. Every command reads it.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Directory for the embedded database and the generated signing secret.
    #[arg(long, env = "LEEWAY_DATA_DIR", default_value = DATA_DIR_DEFAULT)]
    pub data_dir: PathBuf,
}

/// Which database a command works on.
#[derive(Debug, Clone, Args)]
pub struct DatabaseSettings {
    /// The data directory.
    #[command(flatten)]
    pub data_dir: DataDir,
    /// `postgres://...` for PostgreSQL; a file path or `sqlite://PATH` for
    /// SQLite. Default: SQLite at DATA_DIR/leeway.db.
    #[arg(long, env = "LEEWAY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// How tokens are signed: what `leeway token` and the server must agree on.
#[derive(Debug, Clone, Args)]
pub struct SigningSettings {
    /// HS256 signing secret (at least 32 bytes). Default: a random secret
    /// generated once at DATA_DIR/jwt-secret.
    #[arg(long, env = "LEEWAY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Required `iss` claim, when set.
    #[arg(long, env = "LEEWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, when set.
    #[arg(long, env = "LEEWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Longest token lifetime accepted, in seconds.
    #[arg(
        long,
        env = "LEEWAY_JWT_LIFETIME_MAX_SECS",
        default_value_t = JWT_LIFETIME_MAX_SECS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub jwt_lifetime_max_secs: u64,
}

/// The server's settings (`leeway serve`, or `leeway` alone).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "LEEWAY_BIND", default_value = BIND_DEFAULT)]
    pub bind: String,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// How tokens are signed.
    #[command(flatten)]
    pub signing: SigningSettings,
    /// PEM file holding one RSA or P-256 public key of an identity
    /// provider: tokens signed with it (RS256 or ES256) are accepted.
    #[arg(long, env = "LEEWAY_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file of an identity provider: RS256 and ES256 tokens are
    /// verified with the key named by their `kid`.
    #[arg(long, env = "LEEWAY_JWT_JWKS_FILE")]
    pub jwt_jwks_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[arg(
        long,
        env = "LEEWAY_JWT_LEEWAY_SECS",
        default_value_t = JWT_LEEWAY_SECS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(0..=JWT_LEEWAY_SECS_MAX)
    )]
    pub jwt_leeway_secs: u64,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "LEEWAY_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds between two runs of the review SLA escalation task.
    #[arg(
        long,
        env = "LEEWAY_ESCALATION_INTERVAL_SECS",
        default_value_t = ESCALATION_INTERVAL_SECS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=86_400)
    )]
    pub escalation_interval_secs: u64,
    /// Limits on what clients may consume.
    #[command(flatten)]
    pub limits: LimitSettings,
    /// Origins of browser-based forms allowed to call the API (CORS),
    /// comma-separated, e.g. `https://forms.example.com`. Default: none.
    #[arg(
        long,
        env = "LEEWAY_CORS_ORIGINS",
        value_delimiter = ',',
        num_args = 0..
    )]
    pub cors_origins: Vec<String>,
    /// Serve `GET /metrics` to anyone, without a token. Off: admins only.
    #[arg(long, env = "LEEWAY_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// A second address that serves only `GET /metrics`, without a token
    /// (for a scraper on a private network). Default: none.
    #[arg(long, env = "LEEWAY_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookSettings,
    /// Mail to people.
    #[command(flatten)]
    pub mail: MailSettings,
}

/// Mail to people, as flags and variables. Off unless an SMTP URL is set.
#[derive(Debug, Clone, Args)]
pub struct MailSettings {
    /// The mail server: `smtp://host:port` (STARTTLS when offered),
    /// `smtps://user:password@host` (TLS), or `smtp://host:port?tls=required`.
    /// Mail is off when unset.
    #[arg(long, env = "LEEWAY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of every mail, e.g. `Leeway <leeway@example.com>`;
    /// required with `LEEWAY_SMTP_URL`.
    #[arg(long, env = "LEEWAY_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// The address people reach Leeway at, for the links in mails, e.g.
    /// `https://leeway.example.com` (default: `http://` + the bind address).
    #[arg(long, env = "LEEWAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The hour (UTC, 0-23) from which each day's digest is sent.
    #[arg(
        long,
        env = "LEEWAY_MAIL_DIGEST_HOUR_UTC",
        default_value_t = MAIL_DIGEST_HOUR_UTC_DEFAULT,
        value_parser = clap::value_parser!(u32).range(0..=23)
    )]
    pub mail_digest_hour_utc: u32,
    /// How often each process looks for mail to queue and send, in milliseconds.
    #[arg(
        long,
        env = "LEEWAY_MAIL_POLL_INTERVAL_MS",
        default_value_t = duration_ms(MAIL_POLL_INTERVAL_DEFAULT),
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    pub mail_poll_interval_ms: u64,
}

/// Mail to people, resolved.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The mail server; `None`: mail is off.
    pub smtp_url: Option<String>,
    /// The sender.
    pub from: String,
    /// Where links in mails point.
    pub public_url: String,
    /// The hour (UTC) from which digests go out.
    pub digest_hour_utc: u32,
    /// How often the mail loop looks for work.
    pub poll_interval: Duration,
}

impl Mail {
    /// Mail off, links to the default bind address.
    #[must_use]
    pub fn off() -> Self {
        Self {
            smtp_url: None,
            from: String::new(),
            public_url: format!("http://{BIND_DEFAULT}"),
            digest_hour_utc: MAIL_DIGEST_HOUR_UTC_DEFAULT,
            poll_interval: MAIL_POLL_INTERVAL_DEFAULT,
        }
    }

    fn from_settings(settings: &MailSettings, bind: &str) -> Result<Self, String> {
        let from = match (&settings.smtp_url, &settings.smtp_from) {
            (Some(_), None) => {
                return Err("LEEWAY_SMTP_FROM is required with LEEWAY_SMTP_URL".to_owned());
            }
            (_, from) => from.clone().unwrap_or_default(),
        };
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            smtp_url: settings.smtp_url.clone(),
            from,
            public_url,
            digest_hour_utc: settings.mail_digest_hour_utc,
            poll_interval: Duration::from_millis(settings.mail_poll_interval_ms),
        })
    }
}

/// Webhook deliveries, as flags and variables.
#[derive(Debug, Clone, Args)]
pub struct WebhookSettings {
    /// Allow webhook URLs on `http` and on loopback, private, link-local and
    /// metadata addresses. For development and tests only: in production it
    /// lets an admin's webhook reach inside the network Leeway runs in.
    #[arg(long, env = "LEEWAY_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
    /// How often each process looks for webhook deliveries due, in milliseconds.
    #[arg(
        long,
        env = "LEEWAY_WEBHOOK_POLL_INTERVAL_MS",
        default_value_t = duration_ms(WEBHOOK_POLL_INTERVAL_DEFAULT),
        value_parser = clap::value_parser!(u64).range(10..=60_000)
    )]
    pub webhook_poll_interval_ms: u64,
    /// Webhook deliveries in flight at once per process.
    #[arg(
        long,
        env = "LEEWAY_WEBHOOK_CONCURRENCY",
        default_value_t = WEBHOOK_CONCURRENCY_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=256)
    )]
    pub webhook_concurrency: u64,
}

/// Webhook deliveries, resolved.
#[derive(Debug, Clone)]
pub struct Webhooks {
    /// Whether `http` and private destinations are allowed (development).
    pub allow_private: bool,
    /// How often the delivery loop looks for work.
    pub poll_interval: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            allow_private: false,
            poll_interval: WEBHOOK_POLL_INTERVAL_DEFAULT,
            concurrency: concurrency(WEBHOOK_CONCURRENCY_DEFAULT),
        }
    }
}

impl Webhooks {
    fn from_settings(settings: &WebhookSettings) -> Self {
        Self {
            allow_private: settings.webhook_allow_private,
            poll_interval: Duration::from_millis(settings.webhook_poll_interval_ms),
            concurrency: concurrency(settings.webhook_concurrency),
        }
    }
}

/// A concurrency setting (at most 256) as a count.
fn concurrency(setting: u64) -> usize {
    usize::try_from(setting).unwrap_or(1)
}

/// Limits on what clients may consume, as flags and variables.
#[derive(Debug, Clone, Args)]
pub struct LimitSettings {
    /// Time a client may take to send a request body, in milliseconds.
    #[arg(
        long,
        env = "LEEWAY_BODY_READ_TIMEOUT_MS",
        default_value_t = duration_ms(BODY_READ_TIMEOUT_DEFAULT),
        value_parser = clap::value_parser!(u64).range(1..=BODY_READ_TIMEOUT_MS_MAX)
    )]
    pub body_read_timeout_ms: u64,
    /// Open connections served at once per HTTP worker (at least 2).
    #[arg(
        long,
        env = "LEEWAY_MAX_CONNECTIONS",
        default_value_t = CONNECTIONS_PER_WORKER_MAX_DEFAULT,
        value_parser = clap::value_parser!(u64).range(CONNECTIONS_PER_WORKER_MAX_MIN..)
    )]
    pub max_connections: u64,
    /// Database connections pooled per process (default: 10 on PostgreSQL, 8 on SQLite).
    #[arg(
        long,
        env = "LEEWAY_DB_POOL_SIZE",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(POOL_SIZE_MAX))
    )]
    pub db_pool_size: Option<u32>,
    /// How long a request waits for a pooled connection before answering 503, in milliseconds.
    #[arg(
        long,
        env = "LEEWAY_DB_POOL_TIMEOUT_MS",
        default_value_t = duration_ms(POOL_CHECKOUT_TIMEOUT),
        value_parser = clap::value_parser!(u64).range(1..=POOL_CHECKOUT_TIMEOUT_MS_MAX)
    )]
    pub db_pool_timeout_ms: u64,
    /// Longest one database statement may run or wait for a lock before its
    /// request answers 503, in milliseconds (PostgreSQL's statement_timeout,
    /// SQLite's busy_timeout).
    #[arg(
        long,
        env = "LEEWAY_DB_STATEMENT_TIMEOUT_MS",
        default_value_t = duration_ms(STATEMENT_TIMEOUT),
        value_parser = clap::value_parser!(u64).range(1..=STATEMENT_TIMEOUT_MS_MAX)
    )]
    pub db_statement_timeout_ms: u64,
    /// Most write units the SQLite writer commits in one transaction (group
    /// commit); 1 commits every unit alone. PostgreSQL ignores it.
    #[arg(
        long,
        env = "LEEWAY_GROUP_COMMIT_UNITS_MAX",
        default_value_t = count(GROUP_COMMIT_UNITS_DEFAULT),
        value_parser = clap::value_parser!(u64).range(1..=count(GROUP_COMMIT_UNITS_MAX))
    )]
    pub group_commit_units_max: u64,
    /// PostgreSQL: send this process's writes through one writer connection
    /// that commits the waiting requests together, as on SQLite.
    #[arg(
        long,
        env = "LEEWAY_GROUP_COMMIT_POSTGRES",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub group_commit_postgres: bool,
    /// Sustained requests per second per caller (token subject), per process.
    #[arg(
        long,
        env = "LEEWAY_RATE_LIMIT_PER_SECOND",
        default_value_t = RATE_LIMIT_PER_SECOND_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub rate_limit_per_second: u32,
    /// Requests a caller may send at once before the sustained rate applies.
    #[arg(
        long,
        env = "LEEWAY_RATE_LIMIT_BURST",
        default_value_t = RATE_LIMIT_BURST_DEFAULT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub rate_limit_burst: u32,
}

/// A count as a flag's integer type.
fn count(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// A default duration as whole milliseconds, for a flag's default value.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(Box<Settings>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseSettings),
    /// Print a signed token for a subject on stdout, and nothing else.
    Token {
        /// The `sub` claim: a person's subject.
        #[arg(long)]
        subject: String,
        /// Lifetime in seconds (default: an hour).
        #[arg(long, default_value_t = TOKEN_TTL_SECS_DEFAULT)]
        ttl_secs: u64,
        /// Where the generated signing secret lives.
        #[command(flatten)]
        data_dir: DataDir,
        /// How tokens are signed.
        #[command(flatten)]
        signing: SigningSettings,
    },
    /// Recompute the audit hash chains; print the report and, when every
    /// link holds, seal a checkpoint. Exits non-zero on a broken link.
    Verify(DatabaseSettings),
    /// Create the first admin. Refused when the database already has an
    /// admin, unless `--another` is given.
    Bootstrap {
        /// The admin's JWT subject.
        #[arg(long)]
        subject: String,
        /// The admin's name.
        #[arg(long)]
        name: String,
        /// The admin's email.
        #[arg(long)]
        email: Option<String>,
        /// Add an admin even though the database already has one.
        #[arg(long)]
        another: bool,
        /// The database.
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

/// Limits on what clients may consume, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time a client may take to send a request body.
    pub body_read_timeout: Duration,
    /// Open connections served at once per HTTP worker.
    pub connections_per_worker_max: usize,
    /// Requests each caller may send.
    pub rate_limit: RateLimit,
    /// The database pool.
    pub pool: PoolSettings,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_read_timeout: BODY_READ_TIMEOUT_DEFAULT,
            connections_per_worker_max: usize::try_from(CONNECTIONS_PER_WORKER_MAX_DEFAULT)
                .unwrap_or(usize::MAX),
            rate_limit: RateLimit::default(),
            pool: PoolSettings::default(),
        }
    }
}

impl Limits {
    fn from_settings(settings: &LimitSettings) -> Self {
        Self {
            body_read_timeout: Duration::from_millis(settings.body_read_timeout_ms),
            connections_per_worker_max: usize::try_from(settings.max_connections)
                .unwrap_or(usize::MAX),
            rate_limit: RateLimit {
                per_second: settings.rate_limit_per_second,
                burst: settings.rate_limit_burst,
            },
            pool: PoolSettings {
                size: settings.db_pool_size,
                checkout_timeout: Duration::from_millis(settings.db_pool_timeout_ms),
                statement_timeout: Duration::from_millis(settings.db_statement_timeout_ms),
                group_commit_units_max: usize::try_from(settings.group_commit_units_max)
                    .unwrap_or(GROUP_COMMIT_UNITS_MAX),
                group_commit_postgres: settings.group_commit_postgres,
            },
        }
    }
}

/// Configuration resolved from settings: what every command runs with.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on.
    pub bind: String,
    /// The database.
    pub database: DatabaseUrl,
    /// Token settings.
    pub jwt: JwtConfig,
    /// HTTP worker threads.
    pub workers: Option<usize>,
    /// How often the review SLA escalation task runs.
    pub escalation_interval: Duration,
    /// Limits on what clients may consume.
    pub limits: Limits,
    /// Origins allowed to call the API from a browser; empty: none.
    pub cors_origins: Vec<String>,
    /// Whether `GET /metrics` answers without a token.
    pub metrics_public: bool,
    /// The address of the metrics-only server, if one is wanted.
    pub metrics_bind: Option<String>,
    /// Webhook deliveries.
    pub webhooks: Webhooks,
    /// Mail to people.
    pub mail: Mail,
}

impl Config {
    /// The configuration of a server on `database` verifying tokens with
    /// `jwt`, every other setting at its default.
    #[must_use]
    pub fn new(database: DatabaseUrl, jwt: JwtConfig) -> Self {
        Self {
            bind: BIND_DEFAULT.to_owned(),
            database,
            jwt,
            workers: None,
            escalation_interval: Duration::from_secs(ESCALATION_INTERVAL_SECS_DEFAULT),
            limits: Limits::default(),
            cors_origins: Vec::new(),
            metrics_public: false,
            metrics_bind: None,
            webhooks: Webhooks::default(),
            mail: Mail::off(),
        }
    }

    /// Resolves settings: picks the database, and reads or creates the signing secret.
    pub fn resolve(settings: &Settings) -> Result<Self, String> {
        let database = settings.database.database()?;
        let mut jwt = settings
            .signing
            .jwt_config(&settings.database.data_dir.data_dir)?;
        if let Some(path) = &settings.jwt_public_key_file {
            jwt.public_keys.push(PublicKey::from_pem_file(path)?);
        }
        if let Some(path) = &settings.jwt_jwks_file {
            jwt.public_keys.extend(PublicKey::from_jwks_file(path)?);
        }
        jwt.leeway_secs = settings.jwt_leeway_secs;
        Ok(Self {
            bind: settings.bind.clone(),
            database,
            jwt,
            workers: settings.workers,
            escalation_interval: Duration::from_secs(settings.escalation_interval_secs),
            limits: Limits::from_settings(&settings.limits),
            cors_origins: cors_origins(&settings.cors_origins)?,
            metrics_public: settings.metrics_public,
            metrics_bind: settings.metrics_bind.clone(),
            webhooks: Webhooks::from_settings(&settings.webhooks),
            mail: Mail::from_settings(&settings.mail, &settings.bind)?,
        })
    }
}

impl DatabaseSettings {
    /// The database: the configured URL, or SQLite in the data directory.
    pub fn database(&self) -> Result<DatabaseUrl, String> {
        match &self.database_url {
            Some(url) => DatabaseUrl::parse(url),
            None => Ok(DatabaseUrl::Sqlite(
                self.data_dir
                    .data_dir
                    .join(SQLITE_FILE_NAME)
                    .to_string_lossy()
                    .into_owned(),
            )),
        }
    }

    /// The flags that point another `leeway` command at this database, as
    /// shell words: none when everything is at its default. A password in
    /// the database URL is replaced by [`PASSWORD_PLACEHOLDER`], so a
    /// printed command never shows it; the second value says whether it was.
    #[must_use]
    pub fn flags(&self) -> (String, bool) {
        let mut flags = self.data_dir.flags();
        let mut hidden = false;
        if let Some(url) = &self.database_url {
            let (shown, was_hidden) = without_password(url);
            hidden = was_hidden;
            let _ = write!(flags, " --database-url {}", shell_word(&shown));
        }
        (flags, hidden)
    }
}

impl DataDir {
    /// `--data-dir DIR` as a shell word when the directory is not the
    /// default one, else nothing.
    #[must_use]
    pub fn flags(&self) -> String {
        if self.data_dir == Path::new(DATA_DIR_DEFAULT) {
            String::new()
        } else {
            format!(
                " --data-dir {}",
                shell_word(&self.data_dir.to_string_lossy())
            )
        }
    }
}

impl SigningSettings {
    /// The HS256 signing configuration: the configured secret, or the one
    /// generated under `data_dir`. Identity-provider keys and clock leeway
    /// are the server's own (see [`Config::resolve`]).
    pub fn jwt_config(&self, data_dir: &Path) -> Result<JwtConfig, String> {
        let secret = match &self.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => read_or_create_secret(data_dir)?,
        };
        if secret.len() < JWT_SECRET_LENGTH_MIN {
            return Err(format!(
                "LEEWAY_JWT_SECRET must be at least {JWT_SECRET_LENGTH_MIN} bytes"
            ));
        }
        Ok(JwtConfig {
            issuer: self.jwt_issuer.clone(),
            audience: self.jwt_audience.clone(),
            lifetime_max_secs: self.jwt_lifetime_max_secs,
            ..JwtConfig::from_secret(secret)
        })
    }
}

/// How this process was started, so a command it suggests can be pasted as
/// printed: through Cargo from a checkout, or as a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launcher {
    /// `cargo run` (`--release` when this is an optimised build).
    Cargo {
        /// Whether this binary was built with the release profile.
        release: bool,
    },
    /// The binary, as the user typed it (`leeway`, `./leeway`, a path).
    Binary(String),
}

impl Launcher {
    /// Tells the two apart by the environment: Cargo runs a binary (`cargo
    /// run`, and `cargo test` its tests) with the package's `CARGO_PKG_NAME`
    /// and `CARGO_MANIFEST_DIR` set, as it does for the compiler; a shell
    /// running an installed or copied binary sets neither. The executable's
    /// path is no guide (`CARGO_TARGET_DIR` can put `target/` anywhere, and
    /// a binary may be copied out of it). A binary is named by `argv[0]`,
    /// which is how the user spelled it: `leeway` when it is on PATH.
    #[must_use]
    pub fn detect() -> Self {
        let package = std::env::var("CARGO_PKG_NAME");
        let by_cargo = std::env::var_os("CARGO_MANIFEST_DIR").is_some()
            && package.is_ok_and(|name| name == env!("CARGO_PKG_NAME"));
        if by_cargo {
            return Self::Cargo {
                release: !cfg!(debug_assertions),
            };
        }
        Self::Binary(
            std::env::args()
                .next()
                .unwrap_or_else(|| env!("CARGO_PKG_NAME").to_owned()),
        )
    }

    /// The command that runs `leeway` with `arguments` (already shell words).
    #[must_use]
    pub fn command(&self, arguments: &str) -> String {
        match self {
            Self::Cargo { release: true } => format!("cargo run --release -- {arguments}"),
            Self::Cargo { release: false } => format!("cargo run -- {arguments}"),
            Self::Binary(program) => format!("{} {arguments}", shell_word(program)),
        }
    }
}

/// `text` as one POSIX shell word: as is when it holds only characters no
/// shell treats specially, else single-quoted.
#[must_use]
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// A database URL with its password, if any, replaced by
/// [`PASSWORD_PLACEHOLDER`]; the flag says whether there was one.
fn without_password(url: &str) -> (String, bool) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), false);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), false);
    };
    let Some((user, _password)) = user_info.split_once(':') else {
        return (url.to_owned(), false);
    };
    (
        format!("{scheme}://{user}:{PASSWORD_PLACEHOLDER}@{host}{tail}"),
        true,
    )
}

/// Checks one configured origin: `http` or `https`, a host and an optional
/// port, nothing else (a browser's `Origin` header has no path, query or
/// trailing slash, so such an entry would never match).
pub fn parse_origin(origin: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "{origin:?} is not an origin: write scheme://host[:port], e.g. https://forms.example.com"
        )
    };
    let (scheme, authority) = origin.split_once("://").ok_or_else(refuse)?;
    let valid_authority = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !matches!(scheme, "http" | "https") || !valid_authority {
        return Err(refuse());
    }
    Ok(origin.to_ascii_lowercase())
}

/// Checks the configured CORS origins, skipping empty entries (a trailing comma).
fn cors_origins(origins: &[String]) -> Result<Vec<String>, String> {
    let origins: Vec<String> = origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .map(parse_origin)
        .collect::<Result<_, _>>()
        .map_err(|error| format!("LEEWAY_CORS_ORIGINS: {error}"))?;
    if origins.len() > CORS_ORIGINS_MAX {
        return Err(format!(
            "LEEWAY_CORS_ORIGINS: at most {CORS_ORIGINS_MAX} origins"
        ));
    }
    Ok(origins)
}

/// Reads DATA_DIR/jwt-secret, creating it (mode 0600, 32 random bytes as
/// hex) the first time, so `serve` and `token` agree with no configuration.
fn read_or_create_secret(data_dir: &Path) -> Result<Vec<u8>, String> {
    let path = data_dir.join(JWT_SECRET_FILE_NAME);
    let describe = |error: std::io::Error| format!("{}: {error}", path.display());
    fs::create_dir_all(data_dir).map_err(|error| format!("{}: {error}", data_dir.display()))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            let bytes: [u8; 32] = rand::random();
            let secret = crate::encoding::hex(&bytes);
            file.write_all(secret.as_bytes()).map_err(describe)?;
            file.sync_all().map_err(describe)?;
            Ok(secret.into_bytes())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret = fs::read_to_string(&path).map_err(describe)?;
            Ok(secret.trim().as_bytes().to_vec())
        }
        Err(error) => Err(describe(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("https://Forms.Example.com").unwrap(),
            "https://forms.example.com"
        );
        assert!(parse_origin("http://localhost:3000").is_ok());
        for refused in [
            "*",
            "forms.example.com",
            "https://forms.example.com/",
            "https://forms.example.com/path",
            "ftp://forms.example.com",
            "https://",
            "null",
        ] {
            assert!(parse_origin(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn printed_commands_point_at_the_same_data_without_the_password() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().settings.database;
        assert_eq!(parse(&["leeway"]).flags(), (String::new(), false));
        assert_eq!(
            parse(&["leeway", "--data-dir", "/srv/my data"]).flags().0,
            " --data-dir '/srv/my data'"
        );
        let with_password = parse(&[
            "leeway",
            "--database-url",
            "postgres://app:s3cr:et@db.example:5432/leeway?sslmode=require",
        ]);
        assert_eq!(
            with_password.flags(),
            (
                " --database-url 'postgres://app:PASSWORD@db.example:5432/leeway?sslmode=require'"
                    .to_owned(),
                true
            )
        );
        let trusted = parse(&[
            "leeway",
            "--database-url",
            "postgres://postgres@127.0.0.1/leeway",
        ]);
        assert_eq!(
            trusted.flags(),
            (
                " --database-url postgres://postgres@127.0.0.1/leeway".to_owned(),
                false
            )
        );
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(
            Launcher::Binary("/opt/leeway/bin/leeway".into()).command("token --subject ada"),
            "/opt/leeway/bin/leeway token --subject ada"
        );
        assert_eq!(
            Launcher::Cargo { release: true }.command("token --subject ada"),
            "cargo run --release -- token --subject ada"
        );
    }

    #[test]
    fn each_command_takes_only_its_own_settings() {
        assert!(
            Cli::try_parse_from(["leeway", "token", "--subject", "a", "--bind", "x:1"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["leeway", "token", "--subject", "a", "--database-url", "x"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["leeway", "migrate", "--jwt-secret", "x"]).is_err());
        let token = Cli::try_parse_from(["leeway", "token", "--subject", "a", "--data-dir", "/d"]);
        assert!(matches!(
            token.unwrap().command,
            Some(Command::Token { data_dir, .. }) if data_dir.data_dir == Path::new("/d")
        ));
        let serve = Cli::try_parse_from(["leeway", "serve", "--bind", "127.0.0.1:1"]).unwrap();
        assert!(
            matches!(serve.command, Some(Command::Serve(settings)) if settings.bind == "127.0.0.1:1")
        );
    }

    #[test]
    fn metrics_are_private_unless_made_public() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().settings;
        assert!(!parse(&["leeway"]).metrics_public);
        assert!(parse(&["leeway", "--metrics-public"]).metrics_public);
        let serve = Cli::try_parse_from(["leeway", "serve", "--metrics-public"]).unwrap();
        assert!(matches!(serve.command, Some(Command::Serve(settings)) if settings.metrics_public));
        let settings = parse(&["leeway", "--metrics-bind", "127.0.0.1:9464"]);
        assert_eq!(settings.metrics_bind.as_deref(), Some("127.0.0.1:9464"));
    }
}
