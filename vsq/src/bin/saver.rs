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
//! Run with `cargo run -p vsq --bin saver`, with one or more `computer`s in
//! other terminals. Ctrl-C stops it.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
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
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| save(&args))
}

fn save(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    let req_receiver = examples_common::receiver(&context, zmq::PULL, &args.limit)?;
    examples_common::bind(&req_receiver, &examples_common::tcp(&args.bind, args.port))?;

    let mut poller = Poller::new();
    let req_index = poller.register(&req_receiver);
    say!("Listening to save requests from computers");

    let (mut received, mut rejected) = (0, 0);
    while args.count.is_none_or(|count| received < count) {
        if poller.poll(None)? == Polled::Stopped {
            break;
        }
        if poller.is_readable(req_index) {
            let message = req_receiver.recv_bytes(0)?;
            match vsq::parse_object::<Computation>(&message) {
                Ok(_) => {
                    say!("Computer requested a save: {}", console::shown(&message));
                    received += 1;
                }
                Err(problem) => {
                    console::reject(format!("result {problem}"), &message);
                    rejected += 1;
                }
            }
        }
    }
    note!("saver: {received} results received, {rejected} rejected");
    Ok(ExitCode::SUCCESS)
}
