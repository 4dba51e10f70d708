//! The stop flag. Ctrl-C (SIGINT) and SIGTERM do not kill the program: they
//! are counted here, and every loop checks the count between short waits.
//!
//! Trap: a signal makes a blocking `recv` or `poll` return `EINTR`, possibly
//! before the handler (which runs on its own thread) has counted it. So no
//! program trusts one long blocking call: they wait in slices of
//! [`SLICE`] and look at the flag between them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

/// The longest a program waits without looking at the stop flag.
pub const SLICE: Duration = Duration::from_millis(50);

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Counts Ctrl-C and SIGTERM from now on instead of dying of them.
pub fn install() -> Result<()> {
    ctrlc::set_handler(|| {
        SIGNALS.fetch_add(1, Ordering::SeqCst);
    })
    .context("cannot install the Ctrl-C handler")
}

/// True once Ctrl-C or SIGTERM has arrived, or [`request`] was called.
pub fn requested() -> bool {
    signals() > 0 || REQUESTED.load(Ordering::SeqCst)
}

/// Asks every loop of the program to stop, as Ctrl-C would: how one task
/// tells the others that the work is done.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// How many times Ctrl-C or SIGTERM has arrived (a second one may mean
/// "stop now, do not wait").
pub fn signals() -> usize {
    SIGNALS.load(Ordering::SeqCst)
}

/// A wait at exit (computer and faker: for queued messages to leave, for
/// acknowledgements): it ends at `--linger` when one is given, and at one
/// more Ctrl-C or SIGTERM than had come when it began.
pub struct LastWait {
    signals: usize,
    started: Instant,
    linger: Option<Duration>,
}

impl LastWait {
    pub fn new(linger: Option<Duration>) -> LastWait {
        let (signals, started) = (signals(), Instant::now());
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
        let mut ways = format!("Ctrl-C{again} or SIGTERM {effect}");
        if let Some(linger) = self.linger {
            let linger = crate::cli::show_duration(linger);
            ways.push_str(&format!(", and so does --linger {linger}"));
        }
        ways
    }
}

/// Sleeps for `duration`, waking early on Ctrl-C. Returns false if a stop
/// was requested. Pending output is flushed before sleeping.
pub fn sleep(duration: Duration) -> bool {
    // `--interval 0s`: no sleep, and no clock to read.
    if duration.is_zero() {
        return !requested();
    }
    crate::console::flush();
    let deadline = Instant::now() + duration;
    loop {
        if requested() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(SLICE));
    }
}
