//! Waiting and receiving. [`Poller`] waits on several sockets at once, as
//! pyzmq's `zmq.Poller` does, with a timeout and without missing a Ctrl-C;
//! [`take`] then reads one whole message without waiting. For one socket,
//! [`receive`] is a `recv` with the same timeout and Ctrl-C handling.
//!
//! ```no_run
//! # fn demo(results: &zmq::Socket) -> anyhow::Result<()> {
//! use examples_common::{Poller, Polled};
//! let mut poller = Poller::new();
//! let results_index = poller.register(results);
//! if let Polled::Ready = poller.poll(Some(std::time::Duration::from_millis(200)))? {
//!     if poller.is_readable(results_index) {
//!         if let Some(message) = examples_common::take(results)? {
//!             println!("{} bytes", message.bytes);
//!         }
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
            *readable = match socket.get_events() {
                Ok(events) => events.contains(zmq::POLLIN),
                // A signal interrupted the call: "nothing yet", and the
                // caller's loop looks at the stop flag.
                Err(zmq::Error::EINTR) => false,
                Err(error) => return Err(error).context("cannot poll sockets"),
            };
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

/// One message as it came in: its first frame, and how many frames and
/// bytes it had in all. Our protocols are one frame; a message of several
/// is read to its end but kept only in part, and rejected.
#[derive(Debug)]
pub struct Incoming {
    /// The first frame, read without a copy (`&incoming.first` is `&[u8]`).
    pub first: zmq::Message,
    pub frames: usize,
    pub bytes: usize,
}

impl Incoming {
    /// What is wrong with a message of several frames, or None for one frame.
    pub fn multipart(&self) -> Option<String> {
        (self.frames > 1).then(|| {
            format!(
                "a message of {} frames ({} bytes) where one frame was expected",
                self.frames, self.bytes
            )
        })
    }
}

/// Takes one whole message waiting on `socket`, without waiting: `None`
/// when nothing is waiting (a poll may say "readable" for a message that a
/// REP socket then discards as malformed: a blocking `recv` would hang).
pub fn take(socket: &zmq::Socket) -> Result<Option<Incoming>> {
    let mut first = zmq::Message::new();
    match socket.recv(&mut first, zmq::DONTWAIT) {
        Ok(()) => {}
        Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(None),
        Err(error) => return Err(error).context("cannot receive a message"),
    }
    let mut more = first.get_more();
    let mut incoming = Incoming {
        bytes: first.len(),
        first,
        frames: 1,
    };
    // libzmq hands over a message's frames together, so the rest are here
    // already. Each one is counted and dropped: joined, a message of many
    // frames would sit in memory twice.
    let mut frame = zmq::Message::new();
    while more {
        socket
            .recv(&mut frame, 0)
            .context("cannot receive a message")?;
        incoming.frames += 1;
        incoming.bytes += frame.len();
        more = frame.get_more();
    }
    Ok(Some(incoming))
}

/// What [`receive`] got.
#[derive(Debug)]
pub enum Received {
    Message(Incoming),
    /// The timeout passed with nothing to read.
    TimedOut,
    /// Ctrl-C or SIGTERM arrived.
    Stopped,
    /// The connection was lost and made again ([`crate::Link::receive`]
    /// only): a request sent before it may need sending again.
    Reconnected,
}

/// Receives one message, as a blocking `recv` would, but gives up after
/// `timeout` (`None`: never) and on Ctrl-C.
pub fn receive(socket: &zmq::Socket, timeout: Option<Duration>) -> Result<Received> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let mut poller = Poller::new();
    poller.register(socket);
    loop {
        if let Some(message) = take(socket)? {
            return Ok(Received::Message(message));
        }
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        match poller.poll(left)? {
            Polled::Ready => {}
            Polled::TimedOut => return Ok(Received::TimedOut),
            Polled::Stopped => return Ok(Received::Stopped),
        }
    }
}
