//! Only allowed peers get in: `--allow ADDR/PREFIX` on every program that
//! binds, enforced by a ZAP handler (the Guide's Strawhouse). 127.0.0.2
//! stands for another host: a test socket connects from it to 127.0.0.1.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tests::{Program, Signal, WAIT, free_port};

/// A test socket of `kind` connected to `port` on 127.0.0.1 from the
/// address `from` (`127.0.0.2`): a peer on another host.
fn connected_from(kind: zmq::SocketType, from: &str, port: &str) -> zmq::Socket {
    let socket = tests::bounded_socket(&zmq::Context::new(), kind, WAIT).unwrap();
    socket.connect(&format!("tcp://{from}:0;127.0.0.1:{port}")).unwrap();
    socket
}

/// The lines that say `program` refused a connection from `address`.
fn refusals<'a>(stderr: &'a [String], program: &str, address: &str) -> Vec<&'a String> {
    let said = format!("{program}: refused a connection from {address}: not allowed (--allow)");
    stderr.iter().filter(|line| **line == said).collect()
}

#[test]
fn a_server_answers_an_allowed_client_and_refuses_any_other_once() {
    let port = free_port().to_string();
    let server = Program::start(
        "reqrep_server",
        &[
            &port,
            "--bind",
            "127.0.0.1",
            "--delay",
            "0s",
            "--allow",
            "127.0.0.2/32",
        ],
    );
    // Not allowed: connected from 127.0.0.1, its request never gets in.
    let stranger = connected_from(zmq::REQ, "127.0.0.1", &port);
    stranger.set_rcvtimeo(1500).unwrap();
    stranger.send("Hello", 0).unwrap();
    assert_eq!(stranger.recv_bytes(0), Err(zmq::Error::EAGAIN));

    // Allowed: from 127.0.0.2, it is answered.
    let friend = connected_from(zmq::REQ, "127.0.0.2", &port);
    friend.send("Hello", 0).unwrap();
    assert_eq!(
        friend.recv_bytes(0).unwrap(),
        format!("World from {port}").as_bytes()
    );
    let server = server.stop(Signal::SIGTERM, WAIT);
    assert_eq!(server.stdout, ["Received request: Hello"], "{server:?}");
    // The stranger knocked again and again (ZeroMQ connects again): said once.
    let said = refusals(&server.stderr, "reqrep_server", "127.0.0.1");
    assert_eq!(said.len(), 1, "{server:?}");
}

#[test]
fn a_saver_never_prints_nor_stores_a_result_from_a_refused_address() {
    let store = crate::fixtures::Store::new("results.db");
    let port = free_port().to_string();
    let mut flags = vec!["--allow", "127.0.0.2", "--allow", "10.0.0.0/8"];
    flags.extend(store.flag());
    let mut saver = Program::start("saver", &tests::listener_args(&port, &flags));
    saver.wait_for_stdout("Listening", WAIT);
    let forger = connected_from(zmq::PUSH, "127.0.0.1", &port);
    for counter in 0..10 {
        let forged = format!(r#"{{"unit": 42, "counter": {counter}, "x": 6, "y": 6}}"#);
        forger.send(forged.as_bytes(), zmq::DONTWAIT).ok();
    }
    let computer = connected_from(zmq::PUSH, "127.0.0.2", &port);
    computer.send(r#"{"unit": 42, "counter": 0, "x": 0.5, "y": 1}"#, 0).unwrap();
    saver.wait_for_stdout(r#""counter": 0, "x": 0.5"#, WAIT);
    saver.wait_for_stderr("refused a connection from 127.0.0.1", WAIT);
    let saver = saver.stop(Signal::SIGTERM, WAIT);
    assert_eq!(saver.stdout.len(), 2, "{saver:?}");
    assert_eq!(store.results(), [(42, 0, 0.5, 1.0)]);
}

#[test]
fn command_counts_no_reply_from_a_refused_address() {
    let [publish, reply] = tests::free_ports();
    let command = Program::start(
        "command",
        &[
            "--pub-port",
            &publish,
            "--reply-port",
            &reply,
            "--bind",
            "127.0.0.1",
            "--allow",
            "127.0.0.2",
            "--expect",
            "2",
            "--timeout",
            "3s",
            "--settle",
            "0s",
        ],
    );
    // Two spoofed replies from 127.0.0.1, of units that never ran.
    let spoofer = connected_from(zmq::PUSH, "127.0.0.1", &reply);
    for unit in [7, 8] {
        let spoofed = format!(r#"{{"unit": {unit}, "status": "configured"}}"#);
        spoofer.send(spoofed.as_bytes(), zmq::DONTWAIT).ok();
    }
    let command = command.finish(WAIT);
    assert_eq!(command.code(), Some(1), "{command:?}");
    assert!(!command.stdout.iter().any(|line| line.starts_with("Computer responded")));
    assert_eq!(
        command.summary(),
        "error: 0 of 2 computers answered within 3s",
        "{command:?}"
    );
}

#[test]
fn allow_takes_networks_and_addresses_and_refuses_anything_else() {
    for good in ["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32"] {
        let port = free_port().to_string();
        let mut server = Program::start(
            "reqrep_server",
            &[&port, "--bind", "127.0.0.1", "--allow", good],
        );
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
            assert!(Instant::now() < deadline, "{good}: {}", server.transcript());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(server.is_running(), "{good}");
    }
    for bad in ["localhost", "10.0.0.0/33", "10.0.0.0/", "*"] {
        let error = tests::usage_error("saver", &["--allow", bad]);
        assert!(
            error.contains("not an address, nor an address/prefix (10.0.0.0/8)"),
            "{bad}: {error}"
        );
    }
}
