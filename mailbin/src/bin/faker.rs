//! Fake mail form poster: connects a PUSH socket to tcp://localhost:5558
//! and, twice a second, pushes a fake form post (names, email address,
//! date, IP address, browser) to the mailbin as JSON, printing each form.
//!
//! A PUSH socket keeps what it cannot deliver yet: forms pushed while no
//! mailbin runs are queued and go out when one starts, with no broker in
//! between. At exit the faker waits for a mailbin to take them (`--linger`
//! bounds that wait).
//!
//! Run with `cargo run --release --bin faker`, with `mailbin` running in
//! another terminal, or started later. Ctrl-C stops it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{Datelike as _, Days, Local};
use clap::Parser;
use examples_common::{Delivery, Outbox, cannot_connect, cli, console, note, say, stop};
use fake::Fake as _;
use fake::faker::internet::en::{FreeEmail, IPv4, UserAgent};
use fake::faker::name::en::{FirstName, LastName};
use mailbin::{DATE_FORMAT, Form, SERVICE_URI};
use rand::SeedableRng as _;
use rand::rngs::StdRng;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| push_forms(&args))
}

/// The faker script: pushes a fake form post on a PUSH socket, again and again.
fn push_forms(args: &Args) -> Result<ExitCode> {
    let context = zmq::Context::new();
    // Socket for sending forms to the mailbin.
    let form_sender = context.socket(zmq::PUSH).context("cannot create a socket")?;
    // How its connection is watched (heartbeats: lib.rs).
    examples_common::set_up_client(&form_sender)?;
    // An outbox watches the connection and counts what the socket may
    // still hold, for the exit (outbox.rs).
    let endpoint = examples_common::tcp(&args.host, args.port);
    let names = ["mailbin", "form", "forms"];
    let mut outbox = Outbox::watch(&context, &form_sender, &endpoint, names)?;
    form_sender.connect(&endpoint).map_err(cannot_connect(&endpoint))?;
    let mut rng = match args.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => rand::make_rng(),
    };

    let mut pushed = 0;
    'push: while !stop::requested() && args.count.is_none_or(|count| pushed < count) {
        // Simulate mail form content.
        let form = fake_form(&mut rng);

        // Show the form, then send it to the mailbin: shown first, it comes
        // before any line the mailbin prints about it.
        say!("{}", serde_json::to_string_pretty(&form)?);
        let message = serde_json::to_vec(&form).context("cannot encode a form")?;
        // A send into a full queue gives up after a slice, to look at
        // Ctrl-C (see outbox.rs).
        while let Err(error) = form_sender.send(&message, 0) {
            if !outbox.may_retry(error)? {
                note!("faker: stopped before the form shown last was sent");
                break 'push;
            }
        }
        outbox.sent(&message)?;
        pushed += 1;

        // Take it easy (but not after the last one).
        if args.count != Some(pushed) {
            stop::sleep(args.interval);
        }
    }

    // Trap: forms still queued for a mailbin that is not there would hold
    // up the exit; wait for them to leave, deliberately, or drop them and say so.
    let delivery = outbox.finish(form_sender, context, args.linger)?;
    note!("faker: {} made", console::count(pushed, ["form", "forms"]));
    match delivery {
        Delivery::Sent => Ok(ExitCode::SUCCESS),
        Delivery::Dropped(dropped) => {
            note!("faker: {dropped}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Pushes fake mail form posts to a mailbin on a PUSH socket.
#[derive(Debug, Parser)]
#[command(name = "faker", version)]
struct Args {
    /// Host of the mailbin
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Port of the mailbin
    #[arg(long, default_value_t = examples_common::MAILBIN_PORT, value_parser = cli::port())]
    port: u16,
    /// Pause between two forms (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = cli::duration)]
    interval: Duration,
    /// Stop after this many forms (default: push forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    count: Option<u64>,
    /// Make the same sequence of forms on every run with this seed (default: random)
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// At exit, how long to wait for queued forms to be sent (a duration: 250ms, 1s, 2m; default: until they are)
    #[arg(long, value_name = "DURATION", value_parser = cli::duration)]
    linger: Option<Duration>,
}

/// A form as someone might post it: every field drawn from `rng`, so that
/// one seed always makes the same forms.
fn fake_form(rng: &mut StdRng) -> Form {
    // Dated some day of this month, up to today.
    let today = Local::now().date_naive();
    let days_ago: u32 = (0..=today.day0()).fake_with_rng(rng);
    let created_at = today - Days::new(u64::from(days_ago));
    Form {
        first_name: FirstName().fake_with_rng(rng),
        last_name: LastName().fake_with_rng(rng),
        email: FreeEmail().fake_with_rng(rng),
        created_at: created_at.format(DATE_FORMAT).to_string(),
        ip: IPv4().fake_with_rng(rng),
        user_agent: UserAgent().fake_with_rng(rng),
        service_uri: SERVICE_URI.to_owned(),
    }
}
