//! Request-reply: `reqrep_server` and `reqrep_client`, as in the README.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::{Program, Signal, WAIT, assert_port_taken, free_port};

fn server(port: &str, extra: &[&str]) -> Program {
    let args = [&[port, "--bind", "127.0.0.1", "--delay", "10ms"], extra].concat();
    Program::start("reqrep_server", &args)
}

fn client(port: &str, extra: &[&str]) -> Program {
    Program::start("reqrep_client", &tests::client_args(port, extra))
}

fn expected_client_lines(port: &str, requests: u32) -> Vec<String> {
    let mut lines = vec!["Connecting to server...".to_owned()];
    for request in 1..=requests {
        lines.push(format!("Sending request {request} ..."));
        lines.push(format!("Received reply {request} [ World from {port} ]"));
    }
    lines
}

#[test]
fn client_gets_ten_replies_from_server() {
    let port = free_port().to_string();
    let server = server(&port, &["--count", "10"]);
    let client = client(&port, &[]).finish_successfully();
    assert_eq!(client.stdout, expected_client_lines(&port, 10));

    let server = server.finish_successfully();
    assert_eq!(server.stdout, vec!["Received request: Hello"; 10]);
    assert_eq!(server.stderr, ["reqrep_server: 10 replies sent"]);
}

#[test]
fn client_started_before_server_still_gets_its_replies() {
    let port = free_port().to_string();
    let mut client = client(&port, &["--requests", "3"]);
    client.wait_for_stdout("Sending request 1 ...", WAIT);
    let _server = server(&port, &[]);
    let client = client.finish_successfully();
    assert_eq!(client.stdout, expected_client_lines(&port, 3));
}

#[test]
fn client_rejects_a_reply_of_two_frames_and_counts_it_apart() {
    let port = free_port().to_string();
    let server = tests::bound(zmq::REP, &port);
    let client = client(&port, &["--requests", "3"]);
    for reply in [&["World", "extra"][..], &["World"], &["World"]] {
        assert_eq!(server.recv_bytes(0).unwrap(), b"Hello");
        server.send_multipart(reply, 0).unwrap();
    }
    let client = client.finish_successfully();
    assert_eq!(
        client.stdout[client.stdout.len() - 2..],
        ["Sending request 3 ...", "Received reply 3 [ World ]"]
    );
    assert_eq!(
        client.stderr,
        [
            "rejected: reply a message of 2 frames (10 bytes) where one frame was expected: World",
            "reqrep_client: 2 replies received, 1 rejected",
        ]
    );
}

#[test]
fn client_with_timeout_and_no_server_fails_clearly() {
    let port = free_port().to_string();
    let client = client(&port, &["--timeout", "200ms"]).finish(WAIT);
    assert_eq!(client.code(), Some(1));
    assert_eq!(
        client.stderr,
        [format!(
            "error: no reply from tcp://127.0.0.1:{port} within 200ms"
        )]
    );
}

#[test]
fn server_answers_any_request_and_keeps_serving() {
    let port = free_port().to_string();
    let mut server = server(&port, &[]);
    let socket = tests::connected(zmq::REQ, &port);

    // A newline and a byte that is not UTF-8: shown escaped, on one line.
    socket.send(&b"odd\n\xff"[..], 0).unwrap();
    assert_eq!(
        socket.recv_bytes(0).unwrap(),
        format!("World from {port}").as_bytes()
    );
    server.wait_for_stdout("Received request: odd\\n\\xff", WAIT);

    // Two frames: rejected as such, and still answered, or REP could
    // never receive again.
    socket.send_multipart([&b"Hello"[..], &b"again"[..]], 0).unwrap();
    assert_eq!(
        socket.recv_bytes(0).unwrap(),
        format!("World from {port}").as_bytes()
    );
    server.wait_for_stderr(
        "rejected: request a message of 2 frames (10 bytes) where one frame was expected: Hello",
        WAIT,
    );

    socket.send("Hello", 0).unwrap();
    assert_eq!(
        socket.recv_bytes(0).unwrap(),
        format!("World from {port}").as_bytes()
    );
    server.wait_for_stdout("Received request: Hello", WAIT);
    // The summary counts the rejected request apart.
    server.stop_cleanly(
        Signal::SIGINT,
        "reqrep_server: 3 replies sent, 1 to a rejected request",
    );
}

#[test]
fn server_told_to_bind_no_address_of_this_machine_says_so() {
    let port = free_port().to_string();
    // A bind takes an address or an interface: libzmq resolves no names.
    for address in ["999.1.1.1", "localhost"] {
        let args = [&port, "--bind", address];
        let server = Program::start("reqrep_server", &args).finish(WAIT);
        assert_eq!(server.code(), Some(1), "{server:?}");
        assert_eq!(
            server.stderr,
            [format!(
                "error: cannot bind tcp://{address}:{port}: not an IP address, nor a network interface, of this machine (a bind takes no host names)"
            )]
        );
    }
}

#[test]
fn server_on_a_taken_port_says_so() {
    let port = free_port().to_string();
    let mut first = server(&port, &[]);
    // Once the first server answers, the port is certainly taken.
    let _client = client(&port, &["--requests", "1"]).finish(WAIT);
    first.wait_for_stdout("Received request", WAIT);

    let second = server(&port, &[]).finish(WAIT);
    assert_port_taken(&second, &port);
}

#[test]
fn bad_port_argument_gets_a_usage_error() {
    for program in ["reqrep_server", "reqrep_client"] {
        let said = tests::usage_error(program, &["70000"]);
        assert!(said.contains("invalid value '70000'"), "{program}: {said}");
    }
}

#[test]
fn server_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let mut server = server(&port, &[]);
        client(&port, &["--requests", "2"]).finish(WAIT);
        server.wait_for_stdout("Received request", WAIT);
        server.stop_cleanly(signal, "reqrep_server: 2 replies sent");
    }
}

#[test]
fn waiting_client_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let mut client = client(&port, &[]);
        client.wait_for_stdout("Sending request 1 ...", WAIT);
        client.stop_cleanly(signal, "reqrep_client: stopped after 0 replies");
    }
}
