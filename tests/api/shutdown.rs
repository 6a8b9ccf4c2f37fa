//! Graceful shutdown of the real `leeway` binary: on SIGTERM it stops
//! accepting, finishes the requests in flight, and exits 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::raw_response;

/// Longest the test waits for the server to exit after SIGTERM: the
/// server's own bound (`SHUTDOWN_TIMEOUT_SECS`) plus a margin.
const EXIT_WAIT: Duration = Duration::from_secs(leeway::shutdown::SHUTDOWN_TIMEOUT_SECS + 10);

fn leeway(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leeway"));
    command
        .env("LEEWAY_DATA_DIR", data_dir)
        .env_remove("LEEWAY_DATABASE_URL")
        .env_remove("LEEWAY_JWT_SECRET")
        .env("LEEWAY_LOG", "warn");
    command
}

/// Starts `leeway serve` on a free port and returns it with its address.
fn serve(data_dir: &Path) -> (Child, String) {
    let mut child = leeway(data_dir)
        .env("LEEWAY_BIND", "127.0.0.1:0")
        .env("LEEWAY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data_dir.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let address = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {banner:?}"))
        .to_owned();
    (child, address)
}

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + EXIT_WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(unix)]
#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = leeway(dir.path())
        .args(["bootstrap", "--subject", "ada", "--name", "Ada Admin"])
        .output()
        .unwrap();
    assert!(bootstrap.status.success(), "{bootstrap:?}");
    let token = leeway(dir.path())
        .args(["token", "--subject", "ada"])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap();
    let (mut child, address) = serve(dir.path());

    // The connection is first seen served (so the server accepts by now),
    // then carries a request in flight: its head and half its body are
    // sent, the rest only after SIGTERM.
    let mut stream = TcpStream::connect(&address).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: leeway\r\n\r\n")
        .unwrap();
    let served = raw_response(&mut stream, Duration::from_secs(10)).unwrap();
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    let body = r#"{"name": "Sent across a shutdown"}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let head = format!(
        "POST /v1/teams HTTP/1.1\r\nHost: leeway\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        token.trim(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first_half.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(500));

    // No new connection is served any more...
    let refused = TcpStream::connect(&address).and_then(|mut late| {
        late.set_read_timeout(Some(Duration::from_secs(2)))?;
        late.write_all(b"GET /healthz HTTP/1.1\r\nHost: leeway\r\n\r\n")?;
        let mut answer = [0_u8; 1];
        late.read(&mut answer)
    });
    assert!(
        matches!(refused, Err(_) | Ok(0)),
        "a connection after SIGTERM was served: {refused:?}"
    );

    // ...but the one in flight completes.
    stream.write_all(second_half.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "{response:?}\nserver log:\n{}",
        log()
    );
    assert!(response.contains("Sent across a shutdown"), "{response}");

    let status = wait_for_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}
