//! The `leeway` binary: parses the command line and calls into the library.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use leeway::app;
use leeway::config::{Cli, Command, Config};
use leeway::db::{DatabaseUrl, Db};
use leeway::domain::access::Role;
use leeway::error::ApiError;
use leeway::service::organisation::{self, NewPerson};
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
    let cli = Cli::parse();
    let outcome = Config::resolve(&cli.settings).and_then(|config| {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(&config),
            Command::Migrate => Db::new(&config.database)?
                .migrate()
                .map(|()| eprintln!("migrations applied")),
            Command::Token { subject, ttl_secs } => Tokens::new(&config.jwt)
                .issue(&subject, ttl_secs)
                .map(|token| println!("{token}")),
            Command::Verify => verify(&config),
            Command::Bootstrap {
                subject,
                name,
                email,
            } => bootstrap(&config, subject, name, email),
        }
    });
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

fn serve(config: &Config) -> Result<(), String> {
    let state = AppState::new(config)?;
    state.db.migrate()?;
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
    let banner = format!(
        "Leeway listening on http://{address} ({})\n\
         First run? Create the first admin and get a token:\n  \
         cargo run --release -- bootstrap --subject admin --name \"Ada Admin\"\n  \
         cargo run --release -- token --subject admin\n",
        describe(&config.database)
    );
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
fn verify(config: &Config) -> Result<(), String> {
    let db = Db::new(&config.database)?;
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

fn bootstrap(
    config: &Config,
    subject: String,
    name: String,
    email: Option<String>,
) -> Result<(), String> {
    let db = Db::new(&config.database)?;
    db.migrate()?;
    let shown_subject = subject.clone();
    let created = db.write_blocking(|connection| {
        organisation::add_person(
            connection,
            None,
            NewPerson {
                subject,
                name,
                email,
                team_id: None,
                role: Role::Admin,
            },
            leeway::clock::Clock::system().now(),
        )
    });
    match created {
        Ok(person) => {
            println!(
                "created admin {} (subject {shown_subject:?}); get a token with: leeway token --subject {shown_subject}",
                person.id
            );
            Ok(())
        }
        Err(service::Error::Refused(Refusal::Conflict(_))) => Err(format!(
            "a person with subject {shown_subject:?} already exists; nothing was changed"
        )),
        Err(error) => Err(ApiError::from(error).to_string()),
    }
}
