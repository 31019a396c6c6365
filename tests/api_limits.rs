//! What a client cannot do to gantry's listeners (the API's and the status port's), against the real
//! binary over real sockets: hold a connection open without sending a request, send an endless
//! request head, or open connections without bound.

mod api_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use api_support::{free_port, wait_for_status, Up};

const ONE_JOB: &str = "job \"j\" {\n command = \"/bin/sleep\"\n args = [\"1000\"]\n}\n";

/// gantry's limits (src/api/listen.rs).
const MAX_CONNECTIONS: usize = 128;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads until the peer closes (or `limit` passes); what was read and how long it took.
fn read_until_closed(s: &mut impl Read, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    (got, start.elapsed())
}

/// A connection to the API socket whose reads give up after 200 ms (and are retried).
fn connect(sock: &std::path::Path) -> UnixStream {
    let s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s
}

#[test]
fn a_connection_that_sends_no_request_head_in_time_is_closed() {
    let up = Up::start(ONE_JOB, &[]);
    // Half a request head, then nothing.
    let mut slow = connect(&up.sock);
    slow.write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: g\r\n")
        .expect("write");
    // One answered request, then an idle keep-alive connection.
    let mut idle = connect(&up.sock);
    idle.write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: g\r\n\r\n")
        .expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).expect("an answer");
    assert_eq!(&first, b"HTTP/1.1 200");

    let limit = HEAD_TIMEOUT * 3;
    let (got, took) = read_until_closed(&mut slow, limit);
    assert!(took < limit, "the half-sent request was never closed");
    assert!(
        took >= HEAD_TIMEOUT / 2,
        "closed after {took:?}, before the timeout"
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let (_, took) = read_until_closed(&mut idle, limit);
    assert!(
        took < limit,
        "the idle keep-alive connection was never closed"
    );
    // The API still answers.
    assert_eq!(api_support::curl(&up.sock, "GET", "/v1/jobs").0, 200);
}

#[test]
fn a_request_head_over_the_limit_is_answered_431() {
    let up = Up::start(ONE_JOB, &[]);
    let mut s = connect(&up.sock);
    let mut req = b"GET /v1/jobs HTTP/1.1\r\nHost: g\r\nX-Big: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 64 * 1024));
    req.extend_from_slice(b"\r\n\r\n");
    // gantry may close before it has read everything.
    let _ = s.write_all(&req);
    let (got, _) = read_until_closed(&mut s, Duration::from_secs(20));
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&got[..got.len().min(200)])
    );
    assert_eq!(api_support::curl(&up.sock, "GET", "/v1/jobs").0, 200);
}

#[test]
fn connections_beyond_the_limit_wait_and_are_served_when_one_closes() {
    let port = free_port();
    let port_s = port.to_string();
    let up = Up::start(ONE_JOB, &["-p", &port_s]);
    wait_for_status(port, "/healthz", 200);
    let opened = Instant::now();
    let mut held: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let mut extra = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        .expect("write");
    extra
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let mut buf = [0u8; 12];
    match extra.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "connection {} was served at once: {other:?}",
            MAX_CONNECTIONS + 1
        ),
    }
    // One place frees: the waiting connection is served, long before the idle ones time out.
    drop(held.pop());
    let freed = Instant::now();
    extra
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    extra.read_exact(&mut buf).expect("an answer");
    assert_eq!(&buf, b"HTTP/1.1 200");
    assert!(
        freed.elapsed() < Duration::from_secs(5) && opened.elapsed() < HEAD_TIMEOUT,
        "served {:?} after a place freed, {:?} after the others opened",
        freed.elapsed(),
        opened.elapsed()
    );
    assert!(
        up.stderr_text()
            .contains("status port: 128 connections are open"),
        "{}",
        up.stderr_text()
    );
    drop(held);
}
