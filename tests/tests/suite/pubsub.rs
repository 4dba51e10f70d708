//! Publish-subscribe: `pub_server` and `sub_client`, as in the README, and
//! `sub_client` fed by a test-side publisher with updates good and bad.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::{Program, Signal, WAIT, assert_port_taken, free_port};

fn subscriber(port: &str, extra: &[&str]) -> Program {
    let extra = [&["--timeout", "10s"], extra].concat();
    Program::start("sub_client", &tests::client_args(port, &extra))
}

/// Reads "<zipcode> <temperature>".
fn parse(line: &str) -> (u32, i64) {
    let (zipcode, temperature) = line.split_once(' ').unwrap();
    (zipcode.parse().unwrap(), temperature.parse().unwrap())
}

#[test]
fn publisher_prints_and_sends_updates_for_three_zipcodes() {
    let port = free_port().to_string();
    let args = [
        &port,
        "--bind",
        "127.0.0.1",
        "--interval",
        "0s",
        "--count",
        "200",
    ];
    let publisher = Program::start("pub_server", &args).finish_successfully();
    assert_eq!(publisher.stdout.len(), 200);
    for line in &publisher.stdout {
        let (zipcode, temperature) = parse(line);
        assert!((10000..=10002).contains(&zipcode), "{line}");
        assert!((-79..=134).contains(&temperature), "{line}");
    }
    assert_eq!(publisher.stderr, ["pub_server: 200 updates published"]);
}

#[test]
fn subscriber_averages_five_updates_for_its_zipcode() {
    let port = free_port().to_string();
    let args = [&port, "--bind", "127.0.0.1", "--interval", "2ms"];
    let _publisher = Program::start("pub_server", &args);
    let subscriber = subscriber(&port, &[]).finish_successfully();

    let lines = &subscriber.stdout;
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert_eq!(
        lines[0],
        format!(
            "Collecting updates from weather server at tcp://127.0.0.1:{port} for zipcode 10001 ..."
        )
    );
    let temperatures: Vec<i64> = lines[1..6]
        .iter()
        .map(|line| {
            let (zipcode, temperature) = parse(line);
            assert_eq!(zipcode, 10001);
            temperature
        })
        .collect();
    let average = temperatures.iter().sum::<i64>().div_euclid(5);
    assert_eq!(
        lines[6],
        format!("Average temperature value for '10001' was {average}C")
    );
}

#[test]
fn subscriber_started_before_publisher_still_gets_its_updates() {
    let port = free_port().to_string();
    let mut subscriber = subscriber(&port, &[]);
    subscriber.wait_for_stdout("Collecting updates", WAIT);
    let args = [&port, "--bind", "127.0.0.1", "--interval", "2ms"];
    let _publisher = Program::start("pub_server", &args);
    let subscriber = subscriber.finish_successfully();
    assert!(subscriber.stdout[6].starts_with("Average temperature value for '10001' was "));
}

/// A test-side publisher that knows when `sub_client` has subscribed: an
/// XPUB socket receives each subscription, so nothing is sent too early.
fn publisher_with_subscriber(port: &str, extra: &[&str]) -> (zmq::Socket, Program) {
    let publisher = tests::bound(zmq::XPUB, port);
    let subscriber = subscriber(port, extra);
    let subscription = publisher.recv_bytes(0).expect("sub_client never subscribed");
    assert_eq!(subscription, b"\x0110001 ");
    (publisher, subscriber)
}

#[test]
fn subscriber_skips_bad_and_foreign_updates_and_floors_a_negative_average() {
    let port = free_port().to_string();
    let (publisher, subscriber) = publisher_with_subscriber(&port, &[]);
    let updates: [&[u8]; 11] = [
        b"10001 -3",
        b"100012 5",   // another zipcode that starts with 10001
        b"10002 7",    // another zipcode
        b"10001 abc",  // not a number
        b"10001 \xff", // not UTF-8
        b"10001  3",   // two spaces
        b"10001 -1",
        b"10001 99999999999999999999", // does not fit in 64 bits
        b"10001 -1",
        b"10001 -1",
        b"10001 -1",
    ];
    for update in updates {
        publisher.send(update, 0).unwrap();
    }
    let subscriber = subscriber.finish_successfully();
    assert_eq!(
        subscriber.stdout[1..],
        [
            "10001 -3",
            "10001 -1",
            "10001 -1",
            "10001 -1",
            "10001 -1",
            // -7 / 5 rounds toward negative infinity, as in Python.
            "Average temperature value for '10001' was -2C",
        ]
    );
    let rejected =
        |payload: &str| format!("rejected: not an update \"<zipcode> <integer>\": {payload}");
    assert_eq!(
        subscriber.stderr,
        [
            rejected("10001 abc"),
            rejected("10001 \\xff"),
            rejected("10001  3"),
            rejected("10001 99999999999999999999"),
        ]
    );
}

#[test]
fn subscriber_rejects_an_update_of_two_frames_saying_so() {
    let port = free_port().to_string();
    let (publisher, subscriber) = publisher_with_subscriber(&port, &["--updates", "1"]);
    publisher.send_multipart(["10001 7", "extra"], 0).unwrap();
    publisher.send("10001 5", 0).unwrap();
    let subscriber = subscriber.finish_successfully();
    assert_eq!(subscriber.stdout[1], "10001 5");
    assert_eq!(
        subscriber.stderr,
        ["rejected: a message of 2 frames (12 bytes) where one frame was expected: 10001 7"]
    );
}

#[test]
fn subscriber_with_timeout_and_no_publisher_fails_clearly() {
    let port = free_port().to_string();
    let args = [&port, "--host", "127.0.0.1", "--timeout", "200ms"];
    let subscriber = Program::start("sub_client", &args).finish(WAIT);
    assert_eq!(subscriber.code(), Some(1));
    assert_eq!(
        subscriber.stderr,
        [format!(
            "error: no update from tcp://127.0.0.1:{port} within 200ms"
        )]
    );
}

#[test]
fn publisher_on_a_taken_port_says_so() {
    let port = free_port().to_string();
    let args = [&port, "--bind", "127.0.0.1"];
    let mut first = Program::start("pub_server", &args);
    first.wait_for_stdout("1000", WAIT);
    let second = Program::start("pub_server", &args).finish(WAIT);
    assert_port_taken(&second, &port);
}

#[test]
fn bad_flags_get_a_usage_error() {
    for (program, args) in [
        ("pub_server", &["0"][..]),
        ("sub_client", &["--zipcode", "10 01"][..]),
        ("sub_client", &["--updates", "0"][..]),
        ("pub_server", &["--interval", "soon"][..]),
    ] {
        let said = tests::usage_error(program, args);
        assert!(
            said.starts_with("error: invalid value"),
            "{program} {args:?}: {said}"
        );
    }
}

#[test]
fn publisher_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let args = [&port, "--bind", "127.0.0.1", "--interval", "10ms"];
        let mut publisher = Program::start("pub_server", &args);
        publisher.wait_for_stdout("1000", WAIT);
        publisher.stop_cleanly(signal, "updates published");
    }
}

#[test]
fn subscriber_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let port = free_port().to_string();
        let (publisher, subscriber) = publisher_with_subscriber(&port, &[]);
        publisher.send("10001 20", 0).unwrap();
        let mut subscriber = subscriber;
        subscriber.wait_for_stdout("10001 20", WAIT);
        subscriber.stop_cleanly(signal, "sub_client: stopped after 1 update");
    }
}
