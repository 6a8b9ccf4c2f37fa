//! Mail to the people who must act, received by a real SMTP server on
//! loopback (`aiosmtpd` from PyPI, which `.ci/run` installs; in CI a
//! missing one fails these tests). Who gets what, the links, `notify`
//! (immediate, daily digest, off), delegates, escalation, and a mail server
//! that is down when the mail is due.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{TimeDelta, Timelike};
use leeway::config::{Config, Mail};
use serde_json::{Value, json};

use crate::helpers::{ADMIN, Backend, TestApp};

/// The interpreter with `aiosmtpd` installed (`.ci/run` sets it).
const PYTHON_VARIABLE: &str = "LEEWAY_AIOSMTPD_PYTHON";
/// How long a test waits for mail.
const MAIL_WAIT: Duration = Duration::from_secs(20);
/// Where links in test mails point.
const PUBLIC_URL: &str = "https://leeway.example.com";

/// One received mail.
#[derive(Debug, Clone)]
struct Received {
    to: String,
    subject: String,
    body: String,
}

/// `python -m aiosmtpd` writing every mail into a maildir.
struct SmtpServer {
    child: Child,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var(PYTHON_VARIABLE).unwrap_or_else(|_| "python3".to_owned())
}

/// Whether aiosmtpd can run here. In CI it must: a missing one fails.
fn aiosmtpd_available() -> bool {
    let found = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "aiosmtpd is missing: .ci/run installs it and sets {PYTHON_VARIABLE}"
    );
    if !found {
        eprintln!(
            "SKIPPED: aiosmtpd is not installed (pip install aiosmtpd, and set {PYTHON_VARIABLE} to that python)"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            maildir,
            _dir: dir,
        }
    }

    fn received(&self) -> Vec<Received> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
        files.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
        files
            .iter()
            .map(|path| parse(&std::fs::read_to_string(path).unwrap()))
            .collect()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + MAIL_WAIT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited for {count} mails, got {}: {received:#?}",
                received.len()
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Headers and body of a plain text mail (quoted-printable or 7bit).
fn parse(raw: &str) -> Received {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_default()
            .to_owned()
    };
    let body = if header("Content-Transfer-Encoding") == "quoted-printable" {
        body.replace("=\n", "").replace("=3D", "=")
    } else {
        body.to_owned()
    };
    Received {
        to: header("To"),
        subject: header("Subject"),
        body,
    }
}

/// Mail through the server on `port`, digests from two hours on (UTC), so
/// a test decides when the day's digest is due by moving the clock (one
/// hour on would let the wall clock cross it during a test that starts at
/// the end of an hour).
fn mail_to(port: u16) -> impl FnOnce(&mut Config) {
    move |config: &mut Config| {
        config.mail = Mail {
            smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
            from: "Leeway <leeway@example.com>".to_owned(),
            public_url: PUBLIC_URL.to_owned(),
            digest_hour_utc: (chrono::Utc::now().hour() + 2) % 24,
            poll_interval: Duration::from_millis(50),
        };
    }
}

async fn set_email(app: &TestApp, person_id: &str, email: &str) {
    let response = app
        .patch(
            ADMIN,
            &format!("/v1/people/{person_id}"),
            &json!({"email": email}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
}

fn to(mails: &[Received], address: &str) -> Vec<Received> {
    mails
        .iter()
        .filter(|mail| mail.to.contains(address))
        .cloned()
        .collect()
}

async fn the_right_people_are_mailed(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let smtp = SmtpServer::start(port);
    let app = TestApp::spawn_with(backend, mail_to(port));
    let org = app.org().await;
    let admin_id = app.get(ADMIN, "/v1/me").await.id();
    for (id, address) in [
        (&org.mia, "mia@example.com"),
        (&org.sam, "sam@example.com"),
        (&admin_id, "admin@example.com"),
    ] {
        set_email(&app, id, address).await;
    }
    let problem = app.open_problem("sam", "Printer").await;
    let flagged = app.spend("sam", &problem, "500.00").await;
    assert_eq!(flagged.body["status"], "pending_review");
    let spend_id = flagged.id();
    // Mia reviews it; both hear that 80% and 100% of the limit were reached.
    let mails = smtp.wait_for(5).await;
    let mia = to(&mails, "mia@example.com");
    let review = mia
        .iter()
        .find(|mail| mail.subject.starts_with("Review needed"))
        .unwrap_or_else(|| panic!("{mia:#?}"));
    assert!(review.subject.contains("500.00 USD"), "{review:?}");
    assert!(
        review
            .body
            .contains(&format!("{PUBLIC_URL}/v1/spends/{spend_id}")),
        "{review:?}"
    );
    assert!(review.body.contains("Printer") && review.body.contains("Overrun: 100.00 USD"));
    let alerts: Vec<&Received> = mails
        .iter()
        .filter(|mail| mail.subject.starts_with("Budget alert"))
        .collect();
    assert_eq!(
        alerts.len(),
        4,
        "owner and manager, at 80% and 100%: {mails:#?}"
    );
    assert!(alerts.iter().all(|mail| {
        mail.body
            .contains(&format!("{PUBLIC_URL}/v1/problems/{problem}"))
    }));
    assert_eq!(
        to(&mails, "sam@example.com").len(),
        2,
        "sam is not the reviewer"
    );

    // The decision goes to whoever logged the spend.
    let decided = app
        .post(
            "mia",
            &format!("/v1/spends/{spend_id}/review"),
            &json!({"decision": "reject", "note": "Too much"}),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);
    let mails = smtp.wait_for(6).await;
    let rejected = to(&mails, "sam@example.com").pop().unwrap();
    assert!(
        rejected.subject.starts_with("Your spend was rejected"),
        "{rejected:?}"
    );
    assert!(rejected.body.contains("Note: Too much"));

    // A review left past its SLA moves up, and the next reviewer hears of it.
    let overdue = app.spend("sam", &problem, "450.00").await.id();
    smtp.wait_for(7).await;
    app.clock.advance(TimeDelta::hours(25));
    let mails = smtp.wait_for(8).await;
    let escalated = to(&mails, "admin@example.com").pop().unwrap();
    assert!(
        escalated.subject.starts_with("Escalated to you"),
        "{escalated:?}"
    );
    assert!(escalated.body.contains(&overdue));
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 8, "each mail once");
}

async fn notify_is_each_persons_choice(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let smtp = SmtpServer::start(port);
    let app = TestApp::spawn_with(backend, mail_to(port));
    let org = app.org().await;
    set_email(&app, &org.mia, "mia@example.com").await;
    set_email(&app, &org.sam, "sam@example.com").await;
    let max = app.get("max", "/v1/me").await.id();
    set_email(&app, &max, "max@example.com").await;
    for (subject, notify) in [("sam", "off"), ("mia", "daily_digest")] {
        let response = app
            .patch(subject, "/v1/me", &json!({"notify": notify}))
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.body["notify"], notify);
    }
    app.patch("sam", "/v1/me", &json!({"notify": "weekly"}))
        .await
        .assert_problem(422, "validation_failed");
    app.patch("sam", "/v1/me", &json!({"notify": "off", "role": "admin"}))
        .await
        .assert_problem(422, "validation_failed");
    // Mia hands her queue to Max for a week: he hears of her reviews at once.
    let now = chrono::Utc::now();
    let delegation = app
        .post("mia", "/v1/delegations", &json!({"delegate_id": max, "from": now.to_rfc3339(), "until": (now + chrono::TimeDelta::days(7)).to_rfc3339()}))
        .await;
    assert_eq!(delegation.status, 201, "{}", delegation.body);
    let problem = app.open_problem("sam", "Printer").await;
    let flagged = app.spend("sam", &problem, "500.00").await.id();
    // Max's mail is immediate; Sam chose none; Mia's digest is not due yet.
    smtp.wait_for(1).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(mails[0].to.contains("max@example.com"), "{mails:#?}");
    assert!(mails[0].subject.starts_with("Review needed"));
    assert!(mails[0].body.contains("by delegation"), "{:?}", mails[0]);
    // At the digest hour, one mail lists what waits for Mia; one a day.
    app.clock.advance(TimeDelta::hours(2));
    let mails = smtp.wait_for(2).await;
    let digest = &mails[1];
    assert!(digest.to.contains("mia@example.com"), "{mails:#?}");
    assert!(
        digest.subject.starts_with("Leeway digest: 1 spends"),
        "{digest:?}"
    );
    assert!(
        digest
            .body
            .contains(&format!("{PUBLIC_URL}/v1/spends/{flagged}")),
        "{digest:?}"
    );
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 2, "one digest a day");
    let me = app.get("mia", "/v1/me").await;
    assert_eq!(me.body["notify"], "daily_digest");
    let person: Value = app
        .get(ADMIN, &format!("/v1/people/{}", org.sam))
        .await
        .body;
    assert_eq!(person["notify"], "off");
}

async fn a_mail_server_that_is_down_delays_mail(backend: Backend) {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let app = TestApp::spawn_with(backend, mail_to(port));
    let org = app.org().await;
    set_email(&app, &org.mia, "mia@example.com").await;
    let problem = app.open_problem("sam", "Printer").await;
    let started = std::time::Instant::now();
    let flagged = app.spend("sam", &problem, "500.00").await;
    assert_eq!(flagged.status, 201);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a request never waits for mail"
    );
    // Nothing listens yet: the first sends fail and are kept.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let smtp = SmtpServer::start(port);
    app.clock.advance(TimeDelta::minutes(2));
    let mails = smtp.wait_for(3).await;
    assert!(
        mails
            .iter()
            .any(|mail| mail.subject.starts_with("Review needed")),
        "{mails:#?}"
    );
}

#[actix_web::test]
async fn the_right_people_are_mailed_sqlite() {
    the_right_people_are_mailed(Backend::Sqlite).await;
}

#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn the_right_people_are_mailed_postgres() {
    the_right_people_are_mailed(Backend::Postgres).await;
}

#[actix_web::test]
async fn notify_is_each_persons_choice_sqlite() {
    notify_is_each_persons_choice(Backend::Sqlite).await;
}

#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn notify_is_each_persons_choice_postgres() {
    notify_is_each_persons_choice(Backend::Postgres).await;
}

#[actix_web::test]
async fn a_mail_server_that_is_down_delays_mail_sqlite() {
    a_mail_server_that_is_down_delays_mail(Backend::Sqlite).await;
}

#[actix_web::test]
#[cfg_attr(
    postgres_tests_unconfigured,
    ignore = "set LEEWAY_TEST_DATABASE_URL to run on PostgreSQL"
)]
async fn a_mail_server_that_is_down_delays_mail_postgres() {
    a_mail_server_that_is_down_delays_mail(Backend::Postgres).await;
}
