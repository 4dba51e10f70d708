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

use anyhow::{Result, bail};
use clap::Parser;
use examples_common::{Link, Received, cli, console, note, say};

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

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| request(&args))
}

fn request(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    say!("Connecting to server...");
    let endpoint = examples_common::tcp(&args.host, args.port);
    let socket = examples_common::receiver(&context, zmq::REQ, &args.limit)?;
    // Trap: a request nobody answers stays queued and would hold the
    // program at exit; drop it instead.
    socket.set_linger(0)?;
    // A REQ socket may send a request again when its reply was lost
    // (relaxed), and then ignores a late reply to the old one (correlate).
    socket.set_req_relaxed(true)?;
    socket.set_req_correlate(true)?;
    // Trap: after a message over --max-message-size libzmq drops the
    // connection for good; the link watches it and connects again.
    let mut link = Link::connect(&context, &socket, &endpoint)?;

    let (mut replies, mut rejected) = (0, 0);
    for request in 1..=args.requests {
        say!("Sending request {request} ...");
        examples_common::send(&socket, b"Hello", 0)?;

        // Trap: REQ must receive before it sends again, so a lost reply
        // would block it forever; --timeout bounds the wait, and a lost
        // connection makes us ask again.
        let reply = loop {
            match link.receive(&socket, args.timeout)? {
                Received::Message(reply) => break Some(reply),
                Received::Reconnected => {
                    note!("reqrep_client: sending request {request} again");
                    examples_common::send(&socket, b"Hello", 0)?;
                }
                Received::Stopped => break None,
                Received::TimedOut => {
                    let timeout = cli::show_duration(args.timeout.unwrap_or_default());
                    bail!("no reply from {endpoint} within {timeout}");
                }
            }
        };
        let Some(reply) = reply else {
            note!(
                "reqrep_client: stopped after {}",
                console::count(replies, ["reply", "replies"])
            );
            return Ok(ExitCode::SUCCESS);
        };
        if let Some(problem) = reply.multipart() {
            console::reject(format!("reply {problem}"), &reply.first);
            rejected += 1;
            continue;
        }
        say!(
            "Received reply {request} [ {} ]",
            console::whole(&reply.first)
        );
        replies += 1;
    }
    if rejected > 0 {
        note!(
            "reqrep_client: {} received, {rejected} rejected",
            console::count(replies, ["reply", "replies"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
