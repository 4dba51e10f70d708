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
use examples_common::store::Store;
use examples_common::{Incoming, Polled, Poller, cli, console, note, say};
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
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| save(&args))
}

/// How each result is stored: the store fills in `received_at`.
const INSERT: &str =
    "INSERT INTO results (unit, counter, x, y, received_at) VALUES (?1, ?2, ?3, ?4, ?5)";

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

fn save(args: &Args) -> Result<ExitCode> {
    // Open the store first: if it cannot be written, say so before binding.
    let mut store = Store::open(args.store.as_deref(), RESULTS, "saver")?;

    let context = zmq::Context::new();
    let req_receiver = examples_common::receiver(&context, zmq::PULL, &args.limit)?;
    examples_common::bind(&req_receiver, &examples_common::tcp(&args.bind, args.port))?;

    let mut poller = Poller::new();
    let req_index = poller.register(&req_receiver);
    say!("Listening to save requests from computers");

    let mut saver = Saver::default();
    while args.count.is_none_or(|count| saver.received < count) {
        if poller.poll(None)? == Polled::Stopped {
            // A clean stop: take no more, and keep what reached us already.
            examples_common::stop_accepting(&req_receiver)?;
            while let Some(message) = examples_common::take(&req_receiver)? {
                saver.read(message, &mut store);
            }
            saver.keep(&mut store)?;
            break;
        }
        if poller.is_readable(req_index) {
            // Take what is waiting, up to a burst, before polling again: a
            // stream then costs one poll and one commit per burst, not per result.
            while saver.burst.len() < BURST && args.count.is_none_or(|count| saver.received < count)
            {
                match examples_common::take(&req_receiver)? {
                    Some(message) => saver.read(message, &mut store),
                    None => break,
                }
            }
            saver.keep(&mut store)?;
        }
    }
    note!(
        "saver: {} received, {} rejected",
        console::count(saver.received, ["result", "results"]),
        saver.rejected
    );
    Ok(ExitCode::SUCCESS)
}

/// What the saver has read: the results of this burst, and its counts.
#[derive(Default)]
struct Saver {
    burst: Vec<zmq::Message>,
    received: u64,
    rejected: u64,
}

impl Saver {
    /// Checks one message: a result goes to the store and waits to be
    /// printed; anything else is rejected at once.
    fn read(&mut self, message: Incoming, store: &mut Store) {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => vsq::parse_object::<Computation>(&message.first),
        };
        match checked {
            Ok(result) => {
                let row = vec![
                    result.unit.into(),
                    result.counter.into(),
                    result.x.into(),
                    result.y.into(),
                ];
                store.insert(INSERT, row);
                self.burst.push(message.first);
                self.received += 1;
            }
            Err(problem) => {
                let problem = format!("result {problem}");
                console::reject(&problem, &message.first);
                store.reject(&message.first, &problem);
                self.rejected += 1;
            }
        }
    }

    /// Commits the burst, then prints it: a printed result is a stored one.
    fn keep(&mut self, store: &mut Store) -> Result<()> {
        store.commit()?;
        for message in self.burst.drain(..) {
            say!("Computer requested a save: {}", console::whole(&message));
        }
        Ok(())
    }
}
