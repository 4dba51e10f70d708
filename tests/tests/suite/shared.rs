//! The shared crate's own pieces, tried directly: how a payload is shown on
//! one line, and a row SQLite refuses.

use examples_common::console::{shown, whole};
use examples_common::store::{Backlog, Store, Stored, params};
use rusqlite::Connection;

#[test]
fn printable_text_is_shown_as_it_is() {
    assert_eq!(shown("10001 -5 °C".as_bytes()), "10001 -5 °C");
}

#[test]
fn control_and_invalid_bytes_are_escaped_on_one_line() {
    assert_eq!(shown(b"a\nb\xff\x00"), "a\\nb\\xff\\x00");
}

#[test]
fn characters_that_reorder_or_break_a_line_are_escaped_and_others_shown() {
    // A right-to-left override and a line separator: a line could show
    // what the payload does not say, or be two lines.
    let tricky = "a\u{202e}b\u{2028}c";
    assert_eq!(
        shown(tricky.as_bytes()),
        "a\\xe2\\x80\\xaeb\\xe2\\x80\\xa8c"
    );
    let typographic = "\u{201c}quoted\u{201d} \u{2014} 10\u{2009}\u{20ac}";
    assert_eq!(shown(typographic.as_bytes()), typographic);
}

#[test]
fn whole_payloads_are_escaped_and_never_cut() {
    let long = format!("{}\n", "x".repeat(1000));
    assert_eq!(whole(long.as_bytes()), format!("{}\\n", "x".repeat(1000)));
}

#[test]
fn long_payloads_are_cut_after_200_bytes() {
    let text = shown(&[b'x'; 1000]);
    assert_eq!(text, format!("{}... (1000 bytes)", "x".repeat(200)));
}

#[test]
fn a_row_sqlite_refuses_is_a_rejection_and_the_store_goes_on() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("small.db");
    let schema = "CREATE TABLE IF NOT EXISTS small (
        n INTEGER NOT NULL CHECK (n < 10), received_at TEXT NOT NULL)";
    const INSERT: &str = "INSERT INTO small (n, received_at) VALUES (?1, ?2)";
    let mut store = Store::open(Some(&path), schema).unwrap();
    store.in_use();
    // Two bursts: 1, 20 and 3, then 4.
    let mut stored = Vec::new();
    for burst in [&[1, 20, 3][..], &[4]] {
        let mut backlog = Backlog::default();
        for &n in burst {
            backlog.accepted(n, 1);
        }
        let kept = store.flush(&mut backlog, true, &mut stored, |writer, n: i64| {
            let message = format!("n={n}");
            Ok(Some(writer.insert(
                INSERT,
                params![n],
                message.as_bytes(),
            )?))
        });
        kept.unwrap();
    }
    assert_eq!(
        stored,
        [Stored::New, Stored::Refused, Stored::New, Stored::New]
    );
    drop(store);

    let connection = Connection::open(&path).unwrap();
    let stored: Vec<i64> = connection
        .prepare("SELECT n FROM small ORDER BY rowid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored, [1, 3, 4]);
    let (payload, reason): (Vec<u8>, String) = connection
        .query_row("SELECT payload, reason FROM rejected", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(payload, b"n=20");
    assert!(reason.starts_with("SQLite refused the row: "), "{reason}");
}
