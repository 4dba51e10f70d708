//! Voisietequi computer: waits for commands from the server and, side by
//! side, computes results and pushes them to the saver.
//!
//! ```text
//!          commands (SUB, connect:5556)       results (PUSH, connect:5558)
//!                      |                                  ^
//!                      v                                  |
//!   .-------------------------------------------------------------.
//!   |  command task                      main task                |
//!   |  "configure" -> reply              x, y -> result            |
//!   '-------------------------------------------------------------'
//!                      |
//!                      v
//!          replies (PUSH, connect:5557)
//! ```
//!
//! Two tasks on two threads, each with its own sockets on one shared
//! context (a ZeroMQ socket must not be shared between threads; a context
//! may). Results pushed while no saver runs are queued, not lost, and
//! sent when one starts: on Ctrl-C the computer waits for that, and a
//! second Ctrl-C drops them. Whether the saver then kept them, PUSH cannot
//! tell: it has no acknowledgement.
//!
//! Run with `cargo run --release --bin computer`, with `command` and `saver` in
//! other terminals (see the README for the walk-through). Ctrl-C stops it.
//!
//! Beside this file: `acks.rs` keeps each result until the saver says it
//! holds it (`--ack-port`); `exit.rs` waits for what is still queued at exit.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use examples_common::{Link, Outbox, Wait, cannot_connect, cli, console, frames, note, say, stop};
use rand::RngExt as _;
use rand_distr::StandardNormal;
use vsq::{Computation, Reply};

mod acks;
mod exit;

use acks::Acks;
use exit::Computed;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| compute(&args))
}

/// computer.py: two tasks side by side, on two threads, each with its own
/// sockets on one shared context (a ZeroMQ socket must not be shared
/// between threads; a context may).
fn compute(args: &Args) -> Result<ExitCode> {
    let unit = args.unit.unwrap_or_else(|| rand::rng().random_range(1..=9999));
    let context = zmq::Context::new();
    let (computed, answered) = std::thread::scope(|tasks| {
        let cmd_task = tasks.spawn(|| {
            let outcome = cmd_handler(args, &context, unit);
            // Whatever ended this task ends the other one too.
            stop::request();
            outcome
        });
        let computed = main_task_handler(args, &context, unit);
        stop::request();
        let answered = cmd_task.join().map_err(|_| anyhow::anyhow!("the command task panicked"))?;
        anyhow::Ok((computed?, answered?))
    })?;
    // Trap: results still queued for a saver hold up the exit (exit.rs).
    exit::finish(args, unit, context, computed, answered)
}

/// cmd_handler: answers every command published on the topic.
fn cmd_handler(args: &Args, context: &zmq::Context, unit: u16) -> Result<u64> {
    let host = &args.server_host;
    // cmd_receiver = context.socket(zmq.SUB)
    let cmd_receiver = context.socket(zmq::SUB).context("cannot create a socket")?;
    // How its connection is watched (heartbeats: lib.rs).
    examples_common::set_up_client(&cmd_receiver)?;
    // Trap: no server may make us hold a command of any size.
    cmd_receiver.set_maxmsgsize(args.limit.max_message_size)?;
    // Its subscription is all a SUB socket sends: not worth waiting for at exit.
    cmd_receiver.set_linger(0)?;
    // A link watches the connection, and makes it again after an
    // oversized command, which libzmq never does (link.rs).
    let cmd_endpoint = examples_common::tcp(host, args.cmd_port);
    let mut link = Link::watch(context, &cmd_receiver, &cmd_endpoint)?;
    // cmd_receiver.connect("tcp://localhost:5556")
    cmd_receiver.connect(&cmd_endpoint).map_err(cannot_connect(&cmd_endpoint))?;
    // Trap: subscriptions match prefixes; the topic and its space match
    // "politiche2013 ..." and not "politiche2013bis ...".
    cmd_receiver.set_subscribe(format!("{} ", args.topic).as_bytes())?;
    // reply_sender = context.socket(zmq.PUSH)
    let reply_sender = context.socket(zmq::PUSH).context("cannot create a socket")?;
    examples_common::set_up_client(&reply_sender)?;
    // A reply nobody collects is not worth waiting for at exit.
    reply_sender.set_linger(0)?;
    // reply_sender.connect("tcp://localhost:5557")
    let reply_endpoint = examples_common::tcp(host, args.reply_port);
    reply_sender.connect(&reply_endpoint).map_err(cannot_connect(&reply_endpoint))?;

    let mut answered = 0;
    loop {
        say!("Aye sir, unit {unit} ready for your commands ...");
        // Wait for a command (the link also gives up on Ctrl-C, and when a
        // lost connection was made again).
        loop {
            match link.wait(&cmd_receiver, None)? {
                Wait::Ready => break,
                // Commands published while the connection was lost are
                // gone: listen on.
                Wait::Reconnected => {}
                Wait::TimedOut | Wait::Stopped => return Ok(answered),
            }
        }
        // message = cmd_receiver.recv()
        let first = cmd_receiver.recv_msg(0).context("cannot receive a command")?;
        // Its frames counted: a command is one (poller.rs).
        let command = frames(&cmd_receiver, first)?;
        if let Err(problem) = check_command(&command, &args.topic) {
            console::reject(format!("command {problem}"), &command.first);
            continue;
        }
        say!("Message received: '{}'", console::whole(&command.first));

        say!("Sending reply to server");
        let reply = Reply {
            unit: i64::from(unit),
            status: "configured".to_owned(),
        };
        // reply_sender.send_json({"unit": id, "status": "configured"})
        // Trap: with no server collecting replies, a full queue would block
        // this task for good; a reply nobody takes is dropped instead.
        match reply_sender.send(serde_json::to_vec(&reply)?, zmq::DONTWAIT) {
            Ok(()) => answered += 1,
            Err(zmq::Error::EAGAIN) => note!("computer: reply dropped: no server takes replies"),
            Err(error) => return Err(error).context("cannot send a reply"),
        }
    }
}

/// main_task_handler: computes results and pushes them to the saver.
fn main_task_handler(args: &Args, context: &zmq::Context, unit: u16) -> Result<Computed> {
    let host = &args.server_host;
    // save_sender = context.socket(zmq.PUSH)
    let save_sender = context.socket(zmq::PUSH).context("cannot create a socket")?;
    examples_common::set_up_client(&save_sender)?;
    // An outbox watches the connection and counts what the socket may
    // still hold, for the exit (outbox.rs).
    let save_endpoint = examples_common::tcp(host, args.save_port);
    let names = ["saver", "result", "results"];
    let mut outbox = Outbox::watch(context, &save_sender, &save_endpoint, names)?;
    // save_sender.connect("tcp://localhost:5558")
    save_sender.connect(&save_endpoint).map_err(cannot_connect(&save_endpoint))?;
    // With --ack-port: each result is kept until the saver holds it (acks.rs).
    let mut acks = match args.ack_port {
        Some(port) => Some(Acks::subscribe(context, args, port, unit)?),
        None => None,
    };

    let mut rng = rand::rng();
    // One buffer for every result's JSON, rather than one allocation each.
    let mut message = Vec::new();
    let mut counter = 0;
    'compute: while !stop::requested() && args.results.is_none_or(|results| counter < results) {
        let result = Computation {
            unit: i64::from(unit),
            counter: counter as i64,
            x: rng.sample(StandardNormal),
            y: rng.sample(StandardNormal),
        };
        message.clear();
        serde_json::to_writer(&mut message, &result).context("cannot encode a result")?;
        // save_sender.send_json(result); a send into a full queue gives up
        // after a slice, to look at Ctrl-C (see outbox.rs).
        while let Err(error) = save_sender.send(&message, 0) {
            if !outbox.may_retry(error)? {
                break 'compute;
            }
        }
        outbox.sent(&message)?;
        counter += 1;
        if let Some(acks) = &mut acks {
            if !acks.keep(result.counter, &message, &save_sender, &mut outbox)? {
                break;
            }
        }
        // time.sleep(1), but not after the last result.
        if args.results != Some(counter) {
            stop::sleep(args.interval);
        }
    }
    // With acknowledgements, wait for every one (acks.rs).
    let unacknowledged = match &mut acks {
        Some(acks) => Some(acks.wait_for_all(args, &save_sender, &mut outbox)?),
        None => None,
    };
    Ok(Computed {
        results: counter,
        save_sender,
        outbox,
        unacknowledged,
    })
}

/// A command is "<topic> <JSON object>", in one frame.
fn check_command(command: &examples_common::Incoming, topic: &str) -> Result<(), String> {
    if let Some(problem) = command.multipart() {
        return Err(problem);
    }
    let body = command
        .first
        .strip_prefix(topic.as_bytes())
        .and_then(|rest| rest.strip_prefix(b" "))
        .ok_or_else(|| format!("not on topic \"{topic} \""))?;
    vsq::parse_object::<serde_json::Map<String, serde_json::Value>>(body).map(drop)
}

/// Answers the server's commands and pushes computed results to the saver.
#[derive(Debug, Parser)]
#[command(name = "computer", version)]
struct Args {
    /// Host of the server (command and saver)
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    server_host: String,
    /// Port where the server publishes commands
    #[arg(long, default_value_t = examples_common::COMMAND_PORT, value_parser = cli::port())]
    cmd_port: u16,
    /// Port where the server collects replies to commands
    #[arg(long, default_value_t = examples_common::REPLY_PORT, value_parser = cli::port())]
    reply_port: u16,
    /// Port where the saver collects results
    #[arg(long, default_value_t = examples_common::SAVE_PORT, value_parser = cli::port())]
    save_port: u16,
    /// Topic the commands are published on
    #[arg(long, default_value = vsq::TOPIC)]
    topic: String,
    /// This computer's unit number (default: random)
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=9999))]
    unit: Option<u16>,
    /// Pause between two results (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cli::duration)]
    interval: Duration,
    /// Stop after this many results, once they are sent, or acknowledged with
    /// --ack-port (default: compute forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    results: Option<u64>,
    /// How long to wait at exit for queued results to be sent (a duration: 250ms, 1s, 2m; default: until they are)
    #[arg(long, value_name = "DURATION", value_parser = cli::duration)]
    linger: Option<Duration>,
    /// Keep each result until the saver, started with the same --ack-port,
    /// says it holds it, and send again what it does not (default: no
    /// acknowledgements, as the original)
    #[arg(long, value_name = "PORT", value_parser = cli::port())]
    ack_port: Option<u16>,
    /// With --ack-port: at most this many results wait for their
    /// acknowledgement; at the window, the computer waits
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::count())]
    window: u64,
    /// With --ack-port: send a result again when it waited this long for its
    /// acknowledgement, from a saver that acknowledges (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cli::duration)]
    ack_timeout: Duration,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}
