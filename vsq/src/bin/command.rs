//! Voisietequi command: emulates the server. Binds a PUB socket (an XPUB,
//! which also says who subscribes) on tcp://*:5556 to send commands to
//! every computer, and a PULL socket on
//! tcp://*:5557 to collect their replies; publishes one "configure"
//! command and prints the replies, read through a poller, until all is quiet.
//!
//! ```text
//!                 #-------------#
//!                 |    Server   |
//!                 +-------------+
//!                 |     PUB     |
//!                 '-------------'
//!                    bind:5556
//!                        |
//!                     commands
//!        .---------------+---------------.
//!        v               v               v
//!   connect:5556    connect:5556    connect:5556
//!  .------------.  .------------.  .------------.
//!  |    SUB     |  |    SUB     |  |    SUB     |
//!  +------------+  +------------+  +------------+
//!  |  Computer  |  |  Computer  |  |  Computer  |
//!  +------------+  +------------+  +------------+
//!  |    PUSH    |  |    PUSH    |  |    PUSH    |
//!  '-----+------'  '-----+------'  '-----+------'
//!   connect:5557    connect:5557    connect:5557
//!        '---------------+---------------'
//!                     replies
//!                        v
//!                    bind:5557
//!                 .-------------.
//!                 |    PULL     |
//!                 +-------------+
//!                 |   Server    |
//!                 #-------------#
//! ```
//!
//! Start the computers first: a computer that joins after the command was
//! published never sees it (the "slow joiner"). With `--expect N` it
//! watches who subscribes and publishes again for each newcomer, until N
//! computers have answered.
//!
//! Run with `cargo run --release --bin command`, with `computer`s running in
//! other terminals. Ctrl-C stops it.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use examples_common::{
    Guard, Incoming, Poller, cannot_bind, cli, console, frames, note, say, stop,
};
use vsq::Reply;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| command(&args))
}

/// command.py: binds its two sockets, then configures the computers.
fn command(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    // Who may connect (--allow), and the server's open files (guard.rs).
    let guard = Guard::start(&context, &args.allow)?;
    // Socket to send commands to every computer. An XPUB socket is a PUB
    // socket that also tells who subscribes: one message per subscription,
    // so that a late computer can be sent the command.
    let publisher = context.socket(zmq::XPUB).context("cannot create a socket")?;
    // How its connections are watched, and who may make one (lib.rs).
    examples_common::set_up_server(&publisher, &guard)?;
    // Trap: no peer may make us hold a subscription of any size.
    publisher.set_maxmsgsize(args.limit.max_message_size)?;
    publisher.set_xpub_verbose(true)?;
    publisher.set_linger(0)?;
    let pub_endpoint = examples_common::tcp(&args.bind, args.pub_port);
    publisher.bind(&pub_endpoint).map_err(cannot_bind(&pub_endpoint))?;
    // Socket to receive the computers' replies. Named as in command.py,
    // though it collects replies to the command, not results.
    let results_receiver = context.socket(zmq::PULL).context("cannot create a socket")?;
    examples_common::set_up_server(&results_receiver, &guard)?;
    results_receiver.set_maxmsgsize(args.limit.max_message_size)?;
    let reply_endpoint = examples_common::tcp(&args.bind, args.reply_port);
    results_receiver.bind(&reply_endpoint).map_err(cannot_bind(&reply_endpoint))?;

    // Once bound, every exit says how many computers answered, even none.
    let mut answers = Answers::default();
    let outcome = configure(args, &publisher, &results_receiver, &mut answers);
    answers.summary();
    outcome
}

/// Publishes the "configure" command, then listens to the replies.
fn configure(
    args: &Args,
    publisher: &zmq::Socket,
    results_receiver: &zmq::Socket,
    answers: &mut Answers,
) -> Result<ExitCode> {
    // Trap: a subscriber misses what was published before it joined, so
    // give the computers a moment to connect and subscribe.
    if !stop::sleep(args.settle) {
        return Ok(ExitCode::SUCCESS);
    }
    let command = configure_command(args)?;
    drain_subscriptions(publisher)?;
    // Printed before it is sent, so that it comes out before any
    // computer's answer to it.
    say!("{command}");
    console::flush();
    publisher.send(command.as_bytes(), 0).context("cannot publish the command")?;
    say!("Listening to response from configured computers");
    cmd_reply_handler(args, publisher, results_receiver, &command, answers)
}

/// Prints the computers' replies until a poll of `--quiet-after` sees
/// nothing, or, with `--expect N`, until N units have answered.
fn cmd_reply_handler(
    args: &Args,
    publisher: &zmq::Socket,
    results_receiver: &zmq::Socket,
    command: &str,
    answers: &mut Answers,
) -> Result<ExitCode> {
    // poller.register(results_receiver, zmq.POLLIN)
    let mut poller = Poller::new();
    let results = poller.register(results_receiver);
    // With --expect, a computer that subscribes late is sent the command
    // again; without, the command goes out once, as in the original.
    let subscriptions = args.expect.map(|_| poller.register(publisher));
    let deadline = Instant::now() + args.timeout;
    loop {
        // socks = dict(poller.poll(200)): false when it timed out, or on Ctrl-C.
        let wait = match args.expect {
            Some(_) => deadline.saturating_duration_since(Instant::now()),
            None => args.quiet_after,
        };
        if !poller.poll(Some(wait))? {
            return answers.quiet(args);
        }
        if poller.is_readable(results) {
            // message = results_receiver.recv()
            let first = results_receiver.recv_msg(0).context("cannot receive a reply")?;
            let message = frames(results_receiver, first)?;
            // print "Computer responded: %s" % message
            if answers.check(&message).is_some() {
                say!("Computer responded: {}", console::whole(&message.first));
            }
            if args.expect.is_some_and(|expected| answers.units.len() as u64 >= expected) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        let joined = subscriptions.is_some_and(|index| poller.is_readable(index));
        if joined && drain_subscriptions(publisher)? {
            // A computer joined after the command went out: send it again
            // (to every computer: they answer again, and count once).
            publisher.send(command.as_bytes(), 0).context("cannot publish the command")?;
        }
    }
}

/// The command, spaced as Python's json.dumps writes it, as the original
/// printed it: `politiche2013 {"cmd": "configure", "response_channel": ...}`.
fn configure_command(args: &Args) -> Result<String> {
    let response_channel = match &args.response_channel {
        Some(channel) => channel.clone(),
        None => examples_common::tcp("localhost", args.reply_port),
    };
    Ok(format!(
        r#"{} {{"cmd": "configure", "response_channel": {}}}"#,
        args.topic,
        serde_json::to_string(&response_channel)?
    ))
}

/// Reads the subscriptions waiting on the XPUB socket; true if any
/// computer subscribed (rather than unsubscribed).
fn drain_subscriptions(publisher: &zmq::Socket) -> Result<bool> {
    let mut subscribed = false;
    loop {
        match publisher.recv_bytes(zmq::DONTWAIT) {
            // A subscription is the byte 1 followed by the topic.
            Ok(message) => subscribed |= message.first() == Some(&1),
            Err(zmq::Error::EAGAIN) => return Ok(subscribed),
            Err(error) => return Err(error).context("cannot read a subscription"),
        }
    }
}

/// Publishes a "configure" command to the computers and prints their replies.
#[derive(Debug, Parser)]
#[command(name = "command", version)]
struct Args {
    /// Port to publish commands on
    #[arg(long, default_value_t = examples_common::COMMAND_PORT, value_parser = cli::port())]
    pub_port: u16,
    /// Port to collect replies on
    #[arg(long, default_value_t = examples_common::REPLY_PORT, value_parser = cli::port())]
    reply_port: u16,
    /// Address to bind, `*` for every interface
    #[arg(long, value_name = "ADDR", default_value = "*")]
    bind: String,
    /// Topic to publish the command on
    #[arg(long, default_value = vsq::TOPIC)]
    topic: String,
    /// Where the command tells computers to reply (default: tcp://localhost:<REPLY_PORT>)
    #[arg(long, value_name = "ENDPOINT")]
    response_channel: Option<String>,
    /// Time for computers to subscribe before the command is published (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = cli::duration)]
    settle: Duration,
    /// Stop listening once no reply came for this long (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = cli::duration)]
    quiet_after: Duration,
    /// Instead, listen until this many different units have answered
    #[arg(long, value_name = "N", value_parser = cli::count())]
    expect: Option<u64>,
    /// With --expect: give up (exit 1) after this long (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = cli::duration)]
    timeout: Duration,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
    #[command(flatten)]
    allow: cli::Allow,
}

/// What came back: the units that answered, and how many replies were
/// rejected.
#[derive(Default)]
struct Answers {
    units: HashSet<i64>,
    rejected: u64,
}

impl Answers {
    /// A reply is a JSON object with an integer `unit`: its unit, or None
    /// when it is rejected (and said so on stderr).
    fn check(&mut self, message: &Incoming) -> Option<i64> {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => vsq::parse_object::<Reply>(&message.first),
        };
        match checked {
            Ok(reply) => {
                self.units.insert(reply.unit);
                Some(reply.unit)
            }
            Err(problem) => {
                console::reject(format!("reply {problem}"), &message.first);
                self.rejected += 1;
                None
            }
        }
    }

    /// A poll saw nothing: all is quiet (`Poll queue empty`), Ctrl-C came,
    /// or, with --expect, the time is up.
    fn quiet(&self, args: &Args) -> Result<ExitCode> {
        if stop::requested() {
            return Ok(ExitCode::SUCCESS);
        }
        let Some(expected) = args.expect else {
            say!("Poll queue empty");
            return Ok(ExitCode::SUCCESS);
        };
        let waited = cli::show_duration(args.timeout);
        bail!(
            "{} of {expected} computers answered within {waited}",
            self.units.len()
        );
    }

    /// `command: 2 computers answered, 1 rejected reply` on stderr.
    fn summary(&self) {
        let stopped = if stop::requested() { "stopped; " } else { "" };
        let answered = match self.units.len() {
            0 => "no computer answered".to_owned(),
            1 => "1 computer answered".to_owned(),
            n => format!("{n} computers answered"),
        };
        let rejected = match self.rejected {
            0 => String::new(),
            n => format!(", {} rejected", console::count(n, ["reply", "replies"])),
        };
        note!("command: {stopped}{answered}{rejected}");
    }
}
