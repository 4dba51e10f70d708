//! The Voisietequi prototype: `command` configures `computer`s, which push
//! their results to the `saver`; results queued while no saver runs arrive
//! when it starts.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use tests::{Program, Signal, Stream, WAIT, assert_port_taken, free_port};

/// The three ports of one scenario, free and on loopback.
struct Ports {
    cmd: String,
    reply: String,
    save: String,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            cmd: free_port().to_string(),
            reply: free_port().to_string(),
            save: free_port().to_string(),
        }
    }

    fn command(&self, extra: &[&str]) -> Program {
        let args = [
            &[
                "--pub-port",
                &self.cmd,
                "--reply-port",
                &self.reply,
                "--bind",
                "127.0.0.1",
            ],
            extra,
        ]
        .concat();
        Program::start("command", &args)
    }

    fn computer(&self, unit: &str, extra: &[&str]) -> Program {
        let ports = [&*self.cmd, &self.reply, &self.save];
        Program::start("computer", &tests::computer_args(ports, unit, extra))
    }

    fn saver(&self, extra: &[&str]) -> Program {
        Program::start("saver", &tests::listener_args(&self.save, extra))
    }
}

/// The units and counters of the results a saver printed, in order.
fn saved(lines: &[String]) -> Vec<(i64, i64)> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("Computer requested a save: "))
        .map(|json| {
            let result: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(result["x"].is_f64() && result["y"].is_f64(), "{json}");
            (
                result["unit"].as_i64().unwrap(),
                result["counter"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn counters_by_unit(saved: &[(i64, i64)]) -> BTreeMap<i64, Vec<i64>> {
    let mut units = BTreeMap::<i64, Vec<i64>>::new();
    for &(unit, counter) in saved {
        units.entry(unit).or_default().push(counter);
    }
    units
}

fn responded_units(lines: &[String]) -> Vec<i64> {
    let mut units = tests::numbers_after(lines, "Computer responded: ", "unit");
    units.sort();
    units.dedup();
    units
}

const CONFIGURE: &str = r#" {"cmd": "configure", "response_channel": "tcp://localhost:"#;

#[test]
fn command_configures_two_running_computers() {
    let ports = Ports::new();
    let mut first = ports.computer("11", &[]);
    let mut second = ports.computer("12", &[]);
    first.wait_for_stdout("Aye sir, unit 11 ready for your commands ...", WAIT);
    second.wait_for_stdout("Aye sir, unit 12 ready for your commands ...", WAIT);
    // As in the original: publish after a pause, then listen until quiet.
    let command = ports
        .command(&["--settle", "500ms", "--quiet-after", "2s"])
        .finish_successfully();
    assert_eq!(
        command.stdout[..2],
        [
            format!("politiche2013{CONFIGURE}{}\"}}", ports.reply),
            "Listening to response from configured computers".to_owned(),
        ]
    );
    assert_eq!(responded_units(&command.stdout), [11, 12]);
    assert_eq!(command.stdout.last().unwrap(), "Poll queue empty");
    assert_eq!(command.stderr, ["command: 2 computers answered"]);

    for computer in [&mut first, &mut second] {
        computer.wait_for_stdout(
            "Message received: 'politiche2013 {\"cmd\": \"configure\"",
            WAIT,
        );
        computer.wait_for_stdout("Sending reply to server", WAIT);
    }
}

#[test]
fn command_with_expect_configures_computers_started_after_it() {
    let ports = Ports::new();
    let command = ports.command(&["--expect", "2"]);
    let _first = ports.computer("21", &[]);
    let _second = ports.computer("22", &[]);
    let command = command.finish_successfully();
    assert_eq!(responded_units(&command.stdout), [21, 22]);
    assert_eq!(command.stderr, ["command: 2 computers answered"]);
}

#[test]
fn command_with_no_computer_says_that_none_answered() {
    let ports = Ports::new();
    let command = ports
        .command(&["--settle", "0s", "--quiet-after", "100ms"])
        .finish_successfully();
    assert_eq!(command.stdout.last().unwrap(), "Poll queue empty");
    assert_eq!(command.stderr, ["command: no computer answered"]);
}

#[test]
fn computer_joining_after_the_command_was_published_is_still_configured() {
    let ports = Ports::new();
    let mut command = ports.command(&["--expect", "2"]);
    let _early = ports.computer("31", &[]);
    // Once this is printed the command has gone out: the next computer is a
    // slow joiner, and only --expect's watch on subscriptions reaches it.
    command.wait_for_stdout("Listening to response", WAIT);
    let _late = ports.computer("32", &[]);
    let command = command.finish_successfully();
    assert_eq!(responded_units(&command.stdout), [31, 32]);
}

#[test]
fn without_expect_a_computer_joining_after_the_command_is_not_configured() {
    // The original's slow joiner: without --expect the command goes out once.
    let ports = Ports::new();
    let mut command = ports.command(&["--quiet-after", "1s"]);
    command.wait_for_stdout("Listening to response", WAIT);
    let _late = ports.computer("33", &[]);
    let command = command.finish_successfully();
    assert_eq!(responded_units(&command.stdout), Vec::<i64>::new());
    assert_eq!(command.stdout.last().unwrap(), "Poll queue empty");
}

#[test]
fn command_with_expect_and_too_few_computers_gives_up() {
    let ports = Ports::new();
    let _only = ports.computer("41", &[]);
    let command = ports.command(&["--expect", "2", "--timeout", "1s"]).finish(WAIT);
    assert_eq!(command.code(), Some(1), "{command:?}");
    assert_eq!(
        command.stderr,
        [
            "command: 1 computer answered",
            "error: 1 of 2 computers answered within 1s"
        ]
    );
}

#[test]
fn results_of_two_computers_reach_the_saver_in_order() {
    let ports = Ports::new();
    let saver = ports.saver(&["--count", "10"]);
    let first = ports.computer("51", &["--interval", "5ms", "--results", "5"]);
    let second = ports.computer("52", &["--interval", "5ms", "--results", "5"]);
    let saver = saver.finish_successfully();
    assert_eq!(saver.stdout[0], "Listening to save requests from computers");
    let units = counters_by_unit(&saved(&saver.stdout));
    assert_eq!(units[&51], [0, 1, 2, 3, 4]);
    assert_eq!(units[&52], [0, 1, 2, 3, 4]);
    assert_eq!(saver.stderr, ["saver: 10 results received, 0 rejected"]);
    for computer in [first, second] {
        computer.finish_successfully();
    }
}

#[test]
fn results_queued_while_no_saver_runs_arrive_when_it_starts() {
    let ports = Ports::new();
    let mut computer = ports.computer("61", &["--interval", "0s", "--results", "5"]);
    computer.wait_for_stderr("to take 5 queued results", WAIT);
    let saver = ports.saver(&["--count", "5"]).finish(WAIT);
    assert_eq!(
        saved(&saver.stdout),
        [(61, 0), (61, 1), (61, 2), (61, 3), (61, 4)]
    );
    let computer = computer.finish_successfully();
    assert_eq!(
        computer.summary(),
        "computer: unit 61 computed 5 results, answered 0 commands"
    );
}

#[test]
fn results_queued_before_ctrl_c_arrive_when_a_saver_starts() {
    let ports = Ports::new();
    let mut computer = ports.computer("62", &["--interval", "5ms"]);
    computer.wait_for_stdout("Aye sir", WAIT);
    computer.signal(Signal::SIGINT);
    // The first stderr line says how many results wait for a saver (or, had
    // Ctrl-C beaten the first result, that none was pushed).
    let said = computer.wait_for_stderr("computer: ", WAIT);
    let pushed: i64 = match said.split_once(" to take ") {
        Some((_, rest)) => rest.split(' ').next().unwrap().parse().unwrap(),
        None => {
            assert!(
                said.ends_with("computed 0 results, answered 0 commands"),
                "{said}"
            );
            0
        }
    };
    let mut saver = ports.saver(&[]);
    computer.finish_successfully();
    // Everything the computer pushed reaches the saver, in order.
    if pushed > 0 {
        saver.wait_for_stdout(&format!("\"counter\":{}", pushed - 1), WAIT);
    }
    let saver = saver.stop(Signal::SIGTERM, WAIT);
    let expected: Vec<(i64, i64)> = (0..pushed).map(|counter| (62, counter)).collect();
    assert_eq!(saved(&saver.stdout), expected);
}

#[test]
fn computer_without_saver_drops_its_results_when_linger_runs_out() {
    let ports = Ports::new();
    let computer = ports.computer(
        "63",
        &["--interval", "0s", "--results", "3", "--linger", "200ms"],
    );
    let computer = computer.finish(WAIT);
    assert_eq!(computer.code(), Some(1), "{computer:?}");
    assert_eq!(
        computer.summary(),
        "computer: up to 3 results dropped (never sent)"
    );
}

#[test]
fn second_ctrl_c_drops_queued_results_at_once() {
    let ports = Ports::new();
    let mut computer = ports.computer("64", &["--interval", "0s", "--results", "4"]);
    computer.wait_for_stderr("to take 4 queued results", WAIT);
    // --results is done: this is the "one more Ctrl-C".
    let computer = computer.stop(Signal::SIGINT, WAIT);
    assert_eq!(computer.code(), Some(1), "{computer:?}");
    assert_eq!(
        computer.summary(),
        "computer: up to 4 results dropped (never sent)"
    );
    assert!(!computer.stderr.join("\n").contains("panicked"));
}

#[test]
fn a_computer_whose_saver_left_counts_what_it_may_drop_in_its_waiting_line() {
    let ports = Ports::new();
    let mut saver = ports.saver(&[]);
    let mut computer = ports.computer("65", &["--interval", "20ms"]);
    saver.wait_for_stdout("\"unit\":65,\"counter\":2,", WAIT);
    saver.stop_cleanly(Signal::SIGINT, "saver: ");
    computer.wait_for_stderr("computer: lost the connection to the saver", WAIT);

    // "to take 1 queued result" or "to take N queued results", "and up to M
    // more sent before the connection was lost": M + N in all, at most.
    computer.signal(Signal::SIGINT);
    let waiting = computer.wait_for_stderr("computer: waiting for a saver", WAIT);
    let number = |after: &str| -> u64 { tests::number_after(&waiting, after).unwrap() };
    let (queued, before) = (number(" to take "), number(" and up to "));
    assert!(
        waiting.contains(" more sent before the connection was lost (Ctrl-C again or SIGTERM"),
        "{waiting}"
    );
    let computer = computer.stop(Signal::SIGINT, WAIT);
    assert_eq!(
        computer.summary(),
        format!(
            "computer: up to {} results dropped ({queued} never sent, up to {before} sent before the connection was lost)",
            queued + before
        ),
        "{computer:?}"
    );
}

#[test]
fn results_a_saver_took_before_it_left_are_not_counted_as_queued() {
    // The first result waits in the queue: the computer sends it before its
    // connection is made. The saver takes it and leaves before the next
    // send, so the computer hears of the connection and its loss at once.
    let ports = Ports::new();
    let mut computer = ports.computer("66", &["--interval", "2s"]);
    let saver = tests::bound(zmq::PULL, &ports.save);
    let first = saver.recv_bytes(0).unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"counter\":0,"));
    drop(saver);
    computer.wait_for_stderr("computer: lost the connection to the saver", WAIT);

    computer.signal(Signal::SIGINT);
    let waiting = computer.wait_for_stderr("computer: waiting for a saver", WAIT);
    assert!(
        waiting.contains(
            " to take 1 queued result, and up to 1 more sent before the connection was lost"
        ),
        "{waiting}"
    );
    let computer = computer.stop(Signal::SIGINT, WAIT);
    assert_eq!(
        computer.summary(),
        "computer: up to 2 results dropped (1 never sent, up to 1 sent before the connection was lost)"
    );
}

#[test]
fn stopping_one_computer_leaves_the_saver_and_the_other_running() {
    let ports = Ports::new();
    let mut saver = ports.saver(&[]);
    let first = ports.computer("71", &["--interval", "10ms"]);
    let mut second = ports.computer("72", &["--interval", "10ms"]);
    saver.wait_for_stdout("\"unit\":71,\"counter\":2,", WAIT);
    saver.wait_for_stdout("\"unit\":72,\"counter\":2,", WAIT);

    let first = first.stop_cleanly(Signal::SIGINT, "computer: unit 71 computed");
    let pushed: i64 = tests::number_after(&first.stderr[0], " computed ").unwrap();

    // The other computer goes on, and the saver goes on receiving.
    let seen = saved(saver.lines_of(Stream::Stdout)).len();
    saver.wait_for_stdout(&format!("\"unit\":72,\"counter\":{},", seen + 5), WAIT);
    assert!(second.is_running());
    let saver = saver.stop(Signal::SIGINT, WAIT);
    let units = counters_by_unit(&saved(&saver.stdout));
    assert_eq!(units[&71], (0..pushed).collect::<Vec<_>>());
}

#[test]
fn saver_rejects_malformed_results_and_keeps_serving() {
    let ports = Ports::new();
    let mut saver = ports.saver(&["--max-message-size", "1000"]);
    saver.wait_for_stdout("Listening", WAIT);
    let computer = tests::pusher(&ports.save);
    computer.send(r#"{"unit": 1, "counter": 0, "x": 0.5, "y": 1}"#, 0).unwrap();
    saver.wait_for_stdout(r#""counter": 0"#, WAIT);
    for bad in [
        &b"not json"[..],
        br#"{"unit": 1, "counter": "one", "x": 0.5, "y": 1}"#,
        br#"{"unit": 1, "x": 0.5, "y": 1}"#,
        br#"[1, 1, 0.5, 1]"#,
        b"{\"unit\": \xff}",
        // Invalid UTF-8 where the saver looks no further is still no text.
        b"{\"unit\": 1, \"counter\": 2, \"x\": 0.5, \"y\": 1, \"note\": \"\xff\"}",
    ] {
        computer.send(bad, 0).unwrap();
    }
    // Over the size limit: libzmq drops that connection, silently.
    let greedy = tests::pusher(&ports.save);
    greedy.send(vec![b' '; 5000], 0).unwrap();
    computer
        .send(
            r#"{"unit": 1, "counter": 1, "x": 0.5, "y": 1, "note": "extra keys are fine"}"#,
            0,
        )
        .unwrap();
    saver.wait_for_stdout(r#""counter": 1"#, WAIT);

    let saver = saver.stop_cleanly(Signal::SIGTERM, "saver: 2 results received, 6 rejected");
    let rejections: Vec<&String> = saver
        .stderr
        .iter()
        .filter(|line| line.starts_with("rejected: result "))
        .collect();
    assert_eq!(rejections.len(), 6, "{:?}", saver.stderr);
    assert!(rejections[0].ends_with(": not json"), "{}", rejections[0]);
    assert!(
        rejections[2].contains("missing field `counter`"),
        "{}",
        rejections[2]
    );
    assert!(
        rejections[3].contains("not a JSON object"),
        "{}",
        rejections[3]
    );
    assert!(
        rejections[4].ends_with(r#"{"unit": \xff}"#),
        "{}",
        rejections[4]
    );
    assert!(
        rejections[5].starts_with("rejected: result not UTF-8 text: "),
        "{}",
        rejections[5]
    );
}

#[test]
fn computer_rejects_commands_that_are_not_json_and_answers_the_next() {
    let ports = Ports::new();
    let publisher = tests::bound(zmq::XPUB, &ports.cmd);
    let replies = tests::bound(zmq::PULL, &ports.reply);

    // A saver takes the computer's results, so that it can exit at once.
    let _saver = ports.saver(&[]);
    let mut computer = ports.computer("81", &[]);
    assert_eq!(publisher.recv_bytes(0).unwrap(), b"\x01politiche2013 ");
    publisher.send("politiche2013 configure please", 0).unwrap();
    publisher.send("politiche2013 {\"cmd\": \"configure\"}", 0).unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&replies.recv_bytes(0).unwrap()).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"unit": 81, "status": "configured"})
    );
    computer.wait_for_stderr(
        "rejected: command not a JSON object: politiche2013 configure please",
        WAIT,
    );
    computer.stop_cleanly(Signal::SIGTERM, "answered 1 command");
}

#[test]
fn command_rejects_replies_without_a_unit() {
    let ports = Ports::new();
    let mut command = ports.command(&["--expect", "1"]);
    command.wait_for_stdout("Listening to response", WAIT);
    let replies = tests::pusher(&ports.reply);
    replies.send(r#"{"status": "configured"}"#, 0).unwrap();
    // Two frames that would make a reply if joined: one message, rejected.
    replies
        .send_multipart([&br#"{"unit": 6,"#[..], br#" "status": "configured"}"#], 0)
        .unwrap();
    replies.send(r#"{"unit": 7, "status": "configured"}"#, 0).unwrap();
    let command = command.finish_successfully();
    assert_eq!(responded_units(&command.stdout), [7]);
    assert!(
        command.stderr[0].starts_with("rejected: reply bad JSON object (missing field `unit`"),
        "{:?}",
        command.stderr
    );
    assert!(
        command.stderr[1].starts_with(
            "rejected: reply a message of 2 frames (35 bytes) where one frame was expected"
        ),
        "{:?}",
        command.stderr
    );
    assert_eq!(
        command.stderr[2..],
        ["command: 1 computer answered, 2 replies rejected"]
    );
}

#[test]
fn every_program_stops_cleanly_on_sigint_and_sigterm() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let ports = Ports::new();
        let mut saver = ports.saver(&[]);
        let mut computer = ports.computer("91", &["--interval", "10ms"]);
        let mut command = ports.command(&["--expect", "2", "--timeout", "60s"]);
        saver.wait_for_stdout("\"unit\":91", WAIT);
        command.wait_for_stdout("Computer responded", WAIT);
        computer.wait_for_stdout("Sending reply to server", WAIT);

        command.stop_cleanly(signal, "command: stopped; 1 computer answered");
        computer.stop_cleanly(signal, "computer: unit 91 computed");
        saver.stop_cleanly(signal, "results received, 0 rejected");
    }
}

#[test]
fn servers_on_a_taken_port_say_so() {
    let ports = Ports::new();
    let mut saver = ports.saver(&[]);
    saver.wait_for_stdout("Listening", WAIT);
    assert_port_taken(&ports.saver(&[]).finish(WAIT), &ports.save);

    // command binds two ports; the second one is taken here.
    let taken = Ports {
        cmd: free_port().to_string(),
        reply: ports.save.clone(),
        save: ports.save.clone(),
    };
    assert_port_taken(&taken.command(&[]).finish(WAIT), &ports.save);
}
