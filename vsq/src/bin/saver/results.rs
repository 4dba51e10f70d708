//! What the saver does with each result it reads: checks it, keeps it in
//! its own queue, stores it with `--store`, counts it, and gives it back to
//! be printed once committed. A tutorial reader may skip it.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use examples_common::store::{self, Backlog, Store, Stored, params};
use examples_common::{Incoming, console, note, stop};
use vsq::Computation;
use vsq::schema::{self, INSERT, INSERT_KEYED, INSERT_UNKEYED, KEYED, ONCE, RESULTS, UNKEYED_ONCE};

use crate::acks::Kept;

/// With --ack-port, a result stored already is sent again, or is another
/// computer's under the same unit: this finds the first.
const SAME: &str = "SELECT 1 FROM results WHERE unit = ?1 AND counter = ?2 AND x = ?3 AND y = ?4";
const SAME_KEYED: &str = "SELECT 1 FROM results WHERE id = ?1 AND x = ?2 AND y = ?3";

/// Opens the `--store` database at `path` (or none), with the results
/// table. With `--ack-port` (`acknowledging`), each (unit, counter) is
/// stored once: a new store (or an empty one) is keyed by the pair
/// ([`schema::key`]); one with rows already gets a unique index over it.
/// Returns the store, and whether it is keyed.
pub fn open_store(path: Option<&Path>, acknowledging: bool) -> Result<(Store, bool)> {
    let mut store = Store::open(path, RESULTS)?;
    if store.number("PRAGMA user_version")? == KEYED {
        return Ok((store, true));
    }
    if !acknowledging {
        return Ok((store, false));
    }
    if store.number("SELECT NOT EXISTS (SELECT 1 FROM results)")? == 1 {
        store.change(&format!("{UNKEYED_ONCE}; PRAGMA user_version = {KEYED}"))?;
        return Ok((store, true));
    }
    store.change(ONCE).map_err(|error| {
        match store::breaks_schema(&error) {
            true => error.context(
                "--ack-port keeps each (unit, counter) once, and this store holds one twice (it was written without --ack-port): use another file",
            ),
            false => error,
        }
    })?;
    Ok((store, false))
}

/// What the saver has read and not yet stored, and its counts.
pub struct Saver {
    store: Store,
    /// A store keyed by unit and counter (see `open_store`).
    keyed: bool,
    /// Results read, each with the message it came in, waiting to be stored.
    backlog: Backlog<(Computation, zmq::Message)>,
    /// The new results stored, to be printed.
    stored: Vec<zmq::Message>,
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
    pub fn new(
        (mut store, keyed): (Store, bool),
        acknowledging: bool,
        count: Option<u64>,
    ) -> Saver {
        // The saver serves: a store it made stays, even with no row.
        store.in_use();
        Saver {
            store,
            keyed,
            backlog: Backlog::default(),
            stored: Vec::new(),
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
    pub fn store(&mut self, stopping: bool) -> Result<std::vec::Drain<'_, zmq::Message>> {
        let Saver {
            store,
            keyed,
            backlog,
            stored: new,
            kept,
            duplicates,
            rejected,
            ..
        } = self;
        store.flush(backlog, stopping, new, |writer, (result, message)| {
            let (unit, counter, x, y) = (result.unit, result.counter, result.x, result.y);
            // Stored, and, when the pair was there already, whether the
            // row there has other values.
            let (mut stored, other_values) = match (*keyed, schema::key(unit, counter)) {
                (false, _) => {
                    let row = params![unit, counter, x, y];
                    let stored = writer.insert(INSERT, row, &message)?;
                    (stored, stored == Stored::Duplicate && !writer.contains(SAME, row)?)
                }
                (true, Some(key)) => {
                    let row = params![key, unit, counter, x, y];
                    let stored = writer.insert(INSERT_KEYED, row, &message)?;
                    let same = params![key, x, y];
                    (stored, stored == Stored::Duplicate && !writer.contains(SAME_KEYED, same)?)
                }
                // Stored under a negative id: acknowledged never, so never
                // sent again by a computer.
                (true, None) => {
                    let row = params![unit, counter, x, y];
                    (writer.insert(INSERT_UNKEYED, row, &message)?, false)
                }
            };
            if other_values {
                // Not sent again: another computer's result. Kept, apart,
                // and acknowledged, so that its computer does not send it
                // for ever.
                let problem = format!(
                    "result of unit {unit} counter {counter} stored already, with other values: another computer uses unit {unit}"
                );
                console::reject(&problem, &message);
                writer.reject(&message, &problem)?;
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
        self.received += self.stored.len() as u64;
        Ok(self.stored.drain(..))
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
