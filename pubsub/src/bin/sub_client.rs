//! Weather subscriber: connects a SUB socket to tcp://localhost:5556,
//! subscribes to zipcode 10001, and prints the average of five updates.
//!
//! Start it after `pub_server`, or before: either way it only sees updates
//! published once it has joined (the "slow joiner").
//!
//! Run with `cargo run --release --bin sub_client`, with `pub_server`
//! running in another terminal. Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use examples_common::{Link, Wait, cannot_connect, cli, console, frames, note, say};

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| subscribe(&args))
}

/// sub_client.py: averages the temperatures of one zipcode, from a SUB socket.
fn subscribe(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    let endpoint = examples_common::tcp(&args.host, args.port);
    say!(
        "Collecting updates from weather server at {endpoint} for zipcode {} ...",
        args.zipcode
    );
    // socket = context.socket(zmq.SUB)
    let subscriber = context.socket(zmq::SUB).context("cannot create a socket")?;
    // How its connection is watched (heartbeats: lib.rs).
    examples_common::set_up_client(&subscriber)?;
    // Trap: no publisher may make us hold an update of any size.
    subscriber.set_maxmsgsize(args.limit.max_message_size)?;
    // Our subscription is all a SUB socket sends: not worth waiting for at exit.
    subscriber.set_linger(0)?;
    // A link watches the connection, and makes it again after an
    // oversized update, which libzmq never does (link.rs).
    let mut link = Link::watch(&context, &subscriber, &endpoint)?;
    // socket.connect("tcp://localhost:%s" % port)
    subscriber.connect(&endpoint).map_err(cannot_connect(&endpoint))?;
    // socket.setsockopt(zmq.SUBSCRIBE, "10001")
    // Trap: subscriptions match byte prefixes, and "10001" would also
    // match "100012 ...". The zipcode and its space ask for the whole zipcode.
    subscriber.set_subscribe(format!("{} ", args.zipcode).as_bytes())?;

    let mut total_temperature: i128 = 0;
    let mut received = 0;
    while received < args.updates {
        // string = socket.recv(), without waiting: a stream is read (and
        // printed) in blocks, and waits only when nothing is there.
        let first = match subscriber.recv_msg(zmq::DONTWAIT) {
            Ok(first) => first,
            // Wait for an update (the link also gives up after --timeout,
            // on Ctrl-C, and when a lost connection was made again).
            Err(zmq::Error::EAGAIN) => match link.wait(&subscriber, args.timeout)? {
                Wait::Ready => continue,
                // What was published meanwhile is gone: listen on.
                Wait::Reconnected => continue,
                Wait::Stopped => {
                    let updates = console::count(received, ["update", "updates"]);
                    note!("sub_client: stopped after {updates}");
                    return Ok(ExitCode::SUCCESS);
                }
                Wait::TimedOut => {
                    let timeout = cli::show_duration(args.timeout.unwrap_or_default());
                    bail!("no update from {endpoint} within {timeout}");
                }
            },
            Err(error) => return Err(error).context("cannot receive an update"),
        };
        // Its frames counted: an update is one (poller.rs).
        let update = frames(&subscriber, first)?;
        // topic, messagedata = string.split()
        let temperature = match update.multipart() {
            Some(problem) => Err(problem),
            None => parse_update(&update.first, &args.zipcode)
                .ok_or_else(|| "not an update \"<zipcode> <integer>\"".to_owned()),
        };
        let temperature = match temperature {
            Ok(temperature) => temperature,
            Err(problem) => {
                console::reject(problem, &update.first);
                continue;
            }
        };
        // total_value += int(messagedata)
        total_temperature += i128::from(temperature);
        received += 1;
        say!("{} {temperature}", args.zipcode);
    }

    // Rounded toward negative infinity, as Python's `//` does: -7 / 5 is -2.
    let average = total_temperature.div_euclid(i128::from(args.updates));
    say!(
        "Average temperature value for '{}' was {average}C",
        args.zipcode
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads "<zipcode> <temperature>" for our zipcode: one space, an integer.
fn parse_update(message: &[u8], zipcode: &str) -> Option<i64> {
    let (topic, temperature) = std::str::from_utf8(message).ok()?.split_once(' ')?;
    if topic != zipcode {
        return None;
    }
    temperature.parse().ok()
}

/// Averages the temperatures published for one zipcode.
#[derive(Debug, Parser)]
#[command(name = "sub_client", version)]
struct Args {
    /// Port of the publisher
    #[arg(default_value_t = examples_common::PUBSUB_PORT, value_parser = cli::port())]
    port: u16,
    /// Host of the publisher
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Zipcode (topic) to subscribe to
    #[arg(long, default_value = "10001", value_parser = zipcode)]
    zipcode: String,
    /// How many updates to average
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = cli::count())]
    updates: u64,
    /// Give up when no update comes for this long (a duration: 250ms, 1s, 2m; default: wait forever)
    #[arg(long, value_name = "DURATION", value_parser = cli::duration)]
    timeout: Option<Duration>,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
}

fn zipcode(text: &str) -> Result<String, &'static str> {
    match !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        true => Ok(text.to_owned()),
        false => Err("a zipcode is made of digits only"),
    }
}
