//! The store: an SQLite database that keeps every message a program
//! received, accepted ones in the program's own table and rejected ones,
//! raw, with the reason, in `rejected`, so that nothing a peer sent is lost.
//!
//! Rows are written in batches, one transaction each, committed within
//! [`BATCH`] of the first row's arrival: a fast stream costs one commit per
//! batch instead of one per row. Call [`Store::commit`] before exiting.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rusqlite::{Connection, ToSql};

/// How long a received row may wait before it is committed.
pub const BATCH: Duration = Duration::from_millis(100);

const REJECTED: &str = "CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

/// An open database and the batch being written, or, without `--store`,
/// nothing: then every call does nothing and nothing touches the disk.
pub struct Store {
    connection: Option<Connection>,
    /// When the first row of the uncommitted batch arrived.
    batch_started: Option<Instant>,
    clock: Clock,
}

impl Store {
    /// Opens the database at `path`, creating it if missing, and creates the
    /// tables of `schema` and `rejected` if they are not there yet. Fails
    /// at once if the file cannot be written. With no path, stores nothing.
    pub fn open(path: Option<&Path>, schema: &str) -> Result<Store> {
        let Some(path) = path else {
            return Ok(Store {
                connection: None,
                batch_started: None,
                clock: Clock::default(),
            });
        };
        let open = || -> rusqlite::Result<Connection> {
            let connection = Connection::open(path)?;
            // Write-ahead logging lets `sqlite3` read while we write; a
            // commit then needs no sync of the whole database.
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
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
        Ok(Store {
            connection: Some(connection),
            batch_started: None,
            clock: Clock::default(),
        })
    }

    /// Adds a row to the current batch: `insert` is an INSERT statement
    /// whose parameters are `values` and then, last, the row's
    /// `received_at`, which the store fills in.
    pub fn insert(&mut self, insert: &str, values: &[&dyn ToSql]) -> Result<()> {
        let Some(connection) = &self.connection else {
            return Ok(());
        };
        if self.batch_started.is_none() {
            connection
                .execute_batch("BEGIN")
                .context("cannot write to the store")?;
            self.batch_started = Some(Instant::now());
        }
        let mut statement = connection.prepare_cached(insert)?;
        let received_at: &dyn ToSql = &self.clock.now();
        let parameters = values.iter().chain([&received_at]);
        for (index, value) in (1..).zip(parameters) {
            statement.raw_bind_parameter(index, value)?;
        }
        statement.raw_execute().context("cannot store a row")?;
        Ok(())
    }

    /// Keeps a rejected message, byte for byte, with the reason.
    pub fn reject(&mut self, payload: &[u8], reason: &str) -> Result<()> {
        let insert = "INSERT INTO rejected (payload, reason, received_at) VALUES (?1, ?2, ?3)";
        self.insert(insert, &[&payload, &reason])
    }

    /// How long the program may wait before the batch must be committed
    /// (`None`: nothing to commit).
    pub fn commit_due_in(&self) -> Option<Duration> {
        self.batch_started
            .map(|started| BATCH.saturating_sub(started.elapsed()))
    }

    /// Commits the batch if it is [`BATCH`] old.
    pub fn commit_if_due(&mut self) -> Result<()> {
        match self.commit_due_in() {
            Some(left) if left.is_zero() => self.commit(),
            _ => Ok(()),
        }
    }

    /// Commits what was received so far.
    pub fn commit(&mut self) -> Result<()> {
        if let (Some(connection), Some(_)) = (&self.connection, self.batch_started.take()) {
            connection
                .execute_batch("COMMIT")
                .context("cannot commit to the store")?;
        }
        Ok(())
    }
}

/// The time for `received_at`: UTC, ISO 8601, to the millisecond
/// (`2026-11-27T09:15:02.345Z`), as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')`
/// writes it. A stream brings many rows a millisecond: each millisecond's
/// text is written once.
#[derive(Default)]
struct Clock {
    millis: i64,
    text: String,
}

impl Clock {
    fn now(&mut self) -> &str {
        let now = chrono::Utc::now();
        if now.timestamp_millis() != self.millis || self.text.is_empty() {
            self.millis = now.timestamp_millis();
            self.text = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        }
        &self.text
    }
}
