//! The benchmark runs with one command and prints its table. It is not a
//! test of speed: nothing here looks at a number.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::{Program, Signal, WAIT, assert_gone, children_of};

#[test]
fn bench_prints_a_table_with_a_row_for_every_scenario() {
    let args = ["--messages", "300", "--round-trips", "30", "--runs", "1"];
    let bench = Program::start_tool("bench", &args).finish(WAIT);
    assert!(bench.success(), "{}", bench.stderr.join("\n"));
    assert!(
        bench
            .stdout
            .contains(&"| scenario | example | raw zmq loop | ratio | peak RSS |".to_owned()),
        "{}",
        bench.stdout.join("\n")
    );
    for scenario in [
        "request-reply round trip",
        "results stream",
        "weather stream",
        "results stream, saver --store",
        "results stream, --store and --ack-port (raw: --store alone)",
        "results stream, the JSON work alone",
    ] {
        let row = format!("| {scenario} | ");
        let line = bench.stdout.iter().find(|line| line.starts_with(&row));
        let line = line.unwrap_or_else(|| panic!("no row {row:?}: {}", bench.stdout.join("\n")));
        // Every column filled in.
        assert_eq!(line.split(" | ").count(), 5, "{line}");
    }
    let last = bench.stdout.last().unwrap();
    assert!(
        last == "goals met" || last.starts_with("goals missed: "),
        "{last}"
    );
}

#[test]
fn bench_runs_only_the_scenarios_asked_for() {
    let args = ["reqrep", "--round-trips", "10", "--runs", "1"];
    let bench = Program::start_tool("bench", &args).finish(WAIT);
    assert!(bench.success(), "{}", bench.stderr.join("\n"));
    let rows: Vec<&String> = bench
        .stdout
        .iter()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| scenario"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("| request-reply round trip | "));
}

#[test]
fn sigterm_stops_the_bench_and_every_example_it_started() {
    // A stream long enough to be running when the signal comes.
    let args = ["results", "--messages", "100000000", "--runs", "1"];
    let mut bench = Program::start_tool("bench", &args);
    bench.wait_for_stderr("bench: run 1 of 1", WAIT);
    let deadline = std::time::Instant::now() + WAIT;
    let children = loop {
        let children = children_of(bench.id());
        if children.len() >= 2 {
            break children;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "saver and computer expected, found {children:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };

    let bench = bench.stop(Signal::SIGTERM, WAIT);
    assert_eq!(bench.code(), Some(130), "{}", bench.stderr.join("\n"));
    assert!(bench.stderr.last().unwrap().contains("interrupted"));
    assert_gone(&children);
}
