//! Request-reply client: connects a REQ socket to tcp://localhost:5556 and
//! sends "Hello" ten times, waiting for each reply before the next request.
//!
//! Started before the server, it simply waits: ZeroMQ connects in the
//! background and retries until the server is there.
//!
//! Run with `cargo run --release --bin reqrep_client`, with `reqrep_server`
//! running in another terminal. Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use examples_common::{Link, Wait, cannot_connect, cli, console, frames, note, say};

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| request(&args))
}

/// reqrep_client.py: ten requests on a REQ socket, each waiting for its reply.
fn request(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    say!("Connecting to server...");
    // socket = context.socket(zmq.REQ)
    let requester = context.socket(zmq::REQ).context("cannot create a socket")?;
    // How its connection is watched (heartbeats: lib.rs).
    examples_common::set_up_client(&requester)?;
    // Trap: no server may make us hold a reply of any size.
    requester.set_maxmsgsize(args.limit.max_message_size)?;
    // Trap: a request nobody answers stays queued and would hold the
    // program at exit; drop it instead.
    requester.set_linger(0)?;
    // A REQ socket may send a request again when its reply was lost
    // (relaxed), and then ignores a late reply to the old one (correlate).
    requester.set_req_relaxed(true)?;
    requester.set_req_correlate(true)?;
    // A link watches the connection, and makes it again after an
    // oversized reply, which libzmq never does (link.rs).
    let endpoint = examples_common::tcp(&args.host, args.port);
    let mut link = Link::watch(&context, &requester, &endpoint)?;
    // socket.connect("tcp://localhost:%s" % port)
    requester.connect(&endpoint).map_err(cannot_connect(&endpoint))?;

    let mut received = Received::default();
    for request in 1..=args.requests {
        say!("Sending request {request} ...");
        // socket.send("Hello")
        requester.send("Hello", 0).context("cannot send a request")?;

        // Trap: REQ must receive before it sends again, so a lost reply
        // would block it forever; --timeout bounds the wait, and a lost
        // connection makes us ask again.
        loop {
            match link.wait(&requester, args.timeout)? {
                Wait::Ready => break,
                Wait::Reconnected => {
                    note!("reqrep_client: sending request {request} again");
                    requester.send("Hello", 0).context("cannot send a request")?;
                }
                Wait::Stopped => return Ok(received.stopped()),
                Wait::TimedOut => {
                    let timeout = cli::show_duration(args.timeout.unwrap_or_default());
                    bail!("no reply from {endpoint} within {timeout}");
                }
            }
        }
        // message = socket.recv()
        let first = requester.recv_msg(0).context("cannot receive a reply")?;
        // Its frames counted: a reply is one (poller.rs).
        let reply = frames(&requester, first)?;
        if let Some(problem) = reply.multipart() {
            console::reject(format!("reply {problem}"), &reply.first);
            received.rejected += 1;
            continue;
        }
        say!(
            "Received reply {request} [ {} ]",
            console::whole(&reply.first)
        );
        received.replies += 1;
    }
    received.summary();
    Ok(ExitCode::SUCCESS)
}

/// Sends "Hello" requests on a REQ socket and prints each reply.
#[derive(Debug, Parser)]
#[command(name = "reqrep_client", version)]
struct Args {
    /// Port of the server
    #[arg(default_value_t = examples_common::REQREP_PORT, value_parser = cli::port())]
    port: u16,
    /// Host of the server
    #[arg(long, default_value = "localhost")]
    host: String,
    /// How many requests to send
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = cli::count())]
    requests: u64,
    /// Give up when a reply takes longer than this (a duration: 250ms, 1s, 2m; default: wait forever)
    #[arg(long, value_name = "DURATION", value_parser = cli::duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

/// The replies the client received, for its summary on stderr.
#[derive(Default)]
struct Received {
    replies: u64,
    rejected: u64,
}

impl Received {
    /// Ctrl-C: `reqrep_client: stopped after 2 replies`.
    fn stopped(&self) -> ExitCode {
        note!(
            "reqrep_client: stopped after {}",
            console::count(self.replies, ["reply", "replies"])
        );
        ExitCode::SUCCESS
    }

    /// Said only when a reply was rejected: `2 replies received, 1 rejected`.
    fn summary(&self) {
        if self.rejected > 0 {
            note!(
                "reqrep_client: {} received, {} rejected",
                console::count(self.replies, ["reply", "replies"]),
                self.rejected
            );
        }
    }
}
