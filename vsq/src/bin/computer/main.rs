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
//! other terminals (see the README for the walk-through).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use examples_common::{Delivery, Link, Outbox, Received, cli, console, note, say, stop};
use rand::RngExt as _;
use rand_distr::StandardNormal;
use vsq::ack::{self, Acks};
use vsq::{Computation, Reply};

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

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| compute(&args))
}

fn compute(args: &Args) -> Result<ExitCode> {
    let unit = args
        .unit
        .unwrap_or_else(|| rand::rng().random_range(1..=9999));
    let context = zmq::Context::new();

    let (computed, answered) = std::thread::scope(|tasks| {
        let cmd_task = tasks.spawn(|| {
            let outcome = cmd_handler(args, &context, unit);
            // Whatever ended this task ends the other one too.
            stop::request();
            outcome
        });
        let results = main_task_handler(args, &context, unit);
        stop::request();
        let answered = cmd_task
            .join()
            .map_err(|_| anyhow::anyhow!("the command task panicked"))?;
        anyhow::Ok((results?, answered?))
    })?;
    let Computed {
        results,
        outbox,
        unacknowledged,
    } = computed;

    // Trap: results still queued for a saver hold up the exit; wait for
    // them to leave, deliberately, or drop them and say how many. (With
    // acknowledgements that wait is over already.)
    let linger = match unacknowledged {
        Some(0) | None => args.linger,
        Some(_) => Some(Duration::ZERO),
    };
    let delivery = outbox.finish(context, linger)?;
    let acknowledged = match unacknowledged {
        Some(unacknowledged) => format!(", {} acknowledged", results - unacknowledged),
        None => String::new(),
    };
    note!(
        "computer: unit {unit} computed {}, answered {}{acknowledged}",
        console::count(results, ["result", "results"]),
        console::count(answered, ["command", "commands"])
    );
    match (unacknowledged, delivery) {
        (Some(0), _) | (None, Delivery::Sent) => Ok(ExitCode::SUCCESS),
        (Some(unacknowledged), _) => {
            let unacknowledged = console::count(unacknowledged, ["result", "results"]);
            note!("computer: {unacknowledged} not acknowledged");
            Ok(ExitCode::FAILURE)
        }
        (None, Delivery::Dropped(dropped)) => {
            note!("computer: {dropped}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The command task: answers every command published on the topic.
fn cmd_handler(args: &Args, context: &zmq::Context, unit: u16) -> Result<u64> {
    let host = &args.server_host;
    let cmd_endpoint = examples_common::tcp(host, args.cmd_port);
    let cmd_receiver = examples_common::receiver(context, zmq::SUB, &args.limit)?;
    // Its subscription is all a SUB socket sends: not worth waiting for at exit.
    cmd_receiver.set_linger(0)?;
    // Trap: after a message over --max-message-size libzmq drops the
    // connection for good; the link watches it and connects again.
    let mut link = Link::connect(context, &cmd_receiver, &cmd_endpoint)?;
    // Trap: subscriptions match prefixes; the topic and its space match
    // "politiche2013 ..." and not "politiche2013bis ...".
    cmd_receiver.set_subscribe(format!("{} ", args.topic).as_bytes())?;
    let reply_sender = examples_common::socket(context, zmq::PUSH)?;
    // A reply nobody collects is not worth waiting for at exit.
    reply_sender.set_linger(0)?;
    examples_common::connect(&reply_sender, &examples_common::tcp(host, args.reply_port))?;

    let mut answered = 0;
    loop {
        say!("Aye sir, unit {unit} ready for your commands ...");
        let message = loop {
            match link.receive(&cmd_receiver, None)? {
                Received::Message(message) => break message,
                // Commands published meanwhile are gone: listen on.
                Received::Reconnected => continue,
                Received::TimedOut | Received::Stopped => return Ok(answered),
            }
        };
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => check_command(&message.first, &args.topic),
        };
        if let Err(problem) = checked {
            console::reject(format!("command {problem}"), &message.first);
            continue;
        }
        say!("Message received: '{}'", console::whole(&message.first));

        say!("Sending reply to server");
        let reply = Reply {
            unit: i64::from(unit),
            status: "configured".to_owned(),
        };
        // Trap: with no server collecting replies, a full queue would block
        // this task for good; a reply nobody takes is dropped instead.
        let reply = serde_json::to_vec(&reply)?;
        match examples_common::send(&reply_sender, &reply, zmq::DONTWAIT) {
            Ok(()) => answered += 1,
            Err(zmq::Error::EAGAIN) => note!("computer: reply dropped: no server takes replies"),
            Err(error) => return Err(error).context("cannot send a reply"),
        }
    }
}

/// A command is "<topic> <JSON object>".
fn check_command(message: &[u8], topic: &str) -> Result<(), String> {
    let body = message
        .strip_prefix(topic.as_bytes())
        .and_then(|rest| rest.strip_prefix(b" "))
        .ok_or_else(|| format!("not on topic \"{topic} \""))?;
    vsq::parse_object::<serde_json::Map<String, serde_json::Value>>(body).map(drop)
}

/// What the main task did: how many results it computed, the outbox that
/// may still hold some, and, with --ack-port, how many were never
/// acknowledged.
struct Computed {
    results: u64,
    outbox: Outbox,
    unacknowledged: Option<u64>,
}

/// The main task: computes results and pushes them to the saver.
fn main_task_handler(args: &Args, context: &zmq::Context, unit: u16) -> Result<Computed> {
    let host = &args.server_host;
    // Socket to send results to the saver, watched by an outbox that counts
    // what it may still hold.
    let save_sender = examples_common::socket(context, zmq::PUSH)?;
    let save_endpoint = examples_common::tcp(host, args.save_port);
    let mut outbox = Outbox::connect(
        context,
        save_sender,
        &save_endpoint,
        ["saver", "result", "results"],
    )?;

    // With --ack-port: a SUB socket for this unit's acknowledgements.
    let ack_receiver = match args.ack_port {
        Some(port) => {
            let ack_receiver = examples_common::receiver(context, zmq::SUB, &args.limit)?;
            ack_receiver.set_linger(0)?;
            // Room for a stream's acknowledgements, as the saver gives them.
            ack_receiver.set_rcvhwm(ack::HWM)?;
            let link = Link::connect(context, &ack_receiver, &examples_common::tcp(host, port))?;
            ack_receiver.set_subscribe(ack::topic(i64::from(unit)).as_bytes())?;
            Some((ack_receiver, link))
        }
        None => None,
    };
    let mut acks = ack_receiver
        .map(|(receiver, link)| Acks::new(receiver, link, i64::from(unit), args.ack_timeout));

    let mut rng = rand::rng();
    // One buffer for every result's JSON, rather than one allocation each.
    let mut message = Vec::new();
    let mut counter = 0;
    while !stop::requested() && args.results.is_none_or(|results| counter < results) {
        let result = Computation {
            unit: i64::from(unit),
            counter: counter as i64,
            x: rng.sample(StandardNormal),
            y: rng.sample(StandardNormal),
        };
        message.clear();
        serde_json::to_writer(&mut message, &result).context("cannot encode a result")?;
        if !outbox.send(&message)? {
            break;
        }
        counter += 1;
        if let Some(acks) = &mut acks {
            acks.keep(result.counter, &message);
            // At the window, wait for acknowledgements before computing more.
            let room = args.window as usize - 1;
            if !acks.wait_until(room, &mut outbox, stop::requested)? {
                break;
            }
        }
        if args.results != Some(counter) {
            stop::sleep(args.interval);
        }
    }

    // With acknowledgements, wait for every one: until --linger, or until
    // one more Ctrl-C or SIGTERM.
    let unacknowledged = match &mut acks {
        Some(acks) => {
            let wait = stop::LastWait::new(args.linger);
            // Most come at once: say that we wait only when it takes a while.
            let quick = || wait.over() || wait.elapsed() >= args.ack_timeout;
            if !acks.wait_until(0, &mut outbox, quick)? && !wait.over() {
                note!(
                    "computer: waiting for the saver to acknowledge {} ({})",
                    console::count(acks.waiting(), ["result", "results"]),
                    wait.ways_out("gives up")
                );
                acks.wait_until(0, &mut outbox, || wait.over())?;
            }
            Some(acks.waiting())
        }
        None => None,
    };
    Ok(Computed {
        results: counter,
        outbox,
        unacknowledged,
    })
}
