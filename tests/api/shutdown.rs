//! Graceful shutdown of the real `leeway` binary: on SIGTERM it stops
//! accepting, finishes the requests in flight, and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::binary::Leeway;
use crate::helpers::raw_response;

/// Longest the test waits for the server to exit after SIGTERM: the
/// server's own bound (`SHUTDOWN_TIMEOUT_SECS`) plus a margin.
const EXIT_WAIT: Duration = Duration::from_secs(leeway::shutdown::SHUTDOWN_TIMEOUT_SECS + 10);

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
    let cli = Leeway::new(dir.path(), None);
    cli.run(&["bootstrap", "--subject", "ada", "--name", "Ada Admin"]);
    let token = cli.token("ada");
    let mut process = cli.serve(&[]);
    let address = process.address.clone();

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
        token,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first_half.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let kill = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
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
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "{response:?}\nserver log:\n{}",
        cli.log()
    );
    assert!(response.contains("Sent across a shutdown"), "{response}");

    let status = wait_for_exit(&mut process.child);
    assert_eq!(status.code(), Some(0), "{status:?}");
}
