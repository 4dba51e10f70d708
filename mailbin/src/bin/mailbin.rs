//! Mailbin: binds a PULL socket on tcp://*:5558 and reads, through a
//! poller, the mail form posts that any number of fakers push to it. It
//! prints who sent each valid form and rejects anything else.
//!
//! ```text
//! #--------------#  #--------------#  #--------------#
//! |  FakerScript |  |  FakerScript |  |  FakerScript |
//! +--------------+  +--------------+  +--------------+
//! |     PUSH     |  |     PUSH     |  |     PUSH     |
//! '------+-------'  '------+-------'  '------+-------'
//!   connect:5558      connect:5558      connect:5558
//!        |                 |                 |
//!        '-----------------+-----------------'
//!                          |
//!                        data
//!                          |
//!                          v
//!                       bind:5558
//!                   .-------------.
//!                   |    PULL     |
//!                   +-------------+
//!                   |   Mailbin   |
//!                   #-------------#
//! ```
//!
//! A form is valid when it is a JSON object whose seven fields are strings,
//! with an email address `local@domain`, a `created_at` that is a real
//! calendar date `YYYYMMDD` (any day: a form queued on the 31st and read on
//! the 1st is still a form), and an IPv4 or IPv6 `ip`.
//!
//! With `--store forms.db` every valid form is also kept in an SQLite
//! database, and so is every rejected message, with the reason.
//!
//! Run with `cargo run --release --bin mailbin`, then
//! `cargo run --release --bin faker` in one or more other terminals.
//! Ctrl-C stops it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::NaiveDate;
use clap::Parser;
use examples_common::store::{Backlog, Store, Stored, params};
use examples_common::{
    Guard, Incoming, Poller, cannot_bind, cli, console, frames, note, say, stop,
};
use mailbin::{DATE_FORMAT, Form};
use serde::Deserialize;
use serde_json::Value;

fn main() -> ExitCode {
    let args = Args::parse();
    examples_common::run(|| collect(&args))
}

/// The mailbin service: a PULL socket read through a poller.
fn collect(args: &Args) -> Result<ExitCode> {
    // With --store, open it first: if it cannot be written, say so before
    // binding.
    let store = Store::open(args.store.as_deref(), FORMS)?;

    let context = zmq::Context::new();
    // Who may connect (--allow), and the server's open files (guard.rs).
    let guard = Guard::start(&context, &args.allow)?;
    // Socket to receive the forms that fakers push.
    let form_receiver = context.socket(zmq::PULL).context("cannot create a socket")?;
    // How its connections are watched, and who may make one (lib.rs).
    examples_common::set_up_server(&form_receiver, &guard)?;
    // Trap: no faker may make us hold a form of any size.
    form_receiver.set_maxmsgsize(args.limit.max_message_size)?;
    let endpoint = examples_common::tcp(&args.bind, args.port);
    form_receiver.bind(&endpoint).map_err(cannot_bind(&endpoint))?;
    say!("Mailbin listening on {endpoint}");

    let mut mailbin = Mailbin::new(store, args.count);
    // The loop's error (a store given up) waits until the summary is out.
    let served = serve(&mut mailbin, &form_receiver);
    mailbin.summary();
    served.map(|()| ExitCode::SUCCESS)
}

/// The poll loop: the forms waiting, checked, stored, then printed.
fn serve(mailbin: &mut Mailbin, form_receiver: &zmq::Socket) -> Result<()> {
    // Forms are checked through a poller.
    let mut poller = Poller::new();
    poller.register(form_receiver);
    while !mailbin.counted_all() {
        // False on Ctrl-C, for a clean stop (take no more, and keep what
        // had reached us already), and after a slice while forms wait for
        // a locked store.
        let readable = poller.poll(mailbin.patience())?;
        let stopping = stop::requested();
        if stopping {
            examples_common::stop_accepting(form_receiver)?;
        }
        if stopping || readable {
            // form = form_receiver.recv(), for every form waiting, as long
            // as the mailbin's own queue has room.
            while mailbin.has_room(stopping) {
                let first = match form_receiver.recv_msg(zmq::DONTWAIT) {
                    Ok(first) => first,
                    Err(zmq::Error::EAGAIN) => break,
                    Err(error) => return Err(error).context("cannot receive a form"),
                };
                // Its frames counted (a form is one), then checked.
                mailbin.read(frames(form_receiver, first)?);
            }
        }
        // Printed once stored: a printed form is a stored one.
        for sender in mailbin.store(stopping)? {
            say!(
                "Mailbin received a form from {}",
                console::whole(sender.as_bytes())
            );
        }
        if stopping {
            break;
        }
    }
    Ok(())
}

/// Collects mail form posts on a PULL socket and checks each one.
#[derive(Debug, Parser)]
#[command(name = "mailbin", version)]
struct Args {
    /// Port to listen on
    #[arg(long, default_value_t = examples_common::MAILBIN_PORT, value_parser = cli::port())]
    port: u16,
    /// Address to bind, `*` for every interface
    #[arg(long, value_name = "ADDR", default_value = "*")]
    bind: String,
    /// Stop after this many valid forms (default: collect forever)
    #[arg(long, value_name = "N", value_parser = cli::count())]
    count: Option<u64>,
    /// Also keep every valid form, and every rejected message, in this SQLite database
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    #[command(flatten)]
    limit: cli::ReceiveLimit,
    #[command(flatten)]
    allow: cli::Allow,
}

/// The mailbin's table in the `--store` database.
const FORMS: &str = "CREATE TABLE IF NOT EXISTS forms (
    id          INTEGER PRIMARY KEY,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    email       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    ip          TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    service_uri TEXT NOT NULL,
    received_at TEXT NOT NULL
)";

/// How each valid form is stored: the store fills in `received_at`.
const INSERT: &str = "INSERT INTO forms
    (first_name, last_name, email, created_at, ip, user_agent, service_uri, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// What the mailbin has read and not yet stored, and its counts.
struct Mailbin {
    store: Store,
    /// Valid forms, each with the message it came in, waiting to be stored.
    backlog: Backlog<(Form, zmq::Message)>,
    /// Who sent each form stored, to be printed.
    senders: Vec<String>,
    /// --count: stop after this many valid forms.
    count: Option<u64>,
    received: u64,
    rejected: u64,
}

impl Mailbin {
    fn new(mut store: Store, count: Option<u64>) -> Mailbin {
        // The mailbin serves: a store it made stays, even with no row.
        store.in_use();
        Mailbin {
            store,
            backlog: Backlog::default(),
            senders: Vec::new(),
            count,
            received: 0,
            rejected: 0,
        }
    }

    /// True once `--count` valid forms were received.
    fn counted_all(&self) -> bool {
        self.count.is_some_and(|count| self.received >= count)
    }

    /// How long the next poll may wait: for ever, or a slice while forms
    /// wait for a locked store.
    fn patience(&self) -> Option<Duration> {
        (!self.backlog.is_empty()).then_some(stop::SLICE)
    }

    /// True while the mailbin may read one more message: its queue has
    /// room (every message, when `stopping`) and --count is not reached.
    fn has_room(&self, stopping: bool) -> bool {
        let taken = self.received + self.backlog.accepted_waiting() as u64;
        (stopping || self.backlog.has_room(&self.store))
            && self.count.is_none_or(|count| taken < count)
    }

    /// Checks one message: a valid form waits in the queue to be stored;
    /// anything else is rejected at once, and waits to be kept in `rejected`.
    fn read(&mut self, message: Incoming) {
        let checked = match message.multipart() {
            Some(problem) => Err(problem),
            None => read_form(&message.first),
        };
        let bytes = message.first.len();
        match checked {
            Ok(form) => self.backlog.accepted((form, message.first), bytes),
            Err(problem) => {
                console::reject(&problem, &message.first);
                self.backlog.rejected(message.first, problem);
                self.rejected += 1;
            }
        }
    }

    /// Stores the queue, a burst at a time; returns who sent each form
    /// stored, to be printed: a printed form is a stored one. While another
    /// program holds the lock, stores nothing, unless `stopping`: then it
    /// waits for the lock (until a second Ctrl-C).
    fn store(&mut self, stopping: bool) -> Result<std::vec::Drain<'_, String>> {
        let Mailbin {
            store,
            backlog,
            senders,
            rejected,
            ..
        } = self;
        store.flush(backlog, stopping, senders, |writer, (form, message)| {
            let row = params![
                form.first_name,
                form.last_name,
                form.email,
                form.created_at,
                form.ip,
                form.user_agent,
                form.service_uri,
            ];
            if writer.insert(INSERT, row, &message)? == Stored::Refused {
                *rejected += 1;
                return Ok(None);
            }
            let Form {
                first_name,
                last_name,
                email,
                ..
            } = &form;
            Ok(Some(format!("{first_name} {last_name} {email}")))
        })?;
        self.received += self.senders.len() as u64;
        Ok(self.senders.drain(..))
    }

    /// `mailbin: 3 forms received, 1 rejected` on stderr.
    fn summary(&self) {
        note!(
            "mailbin: {} received, {} rejected",
            console::count(self.received, ["form", "forms"]),
            self.rejected
        );
    }
}

/// The seven fields of a form as they came, whatever their types; a
/// field twice is an error (serde keeps track), other keys are ignored.
#[derive(Deserialize)]
struct Fields {
    first_name: Option<Value>,
    last_name: Option<Value>,
    email: Option<Value>,
    created_at: Option<Value>,
    ip: Option<Value>,
    user_agent: Option<Value>,
    service_uri: Option<Value>,
}

/// Reads a form post, or says which field is wrong and how.
fn read_form(message: &[u8]) -> Result<Form, String> {
    // serde would also read the fields from a JSON array: only objects will do.
    if !message.trim_ascii_start().starts_with(b"{") {
        return Err("not a JSON object".to_owned());
    }
    // JSON is text: serde would skip invalid bytes in a key it ignores.
    let Ok(text) = std::str::from_utf8(message) else {
        return Err("not a JSON object".to_owned());
    };
    let fields: Fields = serde_json::from_str(text).map_err(|error| {
        // Any value will do for a field: a data error is a field twice.
        let error = error.to_string();
        match error.strip_prefix("duplicate field `") {
            Some(rest) => {
                let name = rest.split('`').next().unwrap_or_default();
                format!("form field \"{name}\" appears twice")
            }
            None => "not a JSON object".to_owned(),
        }
    })?;
    // Every field is a string.
    let text = |name: &str, value: Option<Value>| match value {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(format!("form field \"{name}\" is not a string")),
        None => Err(format!("form field \"{name}\" is missing")),
    };
    let form = Form {
        first_name: text("first_name", fields.first_name)?,
        last_name: text("last_name", fields.last_name)?,
        email: text("email", fields.email)?,
        created_at: text("created_at", fields.created_at)?,
        ip: text("ip", fields.ip)?,
        user_agent: text("user_agent", fields.user_agent)?,
        service_uri: text("service_uri", fields.service_uri)?,
    };

    if !is_address(&form.email) {
        return Err(r#"form field "email" is not an address local@domain"#.to_owned());
    }
    if date(&form.created_at).is_none() {
        return Err(r#"form field "created_at" is not a date YYYYMMDD"#.to_owned());
    }
    if form.ip.parse::<IpAddr>().is_err() {
        return Err(r#"form field "ip" is not an IPv4 or IPv6 address"#.to_owned());
    }
    Ok(form)
}

/// An email address: exactly one `@`, text on both sides, no whitespace.
fn is_address(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// A real day written `YYYYMMDD`: eight digits, so `2024-1-5` or `+2024015`
/// is no date.
fn date(text: &str) -> Option<NaiveDate> {
    if text.len() != 8 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(text, DATE_FORMAT).ok()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{date, is_address};

    #[test]
    fn addresses_have_one_at_and_no_whitespace() {
        assert!(is_address("ada@example.org"));
        for bad in [
            "ada.example.org",
            "@example.org",
            "ada@",
            "a@b@c",
            "ada @x.org",
        ] {
            assert!(!is_address(bad), "{bad}");
        }
    }

    #[test]
    fn dates_are_real_days_in_eight_digits() {
        assert_eq!(date("20240229"), NaiveDate::from_ymd_opt(2024, 2, 29));
        for bad in [
            "20230229", "20241301", "20240100", "2024011", "+2024011", "2024-1-1",
        ] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }
}
