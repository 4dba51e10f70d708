//! The store (`--store PATH`; saver and mailbin): an SQLite database that
//! keeps every message a program accepted, in the program's own table, and
//! every message it rejected, raw, with the reason, in `rejected`. It is
//! not ZeroMQ: a tutorial reader may skip it.
//!
//! Rows are written in a transaction that [`Store::commit`] ends. A program
//! commits before it prints what it received, so a printed line is a kept
//! row, even if the program is killed the next instant.
//!
//! Trap: another program may hold the write lock (`sqlite3` in a long
//! transaction). The store waits for it, and the program reads nothing
//! meanwhile: its queue fills up and its peers block at their high-water
//! mark, which is ZeroMQ's back-pressure. A second Ctrl-C gives up.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
pub use rusqlite::params;
use rusqlite::{Connection, ErrorCode, Params};

use crate::{console, note, stop};

const REJECTED: &str = "CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

const INSERT_REJECTED: &str = "INSERT INTO rejected (payload, reason, received_at)
    VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ'))";

/// How much of a message too big even for `rejected` is kept there.
const HEAD_BYTES: usize = 1024;

/// An open database or, without `--store`, nothing: then every call does
/// nothing and nothing touches the disk.
pub struct Store {
    database: Option<(Connection, PathBuf)>,
}

impl Store {
    /// Opens the database at `path`, creating it and the tables of `schema`
    /// and `rejected` if they are missing; fails at once if it cannot be
    /// written. With no path, stores nothing.
    pub fn open(path: Option<&Path>, schema: &str) -> Result<Store> {
        let Some(path) = path else {
            return Ok(Store { database: None });
        };
        let folder = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|folder| !folder.is_dir()) {
            let (path, folder) = (path.display(), folder.display());
            bail!("cannot open the store {path}: there is no folder {folder}");
        }
        let open = || -> rusqlite::Result<Connection> {
            let connection = Connection::open(path)?;
            // Write-ahead logging: `sqlite3` can read while we write, and a
            // commit is one write to the log.
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            // A locked database makes a statement fail with "busy" after
            // this long: then the store tries again, looking at Ctrl-C.
            connection.busy_timeout(stop::SLICE)?;
            // BEGIN IMMEDIATE takes the write lock: a read-only file fails here.
            connection
                .execute_batch(&format!("BEGIN IMMEDIATE; {schema}; {REJECTED}; COMMIT;"))
                .map(|()| connection)
        };
        let connection = open().map_err(|error| {
            // SQLite's own message says it all ("file is not a database").
            let reason = match error {
                rusqlite::Error::SqliteFailure(_, Some(message)) => message,
                other => other.to_string(),
            };
            anyhow::anyhow!("cannot open the store {}: {reason}", path.display())
        })?;
        note!(
            "{}: storing what it receives in {}",
            crate::program_name(),
            path.display()
        );
        Ok(Store {
            database: Some((connection, path.to_owned())),
        })
    }

    /// Adds the row of an accepted `message`: `insert` with `values`. False
    /// if it added none: a duplicate that `ON CONFLICT DO NOTHING` skipped,
    /// or a row SQLite refused (too big, a constraint), kept as a rejection.
    pub fn insert(&mut self, insert: &str, values: impl Params, message: &[u8]) -> Result<bool> {
        let Some((connection, path)) = &mut self.database else {
            return Ok(true);
        };
        begin(connection, path)?;
        let outcome = connection.prepare_cached(insert)?.execute(values);
        match outcome {
            Ok(added) => Ok(added > 0),
            Err(error) => {
                let reason = format!("SQLite refused the row: {error}");
                console::reject(&reason, message);
                self.reject(message, &reason)?;
                Ok(false)
            }
        }
    }

    /// Keeps a rejected message, byte for byte, with the reason.
    pub fn reject(&mut self, message: &[u8], reason: &str) -> Result<()> {
        let Some((connection, path)) = &mut self.database else {
            return Ok(());
        };
        begin(connection, path)?;
        let mut statement = connection.prepare_cached(INSERT_REJECTED)?;
        if statement.execute(params![message, reason]).is_err() {
            let head = &message[..message.len().min(HEAD_BYTES)];
            let reason = format!(
                "{reason} (its first {} of {} bytes)",
                head.len(),
                message.len()
            );
            statement.execute(params![head, reason])?;
        }
        Ok(())
    }

    /// Commits every row written since the last commit.
    pub fn commit(&mut self) -> Result<()> {
        let Some((connection, path)) = &mut self.database else {
            return Ok(());
        };
        if !connection.is_autocommit() {
            connection
                .execute_batch("COMMIT")
                .with_context(|| format!("cannot write to the store {}", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for Store {
    /// A program that stops on an error still keeps what it received.
    fn drop(&mut self) {
        let _ = self.commit();
    }
}

/// Opens a transaction, unless one is open: waits while another program
/// holds the lock, until a second Ctrl-C or SIGTERM.
fn begin(connection: &Connection, path: &Path) -> Result<()> {
    let program = crate::program_name();
    let mut waited = false;
    while connection.is_autocommit() {
        match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) if waited => note!("{program}: the store {} is free again", path.display()),
            Ok(()) => {}
            Err(error) if is_busy(&error) && stop::signals() < 2 => {
                if !waited {
                    note!(
                        "{program}: the store {} is locked by another program; waiting for it (a second Ctrl-C gives up)",
                        path.display()
                    );
                    waited = true;
                }
            }
            Err(error) => {
                return Err(error).context(format!("cannot write to the store {}", path.display()));
            }
        }
    }
    Ok(())
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
