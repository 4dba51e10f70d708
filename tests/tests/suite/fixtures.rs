//! What several test modules set up alike: a store in a folder of its own
//! and the rows it holds, and a valid form.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rusqlite::{Connection, Row};
use tempfile::TempDir;

/// An SQLite store for one test, for `--store`: a file in a fresh folder
/// that is removed with it. The program creates the file.
pub struct Store {
    path: PathBuf,
    _folder: TempDir,
}

impl Store {
    /// A store called `file` ("results.db", "forms.db").
    pub fn new(file: &str) -> Store {
        let folder = tempfile::tempdir().unwrap();
        Store {
            path: folder.path().join(file),
            _folder: folder,
        }
    }

    /// `--store` and the store's path, for a program's command line.
    pub fn flag(&self) -> [&str; 2] {
        ["--store", self.path.to_str().unwrap()]
    }

    /// A connection of the test's own, beside the program's.
    pub fn open(&self) -> Connection {
        Connection::open(&self.path).unwrap()
    }

    /// Every row that `sql` selects, each as `read` takes it.
    pub fn rows<T>(&self, sql: &str, read: impl FnMut(&Row) -> rusqlite::Result<T>) -> Vec<T> {
        let connection = self.open();
        let mut query = connection.prepare(sql).unwrap();
        let rows = query.query_map([], read).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// The stored results, as (unit, counter, x, y), in the order received.
    pub fn results(&self) -> Vec<(i64, i64, f64, f64)> {
        let sql = "SELECT unit, counter, x, y FROM results ORDER BY id";
        self.rows(sql, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
    }

    /// The counters of the stored results, in the order received.
    pub fn counters(&self) -> Vec<i64> {
        let sql = "SELECT counter FROM results ORDER BY id";
        self.rows(sql, |row| row.get(0))
    }

    /// The rejected messages, as (payload, reason), in the order received.
    pub fn rejected(&self) -> Vec<(Vec<u8>, String)> {
        let sql = "SELECT payload, reason FROM rejected ORDER BY id";
        self.rows(sql, |row| Ok((row.get(0)?, row.get(1)?)))
    }

    /// The `received_at` of every row of `table`.
    pub fn stamps(&self, table: &str) -> Vec<String> {
        let sql = format!("SELECT received_at FROM {table}");
        self.rows(&sql, |row| row.get(0))
    }
}

/// A valid form from `first_name` Lovelace. Its date is fixed: any real day
/// is valid, whatever today is.
pub fn valid_form(first_name: &str) -> String {
    format!(
        r#"{{"first_name": "{first_name}", "last_name": "Lovelace", "email": "ada@example.org", "created_at": "20130315",
            "ip": "192.0.2.7", "user_agent": "Mozilla/5.0", "service_uri": "http://www.voisietequi.it/"}}"#
    )
}
