//! The tour: every scenario runs, checks itself and says what it showed;
//! Ctrl-C stops it and everything it started.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tests::{Program, Signal, WAIT, assert_gone, children_of};

/// The whole tour promises to take under 30 seconds; this bound is only
/// there so that a hung tour fails the test.
const TOUR: Duration = Duration::from_secs(90);

#[test]
fn tour_runs_every_scenario_and_each_one_holds() {
    let tour = Program::start_tool("tour", &[]).finish(TOUR);
    assert!(tour.success(), "{}", tour.stdout.join("\n"));
    for scenario in ["reqrep", "pubsub", "vsq", "mailbin"] {
        let closing = format!("=== {scenario}: ok, ");
        assert!(
            tour.stdout.iter().any(|line| line.starts_with(&closing)),
            "no {closing:?}"
        );
    }
    assert!(
        tour.stdout
            .last()
            .unwrap()
            .starts_with("tour: every scenario did what it promised")
    );
    // Participants' lines come prefixed with their binaries' names, and
    // uncoloured when piped.
    for participant in [
        "reqrep_server | Received request: Hello",
        "reqrep_client | Connecting to server...",
        "pub_server | 1000",
        "sub_client-10001 | Collecting updates",
        "sub_client-10002 | Average temperature value for '10002'",
        "saver | Listening to save requests from computers",
        "computer-1 | Sending reply to server",
        "command | Listening to response from configured computers",
        "mailbin | Mailbin received a form from ",
        "faker-2 |   \"service_uri\": \"http://www.voisietequi.it/\"",
    ] {
        first(&tour.stdout, participant);
    }
    assert!(!tour.stdout.join("\n").contains('\x1b'));
    // The binaries were built by this test already: nothing to build.
    assert!(!tour.stdout.iter().any(|line| line.contains("building")));
    assert_causes_come_first(&tour.stdout);
}

/// Where the first line containing `text` is; panics if there is none.
fn first(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no line {text:?} in\n{}", lines.join("\n")))
}

/// Where the last line containing `text` is; panics if there is none.
fn last(lines: &[String], text: &str) -> usize {
    lines
        .iter()
        .rposition(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no line {text:?} in\n{}", lines.join("\n")))
}

/// Asserts that a line that causes another program's line comes first.
/// (One run of the whole tour checks this and the rest: it takes seconds.)
fn assert_causes_come_first(lines: &[String]) {
    let before = |cause: usize, effect: usize| {
        assert!(
            cause < effect,
            "line {cause} should come before line {effect}:\n{}",
            lines.join("\n")
        );
    };
    // Each request comes before the server says it received it.
    let requests: Vec<usize> = (1..=3)
        .map(|i| first(lines, &format!("reqrep_client | Sending request {i} ...")))
        .collect();
    let received: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("reqrep_server | Received request: Hello"))
        .map(|(at, _)| at)
        .collect();
    assert_eq!(received.len(), 3);
    for (request, received) in requests.iter().zip(&received) {
        before(*request, *received);
    }
    before(first(lines, "reqrep_client | Connecting"), requests[0]);

    // The command comes before the computers say they received it, and
    // each reply before command prints it.
    let command = first(lines, "command | politiche2013 {");
    for unit in ["1", "2"] {
        let computer = format!("computer-{unit} | ");
        before(
            command,
            first(lines, &format!("{computer}Message received")),
        );
        before(
            first(lines, &format!("{computer}Sending reply to server")),
            first(lines, &format!("Computer responded: {{\"unit\":{unit},")),
        );
    }

    // Every action of the tour is told before its effects.
    before(
        first(lines, "tour | computer-1 is stopped"),
        first(lines, "computer-1 | computer: waiting for a saver"),
    );
    before(
        first(lines, "tour | computer-2 is stopped"),
        first(lines, "computer-2 | computer: unit 2 computed"),
    );

    // Every form comes before the mailbin's line about it, and the
    // mailbin's summary after its last form.
    let summary = first(lines, "mailbin | mailbin: 6 forms received");
    before(last(lines, "faker-1 | }"), summary);
    before(last(lines, "faker-2 | }"), summary);
    before(last(lines, "mailbin | Mailbin received a form"), summary);
    for (at, line) in lines.iter().enumerate() {
        let Some((_, sender)) = line.split_once("mailbin | Mailbin received a form from ") else {
            continue;
        };
        let first_name = sender.split(' ').next().unwrap();
        before(
            first(lines, &format!("\"first_name\": \"{first_name}\",")),
            at,
        );
    }
}

#[test]
fn tour_runs_one_scenario_when_asked() {
    let tour = Program::start_tool("tour", &["reqrep"]).finish(TOUR);
    assert!(tour.success());
    let closing: Vec<&String> =
        tour.stdout.iter().filter(|line| line.starts_with("=== ")).collect();
    assert_eq!(
        closing,
        [
            "=== reqrep",
            "=== reqrep: ok, 3 requests, 3 replies: REQ and REP took turns"
        ]
    );
}

#[test]
fn ctrl_c_stops_the_tour_and_every_program_it_started() {
    let mut tour = Program::start_tool("tour", &["vsq"]);
    tour.wait_for_stdout("computer-2 | Aye sir", WAIT);
    let children = children_of(tour.id());
    assert!(
        children.len() >= 3,
        "saver and two computers expected, found {children:?}"
    );

    let tour = tour.stop(Signal::SIGINT, WAIT);
    assert_eq!(tour.code(), Some(130), "{}", tour.stdout.join("\n"));
    assert!(tour.stdout.last().unwrap().contains("interrupted"));
    assert_gone(&children);
}
