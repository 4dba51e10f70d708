//! `--store`: the saver and the mailbin keep what they receive in SQLite,
//! rejected messages included, and lose nothing they accepted on a stop.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::time::Instant;

use tests::{Program, Signal, WAIT, free_port};

use crate::fixtures::{Store, valid_form};

/// A saver on `port` that keeps what it receives in `store`.
fn saver(port: &str, store: &Store, extra: &[&str]) -> Program {
    let extra = [&store.flag(), extra].concat();
    Program::start("saver", &tests::listener_args(port, &extra))
}

/// Like [`saver`], once it listens.
fn listening_saver(port: &str, store: &Store, extra: &[&str]) -> Program {
    let mut saver = saver(port, store, extra);
    saver.wait_for_stdout("Listening", WAIT);
    saver
}

/// `received_at` is UTC in ISO 8601: 2026-11-26T23:48:44.123Z.
fn assert_iso_utc(stamps: Vec<String>) {
    assert!(!stamps.is_empty());
    for stamp in stamps {
        let bytes = stamp.as_bytes();
        assert_eq!(bytes.len(), 24, "{stamp}");
        assert_eq!(
            (
                bytes[4], bytes[7], bytes[10], bytes[13], bytes[16], bytes[23]
            ),
            (b'-', b'-', b'T', b':', b':', b'Z'),
            "{stamp}"
        );
    }
}

#[test]
fn saver_stores_what_it_accepts_and_what_it_rejects() {
    let store = Store::new("results.db");
    let port = free_port().to_string();
    let saver = listening_saver(&port, &store, &["--count", "3"]);
    let computer = tests::pusher(&port);
    let messages: [&[u8]; 5] = [
        br#"{"unit": 7, "counter": 0, "x": 0.25, "y": -1.5}"#,
        b"\xff\x00 not json",
        br#"{"unit": 7, "counter": 1, "x": 3, "y": 4e-3, "extra": [1]}"#,
        br#"{"unit": 7}"#,
        br#"{"unit": 8, "counter": 0, "x": -0.0, "y": 1e10}"#,
    ];
    for message in messages {
        computer.send(message, 0).unwrap();
    }
    saver.finish_successfully();

    assert_eq!(
        store.results(),
        [(7, 0, 0.25, -1.5), (7, 1, 3.0, 0.004), (8, 0, -0.0, 1e10)]
    );
    let rejected = store.rejected();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].0, messages[1], "raw bytes, byte for byte");
    assert_eq!(rejected[0].1, "result not a JSON object");
    assert_eq!(rejected[1].0, messages[3]);
    // One reason for every result without a counter, wherever it is missing.
    assert_eq!(
        rejected[1].1,
        "result bad JSON object (missing field `counter`)"
    );
    assert_iso_utc(store.stamps("results"));
    assert_iso_utc(store.stamps("rejected"));
}

#[test]
fn rows_are_committed_while_the_saver_runs() {
    let store = Store::new("results.db");
    let port = free_port().to_string();
    let mut saver = listening_saver(&port, &store, &[]);
    let computer = tests::pusher(&port);
    computer.send(r#"{"unit": 1, "counter": 0, "x": 1, "y": 2}"#, 0).unwrap();
    saver.wait_for_stdout("Computer requested a save", WAIT);

    // Nothing else arrives and nobody stops the saver: the row must still
    // reach the database, for another reader to see.
    let deadline = Instant::now() + WAIT;
    while store.results().is_empty() {
        assert!(Instant::now() < deadline, "the row was never committed");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(saver.is_running());
}

#[test]
fn sigterm_in_a_fast_stream_loses_no_accepted_row() {
    let store = Store::new("results.db");
    let [cmd, reply, save] = tests::free_ports();
    let mut saver = saver(&save, &store, &[]);
    let fast = ["--interval", "0s", "--linger", "0s"];
    let computer_args = tests::computer_args([&cmd, &reply, &save], "5", &fast);
    let _computer = Program::start("computer", &computer_args);
    saver.wait_for_stdout("\"counter\":500,", WAIT);

    let saver = saver.stop_cleanly(Signal::SIGTERM, "results received, 0 rejected");
    let summary = saver.summary().to_owned();
    let accepted = saver.stdout.len() - 1;
    assert_eq!(
        summary,
        format!("saver: {accepted} results received, 0 rejected")
    );
    let stored = store.results();
    assert_eq!(
        stored.len(),
        accepted,
        "every result the saver printed is stored"
    );
    let counters: Vec<i64> = stored.iter().map(|row| row.1).collect();
    assert_eq!(counters, (0..accepted as i64).collect::<Vec<_>>());
}

#[test]
fn a_second_run_appends() {
    let store = Store::new("results.db");
    for counter in 0..2 {
        let port = free_port().to_string();
        let saver = listening_saver(&port, &store, &["--count", "1"]);
        let message = format!(r#"{{"unit": 2, "counter": {counter}, "x": 0, "y": 0}}"#);
        let computer = tests::pusher(&port);
        computer.send(message.as_bytes(), 0).unwrap();
        saver.finish_successfully();
    }
    assert_eq!(store.results(), [(2, 0, 0.0, 0.0), (2, 1, 0.0, 0.0)]);
}

#[test]
fn a_store_that_cannot_be_opened_fails_before_binding() {
    let directory = tempfile::tempdir().unwrap();
    let corrupt = directory.path().join("corrupt.db");
    std::fs::write(
        &corrupt,
        b"this is not an SQLite database, not even close to one",
    )
    .unwrap();
    let missing = directory.path().join("no/such/folder/results.db");
    // Nothing can be created in /proc, even by root.
    let read_only = Path::new("/proc/results.db");

    // The port is taken: had the program bound first, it would say so.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let no_folder = format!(
        "there is no folder {}",
        directory.path().join("no/such/folder").display()
    );
    for (store, reason) in [
        (corrupt.as_path(), "file is not a database"),
        (missing.as_path(), no_folder.as_str()),
        (read_only, "unable to open database file"),
    ] {
        for program in ["saver", "mailbin"] {
            let args = tests::listener_args(&port, &["--store", store.to_str().unwrap()]);
            let finished = Program::start(program, &args).finish(WAIT);
            assert_eq!(finished.code(), Some(1), "{program} {finished:?}");
            assert_eq!(finished.stderr.len(), 1, "{finished:?}");
            let expected = format!("error: cannot open the store {}: {reason}", store.display());
            // SQLite's reason once, not followed by its code's wording.
            let said = &finished.stderr[0];
            assert!(
                said.starts_with(&expected) && !said.contains("Error code"),
                "{said}"
            );
        }
    }
}

#[test]
fn mailbin_stores_valid_forms_and_rejected_messages() {
    let store = Store::new("forms.db");
    let port = free_port().to_string();
    let extra = [&["--count", "2"], &store.flag()[..]].concat();
    let mut mailbin = Program::start("mailbin", &tests::listener_args(&port, &extra));
    mailbin.wait_for_stdout("Mailbin listening", WAIT);
    let faker = tests::pusher(&port);
    faker.send(valid_form("Ada").as_bytes(), 0).unwrap();
    faker
        .send(
            valid_form("Bad").replace("ada@example.org", "nobody").as_bytes(),
            0,
        )
        .unwrap();
    faker.send(valid_form("Grace").as_bytes(), 0).unwrap();
    mailbin.finish_successfully();

    let sql =
        "SELECT first_name, last_name, email, ip, user_agent, service_uri FROM forms ORDER BY id";
    let forms: Vec<[String; 6]> = store.rows(sql, |row| {
        Ok([
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
        ])
    });
    let expected = |name: &str| {
        [
            name,
            "Lovelace",
            "ada@example.org",
            "192.0.2.7",
            "Mozilla/5.0",
            "http://www.voisietequi.it/",
        ]
        .map(String::from)
    };
    assert_eq!(forms, [expected("Ada"), expected("Grace")]);
    let rejected = store.rejected();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].0.starts_with(br#"{"first_name": "Bad""#));
    assert_eq!(
        rejected[0].1,
        r#"form field "email" is not an address local@domain"#
    );
    assert_iso_utc(store.stamps("forms"));
}
