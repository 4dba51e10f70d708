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
    let tour = Program::start("tour", &[]).finish(TOUR);
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
    // Participants' lines come prefixed with their names, and uncoloured
    // when piped.
    assert!(
        tour.stdout
            .iter()
            .any(|line| line.ends_with("computer-1 | Sending reply to server"))
    );
    assert!(!tour.stdout.join("\n").contains('\x1b'));
}

#[test]
fn tour_runs_one_scenario_when_asked() {
    let tour = Program::start("tour", &["reqrep"]).finish(TOUR);
    assert!(tour.success());
    let closing: Vec<&String> = tour
        .stdout
        .iter()
        .filter(|line| line.starts_with("=== "))
        .collect();
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
    let mut tour = Program::start("tour", &["vsq"]);
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
