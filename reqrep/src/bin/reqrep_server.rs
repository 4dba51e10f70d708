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

use anyhow::{Context as _, Result};
use clap::Parser;
use examples_common::{Guard, Poller, cannot_bind, cli, console, frames, note, say, stop};

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| serve(&args))
}

/// reqrep_server.py: answers every request on a REP socket.
fn serve(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    // Who may connect (--allow), and the server's open files (guard.rs).
    let guard = Guard::start(&context, &args.allow)?;
    // socket = context.socket(zmq.REP)
    let socket = context.socket(zmq::REP).context("cannot create a socket")?;
    // How its connections are watched, and who may make one (lib.rs).
    examples_common::set_up_server(&socket, &guard)?;
    // Trap: no client may make us hold a request of any size.
    socket.set_maxmsgsize(args.limit.max_message_size)?;
    // socket.bind("tcp://*:%s" % port)
    let endpoint = examples_common::tcp(&args.bind, args.port);
    socket.bind(&endpoint).map_err(cannot_bind(&endpoint))?;

    let mut poller = Poller::new();
    poller.register(&socket);
    let mut served = Served::default();
    while args.count.is_none_or(|count| served.replies < count) {
        // Wait for the next request from a client (false on Ctrl-C).
        if !poller.poll(None)? {
            break;
        }
        // message = socket.recv()
        // Trap: the poll also wakes for a malformed request (no envelope),
        // which REP then discards: a blocking recv would wait for the next
        // one. Receive without waiting, or poll again.
        let request = match socket.recv_msg(zmq::DONTWAIT) {
            // Its frames counted: a request is one (poller.rs).
            Ok(first) => frames(&socket, first)?,
            Err(zmq::Error::EAGAIN) => continue,
            Err(error) => return Err(error).context("cannot receive a request"),
        };
        match request.multipart() {
            None => say!("Received request: {}", console::whole(&request.first)),
            Some(problem) => served.reject(&problem, &request.first),
        }

        // time.sleep(1): do some "work"
        stop::sleep(args.delay);

        // socket.send("World from %s" % port)
        // A REP socket answers every request, or it can never receive again.
        let reply = format!("World from {}", args.port);
        socket.send(reply.as_bytes(), 0).context("cannot send a reply")?;
        served.replies += 1;
    }
    served.summary();
    Ok(ExitCode::SUCCESS)
}

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
    #[command(flatten)]
    allow: cli::Allow,
}

/// What the server did, for its summary on stderr.
#[derive(Default)]
struct Served {
    replies: u64,
    /// Replies sent to requests that were rejected (several frames).
    rejected: u64,
}

impl Served {
    fn reject(&mut self, problem: &str, first_frame: &[u8]) {
        console::reject(format!("request {problem}"), first_frame);
        self.rejected += 1;
    }

    /// `reqrep_server: 3 replies sent, 1 to a rejected request`.
    fn summary(&self) {
        let rejected = match self.rejected {
            0 => String::new(),
            n => format!(
                ", {}",
                console::count(n, ["to a rejected request", "to rejected requests"])
            ),
        };
        note!(
            "reqrep_server: {} sent{rejected}",
            console::count(self.replies, ["reply", "replies"])
        );
    }
}
