//! Request-reply server: binds a REP socket on tcp://*:5556, prints each
//! request, waits one second and replies "World from 5556".
//!
//! ```text
//!     #------------#
//!     |   Client   |
//!     +------------+
//!     |    REQ     |
//!     '---+--------'
//!         |    ^
//!   Hello |    | World
//!         v    |
//!     .--------+---.
//!     |    REP     |
//!     +------------+
//!     |   Server   |
//!     #------------#
//! ```
//!
//! Run with `cargo run --release --bin reqrep_server`, then
//! `cargo run --release --bin reqrep_client` in a second terminal.
//! Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use examples_common::{Poller, cli, console, note, say};

/// Answers every request on a REP socket with "World from <PORT>".
#[derive(Debug, Parser)]
#[command(name = "reqrep_server", version)]
struct Args {
    /// Port to listen on
    #[arg(default_value_t = examples_common::REQREP_PORT, value_parser = cli::port())]
    port: u16,
    /// Address to bind, `*` for every interface
    #[arg(long, value_name = "ADDR", default_value = "*")]
    bind: String,
    /// How long to "work" on a request before replying (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cli::duration)]
    delay: Duration,
    /// Stop after this many replies (default: serve forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    count: Option<u64>,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| serve(&args))
}

fn serve(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    let socket = examples_common::receiver(&context, zmq::REP, &args.limit)?;
    examples_common::bind(&socket, &examples_common::tcp(&args.bind, args.port))?;

    let mut poller = Poller::new();
    poller.register(&socket);
    let (mut replies, mut rejected) = (0, 0);
    while args.count.is_none_or(|count| replies < count) {
        // Wait for the next request from a client.
        if !poller.poll(None)? {
            break; // Ctrl-C
        }
        // Trap: the poll also wakes for a malformed request (no envelope),
        // which REP then discards: a blocking recv would wait for the next
        // one. Take what is there without waiting, or poll again.
        let Some(request) = examples_common::take(&socket)? else {
            continue;
        };
        match request.multipart() {
            None => say!("Received request: {}", console::whole(&request.first)),
            Some(problem) => {
                console::reject(format!("request {problem}"), &request.first);
                rejected += 1;
            }
        }

        // Do some "work", then send the reply back to the client: a REP
        // socket answers every request, or it can never receive again.
        examples_common::stop::sleep(args.delay);
        let reply = format!("World from {}", args.port);
        examples_common::send(&socket, reply.as_bytes(), 0)?;
        replies += 1;
    }
    let rejected = match rejected {
        0 => String::new(),
        n => format!(
            ", {}",
            console::count(n, ["to a rejected request", "to rejected requests"])
        ),
    };
    note!(
        "reqrep_server: {} sent{rejected}",
        console::count(replies, ["reply", "replies"])
    );
    Ok(ExitCode::SUCCESS)
}
