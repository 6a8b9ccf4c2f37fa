//! The `leeway` command line: `token`, `bootstrap`, `migrate`, the
//! generated signing secret shared by `serve` and `token`, and the first-run
//! hint, which must work when followed as printed.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::helpers::PostgresDatabase;

/// Variables Cargo sets for the processes it runs (`cargo run`, and the
/// tests under `cargo test`), by which `leeway` knows it was run by Cargo.
const CARGO_RUN_VARIABLES: [&str; 2] = ["CARGO_PKG_NAME", "CARGO_MANIFEST_DIR"];

/// `leeway` as an installed binary is run: no `LEEWAY_*` settings but the
/// log level, none of the variables Cargo sets.
fn installed() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leeway"));
    command
        .env_remove("LEEWAY_DATA_DIR")
        .env_remove("LEEWAY_DATABASE_URL")
        .env_remove("LEEWAY_JWT_SECRET")
        .env("LEEWAY_LOG", "warn");
    for variable in CARGO_RUN_VARIABLES {
        command.env_remove(variable);
    }
    command
}

fn leeway(data_dir: &Path, args: &[&str]) -> Output {
    installed()
        .args(args)
        .env("LEEWAY_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

/// Runs one line Leeway printed, in a shell with none of the settings of
/// the process that printed it, from `cwd`; returns its stdout.
fn follow(line: &str, cwd: &Path) -> String {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(line).current_dir(cwd);
    for variable in CARGO_RUN_VARIABLES.iter().chain(&[
        "LEEWAY_DATA_DIR",
        "LEEWAY_DATABASE_URL",
        "LEEWAY_JWT_SECRET",
    ]) {
        shell.env_remove(variable);
    }
    let output = shell.output().unwrap();
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn token_prints_exactly_one_jwt_signed_with_a_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let first = leeway(dir.path(), &["token", "--subject", "ada"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let token = stdout.trim();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let secret_path = dir.path().join("jwt-secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret_path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let secret = std::fs::read_to_string(&secret_path).unwrap();
    // The secret is reused: a second run verifies with the same key.
    let second = leeway(
        dir.path(),
        &["token", "--subject", "ada", "--ttl-secs", "60"],
    );
    assert!(second.status.success());
    assert_eq!(std::fs::read_to_string(&secret_path).unwrap(), secret);
    let config = leeway::tokens::JwtConfig::from_secret(secret.trim().as_bytes().to_vec());
    let tokens = leeway::tokens::Tokens::new(&config);
    assert_eq!(tokens.verify(token).unwrap(), "ada");
    assert_eq!(
        tokens
            .verify(String::from_utf8(second.stdout).unwrap().trim())
            .unwrap(),
        "ada"
    );
}

#[test]
fn bootstrap_creates_the_first_admin_once_and_another_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let created = leeway(
        dir.path(),
        &["bootstrap", "--subject", "ada", "--name", "Ada Admin"],
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(dir.path().join("leeway.db").exists());
    for subject in ["ada", "bob"] {
        let again = leeway(
            dir.path(),
            &["bootstrap", "--subject", subject, "--name", "Again"],
        );
        assert!(!again.status.success());
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(
            stderr.contains("already has 1 admin") && stderr.contains("--another"),
            "{stderr}"
        );
        assert!(again.stdout.is_empty());
    }
    // The refused bootstrap of bob changed nothing: asked for, he is created now.
    let another = leeway(
        dir.path(),
        &[
            "bootstrap",
            "--subject",
            "bob",
            "--name",
            "Bob",
            "--another",
        ],
    );
    assert!(
        another.status.success(),
        "{}",
        String::from_utf8_lossy(&another.stderr)
    );
    let taken = leeway(
        dir.path(),
        &[
            "bootstrap",
            "--subject",
            "ada",
            "--name",
            "Ada",
            "--another",
        ],
    );
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already exists"));
    let migrate = leeway(dir.path(), &["migrate"]);
    assert!(migrate.status.success());
}

#[test]
fn bootstrap_says_how_to_get_a_token_the_way_leeway_was_run() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let created = leeway(
        dir.path(),
        &["bootstrap", "--subject", "ada", "--name", "Ada Admin"],
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let hint = stdout.lines().nth(1).unwrap().trim();
    assert_eq!(
        hint,
        format!(
            "{} token --data-dir {data_dir} --subject ada",
            env!("CARGO_BIN_EXE_leeway")
        )
    );
    // Followed as printed, from another directory, it signs with the data
    // directory's secret.
    let token = follow(hint, elsewhere.path());
    let secret = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    let config = leeway::tokens::JwtConfig::from_secret(secret.trim().as_bytes().to_vec());
    assert_eq!(
        leeway::tokens::Tokens::new(&config)
            .verify(token.trim())
            .unwrap(),
        "ada"
    );

    let by_cargo = installed()
        .args([
            "bootstrap",
            "--subject",
            "bea",
            "--name",
            "Bea",
            "--another",
        ])
        .env("LEEWAY_DATA_DIR", dir.path())
        .env("CARGO_PKG_NAME", "leeway")
        .env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(by_cargo.stdout).unwrap();
    let cargo_run = if cfg!(debug_assertions) {
        "cargo run --"
    } else {
        "cargo run --release --"
    };
    assert_eq!(
        stdout.lines().nth(1).unwrap().trim(),
        format!("{cargo_run} token --data-dir {data_dir} --subject bea")
    );
}

#[actix_web::test]
async fn the_first_run_hint_works_as_printed_on_sqlite() {
    first_run_hint_works_as_printed(None).await;
}

#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_first_run_hint_works_as_printed_on_postgres() {
    let database = PostgresDatabase::create();
    first_run_hint_works_as_printed(Some(&database.url)).await;
}

/// Starts `leeway serve` on a fresh database in a data directory that is
/// not the default: the hint must name that database and that directory.
/// Following its lines from another directory, in a shell without the
/// server's settings, gives a token the server accepts. Once an admin
/// exists the hint is not printed again.
async fn first_run_hint_works_as_printed(database_url: Option<&str>) {
    let data_dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let start = || {
        let mut command = installed();
        command
            .arg("serve")
            .env("LEEWAY_DATA_DIR", data_dir.path())
            .env("LEEWAY_BIND", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("LEEWAY_DATABASE_URL", url);
        }
        let mut server = command.spawn().unwrap();
        let stdout = BufReader::new(server.stdout.take().unwrap());
        (server, stdout)
    };
    let (mut server, mut stdout) = start();
    let mut lines = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    let address = lines[0]
        .split("http://")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        lines[1].starts_with("This database has no admin yet"),
        "{lines:?}"
    );
    assert!(lines[2].contains(" bootstrap "), "{lines:?}");
    assert!(lines[3].starts_with("TOKEN=$("), "{lines:?}");
    assert_eq!(
        lines[4],
        format!("curl -H \"Authorization: Bearer $TOKEN\" http://{address}/v1/me")
    );
    let password = database_url.and_then(|url| {
        let user_info = url.split("://").nth(1)?.split('@').next()?;
        Some(user_info.split_once(':')?.1.to_owned())
    });
    let restore = |line: &str| match &password {
        Some(password) => line.replace(":PASSWORD@", &format!(":{password}@")),
        None => line.to_owned(),
    };
    follow(&restore(&lines[2]), elsewhere.path());
    let token = follow(
        &format!("{} && printf %s \"$TOKEN\"", lines[3]),
        elsewhere.path(),
    );
    let me = crate::binary::call(
        &crate::binary::client(),
        reqwest::Method::GET,
        &format!("http://{address}/v1/me"),
        &token,
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body["role"], "admin");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    server.kill().unwrap();
    server.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let password_note = "(Put the database password in place of PASSWORD.)\n";
    assert!(
        rest.is_empty() || (password.is_some() && rest == password_note),
        "{rest:?}"
    );

    let (mut server, mut stdout) = start();
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    assert!(
        banner.starts_with("Leeway listening on http://"),
        "{banner}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the hint is shown only while there is no admin");
}

#[test]
fn a_mistyped_database_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = installed()
        .args(["migrate"])
        .env("LEEWAY_DATA_DIR", dir.path())
        .env("LEEWAY_DATABASE_URL", "postgress://localhost/leeway")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unsupported database URL scheme"));
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "jwt-secret")
            .count(),
        0
    );
}
