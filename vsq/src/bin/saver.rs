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
//! database, and so is every rejected message, with the reason.
//!
//! Run with `cargo run -p vsq --bin saver`, with one or more `computer`s in
//! other terminals. Ctrl-C stops it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use examples_common::store::Store;
use examples_common::{Polled, Poller, cli, console, note, say};
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
    let mut store = Store::open(args.store.as_deref(), RESULTS)?;

    let context = zmq::Context::new();
    let req_receiver = examples_common::receiver(&context, zmq::PULL, &args.limit)?;
    examples_common::bind(&req_receiver, &examples_common::tcp(&args.bind, args.port))?;

    let mut poller = Poller::new();
    let req_index = poller.register(&req_receiver);
    say!("Listening to save requests from computers");

    let (mut received, mut rejected) = (0, 0);
    'serve: while args.count.is_none_or(|count| received < count) {
        if poller.poll(None)? == Polled::Stopped {
            break;
        }
        if poller.is_readable(req_index) {
            // Take what is waiting, up to a burst, before polling again: a
            // stream then costs one poll per burst, not one per result.
            for message in examples_common::waiting(&req_receiver).take(BURST) {
                let message = message?;
                match vsq::parse_object::<Computation>(&message) {
                    Ok(result) => {
                        say!("Computer requested a save: {}", console::shown(&message));
                        let row = vec![
                            result.unit.into(),
                            result.counter.into(),
                            result.x.into(),
                            result.y.into(),
                        ];
                        store.insert(INSERT, row)?;
                        received += 1;
                    }
                    Err(problem) => {
                        let problem = format!("result {problem}");
                        console::reject(&problem, &message);
                        store.reject(&message, &problem)?;
                        rejected += 1;
                    }
                }
                if args.count == Some(received) {
                    break 'serve;
                }
            }
        }
    }
    // Everything received is committed before the summary.
    store.close()?;
    note!("saver: {received} results received, {rejected} rejected");
    Ok(ExitCode::SUCCESS)
}
