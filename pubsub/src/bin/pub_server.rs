//! Weather publisher: binds a PUB socket on tcp://*:5556 and, once a second,
//! publishes "<zipcode> <temperature>" for one of the zipcodes 10000, 10001
//! and 10002, which are the topics subscribers filter on.
//!
//! ```text
//!                #-------------#
//!                |  Publisher  |
//!                +-------------+
//!                |     PUB     |
//!                '-------------'
//!                      bind
//!                        |
//!                     updates
//!        .---------------+---------------.
//!        v               v               v
//!     connect         connect         connect
//!  .------------.  .------------.  .------------.
//!  |    SUB     |  |    SUB     |  |    SUB     |
//!  +------------+  +------------+  +------------+
//!  | Subscriber |  | Subscriber |  | Subscriber |
//!  #------------#  #------------#  #------------#
//! ```
//!
//! A publisher does not wait for subscribers: what it sends while nobody is
//! connected is dropped, and a subscriber only sees updates published after
//! it joined (the "slow joiner").
//!
//! Run with `cargo run --release --bin pub_server`, then `sub_client` in one
//! or more other terminals. Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use examples_common::{Guard, cannot_bind, cli, note, say, stop};
use rand::RngExt as _;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| publish(&args))
}

/// pub_server.py: publishes weather updates on a PUB socket.
fn publish(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    // Who may connect (--allow), and the server's open files (guard.rs).
    let guard = Guard::start(&context, &args.allow)?;
    // socket = context.socket(zmq.PUB)
    let publisher = context.socket(zmq::PUB).context("cannot create a socket")?;
    // How its connections are watched, and who may make one (lib.rs).
    examples_common::set_up_server(&publisher, &guard)?;
    // Updates nobody received yet are not worth waiting for at exit.
    publisher.set_linger(0)?;
    // socket.bind("tcp://*:%s" % port)
    let endpoint = examples_common::tcp(&args.bind, args.port);
    publisher.bind(&endpoint).map_err(cannot_bind(&endpoint))?;

    let mut rng = rand::rng();
    let mut published = 0;
    while !stop::requested() && args.count.is_none_or(|count| published < count) {
        // zipcode = random.randrange(10000, 10002): three zipcodes, as the
        // original's README says (its randrange never drew the third).
        let zipcode = rng.random_range(10000..=10002);
        // messagedata = random.randrange(1, 215) - 80
        let temperature = rng.random_range(1..215) - 80;
        // socket.send("%d %d" % (zipcode, messagedata))
        let update = format!("{zipcode} {temperature}");
        say!("{update}");
        publisher.send(update.as_bytes(), 0).context("cannot publish an update")?;
        published += 1;
        stop::sleep(args.interval);
    }
    note!("pub_server: {published} updates published");
    Ok(ExitCode::SUCCESS)
}

/// Publishes random temperatures for three zipcodes on a PUB socket.
#[derive(Debug, Parser)]
#[command(name = "pub_server", version)]
struct Args {
    /// Port to listen on
    #[arg(default_value_t = examples_common::PUBSUB_PORT, value_parser = cli::port())]
    port: u16,
    /// Address to bind, `*` for every interface
    #[arg(long, value_name = "ADDR", default_value = "*")]
    bind: String,
    /// Pause between two updates (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = cli::duration)]
    interval: Duration,
    /// Stop after this many updates (default: publish forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    count: Option<u64>,
    #[command(flatten)]
    allow: cli::Allow,
}
