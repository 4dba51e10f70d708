//! The store: an SQLite database that keeps every message a program
//! received, accepted ones in the program's own table and rejected ones,
//! raw, with the reason, in `rejected`, so that nothing a peer sent is lost.
//!
//! The database has a thread of its own, the writer: [`Store::insert`]
//! hands it the row over a channel and returns, so the receive loop never
//! waits for the disk, and the two share the machine's cores. The writer
//! commits in batches, one transaction each, within [`BATCH`] of the first
//! row's arrival: a fast stream costs one commit per batch instead of one
//! per row. [`Store::close`] waits until the last row is committed.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
pub use rusqlite::types::Value;

/// How long a received row may wait before it is committed.
pub const BATCH: Duration = Duration::from_millis(100);

/// How many waiting rows the writer inserts between two looks at the clock.
const BURST: usize = 100;

/// How many rows may wait for the writer: when the disk is slower than the
/// stream, [`Store::insert`] waits, and the senders' queues fill up.
const WAITING_ROWS: usize = 4096;

const REJECTED: &str = "CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

const INSERT_REJECTED: &str =
    "INSERT INTO rejected (payload, reason, received_at) VALUES (?1, ?2, ?3)";

/// The way to an open database, or, without `--store`, nothing: then every
/// call does nothing and nothing touches the disk.
pub struct Store {
    writer: Option<Writer>,
}

/// The writer thread, and the channel to it.
struct Writer {
    rows: SyncSender<Row>,
    thread: JoinHandle<Result<()>>,
}

/// One row for the writer: its INSERT statement, whose parameters are the
/// values and then, last, `received_at`.
struct Row {
    insert: &'static str,
    values: Vec<Value>,
    received_at: SystemTime,
}

impl Store {
    /// Opens the database at `path`, creating it if missing, and creates the
    /// tables of `schema` and `rejected` if they are not there yet. Fails
    /// at once if the file cannot be written. With no path, stores nothing.
    pub fn open(path: Option<&Path>, schema: &str) -> Result<Store> {
        let Some(path) = path else {
            return Ok(Store { writer: None });
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
        let (rows, received) = std::sync::mpsc::sync_channel(WAITING_ROWS);
        let thread = std::thread::Builder::new()
            .name("store".to_owned())
            .spawn(move || write(&connection, &received))
            .context("cannot start the store's writer thread")?;
        Ok(Store {
            writer: Some(Writer { rows, thread }),
        })
    }

    /// Stores a row received now: `insert` is an INSERT statement whose
    /// parameters are `values` and then, last, `received_at`, which the
    /// store fills in.
    pub fn insert(&mut self, insert: &'static str, values: Vec<Value>) -> Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let row = Row {
            insert,
            values,
            received_at: SystemTime::now(),
        };
        if writer.rows.send(row).is_err() {
            // The writer stopped, and says why.
            return self.close();
        }
        Ok(())
    }

    /// Keeps a rejected message, byte for byte, with the reason.
    pub fn reject(&mut self, payload: &[u8], reason: &str) -> Result<()> {
        let values = vec![payload.to_vec().into(), reason.to_owned().into()];
        self.insert(INSERT_REJECTED, values)
    }

    /// Waits until every row stored so far is committed; call it before
    /// exiting. Says what went wrong if the writer failed.
    pub fn close(&mut self) -> Result<()> {
        let Some(Writer { rows, thread }) = self.writer.take() else {
            return Ok(());
        };
        // Closing the channel tells the writer to commit and stop.
        drop(rows);
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the store's writer thread panicked"))?
    }
}

impl Drop for Store {
    /// A program that stops on an error still commits what it received.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The writer thread: each turn of its loop is one batch, one transaction,
/// from the first row that comes until [`BATCH`] later; the channel's
/// closing commits the last one.
fn write(connection: &Connection, rows: &Receiver<Row>) -> Result<()> {
    let mut clock = Clock::default();
    while let Ok(first) = rows.recv() {
        connection
            .execute_batch("BEGIN")
            .context("cannot write to the store")?;
        let deadline = Instant::now() + BATCH;
        insert(connection, &mut clock, first)?;
        let closed = loop {
            // What is waiting already, a burst at a time between two looks
            // at the clock: read for every row, the clock took a tenth of
            // the writer's time.
            for row in rows.try_iter().take(BURST) {
                insert(connection, &mut clock, row)?;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break false;
            }
            match rows.recv_timeout(left) {
                Ok(row) => insert(connection, &mut clock, row)?,
                Err(RecvTimeoutError::Timeout) => break false,
                Err(RecvTimeoutError::Disconnected) => break true,
            }
        };
        connection
            .execute_batch("COMMIT")
            .context("cannot commit to the store")?;
        if closed {
            break;
        }
    }
    Ok(())
}

/// Inserts one row, `received_at` last.
fn insert(connection: &Connection, clock: &mut Clock, row: Row) -> Result<()> {
    let mut insert = || -> rusqlite::Result<()> {
        let mut statement = connection.prepare_cached(row.insert)?;
        for (index, value) in (1..).zip(&row.values) {
            statement.raw_bind_parameter(index, value)?;
        }
        let received_at = clock.text(row.received_at);
        statement.raw_bind_parameter(row.values.len() + 1, received_at)?;
        statement.raw_execute().map(drop)
    };
    insert().context("cannot store a row")
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
