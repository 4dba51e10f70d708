//! What the saver does with each result it reads: checks it, keeps it in
//! its own queue, stores it with `--store`, counts it, and gives it back to
//! be printed once committed. A tutorial reader may skip it.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use examples_common::store::{self, Backlog, Store, Stored, params};
use examples_common::{Incoming, console, note, stop};
use vsq::Computation;

use crate::acks::Kept;

/// The saver's table in the `--store` database.
const RESULTS: &str = "CREATE TABLE IF NOT EXISTS results (
    id          INTEGER PRIMARY KEY,
    unit        INTEGER NOT NULL,
    counter     INTEGER NOT NULL,
    x           REAL NOT NULL,
    y           REAL NOT NULL,
    received_at TEXT NOT NULL
)";

/// With --ack-port: one row per (unit, counter). Only then are results sent
/// twice, and only then is the index worth what it costs (see the
/// Performance section in tests/README.md).
const ONCE: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS results_unit_counter ON results (unit, counter)";

/// How each result is stored: the store fills in `received_at`. With
/// --ack-port, a result sent again (see `vsq::ack`) is stored once.
const INSERT: &str = "INSERT INTO results (unit, counter, x, y, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

/// With --ack-port, a result stored already is sent again, or is another
/// computer's under the same unit: this finds the first.
const SAME: &str = "SELECT 1 FROM results WHERE unit = ?1 AND counter = ?2 AND x = ?3 AND y = ?4";

/// Opens the `--store` database at `path` (or none), with the results
/// table and, with `--ack-port` (`acknowledging`), its unique index.
pub fn open_store(path: Option<&Path>, acknowledging: bool) -> Result<Store> {
    let schema = match acknowledging {
        true => format!("{RESULTS}; {ONCE}"),
        false => RESULTS.to_owned(),
    };
    Store::open(path, &schema).map_err(|error| {
        match acknowledging && store::breaks_schema(&error) {
            true => error.context(
                "--ack-port keeps each (unit, counter) once, and this store holds one twice (it was written without --ack-port): use another file",
            ),
            false => error,
        }
    })
}

/// What the saver has read and not yet stored, and its counts.
pub struct Saver {
    store: Store,
    /// Results read, each with the message it came in, waiting to be stored.
    backlog: Backlog<(Computation, zmq::Message)>,
    /// With --ack-port: which results it holds, told only once they are kept.
    kept: Option<Kept>,
    /// --count: stop after this many results.
    count: Option<u64>,
    received: u64,
    /// Results received again (known with --store or --ack-port), kept once.
    duplicates: u64,
    rejected: u64,
}

impl Saver {
    /// A saver that keeps what it reads in `store`, that holds what it
    /// kept for acknowledgements with --ack-port (`acknowledging`), and that
    /// stops after `count` results.
    pub fn new(mut store: Store, acknowledging: bool, count: Option<u64>) -> Saver {
        // The saver serves: a store it made stays, even with no row.
        store.in_use();
        Saver {
            store,
            backlog: Backlog::default(),
            kept: acknowledging.then(Kept::default),
            count,
            received: 0,
            duplicates: 0,
            rejected: 0,
        }
    }

    /// True once `--count` results were received.
    pub fn counted_all(&self) -> bool {
        self.count.is_some_and(|count| self.received >= count)
    }

    /// How long the next poll may wait: for ever, or a slice while
    /// results wait for a locked store, or a computer for its welcome.
    pub fn patience(&self) -> Option<Duration> {
        let owed = self.kept.as_ref().is_some_and(Kept::owes_a_welcome);
        (!self.backlog.is_empty() || owed).then_some(stop::SLICE)
    }

    /// True while the saver may read one more message: its queue has room
    /// (every message, when `stopping`) and --count is not reached.
    pub fn has_room(&self, stopping: bool) -> bool {
        let taken = self.received + self.backlog.accepted_waiting() as u64;
        (stopping || self.backlog.has_room(&self.store))
            && self.count.is_none_or(|count| taken < count)
    }

    /// Checks one message: a result waits in the queue to be stored; any
    /// other message is rejected at once, and waits to be kept in `rejected`.
    pub fn read(&mut self, message: Incoming) {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => vsq::parse_object::<Computation>(&message.first),
        };
        let bytes = message.first.len();
        match checked {
            Ok(result) => self.backlog.accepted((result, message.first), bytes),
            Err(problem) => {
                let problem = format!("result {problem}");
                console::reject(&problem, &message.first);
                self.backlog.rejected(message.first, problem);
                self.rejected += 1;
            }
        }
    }

    /// Stores the queue, a burst at a time; returns the new results, once
    /// committed, to be printed: a printed result is a stored one. While
    /// another program holds the lock, stores nothing, unless `stopping`:
    /// then it waits for the lock (until a second Ctrl-C).
    pub fn store(&mut self, stopping: bool) -> Result<Vec<zmq::Message>> {
        let Saver {
            store,
            backlog,
            kept,
            duplicates,
            rejected,
            ..
        } = self;
        let new = store.flush(backlog, stopping, |store, (result, message)| {
            let (unit, counter) = (result.unit, result.counter);
            let row = params![unit, counter, result.x, result.y];
            let mut stored = store.insert(INSERT, row, &message)?;
            if stored == Stored::Duplicate && !store.contains(SAME, row)? {
                // Not sent again: another computer's result. Kept, apart,
                // and acknowledged, so that its computer does not send it
                // for ever.
                let problem = format!(
                    "result of unit {unit} counter {counter} stored already, with other values: another computer uses unit {unit}"
                );
                console::reject(&problem, &message);
                store.reject(&message, &problem)?;
                stored = Stored::Refused;
            }
            // Without --store nothing is looked up: what it holds for
            // acknowledgements tells a result sent again.
            if let Some(kept) = kept {
                if !kept.add(unit, counter) && stored == Stored::New {
                    stored = Stored::Duplicate;
                }
            }
            Ok(match stored {
                Stored::New => Some(message),
                Stored::Duplicate => {
                    *duplicates += 1;
                    None
                }
                Stored::Refused => {
                    *rejected += 1;
                    None
                }
            })
        })?;
        self.received += new.len() as u64;
        Ok(new)
    }

    /// With --ack-port, says on `ack_sender` which results it now holds
    /// (after the commit, and the print).
    pub fn acknowledge(&mut self, ack_sender: Option<&zmq::Socket>) -> Result<()> {
        match (&mut self.kept, ack_sender) {
            (Some(kept), Some(ack_sender)) => kept.acknowledge(ack_sender),
            _ => Ok(()),
        }
    }

    /// With --ack-port, tells each computer that subscribed to `ack_sender`
    /// what is held for its unit.
    pub fn welcome(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        match &mut self.kept {
            Some(kept) => kept.welcome(ack_sender),
            None => Ok(()),
        }
    }

    /// `saver: 42 results received, 3 duplicates, 0 rejected` on stderr.
    pub fn summary(&self) {
        let duplicates = match self.duplicates {
            0 => String::new(),
            n => format!(", {}", console::count(n, ["duplicate", "duplicates"])),
        };
        note!(
            "saver: {} received{duplicates}, {} rejected",
            console::count(self.received, ["result", "results"]),
            self.rejected
        );
    }
}
