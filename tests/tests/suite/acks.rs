//! Acknowledged results (`--ack-port` on saver and computer): nothing is
//! lost, even when the saver is killed at full speed or the link freezes
//! and is cut; each result is stored once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use tests::relay::Relay;
use tests::{Program, Signal, Stream, WAIT, free_port};

use crate::fixtures::Store;

const RESULTS: u64 = 100_000;

/// Where a saver that acknowledges listens, and the store it keeps: each
/// saver started here takes up where the last one stopped.
struct Server {
    save: String,
    ack: String,
    store: Store,
}

impl Server {
    fn new() -> Server {
        let [save, ack] = tests::free_ports();
        let store = Store::new("results.db");
        Server { save, ack, store }
    }

    fn saver(&self) -> Program {
        let extra = [&["--ack-port", &self.ack], &self.store.flag()[..]].concat();
        Program::start("saver", &tests::listener_args(&self.save, &extra))
    }

    /// A saver that listens already.
    fn listening_saver(&self) -> Program {
        let mut saver = self.saver();
        saver.wait_for_stdout("Listening", WAIT);
        saver
    }

    /// Stops `saver`, cleanly, and asserts that the store holds each of the
    /// `results` counters of unit 3 exactly once.
    fn assert_every_result_kept_once(&self, saver: Program, results: u64) {
        saver.stop_cleanly(Signal::SIGTERM, "saver: ");
        let (rows, distinct, low, high): (u64, u64, u64, u64) = self
            .store
            .open()
            .query_row(
                "SELECT count(*), count(DISTINCT counter), min(counter), max(counter)
                 FROM results WHERE unit = 3",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .unwrap();
        assert_eq!(
            (rows, distinct, low, high),
            (results, results, 0, results - 1)
        );
    }
}

/// A computer at full speed, sending `RESULTS` results to the save and
/// acknowledgement ports given.
fn computer(save: &str, ack: &str) -> Program {
    computer_with(save, ack, RESULTS, &["--interval", "0s"])
}

/// A computer sending `results` results, with `more` flags.
fn computer_with(save: &str, ack: &str, results: u64, more: &[&str]) -> Program {
    let (cmd, reply) = (free_port().to_string(), free_port().to_string());
    let results = results.to_string();
    let extra = ["--ack-port", ack, "--results", &results];
    let args = tests::computer_args([&cmd, &reply, save], "3", &[&extra[..], more].concat());
    Program::start("computer", &args)
}

/// Asserts that `computer` exits 0 with all its `results` acknowledged.
fn assert_all_acknowledged(computer: Program, results: u64) {
    let computer = computer.finish_successfully();
    assert_eq!(
        computer.summary(),
        format!(
            "computer: unit 3 computed {results} results, answered 0 commands, {results} acknowledged"
        )
    );
}

/// Waits until the saver has printed at least `count` results.
fn wait_for_results(saver: &mut Program, count: usize) {
    let deadline = Instant::now() + WAIT;
    let printed = |saver: &Program| {
        saver
            .lines_of(Stream::Stdout)
            .iter()
            .filter(|line| line.starts_with("Computer requested a save"))
            .count()
    };
    while printed(saver) < count {
        assert!(
            Instant::now() < deadline,
            "the saver printed {} results",
            printed(saver)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        saver.new_lines();
    }
}

#[test]
fn a_saver_killed_twice_at_full_speed_loses_no_result() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    let computer = computer(&server.save, &server.ack);

    for _ in 0..2 {
        wait_for_results(&mut saver, 20_000);
        saver.stop(Signal::SIGKILL, WAIT);
        saver = server.saver();
    }
    assert_all_acknowledged(computer, RESULTS);
    server.assert_every_result_kept_once(saver, RESULTS);
}

#[test]
fn a_restarted_saver_is_sent_again_what_the_killed_one_lost() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    // Only the reconnection sends results again here: none waits long
    // enough for its acknowledgement to be sent again, nor at the window.
    // A result a millisecond: the computer is sending, not waiting, when
    // the new saver comes.
    let more = ["--ack-timeout", "1h", "--interval", "1ms"];
    let computer = computer_with(&server.save, &server.ack, 3000, &more);

    wait_for_results(&mut saver, 500);
    saver.stop(Signal::SIGKILL, WAIT);
    let saver = server.saver();
    assert_all_acknowledged(computer, 3000);
    server.assert_every_result_kept_once(saver, 3000);
}

#[test]
fn a_saver_that_acknowledges_keeps_counters_it_cannot_acknowledge() {
    let server = Server::new();
    let saver = server.listening_saver();
    let computer = tests::pusher(&server.save);
    for counter in [i64::MAX, i64::MAX, -1, 0] {
        let result = format!(r#"{{"unit": 3, "counter": {counter}, "x": 1, "y": 2}}"#);
        computer.send(result.as_bytes(), 0).unwrap();
    }
    let mut saver = saver;
    saver.wait_for_stdout(r#""counter": 0,"#, WAIT);
    saver.stop_cleanly(
        Signal::SIGTERM,
        "saver: 3 results received, 1 duplicate, 0 rejected",
    );
    // (A store written with --ack-port is ordered by unit and counter.)
    let mut counters = server.store.counters();
    counters.sort_unstable();
    assert_eq!(counters, [-1, 0, i64::MAX]);
}

#[test]
fn a_result_whose_acknowledgement_never_comes_is_sent_again() {
    // The saver is played by the test, which acknowledges all but one.
    let [save, ack] = tests::free_ports();
    let results = tests::bound(zmq::PULL, &save);
    let acknowledgements = tests::bound(zmq::XPUB, &ack);
    let more = ["--interval", "0s", "--ack-timeout", "200ms"];
    let computer = computer_with(&save, &ack, 10, &more);
    assert_eq!(acknowledgements.recv_bytes(0).unwrap(), b"\x013 ");

    let counter = |message: Vec<u8>| -> i64 {
        let result: serde_json::Value = serde_json::from_slice(&message).unwrap();
        result["counter"].as_i64().unwrap()
    };
    let first: Vec<i64> = (0..10).map(|_| counter(results.recv_bytes(0).unwrap())).collect();
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    acknowledgements.send("3 0-4,6-9", 0).unwrap();
    // Counter 5 waited past --ack-timeout for its acknowledgement.
    assert_eq!(counter(results.recv_bytes(0).unwrap()), 5);
    acknowledgements.send("3 5", 0).unwrap();
    assert_all_acknowledged(computer, 10);
}

#[test]
fn a_frozen_then_cut_link_loses_no_result() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    let results = Relay::start(server.save.parse().unwrap());
    let acks = Relay::start(server.ack.parse().unwrap());
    let computer = computer(&results.port().to_string(), &acks.port().to_string());

    wait_for_results(&mut saver, 20_000);
    results.freeze();
    acks.freeze();
    // A silent partition: the heartbeats give the link up meanwhile.
    std::thread::sleep(std::time::Duration::from_secs(5));
    for relay in [&results, &acks] {
        relay.cut();
        relay.thaw();
    }
    let computer = computer.finish_successfully();
    let lost = |line: &String| line.starts_with("computer: lost the connection to the saver");
    assert!(computer.stderr.iter().any(lost), "{computer:?}");
    server.assert_every_result_kept_once(saver, RESULTS);
}

#[test]
fn a_computer_with_acks_and_a_saver_without_stops_at_its_window() {
    let [cmd, reply, save, ack] = tests::free_ports();
    // A saver as the original: it takes results and acknowledges none.
    let mut saver = Program::start("saver", &tests::listener_args(&save, &[]));
    let extra = [
        "--ack-port",
        &ack,
        "--window",
        "100",
        "--ack-timeout",
        "100ms",
        "--interval",
        "0s",
    ];
    let mut computer = Program::start(
        "computer",
        &tests::computer_args([&cmd, &reply, &save], "4", &extra),
    );
    // At its window of unacknowledged results it computes no more; it
    // asks again only of a saver that ever acknowledged.
    saver.wait_for_stdout("\"unit\":4,\"counter\":99,", WAIT);
    computer.signal(Signal::SIGINT);
    computer.wait_for_stderr(
        "computer: waiting for the saver to acknowledge 100 results (Ctrl-C again or SIGTERM gives up)",
        WAIT,
    );
    let computer = computer.stop(Signal::SIGTERM, WAIT);
    assert_eq!(computer.code(), Some(1), "{computer:?}");
    assert_eq!(
        computer.stderr[computer.stderr.len() - 2..],
        [
            "computer: unit 4 computed 100 results, answered 0 commands, 0 acknowledged",
            "computer: 100 results not acknowledged",
        ]
    );
    let saver = saver.stop(Signal::SIGTERM, WAIT);
    let printed = saver
        .stdout
        .iter()
        .filter(|line| line.starts_with("Computer requested a save"))
        .count();
    assert_eq!(printed, 100, "each result once: {:?}", saver.stderr);
}

#[test]
fn a_computer_stopped_while_its_queue_is_full_counts_only_what_it_sent() {
    // No saver: the send queue fills at its high-water mark (1000) before
    // the window (10000), and the next send waits, until Ctrl-C ends it.
    let [save, ack] = tests::free_ports();
    let mut computer = computer_with(&save, &ack, RESULTS, &["--interval", "0s"]);
    tests::wait_until_asleep(computer.id());
    computer.signal(Signal::SIGINT);
    computer.wait_for_stderr(
        "computer: waiting for the saver to acknowledge 1000 results (",
        WAIT,
    );
    let computer = computer.stop(Signal::SIGINT, WAIT);
    assert_eq!(computer.code(), Some(1), "{computer:?}");
    assert_eq!(
        computer.stderr[computer.stderr.len() - 2..],
        [
            "computer: unit 3 computed 1000 results, answered 0 commands, 0 acknowledged",
            "computer: 1000 results not acknowledged"
        ],
        "{computer:?}"
    );
}

#[test]
fn a_second_computer_with_the_same_unit_is_rejected_not_dropped() {
    let server = Server::new();
    let saver = server.listening_saver();
    // Two runs of unit 3: the second one's counters are the first one's,
    // its x and y are not.
    for _ in 0..2 {
        let computer = computer_with(&server.save, &server.ack, 100, &["--interval", "0s"]);
        assert_all_acknowledged(computer, 100);
    }
    let saver = saver.stop_cleanly(Signal::SIGTERM, "saver: 100 results received, ");
    assert!(saver.summary().ends_with(" 100 rejected"), "{saver:?}");
    assert_eq!(server.store.counters(), (0..100).collect::<Vec<_>>());
    let rejected = server.store.rejected();
    assert_eq!(rejected.len(), 100);
    for (payload, reason) in rejected {
        let text = String::from_utf8(payload).unwrap();
        assert!(text.starts_with("{\"unit\":3,"), "{text}");
        assert!(
            reason.starts_with("result of unit 3 counter ")
                && reason
                    .ends_with(" stored already, with other values: another computer uses unit 3"),
            "{reason}"
        );
    }
}

#[test]
fn a_locked_store_holds_the_stream_back_and_then_stores_everything() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    // Locked well past the heartbeats' 3 s: a saver that reads nothing for
    // a while must not give its computer up, nor it the saver. (Without
    // acknowledgements, what a dropped connection held would be lost;
    // with them, it is sent again, and a lost connection is said.)
    let other = server.store.open();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked_at = Instant::now();
    let computer = computer_with(&server.save, &server.ack, 20_000, &["--interval", "0s"]);
    saver.wait_for_stderr("is locked by another program; waiting for it", WAIT);
    std::thread::sleep(std::time::Duration::from_secs(6).saturating_sub(locked_at.elapsed()));
    other.execute_batch("COMMIT").unwrap();

    let computer = computer.finish_successfully();
    let lost = |line: &String| line.contains("lost the connection");
    assert!(!computer.stderr.iter().any(lost), "{computer:?}");
    saver.wait_for_stderr("is free again", WAIT);
    server.assert_every_result_kept_once(saver, 20_000);
}

#[test]
fn a_store_with_a_result_twice_is_refused_for_ack_port_saying_why() {
    let server = Server::new();
    let port = free_port().to_string();
    let store = server.store.flag();
    let mut saver = Program::start("saver", &tests::listener_args(&port, &store));
    saver.wait_for_stdout("Listening", WAIT);
    let computer = tests::pusher(&port);
    for _ in 0..2 {
        let result = r#"{"unit": 3, "counter": 0, "x": 1, "y": 2}"#;
        computer.send(result.as_bytes(), 0).unwrap();
    }
    saver.wait_for_stdout("\"counter\": 0, \"x\": 1, \"y\": 2}", WAIT);
    saver.stop_cleanly(Signal::SIGTERM, "saver: 2 results received, 0 rejected");

    let saver = server.saver().finish(WAIT);
    assert_eq!(saver.code(), Some(1), "{saver:?}");
    assert!(
        saver.stderr[0].starts_with(
            "error: --ack-port keeps each (unit, counter) once, and this store holds one twice (it was written without --ack-port): use another file: cannot open the store "
        ),
        "{saver:?}"
    );
}

#[test]
fn a_saver_restarted_without_acks_is_not_sent_the_same_results_again_and_again() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    let more = [
        "--interval",
        "1ms",
        "--window",
        "100",
        "--ack-timeout",
        "50ms",
    ];
    let mut computer = computer_with(&server.save, &server.ack, RESULTS, &more);
    wait_for_results(&mut saver, 200);
    saver.stop(Signal::SIGKILL, WAIT);

    // As the original's saver: it acknowledges nothing. The computer sends
    // it again what was not acknowledged, once, as after any reconnect
    // (what was queued meanwhile may so come twice), then stops at its
    // window: it sends again on a timeout only to a saver that acknowledges.
    let mut saver = Program::start("saver", &tests::listener_args(&server.save, &[]));
    wait_for_results(&mut saver, 100);
    // Ten --ack-timeouts, in which a computer that did would send again.
    std::thread::sleep(std::time::Duration::from_millis(500));
    computer.signal(Signal::SIGINT);
    computer.wait_for_stderr(
        "computer: waiting for the saver to acknowledge 100 results",
        WAIT,
    );
    computer.stop(Signal::SIGINT, WAIT);
    let saver = saver.stop_cleanly(Signal::SIGTERM, "saver: ");
    let counters = tests::numbers_after(&saver.stdout, "Computer requested a save: ", "counter");
    let mut times = BTreeMap::<i64, usize>::new();
    for counter in counters {
        *times.entry(counter).or_default() += 1;
    }
    assert_eq!(times.len(), 100, "{times:?}");
    assert!(times.values().all(|&times| times <= 2), "{times:?}");
}

#[test]
fn a_saver_without_a_store_prints_a_result_sent_again_once() {
    let [save, ack] = tests::free_ports();
    let mut saver = Program::start("saver", &tests::listener_args(&save, &["--ack-port", &ack]));
    saver.wait_for_stdout("Listening", WAIT);
    // Acknowledgements that cannot keep up: many results are sent again.
    let more = ["--interval", "0s", "--ack-timeout", "1ms"];
    let computer = computer_with(&save, &ack, 5000, &more);
    assert_all_acknowledged(computer, 5000);
    let saver = saver.stop_cleanly(Signal::SIGTERM, "saver: 5000 results received, ");
    let mut counters =
        tests::numbers_after(&saver.stdout, "Computer requested a save: ", "counter");
    counters.sort();
    assert_eq!(counters, (0..5000).collect::<Vec<_>>());
}

// Bounded under any peer.

#[test]
fn a_sparse_unit_is_welcomed_in_pieces_its_computer_takes() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    // 10 000 isolated counters of unit 3, far past what its computer will
    // send: once, a welcome of them all was 100 kB, over the computer's
    // 64 KiB limit, and cut its link again and again.
    let forger = tests::pusher(&server.save);
    for counter in 0..10_000 {
        let counter = 10_000_000 + 2 * counter;
        let result = format!(r#"{{"unit": 3, "counter": {counter}, "x": 1, "y": 2}}"#);
        forger.send(result.as_bytes(), 0).unwrap();
    }
    saver.wait_for_stdout(r#""counter": 10019998,"#, WAIT);

    let computer = computer_with(
        &server.save,
        &server.ack,
        5,
        &["--interval", "0s", "--linger", "5s"],
    );
    let computer = computer.finish(WAIT);
    let lost = |line: &String| line.contains("lost the connection");
    assert!(!computer.stderr.iter().any(lost), "{computer:?}");
    assert_eq!(
        computer.summary(),
        "computer: unit 3 computed 5 results, answered 0 commands, 5 acknowledged",
        "{computer:?}"
    );
    saver.stop_cleanly(Signal::SIGTERM, "saver: 10005 results received");
}

#[test]
fn a_subscription_that_is_not_a_units_topic_is_refused() {
    let server = Server::new();
    let mut saver = server.listening_saver();
    // Everything (the empty topic), and a topic that is no unit's.
    let listener = tests::connected(zmq::SUB, &server.ack);
    listener.set_subscribe(b"").unwrap();
    listener.set_rcvtimeo(500).unwrap();
    let nosy = tests::connected(zmq::SUB, &server.ack);
    nosy.set_subscribe(b"3").unwrap();
    nosy.set_rcvtimeo(500).unwrap();
    saver.wait_for_stderr(r#"subscription not a unit's topic "<unit> ": "#, WAIT);

    let computer = computer_with(&server.save, &server.ack, 100, &["--interval", "0s"]);
    assert_all_acknowledged(computer, 100);
    assert_eq!(listener.recv_bytes(0), Err(zmq::Error::EAGAIN));
    assert_eq!(nosy.recv_bytes(0), Err(zmq::Error::EAGAIN));
    server.assert_every_result_kept_once(saver, 100);
}
