//! The `leeway` binary: parses the command line and calls into the library.

use std::fmt::Write as _;
use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use leeway::app;
use leeway::config::{
    Cli, Command, Config, DatabaseSettings, Launcher, PASSWORD_PLACEHOLDER, TOKEN_TTL_SECS_DEFAULT,
    shell_word,
};
use leeway::db::{DatabaseUrl, Db};
use leeway::error::ApiError;
use leeway::service::organisation::{self, Bootstrap};
use leeway::service::{self, Refusal};
use leeway::shutdown;
use leeway::state::AppState;
use leeway::tokens::Tokens;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LEEWAY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cli { settings, command } = Cli::parse();
    let outcome = match command.unwrap_or_else(|| Command::Serve(Box::new(settings))) {
        Command::Serve(settings) => Config::resolve(&settings).and_then(|config| {
            let (flags, password_hidden) = settings.database.flags();
            let first_run = FirstRun {
                launcher: Launcher::detect(),
                database_flags: flags,
                password_hidden,
                token_flags: settings.database.data_dir.flags(),
                secret_configured: settings.signing.jwt_secret.is_some(),
            };
            serve(&config, &first_run)
        }),
        Command::Migrate(database) => database
            .database()
            .and_then(|url| Db::new(&url))
            .and_then(|db| db.migrate())
            .map(|()| eprintln!("migrations applied")),
        Command::Token {
            subject,
            ttl_secs,
            data_dir,
            signing,
        } => signing
            .jwt_config(&data_dir.data_dir)
            .and_then(|jwt| Tokens::new(&jwt).issue(&subject, ttl_secs))
            .map(|token| println!("{token}")),
        Command::Verify(database) => verify(&database),
        Command::Bootstrap {
            subject,
            name,
            email,
            another,
            database,
        } => bootstrap(&database, subject, name, email, another),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("leeway: {message}");
            ExitCode::FAILURE
        }
    }
}

fn describe(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Postgres(_) => "PostgreSQL".to_owned(),
        DatabaseUrl::Sqlite(path) => format!("SQLite at {path}"),
    }
}

/// What the first-run hint needs to know beyond the server's [`Config`]:
/// how this process was started and the settings that point another
/// command at the same database and signing key.
struct FirstRun {
    launcher: Launcher,
    /// [`DatabaseSettings::flags`].
    database_flags: String,
    /// Whether `database_flags` hides a password.
    password_hidden: bool,
    /// The flags `leeway token` needs to find the signing secret.
    token_flags: String,
    /// Whether the secret is configured (`LEEWAY_JWT_SECRET`), not generated.
    secret_configured: bool,
}

impl FirstRun {
    /// The steps from an empty database to a first answer from `address`,
    /// spelled for this process's settings and the way it was started.
    fn hint(&self, address: &str) -> String {
        let bootstrap = self.launcher.command(&format!(
            "bootstrap{} --subject admin --name {}",
            self.database_flags,
            shell_word("Ada Admin")
        ));
        let mut hint = format!(
            "This database has no admin yet. Create the first one, get a token (valid {} minutes) and call the API:\n  \
             {bootstrap}\n  \
             TOKEN=$({})\n  \
             curl -H \"Authorization: Bearer $TOKEN\" http://{address}/v1/me\n",
            TOKEN_TTL_SECS_DEFAULT / 60,
            self.token_command("admin"),
        );
        if self.password_hidden {
            let _ = writeln!(
                hint,
                "(Put the database password in place of {PASSWORD_PLACEHOLDER}.)"
            );
        }
        hint
    }

    /// The command that prints a token for `subject` signed as this server verifies.
    fn token_command(&self, subject: &str) -> String {
        token_command(
            &self.launcher,
            &self.token_flags,
            self.secret_configured,
            subject,
        )
    }
}

/// `leeway token` for `subject`, run the way this process was, with the
/// flags that find the same signing secret (a configured secret must be in
/// the environment of that command too: it is never printed).
fn token_command(
    launcher: &Launcher,
    flags: &str,
    secret_configured: bool,
    subject: &str,
) -> String {
    let command = launcher.command(&format!("token{flags} --subject {}", shell_word(subject)));
    if secret_configured {
        format!("{command}  # with the server's LEEWAY_JWT_SECRET set")
    } else {
        command
    }
}

/// `leeway serve`. The first-run hint is printed only while the database
/// has no admin (see `organisation::has_admin`): that is when following it
/// is the way in, and once an admin exists it would only mislead.
fn serve(config: &Config, first_run: &FirstRun) -> Result<(), String> {
    let state = AppState::new(config)?;
    state.db.migrate()?;
    let has_admin = state
        .db
        .read_blocking(organisation::has_admin)
        .map_err(|error| ApiError::from(error).to_string())?;
    let listener = TcpListener::bind(&config.bind)
        .map_err(|error| format!("cannot listen on {}: {error}", config.bind))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let metrics_listener = config
        .metrics_bind
        .as_ref()
        .map(|bind| {
            TcpListener::bind(bind).map_err(|error| format!("cannot listen on {bind}: {error}"))
        })
        .transpose()?;
    let mut banner = format!(
        "Leeway listening on http://{address} ({})\n",
        describe(&config.database)
    );
    if !has_admin {
        banner.push_str(&first_run.hint(&address.to_string()));
    }
    // A server must keep serving when nobody reads its stdout any more, so a
    // failed write of the banner is not fatal (println! would panic).
    if std::io::stdout()
        .write_all(banner.as_bytes())
        .and_then(|()| std::io::stdout().flush())
        .is_err()
    {
        tracing::warn!("could not write the start-up banner to stdout");
    }
    let workers = config.workers;
    let connections = state.connections.clone();
    actix_web::rt::System::new()
        .block_on(async move {
            let server = app::serve(state, listener, workers)?;
            actix_web::rt::spawn(shutdown::stop_on_signal(server.handle(), connections));
            let metrics_server = metrics_listener.map(app::serve_metrics).transpose()?;
            let metrics_handle = metrics_server.as_ref().map(actix_web::dev::Server::handle);
            if let Some(metrics_server) = metrics_server {
                actix_web::rt::spawn(metrics_server);
            }
            let outcome = server.await;
            // The metrics listener lives as long as the API it reports on.
            if let Some(handle) = metrics_handle {
                handle.stop(false).await;
            }
            outcome
        })
        .map_err(|error| error.to_string())
}

/// `leeway verify`: prints the report as JSON on stdout; on a clean run
/// seals a checkpoint and prints it too.
fn verify(database: &DatabaseSettings) -> Result<(), String> {
    let db = Db::new(&database.database()?)?;
    db.migrate()?;
    let report = db
        .read_blocking(leeway::service::audit::run_verification)
        .map_err(|error| error.to_string())?;
    let text = serde_json::to_string_pretty(&report).map_err(|error| error.to_string())?;
    println!("{text}");
    if let Some(broken) = &report.broken {
        let text = serde_json::to_string(broken).map_err(|error| error.to_string())?;
        return Err(format!("the audit chain is broken: {text}"));
    }
    let at = leeway::clock::Clock::system().now();
    match db
        .read_blocking(|connection| leeway::db::checkpoints::seal_checkpoint(connection, at))
        .map_err(|error| error.to_string())?
    {
        Some(checkpoint) => eprintln!(
            "sealed checkpoint {} at as_of {}: {} (keep this hash outside the database)",
            checkpoint.number, checkpoint.as_of, checkpoint.hash
        ),
        None => eprintln!("no new events since the last checkpoint"),
    }
    Ok(())
}

/// `leeway bootstrap`: creates an admin, refusing (non-zero exit) when the
/// database already has one unless `another` is asked for; on success says
/// how to get a token, spelled the way this process was started.
fn bootstrap(
    database: &DatabaseSettings,
    subject: String,
    name: String,
    email: Option<String>,
    another: bool,
) -> Result<(), String> {
    let db = Db::new(&database.database()?)?;
    db.migrate()?;
    let shown_subject = subject.clone();
    let created = db.write_blocking(|connection| {
        organisation::bootstrap_admin(
            connection,
            subject,
            name,
            email,
            another,
            leeway::clock::Clock::system().now(),
        )
    });
    match created {
        Ok(Bootstrap::Created(person)) => {
            let secret_configured = std::env::var_os("LEEWAY_JWT_SECRET").is_some();
            let token = token_command(
                &Launcher::detect(),
                &database.data_dir.flags(),
                secret_configured,
                &shown_subject,
            );
            println!(
                "created admin {} (subject {shown_subject:?}); get a token (valid {} minutes) with:\n  {token}",
                person.id,
                TOKEN_TTL_SECS_DEFAULT / 60
            );
            Ok(())
        }
        Ok(Bootstrap::AdminsExist(admins)) => Err(format!(
            "this database already has {admins} admin(s); nothing was changed. \
             To add one more admin, run bootstrap again with --another \
             (or, as an admin, POST /v1/people with \"role\": \"admin\")"
        )),
        Err(service::Error::Refused(Refusal::Conflict(_))) => Err(format!(
            "a person with subject {shown_subject:?} already exists; nothing was changed"
        )),
        Err(error) => Err(ApiError::from(error).to_string()),
    }
}
