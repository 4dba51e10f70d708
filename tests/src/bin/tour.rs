//! The tour: runs every example as the README tells it, all in one
//! terminal, sped up: `cargo run --release --bin tour` for all four
//! scenarios, `tour vsq` for one. Each participant is a real process of
//! one of the nine example binaries; its lines appear prefixed with its
//! name. Every scenario checks what it claims, and the tour exits 0 only
//! if all of them held. Ctrl-C stops it and every program it started.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use clap::{Parser, ValueEnum};
use tests::stage::Stage;
use tests::{Signal, free_port};

/// Runs the examples' scenarios, in one terminal, and checks each one.
#[derive(Debug, Parser)]
#[command(name = "tour", version)]
struct Args {
    /// Scenarios to run (default: all, in the README's order)
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Reqrep,
    Pubsub,
    Vsq,
    Mailbin,
}

/// Long enough for any step on a busy machine; never reached when all is well.
const STEP: Duration = Duration::from_secs(15);

fn main() -> ExitCode {
    let args = Args::parse();
    let scenarios = match args.scenarios.is_empty() {
        true => Scenario::value_variants().to_vec(),
        false => args.scenarios,
    };
    if let Err(error) = tests::stop_on_ctrl_c() {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    let building = || println!("tour: building the examples (a minute or so the first time) ...");
    if let Err(error) = tests::examples_dir_announcing(building) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }

    let started = Instant::now();
    let mut failed = 0;
    for scenario in scenarios {
        let name = format!("{scenario:?}").to_lowercase();
        println!("\n=== {name}");
        let outcome = match scenario {
            Scenario::Reqrep => reqrep(),
            Scenario::Pubsub => pubsub(),
            Scenario::Vsq => vsq(),
            Scenario::Mailbin => mailbin(),
        };
        match outcome {
            Ok(showed) => println!("=== {name}: ok, {showed}"),
            Err(error) => {
                failed += 1;
                println!("=== {name}: FAILED, {error:#}");
            }
        }
        if tests::interrupted() {
            println!("tour: interrupted, every program stopped");
            return ExitCode::from(130);
        }
    }
    let took = started.elapsed().as_secs_f64();
    match failed {
        0 => {
            println!("\ntour: every scenario did what it promised ({took:.1}s)");
            ExitCode::SUCCESS
        }
        _ => {
            println!("\ntour: {failed} scenario(s) failed ({took:.1}s)");
            ExitCode::FAILURE
        }
    }
}

/// Request-reply: a client and a server take turns, three times.
fn reqrep() -> Result<String> {
    let mut stage = Stage::new();
    let port = free_port().to_string();
    stage.say("reqrep_server starts: it answers each request after a pause");
    let server = [&*port, "--bind", "127.0.0.1", "--delay", "300ms"];
    stage.start("reqrep_server", "reqrep_server", &server)?;
    stage.say("reqrep_client starts: it sends 3 requests, waiting for each reply");
    let client = tests::client_args(&port, &["--requests", "3"]);
    stage.start("reqrep_client", "reqrep_client", &client)?;
    stage.wait_success("reqrep_client", STEP)?;
    stage.say("reqrep_server is stopped (Ctrl-C)");
    stage.interrupt("reqrep_server", STEP)?;

    let replies = starting_with(stage.stdout("reqrep_client")?, "Received reply");
    let requests = starting_with(stage.stdout("reqrep_server")?, "Received request");
    ensure!(
        replies == 3 && requests == 3,
        "3 requests and replies expected, saw {requests} and {replies}"
    );
    Ok("3 requests, 3 replies: REQ and REP took turns".to_owned())
}

/// Publish-subscribe: two subscribers each see only their own zipcode.
fn pubsub() -> Result<String> {
    let mut stage = Stage::new();
    let port = free_port().to_string();
    stage.say("pub_server starts: it publishes weather for three zipcodes");
    let publisher = [&*port, "--bind", "127.0.0.1", "--interval", "50ms"];
    stage.start("pub_server", "pub_server", &publisher)?;
    stage.say("two sub_clients start: each receives the updates of one zipcode only");
    for zipcode in ["10001", "10002"] {
        let args = tests::client_args(&port, &["--zipcode", zipcode, "--timeout", "5s"]);
        stage.start(&format!("sub_client-{zipcode}"), "sub_client", &args)?;
    }
    for zipcode in ["10001", "10002"] {
        let name = format!("sub_client-{zipcode}");
        stage.wait_success(&name, STEP)?;
        let lines = stage.stdout(&name)?;
        let temperatures: Vec<i64> = lines
            .iter()
            .filter_map(|line| line.strip_prefix(&format!("{zipcode} ")))
            .map(str::parse)
            .collect::<Result<_, _>>()
            .context("a temperature is not a number")?;
        ensure!(
            temperatures.len() == 5,
            "{name} got {} updates, not 5",
            temperatures.len()
        );
        let average = temperatures.iter().sum::<i64>().div_euclid(5);
        let expected = format!("Average temperature value for '{zipcode}' was {average}C");
        ensure!(
            lines.last() == Some(&expected),
            "{name} did not print {expected:?}"
        );
    }
    stage.say("pub_server is stopped (Ctrl-C)");
    stage.interrupt("pub_server", STEP)?;
    Ok("2 subscribers each averaged 5 updates of their own zipcode".to_owned())
}

/// The Voisietequi prototype, acted out as in the README.
fn vsq() -> Result<String> {
    let mut stage = Stage::new();
    let [cmd, reply, save] = tests::free_ports();
    let computer = |unit: &'static str| {
        tests::computer_args([&cmd, &reply, &save], unit, &["--interval", "50ms"])
    };
    let saver = tests::listener_args(&save, &[]);

    stage.say("the saver starts, then computer-1 and computer-2, whose results it collects");
    stage.start("saver", "saver", &saver)?;
    stage.start("computer-1", "computer", &computer("1"))?;
    stage.start("computer-2", "computer", &computer("2"))?;
    // As the README says: start the computers before command.
    for computer in ["computer-1", "computer-2"] {
        stage.wait_for(computer, "Aye sir", STEP)?;
    }
    stage.say("command starts: it configures them, waiting until both have answered");
    let command = [
        "--pub-port",
        &cmd,
        "--reply-port",
        &reply,
        "--bind",
        "127.0.0.1",
        "--expect",
        "2",
    ];
    stage.start("command", "command", &command)?;
    stage
        .wait_success("command", STEP)
        .context("command did not configure both computers")?;

    let both = results_during(&mut stage, "saver", Duration::from_secs(1))?;
    stage.say("computer-2 is stopped (Ctrl-C): the stream slows down");
    let stopped = stage.interrupt("computer-2", STEP)?;
    ensure!(stopped.success(), "computer-2 did not stop cleanly");
    let one = results_during(&mut stage, "saver", Duration::from_secs(1))?;
    ensure!(
        one * 4 < both * 3,
        "the stream did not slow down: {both} then {one} results a second"
    );

    stage.say("the saver is stopped (Ctrl-C); computer-1 keeps its results queued");
    let stopped = stage.interrupt("saver", STEP)?;
    ensure!(stopped.success(), "the saver did not stop cleanly");
    stage.watch(Duration::from_secs(1))?;
    stage.say("computer-1 is stopped (Ctrl-C): it waits for a saver to take its queued results");
    stage.signal("computer-1", Signal::SIGINT)?;
    let waiting = stage.wait_for_stderr("computer-1", "queued results", STEP)?;
    let queued: usize = tests::number_after(&waiting, " to take ")
        .context("computer-1 did not say how many results it queued")?;

    stage.say("a saver starts again, and receives what was queued");
    stage.start("saver", "saver", &saver)?;
    stage
        .wait_success("computer-1", STEP)
        .context("computer-1 did not deliver its queue")?;
    let summary = stage.stderr("computer-1")?.last().cloned().unwrap_or_default();
    let pushed: usize = tests::number_after(&summary, " computed ")
        .context("computer-1 did not say how many results it pushed")?;
    let last = format!("\"unit\":1,\"counter\":{},", pushed - 1);
    stage.wait_for("saver", &last, STEP)?;
    let received = stage
        .stdout("saver")?
        .iter()
        .filter(|line| line.contains("\"unit\":1,"))
        .count();
    if received != queued {
        bail!("{queued} results were queued, but the new saver received {received}");
    }
    stage.say("the saver is stopped (Ctrl-C)");
    stage.interrupt("saver", STEP)?;

    let acked = nothing_lost(&mut stage, &save)?;
    Ok(format!(
        "2 computers configured; the stream slowed from {both} to {one} results a second when one stopped; \
         {queued} results queued while no saver ran arrived when it started again; {acked}"
    ))
}

/// How many results computer-3 sends at full speed with acknowledgements.
const ACKED_RESULTS: u64 = 20_000;

/// "Nothing lost, for real" (vsq/README.md): a saver killed in mid-stream
/// and started again, with acknowledgements, keeps every result.
fn nothing_lost(stage: &mut Stage, save: &str) -> Result<String> {
    let [ack, cmd, reply] = tests::free_ports();
    let saver = tests::listener_args(save, &["--ack-port", &ack]);
    let results = ACKED_RESULTS.to_string();
    let fast = [
        "--ack-port",
        &ack,
        "--interval",
        "0s",
        "--results",
        &results,
    ];
    let computer = tests::computer_args([&cmd, &reply, save], "3", &fast);
    stage.say(&format!(
        "nothing lost, for real: a saver and computer-3 both take --ack-port; computer-3 \
         sends {ACKED_RESULTS} results at full speed (the saver's lines are not shown)"
    ));
    stage.start_quiet("saver", "saver", &saver)?;
    stage.start("computer-3", "computer", &computer)?;
    stage.wait_for("saver", "\"counter\":5000,", STEP)?;
    stage.say("the saver is killed (SIGKILL) in mid-stream, and started again");
    stage.signal("saver", Signal::SIGKILL)?;
    stage.wait_exit("saver", STEP)?;
    let mut kept = counters(stage.stdout("saver")?);
    let before = kept.len();
    stage.start_quiet("saver", "saver", &saver)?;
    let acknowledged = stage.wait_success("computer-3", STEP);
    acknowledged.context("computer-3 did not have all its results acknowledged")?;
    stage.say("every result is acknowledged: the saver is stopped (Ctrl-C)");
    stage.interrupt("saver", STEP)?;
    kept.extend(counters(stage.stdout("saver")?));
    let every = (0..ACKED_RESULTS as i64).collect::<std::collections::BTreeSet<_>>();
    ensure!(
        kept == every,
        "{} of {ACKED_RESULTS} results were kept",
        kept.len()
    );
    Ok(format!(
        "{ACKED_RESULTS} results with acknowledgements, the saver killed after {before}: every one kept"
    ))
}

/// The counters of the results a saver printed.
fn counters(lines: &[String]) -> std::collections::BTreeSet<i64> {
    lines
        .iter()
        .filter_map(|line| line.split("\"counter\":").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse().ok())
        .collect()
}

/// The fake mail form: two fakers push forms, the mailbin checks each one.
fn mailbin() -> Result<String> {
    let mut stage = Stage::new();
    let port = free_port().to_string();
    stage.say("mailbin starts: it checks fake form posts, and stops after 6 valid ones");
    let mailbin = tests::listener_args(&port, &["--count", "6"]);
    stage.start("mailbin", "mailbin", &mailbin)?;
    stage.say("two fakers start: each pushes 3 forms");
    for (faker, seed) in [("faker-1", "1"), ("faker-2", "2")] {
        let pace = ["--interval", "200ms", "--count", "3", "--seed", seed];
        let args = [&["--host", "127.0.0.1", "--port", &port][..], &pace].concat();
        stage.start(faker, "faker", &args)?;
    }
    for program in ["mailbin", "faker-1", "faker-2"] {
        stage.wait_success(program, STEP)?;
    }
    let received = starting_with(stage.stdout("mailbin")?, "Mailbin received a form from ");
    let summary = stage.stderr("mailbin")?.last().cloned().unwrap_or_default();
    ensure!(
        received == 6 && summary == "mailbin: 6 forms received, 0 rejected",
        "6 valid forms expected, the mailbin said {summary:?}"
    );
    Ok("6 forms from 2 fakers were pushed, received and found valid".to_owned())
}

/// The number that follows `phrase` in `line` ("... to take 20 queued ...").
/// How many of `lines` start with `prefix`.
fn starting_with(lines: &[String], prefix: &str) -> usize {
    lines.iter().filter(|line| line.starts_with(prefix)).count()
}

/// How many results `saver` prints during `duration`.
fn results_during(stage: &mut Stage, saver: &str, duration: Duration) -> Result<usize> {
    let before = stage.stdout(saver)?.len();
    stage.watch(duration)?;
    Ok(stage.stdout(saver)?.len() - before)
}
