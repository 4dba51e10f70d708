//! Waiting on several sockets: [`Poller`], as pyzmq's `zmq.Poller`, with a
//! timeout and without missing a Ctrl-C; and [`frames`], which counts the
//! frames of a message a program received.

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
            // Ctrl-C interrupts no poll (see `stop`): wait in slices, and
            // look at the stop flag in between.
            let slice = left.unwrap_or(stop::SLICE).min(stop::SLICE);
            match zmq::poll(&mut self.items, slice.as_micros().div_ceil(1000) as i64) {
                // (EINTR: a poll resumed after SIGSTOP and SIGCONT.)
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

/// Reads the rest of a message whose first frame `first` was just received
/// from `socket`, and counts its frames: `frames(&socket, first)?`.
///
/// Trap: a peer may send a message of several frames where our protocols
/// have one. libzmq hands over a message's frames together, so the rest
/// are here already: each is counted and dropped, never joined into a
/// second copy, and the program rejects the message as such.
pub fn frames(socket: &zmq::Socket, first: zmq::Message) -> Result<Incoming> {
    let mut more = first.get_more();
    let mut incoming = Incoming {
        bytes: first.len(),
        first,
        frames: 1,
    };
    while more {
        let frame =
            socket.recv_msg(zmq::DONTWAIT).context("cannot receive the rest of a message")?;
        incoming.frames += 1;
        incoming.bytes += frame.len();
        more = frame.get_more();
    }
    Ok(incoming)
}
