//! The poller: wait on several sockets at once, as pyzmq's `zmq.Poller`
//! does, with a timeout, and without missing a Ctrl-C. For one socket,
//! [`receive`] is a `recv` with the same timeout and Ctrl-C handling.
//!
//! ```no_run
//! # fn demo(results: &zmq::Socket) -> anyhow::Result<()> {
//! use examples_common::{Poller, Polled};
//! let mut poller = Poller::new();
//! let results_index = poller.register(results);
//! if let Polled::Ready = poller.poll(Some(std::time::Duration::from_millis(200)))? {
//!     if poller.is_readable(results_index) {
//!         let message = results.recv_bytes(0)?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{console, stop};

/// What a poll saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// At least one socket has a message; ask [`Poller::is_readable`] which.
    Ready,
    /// The timeout passed with nothing to read.
    TimedOut,
    /// Ctrl-C or SIGTERM arrived.
    Stopped,
}

/// A set of sockets to wait on for incoming messages.
pub struct Poller<'a> {
    sockets: Vec<&'a zmq::Socket>,
    /// The same sockets, as `zmq::poll` takes them.
    items: Vec<zmq::PollItem<'a>>,
    /// What the last poll found, socket by socket.
    readable: Vec<bool>,
}

impl std::fmt::Debug for Poller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("sockets", &self.items.len())
            .finish()
    }
}

impl Default for Poller<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Poller<'a> {
    pub fn new() -> Self {
        Poller {
            sockets: Vec::new(),
            items: Vec::new(),
            readable: Vec::new(),
        }
    }

    /// Watches `socket` for incoming messages (pyzmq's
    /// `poller.register(socket, zmq.POLLIN)`); returns its index.
    pub fn register(&mut self, socket: &'a zmq::Socket) -> usize {
        self.sockets.push(socket);
        self.items.push(socket.as_poll_item(zmq::POLLIN));
        self.readable.push(false);
        self.items.len() - 1
    }

    /// Waits until a registered socket has a message, `timeout` passes
    /// (`None`: no timeout) or a stop is requested. Output buffered so far is
    /// flushed before blocking, never while messages are waiting.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<Polled> {
        if stop::requested() {
            return Ok(Polled::Stopped);
        }
        // In a stream a message is usually waiting already: asking each
        // socket costs one system call, where zmq_poll costs two.
        if self.any_waiting()? {
            return Ok(Polled::Ready);
        }
        console::flush();
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if stop::requested() {
                return Ok(Polled::Stopped);
            }
            let slice = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => stop::SLICE,
            };
            if slice.is_zero() {
                return Ok(Polled::TimedOut);
            }
            if self.poll_once(slice.min(stop::SLICE))? {
                return Ok(Polled::Ready);
            }
        }
    }

    /// True if the socket at `index` had a message at the last poll.
    pub fn is_readable(&self, index: usize) -> bool {
        self.readable[index]
    }

    /// Asks each socket whether a message is waiting, without waiting.
    fn any_waiting(&mut self) -> Result<bool> {
        for (socket, readable) in self.sockets.iter().zip(&mut self.readable) {
            *readable = has_message(socket)?;
        }
        Ok(self.readable.contains(&true))
    }

    fn poll_once(&mut self, timeout: Duration) -> Result<bool> {
        // Rounded up, so that a wait of less than a millisecond still waits.
        let millis = i64::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i64::MAX);
        match zmq::poll(&mut self.items, millis) {
            Ok(ready) => {
                for (item, readable) in self.items.iter().zip(&mut self.readable) {
                    *readable = item.is_readable();
                }
                Ok(ready > 0)
            }
            // A signal interrupted the wait; the caller's loop looks at the stop flag.
            Err(zmq::Error::EINTR) => Ok(false),
            Err(error) => Err(error).context("cannot poll sockets"),
        }
    }
}

/// What [`receive`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Message(Vec<u8>),
    /// The timeout passed with nothing to read.
    TimedOut,
    /// Ctrl-C or SIGTERM arrived.
    Stopped,
}

/// Receives one message, as a blocking `recv` would, but gives up after
/// `timeout` and on Ctrl-C. A message already waiting is taken at once:
/// polling before each message of a stream would cost a system call each.
pub fn receive(socket: &zmq::Socket, timeout: Option<Duration>) -> Result<Received> {
    loop {
        if stop::requested() {
            return Ok(Received::Stopped);
        }
        match socket.recv_bytes(zmq::DONTWAIT) {
            Ok(message) => return Ok(Received::Message(message)),
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => {}
            Err(error) => return Err(error).context("cannot receive a message"),
        }
        match wait_for_message(socket, timeout)? {
            Polled::Ready => {}
            Polled::TimedOut => return Ok(Received::TimedOut),
            Polled::Stopped => return Ok(Received::Stopped),
        }
    }
}

/// The messages already waiting on `socket`, taken without waiting for
/// more; it ends when none is left or a stop is requested.
///
/// Once a poll says a socket is readable, a stream is read a batch at a
/// time (`waiting(socket).take(100)`) instead of polling before each
/// message: every poll is a system call. Each message is a `zmq::Message`,
/// read as bytes through `&message`: receiving it copies nothing.
pub fn waiting(socket: &zmq::Socket) -> impl Iterator<Item = Result<zmq::Message>> + '_ {
    std::iter::from_fn(move || {
        if stop::requested() {
            return None;
        }
        let mut message = zmq::Message::new();
        match socket.recv(&mut message, zmq::DONTWAIT) {
            Ok(()) => Some(Ok(message)),
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => None,
            Err(error) => Some(Err(error).context("cannot receive a message")),
        }
    })
}

/// Waits for a message on one socket, as a blocking `recv` would, but gives
/// up after `timeout` and on Ctrl-C.
pub fn wait_for_message(socket: &zmq::Socket, timeout: Option<Duration>) -> Result<Polled> {
    // In a stream a message is usually waiting: then there is no poller to build.
    if has_message(socket)? && !stop::requested() {
        return Ok(Polled::Ready);
    }
    let mut poller = Poller::new();
    poller.register(socket);
    poller.poll(timeout)
}

/// True if a message is waiting on `socket` (ZMQ_EVENTS), without waiting.
fn has_message(socket: &zmq::Socket) -> Result<bool> {
    match socket.get_events() {
        Ok(events) => Ok(events.contains(zmq::POLLIN)),
        // A signal interrupted the call: say "nothing yet", and the caller's
        // loop looks at the stop flag.
        Err(zmq::Error::EINTR) => Ok(false),
        Err(error) => Err(error).context("cannot poll sockets"),
    }
}
