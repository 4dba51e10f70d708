//! The stage: several example programs running at once, their lines shown
//! in the order they were printed, each prefixed with its participant's
//! name (`computer-1 | Aye sir, ...`) and coloured when stdout is a
//! terminal (plain when piped or when `NO_COLOR` is set). The tour acts out
//! its scenarios on it; every wait has a deadline and gives way to Ctrl-C,
//! and every program still running is killed when the stage is dropped.
//!
//! Why the lines need ordering: each program writes through pipes of its
//! own (stdout and stderr), read by threads of their own, so the order in
//! which lines reach the stage is not the order in which they were printed:
//! a server's `Received request` could be read before the client's
//! `Sending request` that caused it. So every program started here stamps
//! each line with the moment it printed it, and writes it at once
//! (`console::STAMP_LINES`); the stage holds each line for [`HOLD`], far
//! longer than a line takes to come through a pipe, and shows the lines it
//! holds sorted by their stamps. A program prints a line before it sends
//! what will make another program print, so a cause always comes first.

use std::io::Write as _;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use anyhow::{Result, anyhow, bail, ensure};

use crate::{Line, Output, Program, Signal, Stream, interrupted};

const PALETTE: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Magenta,
    AnsiColor::Green,
    AnsiColor::Blue,
    AnsiColor::Red,
];

/// How often waiting loops look for new lines.
const TICK: Duration = Duration::from_millis(10);

/// How long a line is held before it is shown, so that a line printed
/// earlier by another program, still on its way, is shown before it.
pub const HOLD: Duration = Duration::from_millis(200);

/// A line read but not shown yet.
struct Held {
    name: String,
    style: Style,
    line: Line,
}

struct Actor {
    name: String,
    style: Style,
    program: Program,
    /// Its stdout is kept but not shown (a stream too fast to read).
    quiet: bool,
}

/// The programs of one scenario.
pub struct Stage {
    actors: Vec<Actor>,
    held: Vec<Held>,
    width: usize,
    out: anstream::AutoStream<std::io::Stdout>,
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage {
    pub fn new() -> Stage {
        Stage {
            actors: Vec::new(),
            held: Vec::new(),
            // The longest name of the tour's cast (`sub_client-10001`), so
            // that columns line up.
            width: 16,
            out: anstream::stdout(),
        }
    }

    /// Starts the example binary `binary` as participant `name`.
    pub fn start(&mut self, name: &str, binary: &str, args: &[&str]) -> Result<()> {
        self.start_with(name, binary, args, false)
    }

    /// Starts a participant whose stdout is kept but not shown (its
    /// stderr is).
    pub fn start_quiet(&mut self, name: &str, binary: &str, args: &[&str]) -> Result<()> {
        self.start_with(name, binary, args, true)
    }

    fn start_with(&mut self, name: &str, binary: &str, args: &[&str], quiet: bool) -> Result<()> {
        let program = Program::launch(name, binary, args, Output::Stamped)?;
        let colour = PALETTE[self.actors.len() % PALETTE.len()];
        self.width = self.width.max(name.len());
        self.actors.push(Actor {
            name: name.to_owned(),
            style: Style::new().fg_color(Some(colour.into())),
            program,
            quiet,
        });
        Ok(())
    }

    /// Prints a line of the narrator's, in its place among the programs'
    /// lines: after what they printed before, before what they print next.
    pub fn say(&mut self, text: &str) {
        self.held.push(Held {
            name: "tour".to_owned(),
            style: Style::new().bold(),
            line: Line {
                stream: Stream::Stdout,
                text: text.to_owned(),
                printed: crate::now(),
            },
        });
    }

    /// Shows, in the order they were printed, the lines that every program
    /// printed at least [`HOLD`] ago.
    pub fn pump(&mut self) {
        self.take_new_lines();
        let now = crate::now();
        self.show_held(|printed| printed + HOLD.as_nanos() <= now);
    }

    fn take_new_lines(&mut self) {
        for actor in &mut self.actors {
            for line in actor.program.new_lines() {
                if actor.quiet && line.stream == Stream::Stdout {
                    continue;
                }
                let style = match line.stream {
                    Stream::Stdout => actor.style,
                    Stream::Stderr => actor.style.dimmed(),
                };
                let name = actor.name.clone();
                self.held.push(Held { name, style, line });
            }
        }
    }

    /// Shows the held lines printed when `due` says, oldest first.
    fn show_held(&mut self, due: impl Fn(u128) -> bool) {
        // A stable sort: lines of one stream with the same stamp keep their order.
        self.held.sort_by_key(|held| held.line.printed);
        let ready = self.held.partition_point(|held| due(held.line.printed));
        let width = self.width;
        for Held { name, style, line } in self.held.drain(..ready) {
            let text = line.text;
            let _ = writeln!(self.out, "{style}{name:>width$} |{style:#} {text}");
        }
        let _ = self.out.flush();
    }

    /// Shows the programs' lines for `duration`.
    pub fn watch(&mut self, duration: Duration) -> Result<()> {
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            self.tick()?;
        }
        Ok(())
    }

    /// Waits until `name` prints a line on stdout containing `needle`.
    pub fn wait_for(&mut self, name: &str, needle: &str, timeout: Duration) -> Result<String> {
        self.wait_for_line(name, Stream::Stdout, needle, timeout)
    }

    /// Waits until `name` prints a line on stderr containing `needle`.
    pub fn wait_for_stderr(
        &mut self,
        name: &str,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        self.wait_for_line(name, Stream::Stderr, needle, timeout)
    }

    fn wait_for_line(
        &mut self,
        name: &str,
        stream: Stream,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            let lines = self.actor(name)?.program.lines_of(stream);
            if let Some(line) = lines.iter().find(|line| line.contains(needle)) {
                return Ok(line.clone());
            }
            if Instant::now() >= deadline {
                bail!("{name} did not print {needle:?} within {timeout:?}");
            }
            self.tick()?;
        }
    }

    /// Waits until `name` exits, and returns its status.
    pub fn wait_exit(&mut self, name: &str, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if let Some(status) = self.actor_mut(name)?.program.exit_status() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{name} did not exit within {timeout:?}");
            }
            self.tick()?;
        }
    }

    /// Waits until `name` exits, and fails unless it exited with status 0.
    pub fn wait_success(&mut self, name: &str, timeout: Duration) -> Result<()> {
        let status = self.wait_exit(name, timeout)?;
        ensure!(status.success(), "{name} failed ({status})");
        Ok(())
    }

    /// Stops `name` as its user would, with Ctrl-C, and waits until it
    /// exits; returns its status.
    pub fn interrupt(&mut self, name: &str, timeout: Duration) -> Result<ExitStatus> {
        self.signal(name, Signal::SIGINT)?;
        self.wait_exit(name, timeout)
    }

    /// Sends `signal` to `name` (Ctrl-C is `Signal::SIGINT`).
    pub fn signal(&mut self, name: &str, signal: Signal) -> Result<()> {
        self.actor(name)?.program.signal(signal);
        Ok(())
    }

    /// Everything `name` printed on stdout so far.
    pub fn stdout(&self, name: &str) -> Result<&[String]> {
        Ok(self.actor(name)?.program.lines_of(Stream::Stdout))
    }

    /// Everything `name` printed on stderr so far.
    pub fn stderr(&self, name: &str) -> Result<&[String]> {
        Ok(self.actor(name)?.program.lines_of(Stream::Stderr))
    }

    fn tick(&mut self) -> Result<()> {
        if interrupted() {
            bail!("interrupted");
        }
        std::thread::sleep(TICK);
        self.pump();
        Ok(())
    }

    fn actor(&self, name: &str) -> Result<&Actor> {
        self.actors
            .iter()
            .rev()
            .find(|actor| actor.name == name)
            .ok_or_else(|| anyhow!("nobody called {name} is on stage"))
    }

    fn actor_mut(&mut self, name: &str) -> Result<&mut Actor> {
        self.actors
            .iter_mut()
            .rev()
            .find(|actor| actor.name == name)
            .ok_or_else(|| anyhow!("nobody called {name} is on stage"))
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // Show every last line; each Program kills its process when dropped.
        self.take_new_lines();
        self.show_held(|_| true);
    }
}
