//! The benchmark runs with one command and prints its table. It is not a
//! test of speed: nothing here looks at a number.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tests::{Program, WAIT};

#[test]
fn bench_prints_a_table_with_a_row_for_every_scenario() {
    let args = ["--messages", "300", "--round-trips", "30", "--runs", "1"];
    let bench = Program::start("bench", &args).finish(WAIT);
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
        "results stream, the JSON work alone",
    ] {
        let row = format!("| {scenario} | ");
        let line = bench.stdout.iter().find(|line| line.starts_with(&row));
        let line = line.unwrap_or_else(|| panic!("no row {row:?}: {}", bench.stdout.join("\n")));
        // Either the example ran and has every column, or it could not run
        // with this saver and says why.
        assert!(
            line.split(" | ").count() == 5 || line.contains(" | n/a ("),
            "{line}"
        );
    }
}

#[test]
fn bench_runs_only_the_scenarios_asked_for() {
    let args = ["reqrep", "--round-trips", "10", "--runs", "1"];
    let bench = Program::start("bench", &args).finish(WAIT);
    assert!(bench.success(), "{}", bench.stderr.join("\n"));
    let rows: Vec<&String> = bench
        .stdout
        .iter()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| scenario"))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].starts_with("| request-reply round trip | "));
}
