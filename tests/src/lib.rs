//! The process harness: start one of the example binaries, wait for a line
//! with a deadline, collect what it printed, signal it, and kill it when it
//! is dropped, so that a broken program fails a test instead of hanging it.
//!
//! ```no_run
//! use tests::{Program, free_port, WAIT};
//! let port = free_port().to_string();
//! let mut server = Program::start("reqrep_server", &[&port, "--bind", "127.0.0.1"]);
//! let client = Program::start("reqrep_client", &[&port, "--host", "127.0.0.1"]);
//! let client = client.finish(WAIT);
//! assert!(client.success());
//! ```

// A harness failure is a test failure: panicking with a clear message is
// how it reports one.
#![allow(clippy::expect_used)]

pub mod relay;
pub mod stage;

use std::io::{BufRead as _, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use nix::errno::Errno;
use nix::sys::signal::SigSet;
pub use nix::sys::signal::Signal;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C (and SIGTERM) raise a flag instead of ending the process,
/// so that the tour or the bench can stop every program it started before
/// it exits: each of their waits gives way once [`interrupted`] says so.
/// Call it before any thread starts: they take the mask that blocks both
/// signals, which one thread of its own then waits for.
pub fn stop_on_ctrl_c() -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
        loop {
            match signals.wait() {
                Ok(_) => INTERRUPTED.store(true, Ordering::SeqCst),
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    })?;
    Ok(())
}

/// True once Ctrl-C (or SIGTERM) has come, after [`stop_on_ctrl_c`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// How often [`Program::wait_success`] samples the peak memory of the
/// programs it watches.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How long a test waits for anything before calling the program broken:
/// generous, since tests share two cores, and never reached when all is well.
pub const WAIT: Duration = Duration::from_secs(20);

/// Which of a program's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line a program printed, and when.
#[derive(Debug, Clone)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
    /// When it was printed, in nanoseconds since the Unix epoch: the
    /// program's own stamp when it was started with [`Output::Stamped`],
    /// else the moment the line was read.
    pub printed: u128,
}

/// What the harness does with a program's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Both streams read and kept line by line.
    Lines,
    /// Like `Lines`, the program stamping each line with the moment it
    /// printed it ([`examples_common::console::STAMP_LINES`]), so that the
    /// lines of several programs can be put in order.
    Stamped,
    /// Stdout to /dev/null, unread, for a stream too fast to be worth
    /// reading (the bench's hundreds of thousands of lines); stderr kept.
    StderrOnly,
}

/// A running example binary.
#[derive(Debug)]
pub struct Program {
    name: String,
    child: Child,
    lines: Receiver<Line>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    open_streams: usize,
    /// The highest peak resident memory sampled, in bytes.
    peak_memory: u64,
}

/// A program that has exited, with everything it printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    /// True when the program exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit status as a number (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The last line printed on stderr, where every example says how it
    /// ended; panics if there is none.
    pub fn summary(&self) -> &str {
        let last = self.stderr.last();
        last.unwrap_or_else(|| panic!("nothing on stderr: {self:?}"))
    }
}

impl Program {
    /// Starts the example binary `name` with `args`.
    pub fn start(name: &str, args: &[&str]) -> Program {
        Program::start_command(name, Command::new(binary(name)).args(args))
    }

    /// Starts the tour or the bench, which start example programs of their
    /// own: they pick those programs' ports from a block of this process's
    /// ports (see [`free_port`]), so that tests running beside them never
    /// pick the same ones.
    pub fn start_tool(name: &str, args: &[&str]) -> Program {
        let block = port_block();
        let ports = format!("{}-{}", block.start, block.end);
        Program::start_command(
            name,
            Command::new(binary(name)).args(args).env(PORTS, ports),
        )
    }

    /// Starts a program from a prepared command (extra environment, ...).
    pub fn start_command(name: &str, command: &mut Command) -> Program {
        Program::spawn(name, command, Output::Lines)
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"))
    }

    /// Starts the example binary `binary` as `name`, or says why it cannot:
    /// for the tour and the bench, which report an error where a test
    /// would panic.
    pub fn launch(name: &str, binary: &str, args: &[&str], output: Output) -> Result<Program> {
        let path = examples_dir().map_err(|error| anyhow!(error))?.join(binary);
        Program::spawn(name, Command::new(&path).args(args), output)
            .with_context(|| format!("cannot start {}", path.display()))
    }

    fn spawn(name: &str, command: &mut Command, output: Output) -> std::io::Result<Program> {
        let stamped = output == Output::Stamped;
        if stamped {
            command.env(examples_common::console::STAMP_LINES, "1");
        }
        let stdout = match output {
            Output::Lines | Output::Stamped => Stdio::piped(),
            Output::StderrOnly => Stdio::null(),
        };
        let mut child =
            command.stdin(Stdio::null()).stdout(stdout).stderr(Stdio::piped()).spawn()?;
        let (sender, lines) = channel();
        let mut open_streams = 1;
        if let Some(stdout) = child.stdout.take() {
            forward_lines(stdout, Stream::Stdout, stamped, sender.clone());
            open_streams += 1;
        }
        let stderr = child.stderr.take().expect("stderr is piped");
        forward_lines(stderr, Stream::Stderr, stamped, sender);
        Ok(Program {
            name: name.to_owned(),
            child,
            lines,
            stdout: Vec::new(),
            stderr: Vec::new(),
            open_streams,
            peak_memory: 0,
        })
    }

    /// The process id, to signal it from outside.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The name the program was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until the program prints a line on stdout that contains
    /// `needle`, and returns it; panics with all output so far after `timeout`.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(Stream::Stdout, needle, timeout)
    }

    /// Like [`Program::wait_for_stdout`], on stderr.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for(Stream::Stderr, needle, timeout)
    }

    /// Like [`Program::wait_for_stderr`], but `None` if the program exits
    /// without printing it.
    pub fn wait_for_stderr_or_exit(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let line = self.seek(Stream::Stderr, needle, timeout);
        if line.is_none() && self.open_streams > 0 {
            self.missed(Stream::Stderr, needle, timeout);
        }
        line
    }

    /// The first line on stderr that contains `needle`, printed before or
    /// within `timeout`; `None` if there is none by then: for a test that
    /// must tell a program that says something from one that does not.
    pub fn look_for_stderr(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        self.seek(Stream::Stderr, needle, timeout)
    }

    fn wait_for(&mut self, stream: Stream, needle: &str, timeout: Duration) -> String {
        match self.seek(stream, needle, timeout) {
            Some(line) => line,
            None => self.missed(stream, needle, timeout),
        }
    }

    fn missed(&self, stream: Stream, needle: &str, timeout: Duration) -> ! {
        panic!(
            "{} did not print {needle:?} on {stream:?} within {timeout:?}\n{}",
            self.name,
            self.transcript()
        );
    }

    /// The first line on `stream` that contains `needle`, printed before or
    /// within `timeout`; `None` once the program has closed its output.
    fn seek(&mut self, stream: Stream, needle: &str, timeout: Duration) -> Option<String> {
        let mut seen = self.lines_of(stream).len();
        // Lines read earlier count too, so a line is never missed.
        let found = |lines: &[String], from: usize| {
            lines[from..].iter().find(|line| line.contains(needle)).cloned()
        };
        if let Some(line) = found(self.lines_of(stream), 0) {
            return Some(line);
        }
        let deadline = Instant::now() + timeout;
        while self.read_line(deadline) {
            if let Some(line) = found(self.lines_of(stream), seen) {
                return Some(line);
            }
            seen = self.lines_of(stream).len();
        }
        None
    }

    /// Lines printed so far on `stream`, without waiting.
    pub fn lines_of(&self, stream: Stream) -> &[String] {
        match stream {
            Stream::Stdout => &self.stdout,
            Stream::Stderr => &self.stderr,
        }
    }

    /// Takes in every line printed so far, without waiting, and returns
    /// those that arrived with this call, in order.
    pub fn new_lines(&mut self) -> Vec<Line> {
        let mut fresh = Vec::new();
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    self.keep(&line);
                    fresh.push(line);
                }
                Err(TryRecvError::Disconnected) => {
                    self.open_streams = 0;
                    return fresh;
                }
                Err(TryRecvError::Empty) => return fresh,
            }
        }
    }

    /// The exit status once the program has exited and closed its output,
    /// without waiting; call [`Program::new_lines`] to take in that output.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.open_streams > 0 {
            return None;
        }
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (Ctrl-C is `Signal::SIGINT`).
    pub fn signal(&self, signal: Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        // The process may have exited already; that is for the test to see.
        let _ = nix::sys::signal::kill(pid, signal);
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the program to exit and close its output; panics after
    /// `timeout` with everything it printed.
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let deadline = Instant::now() + timeout;
        while self.open_streams > 0 && self.read_line(deadline) {}
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for a child") {
                return Finished {
                    status,
                    stdout: std::mem::take(&mut self.stdout),
                    stderr: std::mem::take(&mut self.stderr),
                };
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not exit within {timeout:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the program to exit, as [`Program::finish`] does within
    /// [`WAIT`], and asserts that it exited with status 0.
    pub fn finish_successfully(self) -> Finished {
        let finished = self.finish(WAIT);
        assert!(finished.success(), "{finished:?}");
        finished
    }

    /// Sends `signal` and waits for the program to exit.
    pub fn stop(self, signal: Signal, timeout: Duration) -> Finished {
        self.signal(signal);
        self.finish(timeout)
    }

    /// Sends `signal`, waits for the program to exit, and asserts that it
    /// stopped cleanly, saying `summary` ([`assert_stopped_cleanly`]).
    pub fn stop_cleanly(self, signal: Signal, summary: &str) -> Finished {
        let finished = self.stop(signal, WAIT);
        assert_stopped_cleanly(&finished, summary);
        finished
    }

    /// Waits until the program accepts TCP connections on `port` of
    /// 127.0.0.1. An error, rather than a panic, if it exits first, still
    /// does not listen at `deadline`, or Ctrl-C comes ([`interrupted`]).
    pub fn wait_listening(&mut self, port: u16, deadline: Instant) -> Result<()> {
        loop {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(self.failure(&format!("exited ({status}) before listening")));
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("did not listen on port {port} in time")));
            }
            if interrupted() {
                bail!("interrupted");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the program exits with status 0, sampling the peak
    /// memory of this program and of `beside` every few milliseconds
    /// meanwhile. An error with what it printed on stderr, rather than a
    /// panic, if it fails or is still running at `deadline` (it is killed
    /// then), or if Ctrl-C comes ([`interrupted`]).
    pub fn wait_success(&mut self, beside: &mut [&mut Program], deadline: Instant) -> Result<()> {
        let mut sampled: Option<Instant> = None;
        let status = loop {
            if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
                sampled = Some(Instant::now());
                self.sample_memory();
                beside.iter_mut().for_each(|other| other.sample_memory());
            }
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                return Err(self.failure("did not finish in time (stuck?)"));
            }
            if interrupted() {
                bail!("interrupted");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        match status.success() {
            true => Ok(()),
            false => Err(self.failure(&format!("failed ({status})"))),
        }
    }

    /// Kills the program, and says what went wrong with what it printed
    /// on stderr.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Its output closed when it exited: take in the last lines.
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.read_line(deadline) {}
        match self.stderr.join("\n").trim() {
            "" => anyhow!("{} {what}", self.name),
            stderr => anyhow!("{} {what}:\n{stderr}", self.name),
        }
    }

    /// Reads the kernel's high-water mark of the program's resident memory,
    /// if it is still running, for [`Program::peak_memory_sampled`].
    pub fn sample_memory(&mut self) {
        // Once the process is reaped its pid may be another's.
        if self.is_running() {
            let sampled = read_peak_memory(self.id()).unwrap_or(0);
            self.peak_memory = self.peak_memory.max(sampled);
        }
    }

    /// The highest peak resident memory sampled, in bytes (0 if the program
    /// was never sampled while running). The kernel keeps the high-water
    /// mark, so a sample misses only what the program's last moments add.
    pub fn peak_memory_sampled(&self) -> u64 {
        self.peak_memory
    }

    /// Everything printed so far, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- {name} stdout\n{}\n--- {name} stderr\n{}",
            self.stdout.join("\n"),
            self.stderr.join("\n"),
            name = self.name
        )
    }

    /// Reads one line, or notes a closed stream; false once `deadline`
    /// passed or both streams are closed.
    fn read_line(&mut self, deadline: Instant) -> bool {
        if self.open_streams == 0 {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.keep(&line);
                true
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.open_streams = 0;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    fn keep(&mut self, line: &Line) {
        match line.stream {
            Stream::Stdout => self.stdout.push(line.text.clone()),
            Stream::Stderr => self.stderr.push(line.text.clone()),
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // Never leave a process behind, whatever the test did.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(
    stream: impl Read + Send + 'static,
    kind: Stream,
    stamped: bool,
    sender: Sender<Line>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    if sender.send(read_line(kind, text, stamped)).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// A line as read: its stamp taken off when the program stamps its lines
/// (a line it did not print itself, a panic say, is stamped when read).
fn read_line(stream: Stream, text: &str, stamped: bool) -> Line {
    let stamp = |text: &str| {
        let (stamp, rest) = text.split_once(' ')?;
        Some((stamp.parse().ok()?, rest.to_owned()))
    };
    let (printed, text) = match stamped.then(|| stamp(text)).flatten() {
        Some(stamped) => stamped,
        None => (now(), text.to_owned()),
    };
    Line {
        stream,
        text,
        printed,
    }
}

/// Now, in nanoseconds since the Unix epoch, as programs stamp their lines.
pub fn now() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

/// The path of the example binary `name`, built beside the running
/// executable (`target/debug` or `target/release`); see [`examples_dir`].
pub fn binary(name: &str) -> PathBuf {
    match examples_dir() {
        Ok(directory) => directory.join(name),
        Err(error) => panic!("{error}"),
    }
}

/// The folder of the example binaries, built there on the first call.
///
/// `cargo run --bin tour` builds only the tour, and `cargo test` only the
/// binaries of the packages under test, so the first call builds every
/// binary of the workspace, in the same profile; when they are up to date
/// (after `cargo test --workspace`, say) this takes a moment and changes
/// nothing.
pub fn examples_dir() -> Result<&'static Path, String> {
    examples_dir_announcing(|| {})
}

/// Like [`examples_dir`], calling `announce` once if cargo has anything
/// to compile, before it does.
pub fn examples_dir_announcing(announce: impl FnOnce()) -> Result<&'static Path, String> {
    static DIRECTORY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIRECTORY.get_or_init(|| build_binaries(announce)) {
        Ok(directory) => Ok(directory),
        Err(error) => Err(error.clone()),
    }
}

fn build_binaries(announce: impl FnOnce()) -> Result<PathBuf, String> {
    let executable = std::env::current_exe()
        .map_err(|error| format!("cannot find the running executable: {error}"))?;
    let mut directory = executable.parent().ok_or("an executable has a folder")?;
    // Test executables live one level down, in `deps`.
    if directory.ends_with("deps") {
        directory = directory.parent().ok_or("deps has a parent")?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--workspace", "--bins", "--color", "never"]);
    if directory.ends_with("release") {
        build.arg("--release");
    }
    if let Some(workspace) = workspace_root() {
        build.current_dir(workspace);
    }
    let mut cargo = build
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run cargo to build the examples: {error}"))?;
    // Cargo says `Compiling <crate>` before it compiles each crate, and
    // nothing of the kind when every binary is up to date.
    let mut announce = Some(announce);
    let mut said = Vec::new();
    if let Some(stderr) = cargo.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim_start().starts_with("Compiling ") {
                if let Some(announce) = announce.take() {
                    announce();
                }
            }
            said.push(line);
        }
    }
    match cargo.wait() {
        Ok(status) if status.success() => Ok(directory.to_path_buf()),
        Ok(status) => Err(format!(
            "building the example binaries failed ({status}):\n{}",
            said.join("\n")
        )),
        Err(error) => Err(format!("cannot run cargo to build the examples: {error}")),
    }
}

fn workspace_root() -> Option<&'static Path> {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent()
}

/// Where [`free_port`] looks: below Linux's ephemeral range (32768 and
/// up), so that no outgoing connection's source port takes a test's port
/// between the moment it is picked and the moment a server binds it, and
/// a client never connects to itself.
const TEST_PORTS: std::ops::Range<u16> = 20000..32000;

/// The environment variable through which a test gives the tour or the
/// bench its block of ports, `start-end`.
const PORTS: &str = "TESTS_PORTS";

/// How many ports a tool started by [`Program::start_tool`] may use.
const BLOCK: u16 = 200;

static NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// The ports this process picks from: its block, when a test gave it one.
fn test_ports() -> std::ops::Range<u16> {
    let block = std::env::var(PORTS).ok().and_then(|block| {
        let (start, end) = block.split_once('-')?;
        Some(start.parse().ok()?..end.parse().ok()?)
    });
    block.unwrap_or(TEST_PORTS)
}

/// Takes a block of [`BLOCK`] ports from this process's own, for a tool.
fn port_block() -> std::ops::Range<u16> {
    let first = free_port();
    let mut next = NEXT.lock().unwrap_or_else(|poison| poison.into_inner());
    let range = test_ports();
    // At the end of the range, the block wraps to its start, as the
    // sequence of ports does.
    let start = match first + BLOCK <= range.end {
        true => first,
        false => range.start,
    };
    *next = Some(start + BLOCK);
    start..start + BLOCK
}

/// A TCP port on 127.0.0.1 that nothing listens on, never the same twice
/// in one process, so that tests running side by side do not collide.
pub fn free_port() -> u16 {
    let test_ports = test_ports();
    let mut next = NEXT.lock().unwrap_or_else(|poison| poison.into_inner());
    // Each process starts at its own place, so that test processes running
    // at the same time seldom try the same ports. Processes started one
    // after the other have neighbouring ids: a multiplicative hash (Knuth's)
    // puts their places far apart, where `pid % span` would make their
    // sequences overlap.
    let span = test_ports.end - test_ports.start;
    let place = || {
        let spread = std::process::id().wrapping_mul(2_654_435_761);
        test_ports.start + (spread % u32::from(span)) as u16
    };
    let mut port = next.unwrap_or_else(place);
    for _ in 0..span {
        let candidate = port;
        port = test_ports.start + (port + 1 - test_ports.start) % span;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            *next = Some(port);
            return candidate;
        }
    }
    panic!("no free port in {test_ports:?}");
}

/// A test-side socket that cannot hang a test: a send or receive gives up
/// after [`WAIT`], and closing drops what it has not sent (a PUSH socket
/// holding a message would otherwise hold up its context's end forever).
fn socket(context: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    bounded_socket(context, kind, WAIT)
        .unwrap_or_else(|error| panic!("cannot make a test socket: {error}"))
}

/// A test-side socket of `kind` bound to `port` on 127.0.0.1, in a context
/// of its own that it keeps alive: a stand-in for a program that binds. It
/// cannot hang a test: a send or receive gives up after [`WAIT`], and
/// closing drops what it has not sent.
pub fn bound(kind: zmq::SocketType, port: &str) -> zmq::Socket {
    attached(kind, port, "bind", zmq::Socket::bind)
}

/// Like [`bound`], connected to `port`: a stand-in for a program that
/// connects.
pub fn connected(kind: zmq::SocketType, port: &str) -> zmq::Socket {
    attached(kind, port, "connect", zmq::Socket::connect)
}

/// A test-side socket in a context of its own, bound or connected
/// (`attach`, which `verb` names) to `port` on 127.0.0.1.
fn attached(
    kind: zmq::SocketType,
    port: &str,
    verb: &str,
    attach: fn(&zmq::Socket, &str) -> zmq::Result<()>,
) -> zmq::Socket {
    let socket = socket(&zmq::Context::new(), kind);
    attach(&socket, &format!("tcp://127.0.0.1:{port}"))
        .unwrap_or_else(|error| panic!("cannot {verb} a test socket to {port}: {error}"));
    socket
}

/// A test-side PUSH socket connected to `port` (see [`connected`]): a
/// computer or faker stand-in that sends what a test wants.
pub fn pusher(port: &str) -> zmq::Socket {
    connected(zmq::PUSH, port)
}

/// A socket whose sends and receives give up after `timeout`, and that
/// drops what it has not sent when it closes.
pub fn bounded_socket(
    context: &zmq::Context,
    kind: zmq::SocketType,
    timeout: Duration,
) -> zmq::Result<zmq::Socket> {
    let socket = context.socket(kind)?;
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    socket.set_rcvtimeo(millis)?;
    socket.set_sndtimeo(millis)?;
    socket.set_linger(0)?;
    Ok(socket)
}

/// Asserts what every program owes a requested stop (Ctrl-C, SIGTERM):
/// exit status 0, a stderr line containing `summary`, and no panic.
pub fn assert_stopped_cleanly(finished: &Finished, summary: &str) {
    let stderr = finished.stderr.join("\n");
    assert!(
        finished.success(),
        "expected exit 0, got {:?}\n{stderr}",
        finished.status
    );
    assert!(!stderr.contains("panicked"), "panic on stop:\n{stderr}");
    assert!(
        finished.stderr.iter().any(|line| line.contains(summary)),
        "no summary {summary:?} on stderr:\n{stderr}"
    );
}

/// Asserts how a program fails when its port is taken: one line, exit 1.
pub fn assert_port_taken(finished: &Finished, port: &str) {
    assert_eq!(finished.code(), Some(1), "{finished:?}");
    assert_eq!(
        finished.stderr,
        [format!(
            "error: cannot bind tcp://127.0.0.1:{port}: Address already in use"
        )]
    );
}

/// The processes whose parent is `pid`, from /proc (Linux).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let child_of_pid = |entry: std::fs::DirEntry| -> Option<u32> {
        let child = entry.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
        // "pid (name) state ppid ...": the name may hold spaces, so read after the last ')'.
        let after_name = stat.get(stat.rfind(')')? + 2..)?;
        let parent: u32 = after_name.split(' ').nth(1)?.parse().ok()?;
        (parent == pid).then_some(child)
    };
    entries.flatten().filter_map(child_of_pid).collect()
}

/// Asserts that none of `pids` is still a process (nor a zombie).
pub fn assert_gone(pids: &[u32]) {
    for pid in pids {
        let left = Path::new(&format!("/proc/{pid}")).exists();
        assert!(!left, "process {pid} left behind");
    }
}

/// The peak resident memory of process `pid` so far (VmHWM), in bytes.
pub fn peak_memory(pid: u32) -> u64 {
    read_peak_memory(pid).unwrap_or_else(|| panic!("no VmHWM for process {pid}"))
}

/// Like [`peak_memory`], or None when there is no such process (an exited
/// one has no VmHWM left).
fn read_peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let value = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    let kib: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The bytes waiting in the kernel's buffers, both ways, on the TCP
/// connections to `port` on loopback (from /proc/net/tcp): sent by one side
/// and not yet read by the other.
pub fn bytes_in_flight(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, queues) = (fields.get(1)?, fields.get(2)?, fields.get(4)?);
            if !local.ends_with(&port) && !remote.ends_with(&port) {
                return None;
            }
            let (tx, rx) = queues.split_once(':')?;
            let tx = u64::from_str_radix(tx, 16).ok()?;
            let rx = u64::from_str_radix(rx, 16).ok()?;
            Some(tx + rx)
        })
        .sum()
}

/// A computer's flags for a Voisietequi server on 127.0.0.1, its `[cmd,
/// reply, save]` ports and `unit`, then `extra`: written once, for the
/// tests, the tour and the bench.
pub fn computer_args<'a>(ports: [&'a str; 3], unit: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let [cmd, reply, save] = ports;
    let mut args = vec![
        "--server-host",
        "127.0.0.1",
        "--cmd-port",
        cmd,
        "--reply-port",
        reply,
        "--save-port",
        save,
        "--unit",
        unit,
    ];
    args.extend_from_slice(extra);
    args
}

/// A listening program's flags (the saver's, the mailbin's): `port` on
/// 127.0.0.1, then `extra`.
pub fn listener_args<'a>(port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["--port", port, "--bind", "127.0.0.1"], extra].concat()
}

/// A client's flags (reqrep_client's, sub_client's): its server's `port`
/// on 127.0.0.1, then `extra`.
pub fn client_args<'a>(port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&[port, "--host", "127.0.0.1"], extra].concat()
}

/// `N` ports from [`free_port`], as flags take them.
pub fn free_ports<const N: usize>() -> [String; N] {
    std::array::from_fn(|_| free_port().to_string())
}

/// The number that follows `phrase` in `line`, up to the next space:
/// `number_after("waiting to take 5 queued results", " to take ")` is 5.
pub fn number_after<T: std::str::FromStr>(line: &str, phrase: &str) -> Option<T> {
    let (_, rest) = line.split_once(phrase)?;
    rest.split(' ').next()?.parse().ok()
}

/// The number in `field` of each JSON object that a line of `lines`
/// prints after `prefix` (`Computer requested a save: {...}`), in order;
/// panics on a line with that prefix and no such number.
pub fn numbers_after(lines: &[String], prefix: &str, field: &str) -> Vec<i64> {
    let number = |json: &str| {
        let object: serde_json::Value =
            serde_json::from_str(json).unwrap_or_else(|error| panic!("not JSON ({error}): {json}"));
        object[field]
            .as_i64()
            .unwrap_or_else(|| panic!("no number {field:?} in {json}"))
    };
    lines.iter().filter_map(|line| line.strip_prefix(prefix)).map(number).collect()
}

/// Asserts that `program --help` names every one of `flags`, written one
/// after the other with spaces between (`"[PORT] --bind --version"`).
pub fn assert_help_lists(program: &str, flags: &str) {
    let help = Program::start(program, &["--help"]).finish(WAIT);
    let help = help.stdout.join("\n");
    for flag in flags.split_whitespace() {
        assert!(
            help.contains(flag),
            "{program} --help lacks {flag}:\n{help}"
        );
    }
}

/// Runs `program` with `args`, asserts clap's usage error (exit 2), and
/// returns the first line it printed on stderr.
pub fn usage_error(program: &str, args: &[&str]) -> String {
    let finished = Program::start(program, args).finish(WAIT);
    assert_eq!(finished.code(), Some(2), "{program} {args:?}: {finished:?}");
    let first = finished.stderr.first();
    first.unwrap_or_else(|| panic!("{program} {args:?}: nothing on stderr")).clone()
}

/// Waits until the bytes in the kernel's buffers to and from `port` no
/// longer change (a receiver stopped reading, or a queue is full), and
/// every thread of process `pid` is asleep: a program merely slowed by a
/// busy machine is runnable, not asleep.
pub fn wait_until_stuck(port: &str, pid: u32) -> u64 {
    let port: u16 = port.parse().expect("a port is a number");
    let deadline = Instant::now() + WAIT;
    let mut last = (bytes_in_flight(port), 0);
    loop {
        assert!(
            Instant::now() < deadline,
            "the traffic to {port} never settled"
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = bytes_in_flight(port);
        last = match now == last.0 && asleep(pid) {
            true => (now, last.1 + 1),
            false => (now, 0),
        };
        if last.1 >= 3 {
            return now;
        }
    }
}

/// Waits until every thread of process `pid` is asleep at three looks
/// 100 ms apart: the program waits for something (a full queue, a peer).
/// Panics after [`WAIT`].
pub fn wait_until_asleep(pid: u32) {
    let deadline = Instant::now() + WAIT;
    let mut looks = 0;
    while looks < 3 {
        assert!(Instant::now() < deadline, "process {pid} never settled");
        std::thread::sleep(Duration::from_millis(100));
        looks = if asleep(pid) { looks + 1 } else { 0 };
    }
}

/// True when every thread of process `pid` is asleep (state `S`, or
/// stopped), none running or waiting for a core (from /proc, Linux).
pub fn asleep(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // "tid (name) state ...": the name may hold spaces.
        let state = stat.rfind(')').and_then(|end| stat.get(end + 2..end + 3));
        matches!(state, Some("S" | "T" | "t"))
    })
}
