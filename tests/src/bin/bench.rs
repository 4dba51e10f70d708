//! The benchmark: `cargo run --release --bin bench`. Runs the examples' own
//! binaries with their sleeps turned off and, beside them in the same run,
//! a raw `zmq` loop that does the same socket work and nothing else (the
//! binding's limit), then prints a table of medians with the ratio of each
//! example to its raw loop and the peak RSS of each binary. One more row,
//! with no example in it, measures the raw loop doing the JSON work of
//! computer and saver: how much of the results stream's ratio that work
//! alone costs.
//!
//! What is measured, for an example and for its raw loop alike: the wall
//! time from the start of the connecting side (its process, or its context
//! and socket) until the receiving side has the last message (its process
//! has exited, or its last `recv` returned). The bound side is listening
//! before the clock starts. The examples' stdout goes to /dev/null.
//!
//! Benchmarks are not tests: nothing here fails on a slow number. A run
//! that does not finish within `--timeout` is an error (exit 1).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use clap::{Parser, ValueEnum};
use examples_common::console::whole;
use rand::RngExt as _;
use rand_distr::StandardNormal;
use tests::{Output, Program, Signal, bounded_socket, free_port};
use vsq::Computation;

/// Measures the examples against raw zmq loops doing the same socket work.
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
struct Args {
    /// Scenarios to run (default: all)
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Messages per stream (results, weather updates received)
    #[arg(long, value_name = "N", default_value_t = 300_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Request-reply round trips
    #[arg(long, value_name = "N", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    round_trips: u64,
    /// Runs of each measurement; the table shows their median
    #[arg(long, value_name = "R", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// A run that takes longer than this fails the bench (a duration: 250ms, 1s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = examples_common::cli::duration)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// reqrep_server --delay 0s with reqrep_client, against raw REQ/REP
    Reqrep,
    /// computer --interval 0s into saver, against raw PUSH/PULL
    Results,
    /// pub_server --interval 0s into sub_client, against raw PUB/SUB
    Weather,
    /// computer into saver --store, against raw PUSH/PULL
    Store,
    /// computer into saver --store, both with --ack-port, against the same
    /// without acknowledgements
    Acked,
    /// No example: raw PUSH/PULL that also draws, encodes, parses and prints
    /// each result as computer and saver do (what that work costs), against raw PUSH/PULL
    Work,
    /// No example: the same, and SQLite storing each result in bursts as the
    /// saver does (what a stored result must cost), against raw PUSH/PULL
    Floor,
}

impl Scenario {
    fn title(self) -> &'static str {
        match self {
            Scenario::Reqrep => "request-reply round trip",
            Scenario::Results => "results stream",
            Scenario::Weather => "weather stream",
            Scenario::Store => "results stream, saver --store",
            Scenario::Acked => "results stream, --store and --ack-port (raw: --store alone)",
            Scenario::Work => "results stream, the JSON work alone",
            Scenario::Floor => "results stream, the JSON work and SQLite alone",
        }
    }
}

/// The goals: request-reply and the weather stream within this ratio of
/// their raw loops, and each binary's peak RSS under this many KiB...
const GOAL_RATIO: f64 = 1.3;
const GOAL_RSS_KIB: u64 = 16 * 1024;
/// ... the results stream within this ratio of the JSON work alone...
const GOAL_WORK_RATIO: f64 = 1.15;
/// ... the `--store` stream within this ratio of the JSON work and SQLite
/// alone (its floor)...
const GOAL_FLOOR_RATIO: f64 = 1.3;
/// ... and acknowledged results within this ratio of the same stream
/// without acknowledgements.
const GOAL_ACKED_RATIO: f64 = 1.2;

fn main() -> ExitCode {
    let args = Args::parse();
    // Ctrl-C or SIGTERM ends the run, and the running examples with it.
    let outcome = tests::stop_on_ctrl_c().and_then(|()| bench(&args));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if tests::interrupted() => {
            eprintln!("bench: interrupted");
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &Args) -> Result<()> {
    let scenarios = match args.scenarios.is_empty() {
        true => Scenario::value_variants().to_vec(),
        false => args.scenarios.clone(),
    };
    eprintln!("bench: building the examples (a minute or so the first time) ...");
    tests::examples_dir().map_err(|error| anyhow!(error))?;
    if cfg!(debug_assertions) {
        eprintln!("bench: a debug build; run it with --release for numbers worth reading");
    }

    let mut rows: Vec<Row> = scenarios.iter().map(|&scenario| Row::new(scenario)).collect();
    for run in 1..=args.runs {
        eprintln!("bench: run {run} of {}", args.runs);
        for row in &mut rows {
            row.measure(args)?;
        }
    }

    println!(
        "{} round trips, {} messages per stream (weather: updates the subscriber \
         receives); median of {} runs; ratio: the example's time per message over \
         the raw loop's\n",
        args.round_trips, args.messages, args.runs
    );
    println!("| scenario | example | raw zmq loop | ratio | peak RSS |");
    println!("|---|---|---|---|---|");
    for row in &rows {
        println!("{}", row.show(args));
    }
    let missed: Vec<String> = rows.iter().filter_map(|row| row.missed_goal(&rows)).collect();
    match missed.is_empty() {
        true => println!("\ngoals met"),
        false => println!("\ngoals missed: {}", missed.join("; ")),
    }
    Ok(())
}

/// What one scenario measured over all runs.
struct Row {
    scenario: Scenario,
    example: Vec<Duration>,
    raw: Vec<Duration>,
    /// The peak RSS of each binary, in KiB, the highest over all runs.
    peaks: Vec<(String, u64)>,
}

impl Row {
    fn new(scenario: Scenario) -> Row {
        Row {
            scenario,
            example: Vec::new(),
            raw: Vec::new(),
            peaks: Vec::new(),
        }
    }

    fn measure(&mut self, args: &Args) -> Result<()> {
        let (round_trips, messages) = (args.round_trips, args.messages);
        let example = match self.scenario {
            Scenario::Reqrep => example_reqrep(round_trips, args.timeout),
            Scenario::Results => example_results(messages, None, false, args.timeout),
            Scenario::Weather => example_weather(messages, args.timeout),
            Scenario::Work | Scenario::Floor => {
                let work = match self.scenario {
                    Scenario::Work => Work::Json,
                    _ => Work::Stored,
                };
                raw_results(messages, work, args.timeout).map(|took| Measured {
                    took,
                    peaks: Vec::new(),
                })
            }
            Scenario::Store => stored_results(messages, false, args.timeout),
            Scenario::Acked => stored_results(messages, true, args.timeout),
        };
        let measured =
            example.with_context(|| format!("{}: the example failed", self.scenario.title()))?;
        let raw = match self.scenario {
            Scenario::Reqrep => raw_reqrep(round_trips, args.timeout),
            Scenario::Results | Scenario::Store | Scenario::Work | Scenario::Floor => {
                raw_results(messages, Work::None, args.timeout)
            }
            Scenario::Weather => raw_weather(messages, args.timeout),
            // What the acknowledgements cost: the same stream without them.
            Scenario::Acked => stored_results(messages, false, args.timeout).map(|run| run.took),
        };
        let raw = raw.with_context(|| format!("{}: the raw loop failed", self.scenario.title()))?;
        self.raw.push(raw);
        self.example.push(measured.took);
        for (name, kib) in measured.peaks {
            match self.peaks.iter_mut().find(|(known, _)| *known == name) {
                Some((_, peak)) => *peak = (*peak).max(kib),
                None => self.peaks.push((name, kib)),
            }
        }
        Ok(())
    }

    /// The time per message of the example over that of the raw loop.
    fn ratio(&self) -> f64 {
        median(&self.example).as_secs_f64() / median(&self.raw).as_secs_f64()
    }

    fn show(&self, args: &Args) -> String {
        let title = self.scenario.title();
        let per = |took: Duration| match self.scenario {
            Scenario::Reqrep => {
                let micros = took.as_secs_f64() * 1e6 / args.round_trips as f64;
                format!("{micros:.1} µs")
            }
            _ => match args.messages as f64 / took.as_secs_f64() {
                rate if rate >= 1e6 => format!("{:.2}M msg/s", rate / 1e6),
                rate if rate >= 1e3 => format!("{:.0}k msg/s", rate / 1e3),
                rate => format!("{rate:.0} msg/s"),
            },
        };
        let mut peaks = String::new();
        if self.peaks.is_empty() {
            peaks.push_str("no example binary");
        }
        for (name, kib) in &self.peaks {
            let separator = if peaks.is_empty() { "" } else { ", " };
            let _ = match kib {
                // Too quick to be sampled even once.
                0 => write!(peaks, "{separator}{name} ?"),
                _ => write!(peaks, "{separator}{name} {:.1} MiB", *kib as f64 / 1024.0),
            };
        }
        format!(
            "| {title} | {} | {} | {:.2}x | {peaks} |",
            per(median(&self.example)),
            per(median(&self.raw)),
            self.ratio()
        )
    }

    /// What this row misses of its goals; `rows` are all the rows measured,
    /// among them the ones some rows are held against (the JSON work alone,
    /// the floor).
    fn missed_goal(&self, rows: &[Row]) -> Option<String> {
        let against = |scenario: Scenario| {
            let row = rows.iter().find(|row| row.scenario == scenario)?;
            Some(median(&self.example).as_secs_f64() / median(&row.example).as_secs_f64())
        };
        let (ratio, goal, against) = match self.scenario {
            Scenario::Reqrep | Scenario::Weather => (self.ratio(), GOAL_RATIO, String::new()),
            Scenario::Acked => (self.ratio(), GOAL_ACKED_RATIO, String::new()),
            Scenario::Results | Scenario::Store => {
                let (floor, goal) = match self.scenario {
                    Scenario::Results => (Scenario::Work, GOAL_WORK_RATIO),
                    _ => (Scenario::Floor, GOAL_FLOOR_RATIO),
                };
                match against(floor) {
                    Some(ratio) => (ratio, goal, format!(" {}", floor.title())),
                    None => (0.0, f64::INFINITY, String::new()),
                }
            }
            Scenario::Work | Scenario::Floor => (0.0, f64::INFINITY, String::new()),
        };
        let mut missed = Vec::new();
        if ratio > goal {
            missed.push(format!("{ratio:.2}x{against}, goal {goal}x"));
        }
        for (name, kib) in &self.peaks {
            if *kib >= GOAL_RSS_KIB {
                missed.push(format!("{name} {:.1} MiB", *kib as f64 / 1024.0));
            }
        }
        match missed.is_empty() {
            true => None,
            false => Some(format!("{} ({})", self.scenario.title(), missed.join(", "))),
        }
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

// ---------------------------------------------------------------------------
// The examples, each a real process of its binary.

/// One run of an example scenario.
struct Measured {
    took: Duration,
    peaks: Vec<(String, u64)>,
}

fn example_reqrep(round_trips: u64, timeout: Duration) -> Result<Measured> {
    let deadline = Instant::now() + timeout;
    let (port, n) = (free_port().to_string(), round_trips.to_string());
    let server_args = [&port, "--bind", "127.0.0.1", "--delay", "0s", "--count", &n];
    let mut server = start("reqrep_server", &server_args)?;
    server.wait_listening(port.parse()?, deadline)?;

    let started = Instant::now();
    let client_args = tests::client_args(&port, &["--requests", &n, "--timeout", "10s"]);
    let mut client = start("reqrep_client", &client_args)?;
    client.wait_success(&mut [&mut server], deadline)?;
    let took = started.elapsed();
    server.wait_success(&mut [], deadline)?;
    Ok(Measured {
        took,
        peaks: peaks([&server, &client]),
    })
}

/// The results stream into a fresh database, in a folder of our own.
fn stored_results(messages: u64, acks: bool, timeout: Duration) -> Result<Measured> {
    let folder = tempfile::tempdir().context("cannot create a folder for the store")?;
    example_results(
        messages,
        Some(&folder.path().join("results.db")),
        acks,
        timeout,
    )
}

fn example_results(
    messages: u64,
    store: Option<&std::path::Path>,
    acks: bool,
    timeout: Duration,
) -> Result<Measured> {
    let deadline = Instant::now() + timeout;
    let n = messages.to_string();
    let [save, cmd, reply, ack] =
        [free_port(), free_port(), free_port(), free_port()].map(|port| port.to_string());
    let mut saver_args = tests::listener_args(&save, &[]);
    let store = store.map(|path| path.display().to_string());
    if let Some(store) = &store {
        saver_args.extend(["--store", store]);
    }
    // Without acknowledgements the stream ends when the saver has every
    // result; with them, when the computer knows it has.
    match acks {
        false => saver_args.extend(["--count", &n]),
        true => saver_args.extend(["--ack-port", &ack]),
    }
    let mut saver = start("saver", &saver_args)?;
    saver.wait_listening(save.parse()?, deadline)?;

    let started = Instant::now();
    let fast = ["--interval", "0s", "--results", &n, "--linger", "10s"];
    let mut computer_args = tests::computer_args([&cmd, &reply, &save], "1", &fast);
    if acks {
        computer_args.extend(["--ack-port", &ack]);
    }
    let mut computer = start("computer", &computer_args)?;
    let took = match acks {
        false => {
            saver.wait_success(&mut [&mut computer], deadline)?;
            let took = started.elapsed();
            computer.wait_success(&mut [], deadline)?;
            took
        }
        true => {
            computer.wait_success(&mut [&mut saver], deadline)?;
            let took = started.elapsed();
            saver.signal(Signal::SIGTERM);
            saver.wait_success(&mut [], deadline)?;
            took
        }
    };
    Ok(Measured {
        took,
        peaks: peaks([&computer, &saver]),
    })
}

fn example_weather(updates: u64, timeout: Duration) -> Result<Measured> {
    let deadline = Instant::now() + timeout;
    let port = free_port().to_string();
    let publisher_args = [&port, "--bind", "127.0.0.1", "--interval", "0s"];
    let mut publisher = start("pub_server", &publisher_args)?;
    publisher.wait_listening(port.parse()?, deadline)?;

    let started = Instant::now();
    let n = updates.to_string();
    let subscriber_args = tests::client_args(&port, &["--updates", &n, "--timeout", "10s"]);
    let mut subscriber = start("sub_client", &subscriber_args)?;
    subscriber.wait_success(&mut [&mut publisher], deadline)?;
    let took = started.elapsed();
    // The publisher runs until told to stop, as the original did.
    publisher.sample_memory();
    publisher.signal(Signal::SIGTERM);
    publisher.wait_success(&mut [], deadline)?;
    Ok(Measured {
        took,
        peaks: peaks([&publisher, &subscriber]),
    })
}

/// Starts the example binary `name`; its stdout goes unread to /dev/null.
fn start(name: &str, args: &[&str]) -> Result<Program> {
    Program::launch(name, name, args, Output::StderrOnly)
}

/// The peak RSS sampled of each program, in KiB.
fn peaks(programs: [&Program; 2]) -> Vec<(String, u64)> {
    let peak = |program: &&Program| {
        let kib = program.peak_memory_sampled() / 1024;
        (program.name().to_owned(), kib)
    };
    programs.iter().map(peak).collect()
}

// ---------------------------------------------------------------------------
// The raw loops: the same socket work in this process, and nothing else.
// Each side has its own context (and so its own I/O thread), as the two
// processes of an example have. Every socket gives up after `timeout`
// (`bounded_socket`), so that a raw loop cannot hang the bench.

fn endpoint(port: u16) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// REQ/REP: `Hello` and `World from <port>`, one round trip at a time.
fn raw_reqrep(round_trips: u64, timeout: Duration) -> Result<Duration> {
    let port = free_port();
    let server_context = zmq::Context::new();
    let server = bounded_socket(&server_context, zmq::REP, timeout)?;
    server.bind(&endpoint(port))?;
    let world = format!("World from {port}");
    let server_task = std::thread::spawn(move || -> Result<()> {
        let mut request = zmq::Message::new();
        for _ in 0..round_trips {
            server.recv(&mut request, 0)?;
            server.send(world.as_bytes(), 0)?;
        }
        Ok(())
    });

    let started = Instant::now();
    let client_context = zmq::Context::new();
    let client = bounded_socket(&client_context, zmq::REQ, timeout)?;
    client.connect(&endpoint(port))?;
    let mut reply = zmq::Message::new();
    for _ in 0..round_trips {
        client.send("Hello", 0)?;
        client.recv(&mut reply, 0).context("no reply in time")?;
    }
    let took = started.elapsed();
    join(server_task)?;
    Ok(took)
}

/// What a raw results loop does besides moving messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Nothing: the same payload every time.
    None,
    /// What computer and saver do with each result: draw x and y from the
    /// normal distribution, encode it with serde, parse it back and print
    /// the saver's line (here to /dev/null).
    Json,
    /// The same, and SQLite storing each result, in bursts of 100 rows a
    /// transaction, before its line is printed, as the saver does.
    Stored,
}

/// PUSH/PULL: `messages` payloads the size of a computer's result.
fn raw_results(messages: u64, work: Work, timeout: Duration) -> Result<Duration> {
    let port = free_port();
    let saver_context = zmq::Context::new();
    let saver = bounded_socket(&saver_context, zmq::PULL, timeout)?;
    saver.bind(&endpoint(port))?;

    let started = Instant::now();
    let computer_task = std::thread::spawn(move || -> Result<()> {
        let context = zmq::Context::new();
        let computer = bounded_socket(&context, zmq::PUSH, timeout)?;
        // Every result must arrive, however quickly this thread ends.
        computer.set_linger(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))?;
        computer.connect(&endpoint(port))?;
        // As long as the computer's last result: two doubles as serde_json writes them.
        let mut result = Computation {
            unit: 1,
            counter: messages as i64,
            x: -0.6419264318350616,
            y: 1.2240093006787497,
        };
        let mut message = serde_json::to_vec(&result)?;
        let mut rng = rand::rng();
        for counter in 0..messages {
            if work != Work::None {
                result.counter = counter as i64;
                result.x = rng.sample(StandardNormal);
                result.y = rng.sample(StandardNormal);
                message.clear();
                serde_json::to_writer(&mut message, &result)?;
            }
            computer.send(&message, 0)?;
        }
        Ok(())
    });
    let mut lines = std::io::BufWriter::new(std::io::sink());
    let mut store = match work {
        Work::Stored => Some(FloorStore::open()?),
        _ => None,
    };
    let mut burst = Vec::with_capacity(FLOOR_BURST);
    for received in 1..=messages {
        let mut message = zmq::Message::new();
        saver.recv(&mut message, 0).context("no result in time")?;
        if work == Work::None {
            continue;
        }
        let result = vsq::parse_object::<Computation>(&message).map_err(|e| anyhow!(e))?;
        burst.push((result, message));
        if burst.len() == FLOOR_BURST || received == messages {
            if let Some(store) = &mut store {
                store.insert(burst.iter().map(|(result, _)| result))?;
            }
            for (_, message) in burst.drain(..) {
                writeln!(lines, "Computer requested a save: {}", whole(&message))?;
            }
        }
    }
    let took = started.elapsed();
    join(computer_task)?;
    Ok(took)
}

/// How many rows the floor writes a transaction: the saver's burst.
const FLOOR_BURST: usize = 100;

/// SQLite alone, as the saver's store sets it up, with the saver's table
/// and INSERT: what storing a result must cost.
struct FloorStore {
    connection: rusqlite::Connection,
    /// The millisecond of the last `received_at`, and its text.
    clock: (u128, String),
    _folder: tempfile::TempDir,
}

impl FloorStore {
    fn open() -> Result<FloorStore> {
        let folder = tempfile::tempdir().context("cannot create a folder for the store")?;
        let connection = rusqlite::Connection::open(folder.path().join("floor.db"))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(vsq::schema::RESULTS)?;
        Ok(FloorStore {
            connection,
            clock: (0, String::new()),
            _folder: folder,
        })
    }

    /// Inserts a burst of results in one transaction.
    fn insert<'a>(&mut self, results: impl Iterator<Item = &'a Computation>) -> Result<()> {
        self.connection.execute_batch("BEGIN IMMEDIATE")?;
        let mut insert = self.connection.prepare_cached(vsq::schema::INSERT)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if self.clock.0 != now.as_millis() || self.clock.1.is_empty() {
            let time = chrono::DateTime::<chrono::Utc>::from(std::time::UNIX_EPOCH + now);
            self.clock = (
                now.as_millis(),
                time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            );
        }
        for result in results {
            let row = rusqlite::params![
                result.unit,
                result.counter,
                result.x,
                result.y,
                self.clock.1
            ];
            insert.execute(row)?;
        }
        drop(insert);
        self.connection.execute_batch("COMMIT")?;
        Ok(())
    }
}

/// PUB/SUB: a publisher cycling through the three zipcodes as fast as it
/// can, a subscriber counting `updates` of its own (a third of them).
fn raw_weather(updates: u64, timeout: Duration) -> Result<Duration> {
    let port = free_port();
    let publisher_context = zmq::Context::new();
    let publisher = bounded_socket(&publisher_context, zmq::PUB, timeout)?;
    publisher.bind(&endpoint(port))?;
    let done = Arc::new(AtomicBool::new(false));
    let publishing = Arc::clone(&done);
    let publisher_task = std::thread::spawn(move || -> Result<()> {
        while !publishing.load(Ordering::Relaxed) {
            for update in ["10000 56", "10001 56", "10002 56"] {
                publisher.send(update, 0)?;
            }
        }
        Ok(())
    });

    let started = Instant::now();
    let subscriber_context = zmq::Context::new();
    let subscriber = bounded_socket(&subscriber_context, zmq::SUB, timeout)?;
    subscriber.connect(&endpoint(port))?;
    subscriber.set_subscribe(b"10001 ")?;
    let mut update = zmq::Message::new();
    let received = (0..updates).try_for_each(|_| subscriber.recv(&mut update, 0));
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    join(publisher_task)?;
    received.context("no update in time")?;
    Ok(took)
}

fn join(task: JoinHandle<Result<()>>) -> Result<()> {
    task.join().map_err(|_| anyhow!("a raw loop's thread panicked"))?
}
