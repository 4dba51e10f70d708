//! The stop flag. Ctrl-C (SIGINT) and SIGTERM do not kill the program: they
//! are counted here, and every loop looks at the count between short waits.
//!
//! Trap: a signal handled the usual way interrupts whatever system call
//! its thread was in, and libzmq then returns `EINTR` from a `send`, a
//! `recv` or a `poll`, each a call to try again. So [`install`] blocks
//! both signals in every thread, before any other starts, and one thread
//! of its own waits for them: no libzmq call is ever interrupted. Loops
//! wait in slices of [`SLICE`] and look at the count in between.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};

/// The longest a program waits without looking at the stop flag.
pub const SLICE: Duration = Duration::from_millis(50);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// How long a second Ctrl-C or SIGTERM leaves a program to end by itself,
/// and then the line that says so to get out.
const GRACE: Duration = Duration::from_secs(1);
const SAY_IT: Duration = Duration::from_millis(50);

/// Counts Ctrl-C and SIGTERM from now on instead of dying of them. Call it
/// first, before any thread starts (a ZeroMQ context starts two): a thread
/// takes its signal mask from the thread that started it.
///
/// Trap: a program can be stuck where it cannot look at the count, in a
/// print to a pipe nobody reads (`saver | less`, the pager stopped). So a
/// second signal also starts a clock: a program still running a second
/// later is ended there and then, exit 1.
pub fn install() -> Result<()> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().context("cannot block Ctrl-C and SIGTERM")?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            loop {
                match signals.wait() {
                    Ok(_) => counted(),
                    // A wait resumed after SIGSTOP and SIGCONT.
                    Err(Errno::EINTR) => {}
                    Err(_) => return,
                }
            }
        })
        .context("cannot start the thread that waits for Ctrl-C")?;
    Ok(())
}

/// One more Ctrl-C or SIGTERM: the second starts the clock.
fn counted() {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
        std::thread::spawn(|| {
            std::thread::sleep(GRACE);
            // Straight to stderr (the stuck print holds stdout's lock),
            // from a thread of its own: stderr may be that full pipe too.
            std::thread::spawn(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "{}: stopped at once, still busy a second after the second Ctrl-C or SIGTERM (stuck in a print nobody reads, say)",
                    crate::program_name()
                );
            });
            std::thread::sleep(SAY_IT);
            std::process::exit(1);
        });
    }
}

/// True once Ctrl-C or SIGTERM has come, or [`request`] was called.
pub fn requested() -> bool {
    signals() > 0 || REQUESTED.load(Ordering::SeqCst)
}

/// Asks every loop of the program to stop, as Ctrl-C would: how one task
/// tells the others that the work is done.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// How many times Ctrl-C or SIGTERM has come (a second one may mean "stop
/// now, do not wait").
pub fn signals() -> usize {
    SIGNALS.load(Ordering::SeqCst)
}

/// A wait at exit (for queued messages to leave, for acknowledgements):
/// it ends at `--linger` when one is given, and at one more Ctrl-C or
/// SIGTERM than had come when it began, or at the second, whichever is
/// first: two signals before the wait began end it at once.
pub struct LastWait {
    /// Ended by more signals than this: the count when it began, at most 1.
    signals: usize,
    started: Instant,
    linger: Option<Duration>,
}

impl LastWait {
    pub fn new(linger: Option<Duration>) -> LastWait {
        let (signals, started) = (signals().min(1), Instant::now());
        LastWait {
            signals,
            started,
            linger,
        }
    }

    /// True once the wait should end.
    pub fn over(&self) -> bool {
        signals() > self.signals || self.linger.is_some_and(|linger| self.elapsed() >= linger)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What ends it, as a waiting line says it, with what that does:
    /// `Ctrl-C again or SIGTERM drops them, and so does --linger 2s`.
    pub fn ways_out(&self, effect: &str) -> String {
        let again = if self.signals > 0 { " again" } else { "" };
        let linger = self.linger.map(crate::cli::show_duration);
        let linger = linger.map(|linger| format!(", and so does --linger {linger}"));
        format!(
            "Ctrl-C{again} or SIGTERM {effect}{}",
            linger.unwrap_or_default()
        )
    }
}

/// Sleeps for `duration`, waking early on Ctrl-C: false if a stop was
/// requested. Flushes stdout first.
pub fn sleep(duration: Duration) -> bool {
    // `--interval 0s`: no sleep, and no clock to read.
    if !duration.is_zero() {
        crate::console::flush();
        let deadline = Instant::now() + duration;
        while !requested() && Instant::now() < deadline {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()).min(SLICE));
        }
    }
    !requested()
}
