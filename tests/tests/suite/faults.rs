//! Faults: a stalled or vanished peer, an oversized or multipart message, a
//! busy database, a kill. What each program promises under them is SPEC.md's
//! "Faults" section; each test here acts out one fault.

// A test fails by panicking: unwrap says "this must work".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tests::relay::Relay;
use tests::{Program, Signal, Stream, WAIT, free_port};

use crate::fixtures::{Store, valid_form};

fn endpoint(port: &str) -> String {
    format!("tcp://127.0.0.1:{port}")
}

/// A computer whose results go to `save`; its command ports lead nowhere.
fn computer(save: &str, unit: &str, extra: &[&str]) -> Program {
    let (cmd, reply) = (free_port().to_string(), free_port().to_string());
    let args = tests::computer_args([&cmd, &reply, save], unit, extra);
    Program::start("computer", &args)
}

fn saver(port: &str, extra: &[&str]) -> Program {
    Program::start("saver", &tests::listener_args(port, extra))
}

/// The counters of the results a saver printed, in order.
fn printed_counters(lines: &[String]) -> Vec<i64> {
    tests::numbers_after(lines, "Computer requested a save: ", "counter")
}

// 1. Never hung.

/// A saver that stalls: it runs behind a narrow relay, which the test
/// freezes once results flow. The computer, connected, then holds what it
/// cannot send. (A saver stopped with SIGSTOP stalls too, but the kernel
/// may find room for more of the computer's results long after it looks
/// stuck, when it compacts the stopped process's buffers.)
struct StalledSaver {
    relay: Relay,
    _saver: Program,
}

impl StalledSaver {
    fn start() -> StalledSaver {
        let save = free_port().to_string();
        let mut saver = saver(&save, &[]);
        saver.wait_for_stdout("Listening", WAIT);
        StalledSaver {
            relay: Relay::narrow(save.parse().unwrap()),
            _saver: saver,
        }
    }

    fn port(&self) -> String {
        self.relay.port().to_string()
    }

    /// Freezes the link once the computer's results travel over it, and
    /// waits until the computer is stuck.
    fn stall(&self, computer: &Program) {
        let port = self.port();
        let deadline = Instant::now() + WAIT;
        while tests::bytes_in_flight(self.relay.port()) == 0 {
            assert!(Instant::now() < deadline, "nothing reached {port}");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.relay.freeze();
        // Stuck: the computer asleep with its buffers full, not merely
        // slowed by a busy machine.
        tests::wait_until_stuck(&port, computer.id());
    }
}

#[test]
fn second_signal_ends_a_computer_whose_saver_stalled() {
    let saver = StalledSaver::start();
    let mut computer = computer(&saver.port(), "11", &["--interval", "0s"]);
    saver.stall(&computer);

    computer.signal(Signal::SIGINT);
    // "for the saver ... the last results", or, once the heartbeat has
    // given the stalled saver up, "for a saver ... N queued results";
    // unless its kernel took the last results after all, and it ended.
    if let Some(waiting) = computer.wait_for_stderr_or_exit("computer: waiting for ", WAIT) {
        assert!(
            waiting.contains(&endpoint(&saver.port()))
                && waiting.ends_with(" results (Ctrl-C again or SIGTERM drops them)"),
            "{waiting}"
        );
    }
    let computer = computer.stop(Signal::SIGTERM, WAIT);
    assert_says_what_it_dropped(&computer);
}

#[test]
fn two_signals_before_the_exit_wait_end_it_at_once() {
    // Nobody reads the faker's stdout for now: it stops in a `print`, and
    // both signals come before it reaches its exit wait.
    let port = free_port().to_string();
    let mut faker = Command::new(tests::binary("faker"))
        .args(["--port", &port, "--interval", "0s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (faker.stdout.take().unwrap(), faker.stderr.take().unwrap());
    tests::wait_until_asleep(faker.id());
    signal_twice(&faker, Signal::SIGINT);

    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let (status, said) = wait_for_exit(faker, &mut stderr);
    assert_eq!(status.code(), Some(1), "{said}");
    let last = said.lines().last().unwrap();
    assert!(
        last.starts_with("faker: up to ") && last.ends_with(" forms dropped (never sent)"),
        "{said}"
    );
}

#[test]
fn a_second_signal_ends_a_saver_stuck_in_a_print_nobody_reads() {
    // Nobody ever reads the saver's stdout: it stops in a `print`, where
    // it cannot look at signals.
    let port = free_port().to_string();
    let mut command = Command::new(tests::binary("saver"));
    command.args(tests::listener_args(&port, &[]));
    let (mut saver, _stdout, _computer) = stuck_in_a_print(command.stderr(Stdio::piped()), &port);
    let mut stderr = saver.stderr.take().unwrap();
    signal_twice(&saver, Signal::SIGTERM);

    let (status, said) = wait_for_exit(saver, &mut stderr);
    assert_eq!(status.code(), Some(1), "{said}");
    assert_eq!(
        said.lines().last(),
        Some(
            "saver: stopped at once, still busy a second after the second Ctrl-C or SIGTERM (stuck in a print nobody reads, say)"
        ),
        "{said}"
    );
}

#[test]
fn a_second_signal_ends_a_saver_whose_stdout_and_stderr_nobody_reads() {
    // `saver 2>&1 | less`, the pager stopped: the line that says why it
    // stops at once cannot get out either, and must not hold it up.
    let port = free_port().to_string();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"exec "$0" "$@" 2>&1"#)
        .arg(tests::binary("saver"))
        .args(tests::listener_args(&port, &[]));
    let (saver, _output, _computer) = stuck_in_a_print(command.stderr(Stdio::null()), &port);
    // Fill what room the pipe has left, to the last byte, through the
    // saver's own stdout (Linux's O_NONBLOCK: a write that finds no room
    // fails instead of waiting).
    const O_NONBLOCK: i32 = 0o4000;
    let mut pipe = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(format!("/proc/{}/fd/1", saver.id()))
        .unwrap();
    while pipe.write(b"x").is_ok() {}
    signal_twice(&saver, Signal::SIGTERM);

    let (status, _) = wait_for_exit(saver, &mut std::io::empty());
    assert_eq!(status.code(), Some(1));
}

/// Starts `saver` (a command that runs one, listening on `port`) with its
/// stdout piped and never read, and sends it results until it stops in a
/// print. Returns it, the stdout nobody reads, and the computer's socket,
/// kept open: a saver whose peer left while it could not read may abort
/// (a libzmq bug, see vsq/README.md).
fn stuck_in_a_print(saver: &mut Command, port: &str) -> (Child, ChildStdout, zmq::Socket) {
    let mut saver = saver.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = saver.stdout.take().unwrap();
    let computer = tests::pusher(port);
    for counter in 0..3000 {
        let result = format!(r#"{{"unit": 1, "counter": {counter}, "x": 1, "y": 2}}"#);
        computer.send(result.as_bytes(), 0).unwrap();
    }
    tests::wait_until_stuck(port, saver.id());
    (saver, stdout, computer)
}

/// Sends `signal` to `child` twice, apart, so that the kernel does not
/// merge them into one.
fn signal_twice(child: &Child, signal: Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(pid, signal).unwrap();
}

/// Waits for `child` to exit, for [`WAIT`] at most (then kills it and
/// panics): its status, and what it said on `stderr`.
fn wait_for_exit(mut child: Child, stderr: &mut impl std::io::Read) -> (ExitStatus, String) {
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("process {} still ran after {WAIT:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut said = String::new();
    stderr.read_to_string(&mut said).unwrap();
    (status, said)
}

/// Exit 1 saying `up to N results dropped`, or, when its kernel found
/// room for the last results after all, exit 0 saying nothing of a drop.
///
/// A stalled peer cannot promise more: the sender's TCP buffer may grow
/// (it did by 75 kB in 300 ms on a busy machine, holding 2 MB), and then
/// the results did leave the program. What the old code did, exit 0
/// while results were still held, shows as a hang or a missing line.
fn assert_says_what_it_dropped(computer: &tests::Finished) {
    let last = computer.stderr.last().unwrap();
    let dropped =
        last.starts_with("computer: up to ") && last.ends_with(" results dropped (never sent)");
    match computer.code() {
        Some(1) => assert!(dropped, "{computer:?}"),
        Some(0) => assert!(
            !computer.stderr.iter().any(|line| line.contains("dropped")),
            "{computer:?}"
        ),
        _ => panic!("{computer:?}"),
    }
}

#[test]
fn linger_ends_a_computer_whose_saver_stalled() {
    let saver = StalledSaver::start();
    let args = ["--interval", "0s", "--linger", "300ms"];
    let computer = computer(&saver.port(), "12", &args);
    saver.stall(&computer);

    let computer = computer.stop(Signal::SIGINT, WAIT);
    // Waiting the whole --linger, it said so, naming --linger as a way out.
    assert!(
        computer.code() == Some(0)
            || computer.stderr[0].ends_with(
            "to take the last results (Ctrl-C again or SIGTERM drops them, and so does --linger 300ms)"
        ),
        "{computer:?}"
    );
    assert_says_what_it_dropped(&computer);
}

// 2. Never deaf.

/// Reads subscription messages on an XPUB socket until a new subscription.
fn wait_for_subscription(publisher: &zmq::Socket) -> Vec<u8> {
    loop {
        let message = publisher.recv_bytes(0).expect("no subscription came");
        if message.first() == Some(&1) {
            return message;
        }
    }
}

#[test]
fn subscriber_hears_again_after_an_oversized_update() {
    let port = free_port().to_string();
    let publisher = tests::bound(zmq::XPUB, &port);
    publisher.set_xpub_verbose(true).unwrap();
    let extra = ["--updates", "2", "--max-message-size", "1000"];
    let mut subscriber = Program::start("sub_client", &tests::client_args(&port, &extra));

    assert_eq!(wait_for_subscription(&publisher), b"\x0110001 ");
    publisher.send("10001 5", 0).unwrap();
    // Read before the next one: libzmq drops what is still queued from a
    // connection it gives up.
    subscriber.wait_for_stdout("10001 5", WAIT);
    publisher.send(format!("10001 {}", "9".repeat(5000)).as_bytes(), 0).unwrap();
    // libzmq dropped that connection; the subscriber makes a new one.
    assert_eq!(wait_for_subscription(&publisher), b"\x0110001 ");
    publisher.send("10001 7", 0).unwrap();

    let subscriber = subscriber.finish_successfully();
    assert_eq!(
        subscriber.stdout[1..],
        [
            "10001 5",
            "10001 7",
            "Average temperature value for '10001' was 6C"
        ]
    );
    assert!(
        subscriber.stderr[0].starts_with(&format!(
            "sub_client: lost the connection to {} (the peer went away, or sent a message over 1000 bytes)",
            endpoint(&port)
        )),
        "{subscriber:?}"
    );
}

#[test]
fn computer_hears_commands_again_after_an_oversized_one() {
    let [cmd, reply, save] = tests::free_ports();
    let publisher = tests::bound(zmq::XPUB, &cmd);
    publisher.set_xpub_verbose(true).unwrap();
    let replies = tests::bound(zmq::PULL, &reply);
    let _results = tests::bound(zmq::PULL, &save);
    let limit = ["--max-message-size", "1000"];
    let args = tests::computer_args([&cmd, &reply, &save], "21", &limit);
    let mut computer = Program::start("computer", &args);

    assert_eq!(wait_for_subscription(&publisher), b"\x01politiche2013 ");
    let oversized = format!(r#"politiche2013 {{"cmd": "{}"}}"#, "x".repeat(5000));
    publisher.send(oversized.as_bytes(), 0).unwrap();
    assert_eq!(wait_for_subscription(&publisher), b"\x01politiche2013 ");
    publisher.send(r#"politiche2013 {"cmd": "configure"}"#, 0).unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&replies.recv_bytes(0).unwrap()).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"unit": 21, "status": "configured"})
    );
    computer.wait_for_stderr("computer: lost the connection to", WAIT);
    let computer = computer.stop_cleanly(Signal::SIGTERM, "answered 1 command");
    // Ready once at the start and once after the command: connecting
    // again is no news on stdout.
    assert_eq!(
        computer.stdout,
        [
            "Aye sir, unit 21 ready for your commands ...",
            r#"Message received: 'politiche2013 {"cmd": "configure"}'"#,
            "Sending reply to server",
            "Aye sir, unit 21 ready for your commands ...",
        ]
    );
}

#[test]
fn computer_drops_replies_nobody_collects_and_still_stops() {
    let [cmd, reply, save] = tests::free_ports();
    let publisher = tests::bounded_socket(&zmq::Context::new(), zmq::XPUB, WAIT).unwrap();
    // No command dropped on the way, however slowly the computer reads.
    publisher.set_sndhwm(0).unwrap();
    publisher.bind(&format!("tcp://127.0.0.1:{cmd}")).unwrap();
    let _results = tests::bound(zmq::PULL, &save);
    let args = tests::computer_args([&cmd, &reply, &save], "23", &[]);
    let mut computer = Program::start("computer", &args);
    assert_eq!(wait_for_subscription(&publisher), b"\x01politiche2013 ");

    // More commands than the reply socket can queue for a server that is
    // not there (its high-water mark is 1000).
    for _ in 0..1100 {
        publisher.send(r#"politiche2013 {"cmd": "configure"}"#, 0).unwrap();
    }
    computer.wait_for_stderr("computer: reply dropped: no server takes replies", WAIT);
    let computer = computer.stop(Signal::SIGINT, WAIT);
    assert_eq!(computer.code(), Some(0), "{computer:?}");
    assert!(
        computer.summary().contains("answered 1000 commands"),
        "{computer:?}"
    );
}

#[test]
fn client_asks_again_after_an_oversized_reply() {
    let port = free_port().to_string();
    let server = tests::bound(zmq::REP, &port);
    let extra = ["--requests", "2", "--max-message-size", "1000"];
    let client = Program::start("reqrep_client", &tests::client_args(&port, &extra));

    assert_eq!(server.recv_bytes(0).unwrap(), b"Hello");
    server.send(vec![b'x'; 5000], 0).unwrap();
    // The client lost that reply with its connection, and asks again.
    for _ in 0..2 {
        assert_eq!(server.recv_bytes(0).unwrap(), b"Hello");
        server.send("World", 0).unwrap();
    }
    let client = client.finish_successfully();
    assert_eq!(
        client.stdout,
        [
            "Connecting to server...",
            "Sending request 1 ...",
            "Received reply 1 [ World ]",
            "Sending request 2 ...",
            "Received reply 2 [ World ]",
        ]
    );
    assert!(
        client.stderr.contains(&"reqrep_client: sending request 1 again".to_owned()),
        "{client:?}"
    );
}

// 3. No second copy.

#[test]
fn a_multipart_message_is_rejected_frame_by_frame_without_a_second_copy() {
    let store = Store::new("forms.db");
    let port = free_port().to_string();
    let mut mailbin = Program::start("mailbin", &tests::listener_args(&port, &store.flag()));
    mailbin.wait_for_stdout("Mailbin listening", WAIT);
    let faker = tests::pusher(&port);

    // 400 frames of 60 kB, each under the 64 KiB limit: 24 MB in all.
    const FRAMES: usize = 400;
    const FRAME: usize = 60_000;
    let frame = vec![b'{'; FRAME];
    for _ in 1..FRAMES {
        faker.send(&frame, zmq::SNDMORE).unwrap();
    }
    faker.send(&frame, 0).unwrap();
    let size = FRAMES * FRAME;
    mailbin.wait_for_stderr(
        &format!("rejected: a message of {FRAMES} frames ({size} bytes) where one frame was expected: {{{{"),
        WAIT,
    );
    // libzmq holds the whole message before the program sees a frame;
    // the program adds no copy of its own.
    let peak = tests::peak_memory(mailbin.id());
    let bound = size as u64 * 13 / 10 + 16 * 1024 * 1024;
    assert!(peak < bound, "peak memory {peak} bytes, over {bound}");

    // It goes on, and its store too.
    faker.send(valid_form("Ada").as_bytes(), 0).unwrap();
    mailbin.wait_for_stdout("Mailbin received a form from Ada Lovelace", WAIT);
    mailbin.stop_cleanly(Signal::SIGINT, "mailbin: 1 form received, 1 rejected");
    let rejected = store.rejected();
    let (payload, reason) = &rejected[0];
    // The first frame, not the whole message, kept up to the cap of a row.
    assert_eq!(*payload, frame[..4096]);
    assert!(
        reason.ends_with(&format!(
            "{FRAMES} frames ({size} bytes) where one frame was expected (its first 4096 of {FRAME} bytes)"
        )),
        "{reason}"
    );
}

#[test]
fn saver_rejects_a_multipart_result_and_goes_on() {
    let port = free_port().to_string();
    let mut saver = saver(&port, &[]);
    saver.wait_for_stdout("Listening", WAIT);
    let computer = tests::pusher(&port);
    computer
        .send_multipart(
            [&br#"{"unit": 1, "counter": 0,"#[..], br#" "x": 1, "y": 2}"#],
            0,
        )
        .unwrap();
    computer.send(r#"{"unit": 1, "counter": 1, "x": 1, "y": 2}"#, 0).unwrap();
    saver.wait_for_stdout(r#""counter": 1"#, WAIT);
    let saver = saver.stop_cleanly(Signal::SIGTERM, "saver: 1 result received, 1 rejected");
    assert!(
        saver.stderr[0].starts_with(
            "rejected: result a message of 2 frames (41 bytes) where one frame was expected"
        ),
        "{saver:?}"
    );
}

// 4. Printed means kept.

#[test]
fn sigkill_of_the_saver_loses_no_printed_result() {
    let store = Store::new("results.db");
    let save = free_port().to_string();
    let mut saver = saver(&save, &store.flag());
    let _computer = computer(&save, "41", &["--interval", "1ms"]);
    saver.wait_for_stdout("\"counter\":300,", WAIT);
    let saver = saver.stop(Signal::SIGKILL, WAIT);

    let printed = printed_counters(&saver.stdout);
    let stored = store.counters();
    assert!(
        stored.starts_with(&printed),
        "{} printed, {} stored: every printed result is stored",
        printed.len(),
        stored.len()
    );
}

// 5. A clean stop keeps what reached the saver.

#[test]
fn a_clean_stop_keeps_what_reached_the_saver() {
    let port = free_port().to_string();
    // Nobody reads the saver's stdout for now: once the pipe is full it
    // stops in a `print`, and results pile up in its queue.
    let mut saver = Command::new(tests::binary("saver"))
        .args(tests::listener_args(&port, &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = saver.stdout.take().unwrap();
    let computer = tests::pusher(&port);
    // Counters of four digits: every message has the same length.
    const SENT: usize = 3000;
    let message = |counter: usize| {
        format!(
            r#"{{"unit":1,"counter":{},"x":0.5,"y":0.5}}"#,
            1000 + counter
        )
    };
    for counter in 0..SENT {
        computer.send(message(counter).as_bytes(), 0).unwrap();
    }
    let in_flight = tests::wait_until_stuck(&port, saver.id()) as usize;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(saver.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let (status, _) = wait_for_exit(saver, &mut std::io::empty());
    assert!(status.success(), "{status:?}");
    let text = reader.join().unwrap().unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let printed = printed_counters(&lines);
    assert_eq!(
        printed,
        (1000..1000 + printed.len() as i64).collect::<Vec<_>>()
    );

    // Lost: only what had not reached its queue, in the kernel's buffers
    // (each message with its 2-byte frame header) or in libzmq's read
    // buffer (8 KiB).
    let framed = message(0).len() + 2;
    let lost_at_most = in_flight / framed + 8192 / framed + 2;
    assert!(
        printed.len() + lost_at_most >= SENT,
        "{} of {SENT} printed; {in_flight} bytes were in flight",
        printed.len()
    );
}

// 6. A busy database. (A lock held for 6 s under a real computer's stream
// is in acks.rs: `a_locked_store_holds_the_stream_back_and_then_stores_everything`.)

/// A saver storing into `store`, listening on the port returned, whose
/// write lock another program (the connection returned) holds.
fn locked_saver(store: &Store) -> (Program, rusqlite::Connection, String) {
    let port = free_port().to_string();
    let mut saver = saver(&port, &store.flag());
    saver.wait_for_stdout("Listening", WAIT);
    let other = store.open();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    (saver, other, port)
}

/// Like [`locked_saver`], with a computer's socket to send it results.
fn saver_behind_a_lock(store: &Store) -> (Program, rusqlite::Connection, zmq::Socket) {
    let (saver, other, port) = locked_saver(store);
    (saver, other, tests::pusher(&port))
}

#[test]
fn a_store_locked_for_6_s_loses_nothing_of_a_stream_without_acknowledgements() {
    // The saver reads on into its own queue while the store is locked: it
    // answers its computer's heartbeats, which does not give it up.
    let store = Store::new("results.db");
    let (mut saver, other, save) = locked_saver(&store);
    let locked_at = Instant::now();
    let computer = computer(&save, "61", &["--interval", "1ms", "--results", "8000"]);
    saver.wait_for_stderr("is locked by another program; waiting for it", WAIT);
    std::thread::sleep(Duration::from_secs(6).saturating_sub(locked_at.elapsed()));
    other.execute_batch("COMMIT").unwrap();
    drop(other);

    saver.wait_for_stdout(r#""counter":7999,"#, WAIT);
    let computer = computer.finish(WAIT);
    assert!(computer.success(), "{computer:?}");
    let lost = |line: &String| line.contains("lost the connection");
    assert!(!computer.stderr.iter().any(lost), "{computer:?}");
    saver.stop_cleanly(Signal::SIGTERM, "saver: 8000 results received, 0 rejected");
    assert_eq!(store.counters(), (0..8000).collect::<Vec<i64>>());
}

#[test]
fn a_second_signal_gives_up_on_a_locked_store() {
    let store = Store::new("results.db");
    let (mut saver, other, computer) = saver_behind_a_lock(&store);
    let result = r#"{"unit": 7, "counter": 0, "x": 1, "y": 2}"#;
    computer.send(result.as_bytes(), 0).unwrap();
    saver.wait_for_stderr("is locked by another program; waiting for it", WAIT);

    // The first Ctrl-C is a clean stop, which still waits to store what
    // was read; the second gives up.
    saver.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(saver.is_running(), "{}", saver.transcript());
    saver.signal(Signal::SIGTERM);
    let saver = saver.finish(WAIT);
    assert_gave_up_on_the_store(&saver, "saver: 0 results received, 0 rejected");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(store.counters(), Vec::<i64>::new());
}

/// Exit 1, the summary, then the store's error, last.
fn assert_gave_up_on_the_store(finished: &tests::Finished, summary: &str) {
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    let [said, last] = &finished.stderr[finished.stderr.len() - 2..] else {
        panic!("{finished:?}");
    };
    assert_eq!(said, summary, "{finished:?}");
    assert!(
        last.starts_with("error: cannot write to the store ")
            && last.ends_with(": database is locked"),
        "{finished:?}"
    );
}

#[test]
fn a_second_signal_gives_up_on_a_locked_store_of_mailbin_too() {
    let store = Store::new("forms.db");
    let port = free_port().to_string();
    let args = [&["--port", &port, "--bind", "127.0.0.1"][..], &store.flag()].concat();
    let mut mailbin = Program::start("mailbin", &args);
    mailbin.wait_for_stdout("Mailbin listening", WAIT);
    let other = store.open();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let faker = tests::pusher(&port);
    faker.send(valid_form("Ada").as_bytes(), 0).unwrap();
    mailbin.wait_for_stderr("is locked by another program; waiting for it", WAIT);

    mailbin.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    mailbin.signal(Signal::SIGTERM);
    let mailbin = mailbin.finish(WAIT);
    assert_gave_up_on_the_store(&mailbin, "mailbin: 0 forms received, 0 rejected");
    other.execute_batch("COMMIT").unwrap();
}

#[test]
fn a_store_locked_when_the_saver_starts_makes_it_wait() {
    let store = Store::new("results.db");
    let other = store.open();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let port = free_port().to_string();
    let mut saver = saver(&port, &store.flag());
    saver.wait_for_stderr("is locked by another program; waiting for it", WAIT);
    assert!(saver.is_running(), "{}", saver.transcript());
    other.execute_batch("COMMIT").unwrap();

    saver.wait_for_stdout("Listening", WAIT);
    let computer = tests::pusher(&port);
    let result = r#"{"unit": 8, "counter": 0, "x": 1, "y": 2}"#;
    computer.send(result.as_bytes(), 0).unwrap();
    saver.wait_for_stdout("\"counter\": 0", WAIT);
    saver.stop_cleanly(Signal::SIGTERM, "saver: 1 result received, 0 rejected");
    assert_eq!(store.counters(), [0]);
}

// 7. A malformed request.

#[test]
fn reqrep_server_survives_a_request_without_an_envelope() {
    let port = free_port().to_string();
    let mut server = Program::start(
        "reqrep_server",
        &[&port, "--bind", "127.0.0.1", "--delay", "0s"],
    );
    let client = tests::connected(zmq::REQ, &port);
    client.send("Hello", 0).unwrap();
    assert_eq!(
        client.recv_bytes(0).unwrap(),
        format!("World from {port}").as_bytes()
    );
    server.wait_for_stdout("Received request: Hello", WAIT);

    // A DEALER sending a bare frame: the poll says "readable", then REP
    // discards it for want of the empty delimiter. Once the server has
    // read it, Ctrl-C must find it polling, not stuck in a `recv`.
    let dealer = tests::connected(zmq::DEALER, &port);
    dealer.send("no envelope", 0).unwrap();
    tests::wait_until_stuck(&port, server.id());

    server.stop_cleanly(Signal::SIGINT, "reqrep_server: 1 reply sent");
}

// 8. Dead links are noticed.

#[test]
fn a_silent_partition_is_noticed_and_healed() {
    let save = free_port().to_string();
    let mut saver = saver(&save, &[]);
    saver.wait_for_stdout("Listening", WAIT);
    let relay = Relay::start(save.parse().unwrap());
    let through = relay.port().to_string();
    let mut computer = computer(&through, "81", &["--interval", "10ms"]);
    saver.wait_for_stdout("\"counter\":5,", WAIT);

    relay.freeze();
    let lost = format!(
        "computer: lost the connection to the saver at {}",
        endpoint(&through)
    );
    computer.wait_for_stderr(&lost, WAIT);
    relay.thaw();
    computer.wait_for_stderr(
        &format!(
            "computer: connected to the saver at {} again",
            endpoint(&through)
        ),
        WAIT,
    );
    // Results flow again (those that were on the frozen link are lost:
    // PUSH has no acknowledgement).
    let seen = printed_counters(saver.lines_of(Stream::Stdout)).len();
    let deadline = Instant::now() + WAIT;
    while printed_counters(saver.lines_of(Stream::Stdout)).len() < seen + 20 {
        assert!(Instant::now() < deadline, "{}", saver.transcript());
        std::thread::sleep(Duration::from_millis(10));
        saver.new_lines();
    }
    assert!(computer.is_running());
}

// 9. No abort. libzmq 4.3.4 aborts (zeromq/libzmq#4841) when a socket
// whose reader has stopped pings a peer that has gone: the peer's reset
// meets the next heartbeat. The programs never ping from a socket they
// read from.

/// How long a fault lasts past the moment the peer left: several of the
/// heartbeats that would trip the abort (one a second).
const PAST_THE_HEARTBEATS: Duration = Duration::from_secs(3);

#[test]
fn a_saver_whose_store_is_locked_while_a_computer_ends_stores_every_result() {
    let store = Store::new("results.db");
    let (mut saver, other, save) = locked_saver(&store);

    // The computer sends its 3000 results into the saver's queue and
    // buffers, and ends, while the store is locked.
    let computer = computer(&save, "93", &["--interval", "0s", "--results", "3000"]);
    let computer = computer.finish_successfully();
    std::thread::sleep(PAST_THE_HEARTBEATS);
    assert!(saver.is_running(), "{}\n{computer:?}", saver.transcript());
    other.execute_batch("COMMIT").unwrap();
    drop(other);

    saver.wait_for_stdout(r#""counter":2999,"#, WAIT);
    saver.stop_cleanly(Signal::SIGTERM, "saver: 3000 results received, 0 rejected");
    assert_eq!(store.counters(), (0..3000).collect::<Vec<i64>>());
}

#[test]
fn a_saver_stuck_in_a_print_outlives_a_computer_that_ended() {
    let port = free_port().to_string();
    let mut command = Command::new(tests::binary("saver"));
    command.args(tests::listener_args(&port, &[]));
    let (mut saver, stdout, computer) = stuck_in_a_print(&mut command, &port);
    // The computer leaves while the saver cannot read.
    drop(computer);
    std::thread::sleep(PAST_THE_HEARTBEATS);
    assert!(
        saver.try_wait().unwrap().is_none(),
        "the saver ended: {:?}",
        saver.try_wait()
    );
    // Read, at last: every result comes out.
    let (seen, last_seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(r#""counter": 2999,"#) {
                let _ = seen.send(());
            }
        }
    });
    let printed_all = last_seen.recv_timeout(WAIT).is_ok();
    let pid = nix::unistd::Pid::from_raw(saver.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    let status = saver.wait().unwrap();
    assert!(printed_all, "the last result never came out: {status:?}");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_subscriber_stuck_in_a_print_outlives_its_publisher() {
    let port = free_port().to_string();
    let mut publisher = Program::start(
        "pub_server",
        &[&port, "--bind", "127.0.0.1", "--interval", "0s"],
    );
    publisher.wait_for_stdout("1000", WAIT);
    // Nobody reads the subscriber's stdout: it stops in a print, and its
    // socket's queue fills behind it.
    let mut subscriber = Command::new(tests::binary("sub_client"))
        .args([&port, "--host", "127.0.0.1", "--updates", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = subscriber.stdout.take().unwrap();
    tests::wait_until_stuck(&port, subscriber.id());
    // The publisher leaves while the subscriber cannot read.
    publisher.stop(Signal::SIGKILL, WAIT);
    std::thread::sleep(PAST_THE_HEARTBEATS);
    let ended = subscriber.try_wait().unwrap();
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    drop(stdout);
    assert_eq!(ended, None, "the subscriber ended while stuck");
}
