//! Waiting on several sockets: [`Poller`], as pyzmq's `zmq.Poller`, with a
//! timeout and without missing a Ctrl-C; then [`take`] reads one whole
//! message from a socket the poll found readable.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{console, stop};

/// A set of sockets to wait on for incoming messages.
#[derive(Default)]
pub struct Poller<'a> {
    items: Vec<zmq::PollItem<'a>>,
}

impl<'a> Poller<'a> {
    pub fn new() -> Self {
        Poller::default()
    }

    /// Watches `socket` for incoming messages (pyzmq's
    /// `poller.register(socket, zmq.POLLIN)`); returns its index.
    pub fn register(&mut self, socket: &'a zmq::Socket) -> usize {
        self.items.push(socket.as_poll_item(zmq::POLLIN));
        self.items.len() - 1
    }

    /// Waits until a registered socket has a message (true), or `timeout`
    /// passes (`None`: never) or Ctrl-C or SIGTERM comes (false: see
    /// [`stop::requested`]). Flushes stdout first.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool> {
        console::flush();
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        while !stop::requested() {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left.is_zero()) {
                return Ok(false);
            }
            // Trap: a signal ends a long poll with EINTR, maybe before its
            // handler counted it: wait in slices, and look at the stop flag.
            let slice = left.unwrap_or(stop::SLICE).min(stop::SLICE);
            match zmq::poll(&mut self.items, slice.as_micros().div_ceil(1000) as i64) {
                Ok(0) | Err(zmq::Error::EINTR) => {}
                Ok(_) => return Ok(true),
                Err(error) => return Err(error).context("cannot poll sockets"),
            }
        }
        Ok(false)
    }

    /// True if the socket at `index` had a message at the last poll.
    pub fn is_readable(&self, index: usize) -> bool {
        self.items[index].is_readable()
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
            let (frames, bytes) = (self.frames, self.bytes);
            format!("a message of {frames} frames ({bytes} bytes) where one frame was expected")
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
    // already. Each is counted and dropped: joined, a message of many
    // frames would sit in memory twice.
    while more {
        let mut frame = zmq::Message::new();
        socket
            .recv(&mut frame, 0)
            .context("cannot receive a message")?;
        incoming.frames += 1;
        incoming.bytes += frame.len();
        more = frame.get_more();
    }
    Ok(Some(incoming))
}
