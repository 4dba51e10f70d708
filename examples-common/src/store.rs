//! The store: an SQLite database that keeps every message a program
//! received, accepted ones in the program's own table and rejected ones,
//! raw, with the reason, in `rejected`, so that nothing a peer sent is lost.
//!
//! Rows wait in memory until [`Store::commit`], which writes them in one
//! transaction; a program commits before it prints what it received, so a
//! printed line is a committed row, even if the program is killed.
//!
//! Trap: another program may hold the database's write lock (`sqlite3`
//! running a long transaction, say). The store then waits for the lock
//! instead of failing, and the program does not read its socket meanwhile:
//! its queue fills up, and the peers block at their high-water mark, which
//! is ZeroMQ's back-pressure. Only a second Ctrl-C or SIGTERM gives up.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
pub use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};

use crate::{note, stop};

const REJECTED: &str = "CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

const INSERT_REJECTED: &str =
    "INSERT INTO rejected (payload, reason, received_at) VALUES (?1, ?2, ?3)";

/// How much of a row SQLite refused is kept, as text, in `rejected`.
const REFUSED_BYTES: usize = 1024;

/// An open database, or, without `--store`, nothing: then every call does
/// nothing and nothing touches the disk.
pub struct Store {
    database: Option<Database>,
}

struct Database {
    connection: Connection,
    path: PathBuf,
    /// Rows received since the last commit.
    rows: Vec<Row>,
    clock: Clock,
}

/// One row: its INSERT statement, whose parameters are the values and
/// then, last, `received_at`.
struct Row {
    insert: &'static str,
    values: Vec<Value>,
    received_at: SystemTime,
    /// An accepted message (not a rejection), whose fate commit reports.
    accepted: bool,
}

impl Store {
    /// Opens the database at `path`, creating it if missing, and creates the
    /// tables of `schema` and `rejected` if they are not there yet. Fails
    /// at once if the file cannot be written. With no path, stores nothing.
    pub fn open(path: Option<&Path>, schema: &str) -> Result<Store> {
        let Some(path) = path else {
            return Ok(Store { database: None });
        };
        let folder = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|folder| !folder.is_dir()) {
            bail!(
                "cannot open the store {}: there is no folder {}",
                path.display(),
                folder.display()
            );
        }
        let open = || -> rusqlite::Result<Connection> {
            let connection = Connection::open(path)?;
            // Write-ahead logging lets `sqlite3` read while we write, and
            // makes a commit cheap: one write to the log, no sync.
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            // A locked database makes a statement wait this long, then
            // fail with "busy": the store tries again, looking at Ctrl-C.
            connection.busy_timeout(stop::SLICE)?;
            // BEGIN IMMEDIATE takes the write lock: a read-only file fails here.
            connection.execute_batch(&format!("BEGIN IMMEDIATE; {schema}; {REJECTED}; COMMIT;"))?;
            Ok(connection)
        };
        let connection = open().map_err(|error| {
            // SQLite's own message says it all ("file is not a database").
            let reason = match error {
                rusqlite::Error::SqliteFailure(_, Some(message)) => message,
                other => other.to_string(),
            };
            anyhow::anyhow!("cannot open the store {}: {reason}", path.display())
        })?;
        let program = crate::program_name();
        note!("{program}: storing what it receives in {}", path.display());
        Ok(Store {
            database: Some(Database {
                connection,
                path: path.to_owned(),
                rows: Vec::new(),
                clock: Clock::default(),
            }),
        })
    }

    /// Keeps a row received now, until the next [`Store::commit`]: `insert`
    /// is an INSERT statement whose parameters are `values` and then, last,
    /// `received_at`, which the store fills in.
    pub fn insert(&mut self, insert: &'static str, values: Vec<Value>) {
        self.keep(insert, values, true);
    }

    /// Keeps a rejected message, byte for byte, with the reason.
    pub fn reject(&mut self, payload: &[u8], reason: &str) {
        let values = vec![payload.to_vec().into(), reason.to_owned().into()];
        self.keep(INSERT_REJECTED, values, false);
    }

    fn keep(&mut self, insert: &'static str, values: Vec<Value>, accepted: bool) {
        if let Some(database) = &mut self.database {
            database.rows.push(Row {
                insert,
                values,
                received_at: SystemTime::now(),
                accepted,
            });
        }
    }

    /// Writes every row kept since the last commit, in one transaction, and
    /// says of each [`Store::insert`]ed row, in order, whether it added a
    /// row (false: its INSERT changed nothing, as `ON CONFLICT DO NOTHING`
    /// does for a duplicate). Without a database the list is empty.
    /// While another program holds the lock it waits; a second Ctrl-C or
    /// SIGTERM gives up, and then the rows are lost and it says how many.
    pub fn commit(&mut self) -> Result<Vec<bool>> {
        let Some(database) = &mut self.database else {
            return Ok(Vec::new());
        };
        let mut waited = false;
        let added = loop {
            match database.write() {
                Ok(added) => break added,
                Err(error) if is_busy(&error) => {
                    if !waited {
                        note!(
                            "{}: the store {} is locked by another program; waiting for it (a second Ctrl-C gives up)",
                            crate::program_name(),
                            database.path.display()
                        );
                        waited = true;
                    }
                    if stop::signals() >= 2 {
                        let rows = database.rows.len();
                        database.rows.clear();
                        bail!(
                            "{rows} received rows not stored: the store {} is locked",
                            database.path.display()
                        );
                    }
                }
                Err(error) => {
                    return Err(error).context(format!(
                        "cannot write to the store {}",
                        database.path.display()
                    ));
                }
            }
        };
        if waited {
            note!(
                "{}: the store {} is free again",
                crate::program_name(),
                database.path.display()
            );
        }
        database.rows.clear();
        Ok(added)
    }
}

impl Drop for Store {
    /// A program that stops on an error still commits what it received.
    fn drop(&mut self) {
        let _ = self.commit();
    }
}

impl Database {
    /// One transaction: every row, or none if the lock cannot be had.
    fn write(&mut self) -> rusqlite::Result<Vec<bool>> {
        let mut added = Vec::new();
        if self.rows.is_empty() {
            return Ok(added);
        }
        let transaction = self
            .connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for row in &self.rows {
            let received_at = self.clock.text(row.received_at);
            let outcome = insert(&transaction, row.insert, &row.values, received_at);
            if row.accepted {
                added.push(matches!(outcome, Ok(changed) if changed > 0));
            }
            match outcome {
                Ok(_) => {}
                Err(error) if is_busy(&error) => return Err(error),
                // A row SQLite refuses (too big, a constraint) is a
                // rejection: the store goes on.
                Err(error) => {
                    let mut shown = format!("{:?}", row.values);
                    let cut = (0..=REFUSED_BYTES.min(shown.len()))
                        .rev()
                        .find(|&index| shown.is_char_boundary(index));
                    shown.truncate(cut.unwrap_or(0));
                    let reason = format!("SQLite refused the row: {error}");
                    crate::console::reject(&reason, shown.as_bytes());
                    let values = [shown.into_bytes().into(), reason.into()];
                    insert(&transaction, INSERT_REJECTED, &values, received_at)?;
                }
            }
        }
        transaction.commit()?;
        Ok(added)
    }
}

/// Runs one INSERT: the values, then `received_at`; returns how many rows
/// it added.
fn insert(
    connection: &Connection,
    insert: &str,
    values: &[Value],
    received_at: &str,
) -> rusqlite::Result<usize> {
    let mut statement = connection.prepare_cached(insert)?;
    for (index, value) in (1..).zip(values) {
        statement.raw_bind_parameter(index, value)?;
    }
    statement.raw_bind_parameter(values.len() + 1, received_at)?;
    statement.raw_execute()
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The text of `received_at`: UTC, ISO 8601, to the millisecond
/// (`2026-11-27T09:15:02.345Z`), as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')`
/// writes it. A stream brings many rows a millisecond: each millisecond's
/// text is written once.
#[derive(Default)]
struct Clock {
    millis: u128,
    text: String,
}

impl Clock {
    fn text(&mut self, time: SystemTime) -> &str {
        let millis = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        if millis != self.millis || self.text.is_empty() {
            self.millis = millis;
            let time = DateTime::<Utc>::from(time);
            self.text = time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_row_sqlite_refuses_is_a_rejection_and_the_store_goes_on() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("small.db");
        let schema = "CREATE TABLE IF NOT EXISTS small (
            n INTEGER NOT NULL CHECK (n < 10), received_at TEXT NOT NULL)";
        let insert = "INSERT INTO small (n, received_at) VALUES (?1, ?2)";
        let mut store = Store::open(Some(&path), schema).unwrap();
        for n in [1, 20, 3] {
            store.insert(insert, vec![Value::Integer(n)]);
        }
        assert_eq!(store.commit().unwrap(), [true, false, true]);
        store.insert(insert, vec![Value::Integer(4)]);
        assert_eq!(store.commit().unwrap(), [true]);

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
        assert_eq!(payload, b"[Integer(20)]");
        assert!(reason.starts_with("SQLite refused the row: "), "{reason}");
    }
}
