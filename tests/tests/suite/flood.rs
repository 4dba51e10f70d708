//! A flood of connections that never greet: each holds one of the server's
//! files. A real client is still served, and the server says when it is at
//! its limit of open files.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tests::{Program, Signal, WAIT, free_port};

/// Starts `reqrep_server` on `port` under the limits of open files that
/// `ulimit` sets (`-Sn 1024`: the usual default; `-n 64`: soft and hard).
fn server_under(ulimit: &str, port: &str) -> Program {
    let mut command = Command::new("sh");
    command.args([
        "-c",
        &format!(r#"ulimit {ulimit} && exec "$0" "$@""#),
        tests::binary("reqrep_server").to_str().unwrap(),
        port,
        "--bind",
        "127.0.0.1",
        "--delay",
        "0s",
    ]);
    let mut server = Program::start_command("reqrep_server", &mut command);
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(Instant::now() < deadline, "{}", server.transcript());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.is_running());
    server
}

/// `count` connections to `port` that never send a byte.
fn silent_connections(port: &str, count: usize) -> Vec<TcpStream> {
    let port: u16 = port.parse().unwrap();
    (0..count)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect()
}

/// A REQ client asks once; true if answered within `within`.
fn answered_within(port: &str, within: Duration) -> bool {
    let client = tests::connected(zmq::REQ, port);
    client.set_rcvtimeo(within.as_millis() as i32).unwrap();
    client.send("Hello", 0).unwrap();
    client.recv_bytes(0).is_ok()
}

#[test]
fn a_client_is_served_within_2_s_while_1100_silent_connections_are_open() {
    // This test opens 1100 connections of its own: it needs the files.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if hard < 4096 {
        eprintln!(
            "SKIPPED a_client_is_served...: the hard limit of open files is {hard}, under 4096"
        );
        return;
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    let port = free_port().to_string();
    // Started with the usual soft limit, 1024: a server that keeps it
    // cannot accept the client behind the 1100.
    let server = server_under("-Sn 1024", &port);
    let silent = silent_connections(&port, 1100);
    assert_eq!(silent.len(), 1100);
    assert!(
        answered_within(&port, Duration::from_secs(2)),
        "{}",
        server.transcript()
    );
    server.stop(Signal::SIGTERM, WAIT);
}

#[test]
fn a_server_at_its_limit_of_open_files_says_so_and_serves_again() {
    let port = free_port().to_string();
    let mut server = server_under("-n 64", &port);
    let silent = silent_connections(&port, 100);
    server.wait_for_stderr("reqrep_server: at its limit of 64 open files", WAIT);
    // Those that never greet are dropped after the handshake timeout: the
    // client gets in then.
    assert!(answered_within(&port, WAIT), "{}", server.transcript());
    drop(silent);
    server.stop(Signal::SIGTERM, WAIT);
}
