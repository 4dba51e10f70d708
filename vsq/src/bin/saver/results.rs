//! What the saver does with each result it reads: checks it, stores it
//! with `--store`, counts it, and keeps it to be printed once the burst is
//! committed. A tutorial reader may skip it.

use std::path::Path;

use anyhow::Result;
use examples_common::store::{self, Store, Stored, params};
use examples_common::{Incoming, console, note};
use vsq::Computation;

use crate::acks::Kept;

/// How many waiting results are read between two polls.
const BURST: usize = 100;

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

/// What the saver has read: the results of this burst, and its counts.
pub struct Saver {
    store: Store,
    /// With --ack-port: which results it holds, told only once they are kept.
    kept: Option<Kept>,
    /// --count: stop after this many results.
    count: Option<u64>,
    /// Each result of the burst, and what became of it.
    burst: Vec<(zmq::Message, Stored)>,
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
            kept: acknowledging.then(Kept::default),
            count,
            burst: Vec::with_capacity(BURST),
            received: 0,
            duplicates: 0,
            rejected: 0,
        }
    }

    /// True once `--count` results were received.
    pub fn counted_all(&self) -> bool {
        self.count.is_some_and(|count| self.received >= count)
    }

    /// True while the burst may take one more result.
    pub fn has_room(&self) -> bool {
        let taken = self.received + self.burst.len() as u64;
        self.burst.len() < BURST && self.count.is_none_or(|count| taken < count)
    }

    /// Checks one message: a result goes to the store and waits to be
    /// printed; anything else is rejected at once.
    pub fn read(&mut self, message: Incoming) -> Result<()> {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => vsq::parse_object::<Computation>(&message.first),
        };
        let result = match checked {
            Ok(result) => result,
            Err(problem) => {
                let problem = format!("result {problem}");
                console::reject(&problem, &message.first);
                self.store.reject(&message.first, &problem)?;
                self.rejected += 1;
                return Ok(());
            }
        };
        let (unit, counter) = (result.unit, result.counter);
        let row = params![unit, counter, result.x, result.y];
        let mut stored = self.store.insert(INSERT, row, &message.first)?;
        if stored == Stored::Duplicate && !self.store.contains(SAME, row)? {
            // Not sent again: another computer's result. Kept, apart, and
            // acknowledged, so that its computer does not send it for ever.
            let problem = format!(
                "result of unit {unit} counter {counter} stored already, with other values: another computer uses unit {unit}"
            );
            console::reject(&problem, &message.first);
            self.store.reject(&message.first, &problem)?;
            stored = Stored::Refused;
        }
        // Without --store nothing is looked up: what it holds for
        // acknowledgements tells a result sent again.
        if let Some(kept) = &mut self.kept {
            if !kept.add(unit, counter) && stored == Stored::New {
                stored = Stored::Duplicate;
            }
        }
        if stored == Stored::Refused {
            self.rejected += 1;
        }
        self.burst.push((message.first, stored));
        Ok(())
    }

    /// Commits the burst; returns its new results, to be printed: a
    /// printed result is a stored one.
    pub fn commit(&mut self) -> Result<Vec<zmq::Message>> {
        self.store.commit()?;
        let mut new = Vec::with_capacity(self.burst.len());
        for (message, stored) in self.burst.drain(..) {
            match stored {
                Stored::New => new.push(message),
                Stored::Duplicate => self.duplicates += 1,
                Stored::Refused => {}
            }
        }
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
