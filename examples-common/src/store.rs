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
//! transaction). The store waits for it, while the program reads on into
//! its [`Backlog`]; when that is full, the program stops reading, its
//! socket's queue fills up and its peers block at their high-water mark,
//! which is ZeroMQ's back-pressure. A second Ctrl-C gives up.
//!
//! Trap: when the disk fills (or fails) in the middle of a transaction,
//! SQLite may roll the whole transaction back by itself. Only a row SQLite
//! refuses for what it holds (a constraint, its size) is a rejection;
//! any other error, or a transaction gone, ends the program, which has
//! printed nothing of the rows lost with it.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};
pub use rusqlite::params;
use rusqlite::{CachedStatement, Connection, ErrorCode, MAIN_DB, ToSql};

use crate::{console, note, stop};

const REJECTED: &str = "CREATE TABLE IF NOT EXISTS rejected (
    id          INTEGER PRIMARY KEY,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

const INSERT_REJECTED: &str =
    "INSERT INTO rejected (payload, reason, received_at) VALUES (?1, ?2, ?3)";

/// How much of a rejected message `rejected` keeps: enough to see what
/// came, and not so much that a peer sending garbage fills the disk at the
/// speed of the network. The reason says when a payload was cut.
pub const REJECTED_BYTES: usize = 4096;

/// What became of an accepted message's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Added (or, without `--store`, as if it were).
    New,
    /// Skipped by `ON CONFLICT DO NOTHING`: the row was there already.
    Duplicate,
    /// Refused by SQLite (too big, a constraint): the message was kept in
    /// `rejected` instead, and said so on stderr.
    Refused,
}

/// An open database or, without `--store`, nothing: then every call does
/// nothing and nothing touches the disk.
pub struct Store {
    database: Option<Database>,
    /// A file this run created, removed at the end unless the program put
    /// it to use ([`Store::in_use`]): a run that could not bind its port
    /// leaves nothing behind.
    made: Option<PathBuf>,
}

struct Database {
    connection: Connection,
    path: PathBuf,
    /// True while another program holds the lock, from the moment the
    /// store said so until it says the store is free again.
    waiting: bool,
}

impl Store {
    /// Opens the database at `path`, creating it and the tables of `schema`
    /// and `rejected` if they are missing; fails at once if it cannot be
    /// written. With no path, stores nothing.
    pub fn open(path: Option<&Path>, schema: &str) -> Result<Store> {
        let Some(path) = path else {
            return Ok(Store {
                database: None,
                made: None,
            });
        };
        let folder = path.parent().filter(|folder| !folder.as_os_str().is_empty());
        if let Some(folder) = folder.filter(|folder| !folder.is_dir()) {
            let (path, folder) = (path.display(), folder.display());
            bail!("cannot open the store {path}: there is no folder {folder}");
        }
        // A device (`/dev/full`), a folder, a pipe: SQLite would write its
        // journal beside it, as `/dev/full-journal`.
        let made = match std::fs::metadata(path) {
            Ok(found) if !found.is_file() => {
                bail!(
                    "cannot open the store {}: not a regular file",
                    path.display()
                )
            }
            Ok(_) => None,
            Err(_) => Some(path.to_owned()),
        };
        let open = || -> rusqlite::Result<Connection> {
            let connection = Connection::open(path)?;
            // A locked database makes a statement fail with "busy" after
            // this long: then the store tries again, looking at Ctrl-C.
            connection.busy_timeout(stop::SLICE)?;
            // Write-ahead logging: `sqlite3` can read while we write, and a
            // commit is one write to the log.
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "synchronous", "NORMAL")?;
            // BEGIN IMMEDIATE takes the write lock: a read-only file fails here.
            connection
                .execute_batch(&format!("BEGIN IMMEDIATE; {schema}; {REJECTED}; COMMIT;"))
                .map(|()| connection)
        };
        let opened = while_locked(path, &mut false, true, open);
        let mut store = Store {
            database: None,
            made,
        };
        let connection = opened.map_err(|error| cannot_open(path, error))?;
        // SQLite opens a file it may not write (its mode, a read-only
        // disk) read-only, and says so only at the first write.
        if connection.is_readonly(MAIN_DB)? {
            bail!(
                "cannot open the store {}: it cannot be written (SQLite opened it read-only)",
                path.display()
            );
        }
        store.database = Some(Database {
            connection,
            path: path.to_owned(),
            waiting: false,
        });
        Ok(store)
    }

    /// Reads one number of the store's (`PRAGMA user_version`): 0 without
    /// `--store`.
    pub fn number(&self, query: &str) -> Result<i64> {
        let Some(database) = &self.database else {
            return Ok(0);
        };
        let read = database.connection.query_row(query, [], |row| row.get(0));
        read.map_err(|error| {
            let path = database.path.display();
            anyhow!("cannot read the store {path}: {}", reason(error))
        })
    }

    /// Changes the store's schema with `statements`, in a transaction of
    /// their own, as [`Store::open`] does (nothing without `--store`).
    pub fn change(&mut self, statements: &str) -> Result<()> {
        let Some(database) = &mut self.database else {
            return Ok(());
        };
        database.begin(true)?;
        let changed = database.connection.execute_batch(statements);
        if changed.is_err() && !database.connection.is_autocommit() {
            let _ = database.connection.execute_batch("ROLLBACK");
        }
        changed.map_err(|error| cannot_open(&database.path, error))?;
        self.commit()
    }

    /// The program serves now, and says where it stores: the store's file
    /// is its own, and stays even if the program ends before it stored a row.
    pub fn in_use(&mut self) {
        self.made = None;
        if let Some(database) = &self.database {
            let (program, path) = (crate::program_name(), database.path.display());
            note!("{program}: storing what it receives in {path}");
        }
    }

    /// Commits every row written since the last commit.
    pub fn commit(&mut self) -> Result<()> {
        let Some(database) = &mut self.database else {
            return Ok(());
        };
        if !database.connection.is_autocommit() {
            if let Err(error) = database.connection.execute_batch("COMMIT") {
                return Err(database.cannot_write(error));
            }
        }
        Ok(())
    }

    /// True while another program holds the lock (the store said so).
    pub fn is_waiting(&self) -> bool {
        self.database.as_ref().is_some_and(|database| database.waiting)
    }

    /// Stores what `backlog` holds, a burst at a time, one transaction
    /// each: `keep` writes an accepted item's row with the [`Writer`] it is
    /// given and returns what to print of it, if anything; rejected
    /// messages go to `rejected`. What to print goes into `kept`, once
    /// committed. While another program holds the lock it stores nothing,
    /// and returns at once, or waits for the lock (`wait`: a program about
    /// to exit).
    pub fn flush<T, P>(
        &mut self,
        backlog: &mut Backlog<T>,
        wait: bool,
        kept: &mut Vec<P>,
        mut keep: impl FnMut(&mut Writer<'_>, T) -> Result<Option<P>>,
    ) -> Result<()> {
        while !backlog.entries.is_empty() {
            if let Some(database) = &mut self.database {
                if !database.begin(wait)? {
                    break;
                }
            }
            let before = kept.len();
            let mut writer = Writer::new(self.database.as_ref());
            let burst = BURST.min(backlog.entries.len());
            for entry in backlog.entries.drain(..burst) {
                match entry {
                    Entry::Accepted(item, bytes) => {
                        backlog.bytes -= bytes;
                        backlog.accepted -= 1;
                        kept.extend(keep(&mut writer, item)?);
                    }
                    Entry::Rejected(message, reason) => {
                        backlog.bytes -= message.len();
                        writer.reject(&message, &reason)?;
                    }
                }
            }
            drop(writer);
            // Nothing of a burst that is not committed is printed.
            if let Err(error) = self.commit() {
                kept.truncate(before);
                return Err(error);
            }
        }
        Ok(())
    }
}

/// The rows of one transaction: each statement prepared once for them all,
/// and the moment they are written, their `received_at`.
pub struct Writer<'a> {
    database: Option<&'a Database>,
    /// The statements prepared, by the address of their SQL (a constant).
    statements: Vec<(usize, CachedStatement<'a>)>,
    received_at: String,
}

impl<'a> Writer<'a> {
    fn new(database: Option<&'a Database>) -> Writer<'a> {
        // Without --store nothing is written, and no clock read.
        let received_at = match database {
            Some(_) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
                let time = DateTime::<Utc>::from(UNIX_EPOCH + now);
                time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            }
            None => String::new(),
        };
        Writer {
            database,
            statements: Vec::new(),
            received_at,
        }
    }

    /// Adds the row of an accepted `message`: `insert` with `values`, then
    /// `received_at`, which the store fills in.
    pub fn insert(
        &mut self,
        insert: &'static str,
        values: &[&dyn ToSql],
        message: &[u8],
    ) -> Result<Stored> {
        let Some(database) = self.database else {
            return Ok(Stored::New);
        };
        match self.execute(insert, values) {
            Ok(0) => Ok(Stored::Duplicate),
            Ok(_) => Ok(Stored::New),
            // Only a row refused for what it holds, in a transaction that
            // goes on, is a rejection.
            Err(error) if refuses_the_row(&error) && !database.connection.is_autocommit() => {
                let reason = format!("SQLite refused the row: {error}");
                console::reject(&reason, message);
                self.reject(message, &reason)?;
                Ok(Stored::Refused)
            }
            Err(error) => Err(database.cannot_write(error)),
        }
    }

    /// True if `query` with `values` finds a row (false without `--store`).
    pub fn contains(&mut self, query: &'static str, values: &[&dyn ToSql]) -> Result<bool> {
        let Some(database) = self.database else {
            return Ok(false);
        };
        let found = prepared(&mut self.statements, database, query)
            .and_then(|statement| statement.exists(values));
        found.map_err(|error| {
            let path = database.path.display();
            anyhow!("cannot read the store {path}: {}", reason(error))
        })
    }

    /// Keeps a rejected message, byte for byte up to [`REJECTED_BYTES`],
    /// with the reason.
    pub fn reject(&mut self, message: &[u8], reason: &str) -> Result<()> {
        let Some(database) = self.database else {
            return Ok(());
        };
        let head = &message[..message.len().min(REJECTED_BYTES)];
        let reason = match head.len() < message.len() {
            true => {
                let (kept, all) = (head.len(), message.len());
                Cow::Owned(format!("{reason} (its first {kept} of {all} bytes)"))
            }
            false => Cow::Borrowed(reason),
        };
        match self.execute(INSERT_REJECTED, params![head, reason]) {
            Ok(_) => Ok(()),
            Err(error) => Err(database.cannot_write(error)),
        }
    }

    /// Runs `sql` with `values`, then `received_at`; returns how many rows
    /// it changed.
    fn execute(&mut self, sql: &'static str, values: &[&dyn ToSql]) -> rusqlite::Result<usize> {
        let database = self.database.ok_or(rusqlite::Error::InvalidQuery)?;
        let statement = prepared(&mut self.statements, database, sql)?;
        for (index, value) in (1..).zip(values) {
            statement.raw_bind_parameter(index, value)?;
        }
        statement.raw_bind_parameter(values.len() + 1, &self.received_at)?;
        statement.raw_execute()
    }
}

/// The statement of `sql` among a transaction's `statements`, prepared on
/// its first use (they are known by the address of their SQL, a constant).
fn prepared<'s, 'a>(
    statements: &'s mut Vec<(usize, CachedStatement<'a>)>,
    database: &'a Database,
    sql: &'static str,
) -> rusqlite::Result<&'s mut CachedStatement<'a>> {
    let key = sql.as_ptr() as usize;
    let at = match statements.iter().position(|(known, _)| *known == key) {
        Some(at) => at,
        None => {
            statements.push((key, database.connection.prepare_cached(sql)?));
            statements.len() - 1
        }
    };
    Ok(&mut statements[at].1)
}

/// How many rows are written in one transaction, at most.
const BURST: usize = 100;

/// How much a backlog holds while the store is locked: enough for a minute
/// of a computer's results at one a millisecond, and a bounded memory.
const QUEUE_MESSAGES: usize = 50_000;
const QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// What a program has read from its socket and not yet stored: its own
/// queue, between the socket and the store.
///
/// Trap: a program that stops reading its socket while its store is
/// locked stops answering its peers' heartbeats, and they give it up, with
/// what their connection carried. So the program reads on into its
/// backlog while the store is locked, up to [`QUEUE_MESSAGES`] messages
/// or [`QUEUE_BYTES`] bytes; then it stops reading, and its peers block at
/// their high-water mark (ZeroMQ's back-pressure).
pub struct Backlog<T> {
    entries: VecDeque<Entry<T>>,
    bytes: usize,
    /// How many entries are accepted messages.
    accepted: usize,
}

enum Entry<T> {
    /// An accepted message, and its size.
    Accepted(T, usize),
    /// A message rejected, with the reason, to be kept in `rejected`.
    Rejected(zmq::Message, String),
}

impl<T> Default for Backlog<T> {
    fn default() -> Self {
        Backlog {
            entries: VecDeque::new(),
            bytes: 0,
            accepted: 0,
        }
    }
}

impl<T> Backlog<T> {
    /// True while the backlog may take another message: a burst's worth
    /// while `store` writes, more while it waits for the lock.
    pub fn has_room(&self, store: &Store) -> bool {
        match store.is_waiting() {
            true => self.entries.len() < QUEUE_MESSAGES && self.bytes < QUEUE_BYTES,
            false => self.entries.len() < BURST,
        }
    }

    /// Keeps an accepted message (`item`, of `bytes`) to be stored.
    pub fn accepted(&mut self, item: T, bytes: usize) {
        self.entries.push_back(Entry::Accepted(item, bytes));
        self.bytes += bytes;
        self.accepted += 1;
    }

    /// Keeps a rejected `message` to be stored in `rejected`, with `reason`.
    pub fn rejected(&mut self, message: zmq::Message, reason: String) {
        self.bytes += message.len();
        self.entries.push_back(Entry::Rejected(message, reason));
    }

    /// How many accepted messages wait to be stored.
    pub fn accepted_waiting(&self) -> usize {
        self.accepted
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Drop for Store {
    /// A program that stops on an error still keeps what it received; a
    /// file this run made and never put to use is removed.
    fn drop(&mut self) {
        let _ = self.commit();
        drop(self.database.take());
        if let Some(made) = &self.made {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut file = made.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

impl Database {
    /// What ends the program when the store cannot be written, with its
    /// path and SQLite's reason (`database or disk is full`).
    fn cannot_write(&self, error: rusqlite::Error) -> anyhow::Error {
        anyhow!(
            "cannot write to the store {}: {}",
            self.path.display(),
            reason(error)
        )
    }

    /// Opens a transaction, unless one is open: true once it is. While
    /// another program holds the lock, says so (once), and waits for it
    /// (`wait`), until a second Ctrl-C or SIGTERM, or returns false.
    fn begin(&mut self, wait: bool) -> Result<bool> {
        if !self.connection.is_autocommit() {
            return Ok(true);
        }
        let connection = &self.connection;
        let begin = || connection.execute_batch("BEGIN IMMEDIATE");
        match while_locked(&self.path, &mut self.waiting, wait, begin) {
            Ok(()) => Ok(true),
            // Not waiting: the caller tries again later.
            Err(error) if is_busy(&error) && stop::signals() < 2 => Ok(false),
            Err(error) => Err(self.cannot_write(error)),
        }
    }
}

/// Tries `attempt` while another program holds the database's lock (each
/// try waits the busy timeout, a slice), saying so on stderr once
/// (`waiting` remembers it), and again when the store is free. Gives up,
/// with SQLite's "busy" error, at a second Ctrl-C or SIGTERM, or at once
/// unless it may `wait`.
fn while_locked<T>(
    path: &Path,
    waiting: &mut bool,
    wait: bool,
    mut attempt: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let (program, path) = (crate::program_name(), path.display());
    loop {
        match attempt() {
            Err(error) if is_busy(&error) && stop::signals() < 2 => {
                if !*waiting {
                    note!(
                        "{program}: the store {path} is locked by another program; waiting for it (a second Ctrl-C gives up)"
                    );
                    *waiting = true;
                }
                if !wait {
                    return Err(error);
                }
            }
            outcome => {
                if outcome.is_ok() && std::mem::take(waiting) {
                    note!("{program}: the store {path} is free again");
                }
                return outcome;
            }
        }
    }
}

/// [`Store::open`] failed because rows already stored break a rule of the
/// schema (a unique index over rows that repeat).
#[derive(Debug)]
struct BreaksSchema(String);

impl std::fmt::Display for BreaksSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BreaksSchema {}

/// True when [`Store::open`] failed because rows already stored break a
/// rule of the schema (a unique index over rows that repeat).
pub fn breaks_schema(error: &anyhow::Error) -> bool {
    error.downcast_ref::<BreaksSchema>().is_some()
}

/// The error of a store that cannot be opened, or whose schema cannot be
/// set: one that breaks a rule of the schema is a [`BreaksSchema`].
fn cannot_open(path: &Path, error: rusqlite::Error) -> anyhow::Error {
    let breaks_schema = error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation);
    let message = format!(
        "cannot open the store {}: {}",
        path.display(),
        reason(error)
    );
    match breaks_schema {
        true => anyhow::Error::new(BreaksSchema(message)),
        false => anyhow!(message),
    }
}

/// SQLite's own message, which says it all ("file is not a database").
fn reason(error: rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message,
        other => other.to_string(),
    }
}

/// True when SQLite refused a row for what it holds (a constraint, its
/// size, a type), not for the state of the disk or the database.
fn refuses_the_row(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch)
    )
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
