//! Watching connections. libzmq's socket monitor reports, as messages on
//! an inproc socket, when a connection is made or lost; [`Monitor`] reads
//! those events, and [`Link`] uses them so that a connecting receiver is
//! never deaf.
//!
//! Trap: a peer that sends a message over the receiver's size limit
//! (`ZMQ_MAXMSGSIZE`) is a protocol error to libzmq: it drops that
//! connection and, unlike after a network error, never connects again. A
//! SUB or REQ socket would then wait for ever. [`Link::receive`] sees the
//! connection go, says so, and connects again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{Polled, Poller, Received, take};

/// What a monitor reports of a socket's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A connection was made: its handshake is done.
    Connected,
    /// A connection was lost.
    Disconnected,
}

/// The events of one socket, read from its monitor.
pub struct Monitor {
    events: zmq::Socket,
}

impl Monitor {
    /// Starts monitoring `socket` for connections made (handshake done) and lost.
    pub fn new(context: &zmq::Context, socket: &zmq::Socket) -> Result<Monitor> {
        static MONITORS: AtomicUsize = AtomicUsize::new(0);
        let endpoint = format!(
            "inproc://monitor-{}",
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
            | zmq::SocketEvent::DISCONNECTED.to_raw();
        socket
            .monitor(&endpoint, i32::from(events))
            .context("cannot monitor a socket")?;
        let monitor = crate::socket(context, zmq::PAIR)?;
        crate::connect(&monitor, &endpoint)?;
        Ok(Monitor { events: monitor })
    }

    /// The next event, without waiting, or `None` when there is no news.
    pub fn next(&self) -> Result<Option<Event>> {
        loop {
            let frames = match self.events.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(None),
                Err(error) => return Err(error).context("cannot read socket events"),
            };
            // An event is two frames: 2 bytes of event number and 4 of
            // value, then the peer's endpoint.
            let Some(&[low, high]) = frames.first().and_then(|frame| frame.get(..2)) else {
                continue;
            };
            match zmq::SocketEvent::from_raw(u16::from_ne_bytes([low, high])) {
                zmq::SocketEvent::HANDSHAKE_SUCCEEDED => return Ok(Some(Event::Connected)),
                zmq::SocketEvent::DISCONNECTED => return Ok(Some(Event::Disconnected)),
                _ => {}
            }
        }
    }

    /// Waits up to `timeout` for an event (without reading it).
    pub fn wait(&self, timeout: Duration) -> Result<()> {
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        match self.events.poll(zmq::POLLIN, millis) {
            Ok(_) | Err(zmq::Error::EINTR) => Ok(()),
            Err(error) => Err(error).context("cannot watch a socket's events"),
        }
    }
}

/// A connecting receiver (SUB, REQ) that connects again whenever its
/// connection is lost, and says so on stderr.
pub struct Link<'a> {
    socket: &'a zmq::Socket,
    endpoint: String,
    monitor: Monitor,
    lost: bool,
}

impl<'a> Link<'a> {
    /// Watches `socket`, connected to `endpoint`.
    pub fn watch(
        context: &zmq::Context,
        socket: &'a zmq::Socket,
        endpoint: &str,
    ) -> Result<Link<'a>> {
        Ok(Link {
            monitor: Monitor::new(context, socket)?,
            socket,
            endpoint: endpoint.to_owned(),
            lost: false,
        })
    }

    /// Reads the monitor's news without waiting, and connects again if the
    /// connection was lost: true if it did.
    pub fn check(&mut self) -> Result<bool> {
        while let Some(event) = self.monitor.next()? {
            if event == Event::Disconnected {
                self.reconnect()?;
                return Ok(true);
            }
            if std::mem::take(&mut self.lost) {
                crate::note!(
                    "{}: connected to {} again",
                    crate::program_name(),
                    self.endpoint
                );
            }
        }
        Ok(false)
    }

    /// Receives one message, as [`crate::receive`] does, or returns
    /// [`Received::Reconnected`] once a lost connection was made again.
    pub fn receive(&mut self, timeout: Option<Duration>) -> Result<Received> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if let Some(message) = take(self.socket)? {
                return Ok(Received::Message(message));
            }
            if self.check()? {
                return Ok(Received::Reconnected);
            }
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let mut poller = Poller::new();
            poller.register(self.socket);
            poller.register(&self.monitor.events);
            match poller.poll(left)? {
                Polled::Ready => {}
                Polled::TimedOut => return Ok(Received::TimedOut),
                Polled::Stopped => return Ok(Received::Stopped),
            }
        }
    }

    fn reconnect(&mut self) -> Result<()> {
        let limit = self.socket.get_maxmsgsize().unwrap_or(-1);
        crate::note!(
            "{}: lost the connection to {} (the peer went away, or sent a message over {limit} bytes); connecting again",
            crate::program_name(),
            self.endpoint
        );
        // libzmq may be connecting again already (after a network error)
        // or not (after a protocol error): start over either way.
        match self.socket.disconnect(&self.endpoint) {
            Ok(()) | Err(zmq::Error::ENOENT) => {}
            Err(error) => return Err(error).context("cannot disconnect"),
        }
        crate::connect(self.socket, &self.endpoint)?;
        self.lost = true;
        Ok(())
    }
}
