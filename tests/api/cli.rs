//! The `leeway` command line: `token`, `bootstrap`, `migrate`, and the
//! generated signing secret shared by `serve` and `token`.

use std::process::{Command, Output};

fn leeway(data_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leeway"))
        .args(args)
        .env("LEEWAY_DATA_DIR", data_dir)
        .env_remove("LEEWAY_DATABASE_URL")
        .env_remove("LEEWAY_JWT_SECRET")
        .env("LEEWAY_LOG", "warn")
        .output()
        .unwrap()
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
fn bootstrap_creates_the_first_admin_once() {
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
    let again = leeway(
        dir.path(),
        &["bootstrap", "--subject", "ada", "--name", "Ada Again"],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let migrate = leeway(dir.path(), &["migrate"]);
    assert!(migrate.status.success());
}

#[test]
fn a_mistyped_database_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_leeway"))
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
