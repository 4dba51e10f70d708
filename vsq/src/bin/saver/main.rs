//! Voisietequi saver: binds a PULL socket on tcp://*:5558 and prints every
//! result that computers push to it, read through a poller.
//!
//! ```text
//!  #------------#  #------------#  #------------#
//!  |  Computer  |  |  Computer  |  |  Computer  |
//!  +------------+  +------------+  +------------+
//!  |    PUSH    |  |    PUSH    |  |    PUSH    |
//!  '-----+------'  '-----+------'  '-----+------'
//!   connect:5558    connect:5558    connect:5558
//!        |               |               |
//!        '---------------+---------------'
//!                        |
//!                     results
//!                        v
//!                    bind:5558
//!                 .-------------.
//!                 |    PULL     |
//!                 +-------------+
//!                 |    Server   |
//!                 #-------------#
//! ```
//!
//! Computers connect to the saver, so it may start before or after them:
//! results pushed while no saver runs wait in the computers' queues and
//! arrive as soon as it starts.
//!
//! With `--store results.db` every result is also kept in an SQLite
//! database, and so is every rejected message, with the reason. A result
//! is printed once its row is committed: a printed result is a kept one.
//!
//! Ctrl-C stops it cleanly: it stops accepting, then keeps and prints what
//! had already reached it. What was still on the network is lost: PUSH and
//! PULL have no acknowledgement.
//!
//! Run with `cargo run --release --bin saver`, with one or more `computer`s in
//! other terminals. Ctrl-C stops it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use examples_common::store::{self, Store, Stored, params};
use examples_common::{Incoming, Poller, cli, console, note, say};
use vsq::Computation;

/// Receives the computers' results on a PULL socket and prints them.
#[derive(Debug, Parser)]
#[command(name = "saver", version)]
struct Args {
    /// Port to listen on for results
    #[arg(long, default_value_t = examples_common::SAVE_PORT, value_parser = cli::port())]
    port: u16,
    /// Address to bind, `*` for every interface
    #[arg(long, value_name = "ADDR", default_value = "*")]
    bind: String,
    /// Stop after this many results (default: serve forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    count: Option<u64>,
    /// Also keep every result, and every rejected message, in this SQLite database
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Also publish on this port which results are kept, for computers started
    /// with the same --ack-port (default: no acknowledgements, as the original)
    #[arg(long, value_name = "PORT", value_parser = cli::port())]
    ack_port: Option<u16>,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| save(&args))
}

/// How each result is stored: the store fills in `received_at`. With --ack-port, a result sent again (see
/// `vsq::ack`) is stored once.
const INSERT: &str = "INSERT INTO results (unit, counter, x, y, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

/// With --ack-port, a result stored already is sent again, or is another
/// computer's under the same unit: this finds the first.
const SAME: &str = "SELECT 1 FROM results WHERE unit = ?1 AND counter = ?2 AND x = ?3 AND y = ?4";

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
/// twice, and only then is the index worth what it costs (see the README's
/// Performance section).
const ONCE: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS results_unit_counter ON results (unit, counter)";

fn save(args: &Args) -> Result<ExitCode> {
    // Open the store first: if it cannot be written, say so before binding.
    let schema = match args.ack_port {
        Some(_) => format!("{RESULTS}; {ONCE}"),
        None => RESULTS.to_owned(),
    };
    let mut store = Store::open(args.store.as_deref(), &schema).map_err(|error| {
        match args.ack_port.is_some() && store::breaks_schema(&error) {
            true => error.context(
                "--ack-port keeps each (unit, counter) once, and this store holds one twice (it was written without --ack-port): use another file",
            ),
            false => error,
        }
    })?;

    let context = zmq::Context::new();
    // Socket to receive the computers' save requests (named as in saver.py).
    let req_receiver = examples_common::receiver(&context, zmq::PULL, &args.limit)?;
    examples_common::bind(&req_receiver, &examples_common::tcp(&args.bind, args.port))?;

    // With --ack-port, a PUB socket tells computers what is kept (see
    // vsq::ack); an XPUB, which also says who subscribes.
    let ack_sender = match args.ack_port {
        Some(port) => {
            let ack_sender = examples_common::receiver(&context, zmq::XPUB, &args.limit)?;
            ack_sender.set_xpub_verbose(true)?;
            // The last acknowledgements go out at exit, if a computer is there
            // to take them within a second.
            ack_sender.set_linger(1000)?;
            // Trap: a PUB socket drops what a slow subscriber has no room
            // for. Acknowledgements are small: give them room (a lost one
            // costs a resend, after --ack-timeout).
            ack_sender.set_sndhwm(vsq::ack::HWM)?;
            examples_common::bind(&ack_sender, &examples_common::tcp(&args.bind, port))?;
            Some(ack_sender)
        }
        None => None,
    };

    let mut poller = Poller::new();
    let req_index = poller.register(&req_receiver);
    let subscriptions_index = ack_sender.as_ref().map(|socket| poller.register(socket));
    say!("Listening to save requests from computers");

    let mut saver = Saver {
        acknowledging: args.ack_port.is_some(),
        ..Saver::default()
    };
    let ack_sender = ack_sender.as_ref();
    // The loop's error (a store given up) waits until the summary is out.
    let served = (|| -> Result<()> {
        while args.count.is_none_or(|count| saver.received < count) {
            // socks = dict(poller.poll()): false on Ctrl-C.
            if !poller.poll(None)? {
                // Ctrl-C: a clean stop. Take no more, and keep what reached us already.
                examples_common::stop_accepting(&req_receiver)?;
                while let Some(message) = examples_common::take(&req_receiver)? {
                    saver.read(message, &mut store)?;
                }
                return saver.keep(&mut store, ack_sender);
            }
            if poller.is_readable(req_index) {
                // Take what is waiting, up to a burst, before polling again: a
                // stream then costs one poll and one commit per burst, not per result.
                let room = |saver: &Saver| {
                    let taken = saver.received + saver.burst.len() as u64;
                    saver.burst.len() < BURST && args.count.is_none_or(|count| taken < count)
                };
                while room(&saver) {
                    // message = req_receiver.recv(), without waiting.
                    match examples_common::take(&req_receiver)? {
                        Some(message) => saver.read(message, &mut store)?,
                        None => break,
                    }
                }
                saver.keep(&mut store, ack_sender)?;
            }
            if let (Some(index), Some(ack_sender)) = (subscriptions_index, ack_sender) {
                if poller.is_readable(index) {
                    saver.welcome(ack_sender)?;
                }
            }
        }
        Ok(())
    })();
    let duplicates = match saver.duplicates {
        0 => String::new(),
        n => format!(", {}", console::count(n, ["duplicate", "duplicates"])),
    };
    note!(
        "saver: {} received{duplicates}, {} rejected",
        console::count(saver.received, ["result", "results"]),
        saver.rejected
    );
    served.map(|()| ExitCode::SUCCESS)
}

/// What the saver has read: the results of this burst, and its counts.
#[derive(Default)]
struct Saver {
    /// Each result, and what became of it.
    burst: Vec<(zmq::Message, Stored)>,
    received: u64,
    /// Results received again (known with --store or --ack-port), kept once.
    duplicates: u64,
    rejected: u64,
    /// With --ack-port: which results it holds (see vsq::ack), told only
    /// once they are kept.
    acknowledging: bool,
    kept: vsq::ack::Kept,
}

impl Saver {
    /// Checks one message: a result goes to the store and waits to be
    /// printed; anything else is rejected at once.
    fn read(&mut self, message: Incoming, store: &mut Store) -> Result<()> {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => vsq::parse_object::<Computation>(&message.first),
        };
        match checked {
            Ok(result) => {
                let (unit, counter) = (result.unit, result.counter);
                let row = params![unit, counter, result.x, result.y];
                let mut stored = store.insert(INSERT, row, &message.first)?;
                if stored == Stored::Duplicate && !store.contains(SAME, row)? {
                    // Not sent again: another computer's result. Kept, apart,
                    // and acknowledged, so that its computer does not send
                    // it for ever.
                    let problem = format!(
                        "result of unit {unit} counter {counter} stored already, with other values: another computer uses unit {unit}"
                    );
                    console::reject(&problem, &message.first);
                    store.reject(&message.first, &problem)?;
                    stored = Stored::Refused;
                }
                // Without --store nothing is looked up: what it holds for
                // acknowledgements tells a result sent again.
                if self.acknowledging && !self.kept.add(unit, counter) && stored == Stored::New {
                    stored = Stored::Duplicate;
                }
                if stored == Stored::Refused {
                    self.rejected += 1;
                }
                self.burst.push((message.first, stored));
            }
            Err(problem) => {
                let problem = format!("result {problem}");
                console::reject(&problem, &message.first);
                store.reject(&message.first, &problem)?;
                self.rejected += 1;
            }
        }
        Ok(())
    }

    /// Commits the burst, then prints it: a printed result is a stored
    /// one. Then, with --ack-port, says which results it holds.
    fn keep(&mut self, store: &mut Store, ack_sender: Option<&zmq::Socket>) -> Result<()> {
        store.commit()?;
        for (message, stored) in self.burst.drain(..) {
            match stored {
                Stored::New => {
                    // print "Computer requested a save: %s" % message
                    say!("Computer requested a save: {}", console::whole(&message));
                    self.received += 1;
                }
                Stored::Duplicate => self.duplicates += 1,
                Stored::Refused => {}
            }
        }
        if let Some(ack_sender) = ack_sender {
            for acknowledgement in self.kept.take_acknowledgements() {
                examples_common::send(ack_sender, acknowledgement.as_bytes(), 0)?;
            }
        }
        Ok(())
    }

    /// A computer subscribed (the byte 1, then its topic): tell it
    /// everything held for its unit, which it may have missed (the slow joiner).
    fn welcome(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        while let Some(subscription) = examples_common::take(ack_sender)? {
            if let Some(topic) = subscription.first.strip_prefix(b"\x01") {
                if let Some(everything) = self.kept.everything_for(topic) {
                    examples_common::send(ack_sender, everything.as_bytes(), 0)?;
                }
            }
        }
        Ok(())
    }
}
