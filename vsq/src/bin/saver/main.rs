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
//!
//! Beside this file: `results.rs` checks, stores and counts the results;
//! `acks.rs` tells computers which results are kept (`--ack-port`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;
use examples_common::{Guard, Poller, cannot_bind, cli, console, frames, say, stop};

mod acks;
mod results;

use results::Saver;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| save(&args))
}

/// saver.py: a PULL socket read through a poller.
fn save(args: &Args) -> Result<ExitCode> {
    // With --store, open it first: if it cannot be written, say so before
    // binding.
    let store = results::open_store(args.store.as_deref(), args.ack_port.is_some())?;

    let context = zmq::Context::new();
    // Who may connect (--allow), and the server's open files (guard.rs).
    let guard = Guard::start(&context, &args.allow)?;
    // Socket to receive the computers' save requests: a PULL socket, named
    // req_receiver as in saver.py ("req" for a save request, not REQ).
    let req_receiver = context.socket(zmq::PULL).context("cannot create a socket")?;
    // How its connections are watched, and who may make one (lib.rs).
    examples_common::set_up_server(&req_receiver, &guard)?;
    // Trap: no computer may make us hold a result of any size.
    req_receiver.set_maxmsgsize(args.limit.max_message_size)?;
    // req_receiver.bind("tcp://*:5558")
    let endpoint = examples_common::tcp(&args.bind, args.port);
    req_receiver.bind(&endpoint).map_err(cannot_bind(&endpoint))?;
    // With --ack-port: a socket that tells computers which results are
    // kept (acks.rs).
    let ack_sender = match args.ack_port {
        Some(port) => Some(acks::bind(&context, &guard, &args.bind, port)?),
        None => None,
    };
    say!("Listening to save requests from computers");

    let mut saver = Saver::new(store, ack_sender.is_some(), args.count);
    // The loop's error (a store given up) waits until the summary is out.
    let served = serve(&mut saver, &req_receiver, ack_sender.as_ref());
    saver.summary();
    served.map(|()| ExitCode::SUCCESS)
}

/// The poll loop: `while True: socks = dict(poller.poll()) ...`
fn serve(
    saver: &mut Saver,
    req_receiver: &zmq::Socket,
    ack_sender: Option<&zmq::Socket>,
) -> Result<()> {
    // poller.register(req_receiver, zmq.POLLIN)
    let mut poller = Poller::new();
    let requests = poller.register(req_receiver);
    let subscriptions = ack_sender.map(|socket| poller.register(socket));
    while !saver.counted_all() {
        // socks = dict(poller.poll()): false on Ctrl-C, for a clean stop
        // (take no more, and keep what had reached us already), and after a
        // slice while results wait for a locked store.
        poller.poll(saver.patience())?;
        let stopping = stop::requested();
        if stopping {
            examples_common::stop_accepting(req_receiver)?;
        }
        if stopping || poller.is_readable(requests) {
            // message = req_receiver.recv(), for every message waiting, as
            // long as the saver's own queue has room (results.rs).
            while saver.has_room(stopping) {
                let first = match req_receiver.recv_msg(zmq::DONTWAIT) {
                    Ok(first) => first,
                    Err(zmq::Error::EAGAIN) => break,
                    Err(error) => return Err(error).context("cannot receive a result"),
                };
                // Its frames counted (a result is one), then checked.
                saver.read(frames(req_receiver, first)?);
            }
        }
        // print "Computer requested a save: %s" % message, once stored: a
        // printed result is a stored one.
        for message in saver.store(stopping)? {
            say!("Computer requested a save: {}", console::whole(&message));
        }
        saver.acknowledge(ack_sender)?;
        if stopping {
            break;
        }
        if let (Some(index), Some(ack_sender)) = (subscriptions, ack_sender) {
            if poller.is_readable(index) {
                saver.welcome(ack_sender)?;
            }
        }
    }
    Ok(())
}

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
    #[command(flatten)]
    allow: cli::Allow,
}
