//! Watching a connection. libzmq's socket monitor reports, as messages on
//! an inproc socket, when a connection is made (its handshake done) or
//! lost; a [`Link`] reads them and says on stderr when its connection is
//! lost and when it is made again.
//!
//! Trap: a message over a receiver's size limit (`ZMQ_MAXMSGSIZE`) is a
//! protocol error to libzmq: it drops the connection and, unlike after a
//! network error, never connects again. A SUB or REQ socket would wait for
//! ever: the link connects it again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{Incoming, Poller, take};

/// The connection of one connecting socket, watched through its monitor.
pub struct Link {
    pub(crate) endpoint: String,
    /// Who is at the other end, as the lines on stderr say it.
    pub(crate) peer: String,
    /// For a PUSH socket, what waits in its queue while the link is down
    /// (`results`); a receiver (`None`) is connected again instead.
    pub(crate) queued: Option<&'static str>,
    events: zmq::Socket,
    connected: bool,
    lost: bool,
    /// Whether a lost connection was made again since
    /// [`Link::reconnected`] last said so.
    again: bool,
}

/// What [`Link::receive`] got.
#[derive(Debug)]
pub enum Received {
    Message(Incoming),
    /// The timeout passed with nothing to read.
    TimedOut,
    /// Ctrl-C or SIGTERM came.
    Stopped,
    /// The connection was lost and made again: a request sent before it may
    /// need sending again.
    Reconnected,
}

impl Link {
    /// Connects `socket` to `endpoint`, watching the connection from before
    /// it is made, so that its first handshake is seen too.
    pub fn connect(context: &zmq::Context, socket: &zmq::Socket, endpoint: &str) -> Result<Link> {
        static MONITORS: AtomicUsize = AtomicUsize::new(0);
        let monitor = format!(
            "inproc://monitor-{}",
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let watched = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
            | zmq::SocketEvent::DISCONNECTED.to_raw();
        socket
            .monitor(&monitor, i32::from(watched))
            .context("cannot monitor a socket")?;
        let events = crate::socket(context, zmq::PAIR)?;
        events
            .connect(&monitor)
            .context("cannot read a socket's events")?;
        crate::connect(socket, endpoint)?;
        Ok(Link {
            endpoint: endpoint.to_owned(),
            peer: endpoint.to_owned(),
            queued: None,
            events,
            connected: false,
            lost: false,
            again: false,
        })
    }

    /// True while the connection is up (its handshake done).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// True once after a lost connection was made again: what was on the
    /// old one may be lost.
    pub fn reconnected(&mut self) -> bool {
        std::mem::take(&mut self.again)
    }

    /// Reads the monitor's news, without waiting. Says when the connection
    /// is lost (and connects a receiver again) or made again. True if a
    /// connection was made since the last check, even one lost again since.
    pub fn check(&mut self, socket: &zmq::Socket) -> Result<bool> {
        let mut made = false;
        loop {
            let frames = match self.events.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(made),
                Err(error) => return Err(error).context("cannot read a socket's events"),
            };
            // An event is two frames: 2 bytes of event number and 4 of
            // value, then the peer's endpoint.
            let Some(&[low, high]) = frames.first().and_then(|frame| frame.get(..2)) else {
                continue;
            };
            let program = crate::program_name();
            let peer = &self.peer;
            if zmq::SocketEvent::from_raw(u16::from_ne_bytes([low, high]))
                == zmq::SocketEvent::HANDSHAKE_SUCCEEDED
            {
                if std::mem::take(&mut self.lost) {
                    crate::note!("{program}: connected to {peer} again");
                    self.again = true;
                }
                (self.connected, made) = (true, true);
                continue;
            }
            (self.connected, self.lost) = (false, true);
            let Some(what) = self.queued else {
                let limit = socket.get_maxmsgsize().unwrap_or(-1);
                crate::note!(
                    "{program}: lost the connection to {peer} (the peer went away, or sent a message over {limit} bytes); connecting again"
                );
                // libzmq may be connecting again already (after a network
                // error) or not (after a protocol error): start over.
                match socket.disconnect(&self.endpoint) {
                    Ok(()) | Err(zmq::Error::ENOENT) => {}
                    Err(error) => return Err(error).context("cannot disconnect"),
                }
                socket
                    .connect(&self.endpoint)
                    .with_context(|| format!("cannot connect to {}", self.endpoint))?;
                continue;
            };
            crate::note!(
                "{program}: lost the connection to {peer}; {what} wait in the queue until it is back"
            );
        }
    }

    /// Receives one message from `socket`, as a blocking `recv` would, but
    /// gives up after `timeout` (`None`: never), on Ctrl-C, and when a lost
    /// connection was made again.
    pub fn receive(&mut self, socket: &zmq::Socket, timeout: Option<Duration>) -> Result<Received> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if let Some(message) = take(socket)? {
                return Ok(Received::Message(message));
            }
            self.check(socket)?;
            if self.reconnected() {
                return Ok(Received::Reconnected);
            }
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let mut poller = Poller::new();
            poller.register(socket);
            poller.register(&self.events);
            if !poller.poll(left)? {
                return Ok(match crate::stop::requested() {
                    true => Received::Stopped,
                    false => Received::TimedOut,
                });
            }
        }
    }
}
