//! The outbox: a PUSH socket that keeps what it could not deliver yet.
//!
//! A connecting PUSH socket queues messages while nobody is listening and
//! sends them when a peer arrives: results are "queued without a broker".
//! ZeroMQ does not say when a message has left, so the outbox watches its
//! connection through a socket monitor: what is pushed while no peer is
//! connected counts as queued, until a peer completes its handshake.
//!
//! Trap: a socket with unsent messages holds up the context's teardown
//! (its linger). [`Outbox::finish`] makes that wait deliberate: it waits
//! for a peer as long as it is told to, then either lets the messages
//! go out or drops them and says how many.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::stop;

/// How [`Outbox::finish`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Everything pushed was handed to a connected peer.
    Delivered,
    /// No peer came in time, or Ctrl-C said not to wait: at most this many
    /// messages were still queued and are lost.
    Dropped(u64),
}

/// In a burst of pushes, how often the monitor is read: each read is a
/// system call, and peers do not come and go that often.
const READ_EVENTS_EVERY: Duration = Duration::from_millis(1);

/// A PUSH socket connected to one endpoint, counting what it still holds.
pub struct Outbox {
    socket: zmq::Socket,
    monitor: zmq::Socket,
    connected: bool,
    queued: u64,
    /// When the monitor was last read, and how many messages were pushed
    /// since without reading it: if the peer turns out to have left, they
    /// may still be queued.
    events_read: Instant,
    unchecked: u64,
}

impl Outbox {
    /// Connects a PUSH socket to `endpoint`; the peer may come later.
    pub fn connect(context: &zmq::Context, endpoint: &str) -> Result<Outbox> {
        static MONITORS: AtomicUsize = AtomicUsize::new(0);
        let socket = crate::socket(context, zmq::PUSH)?;
        let monitor_endpoint = format!(
            "inproc://outbox-monitor-{}",
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED.to_raw()
            | zmq::SocketEvent::DISCONNECTED.to_raw();
        socket
            .monitor(&monitor_endpoint, i32::from(events))
            .context("cannot monitor the PUSH socket")?;
        let monitor = crate::socket(context, zmq::PAIR)?;
        crate::connect(&monitor, &monitor_endpoint)?;
        crate::connect(&socket, endpoint)?;
        Ok(Outbox {
            socket,
            monitor,
            connected: false,
            queued: 0,
            events_read: Instant::now(),
            unchecked: 0,
        })
    }

    /// Pushes one message. When the queue is full (the high-water mark,
    /// 1000 messages) this waits for room; returns false if Ctrl-C came first.
    pub fn push(&mut self, message: &[u8]) -> Result<bool> {
        let check = !self.connected || self.events_read.elapsed() >= READ_EVENTS_EVERY;
        if check {
            self.read_events()?;
        }
        loop {
            match self.socket.send(message, zmq::DONTWAIT) {
                Ok(()) => break,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => {
                    if stop::requested() {
                        return Ok(false);
                    }
                    crate::console::flush();
                    let millis = stop::SLICE.as_millis() as i64;
                    match self.socket.poll(zmq::POLLOUT, millis) {
                        Ok(_) | Err(zmq::Error::EINTR) => {}
                        Err(error) => return Err(error).context("cannot wait to push"),
                    }
                }
                Err(error) => return Err(error).context("cannot push a message"),
            }
        }
        if !self.connected {
            self.queued += 1;
        } else if !check {
            self.unchecked += 1;
        }
        Ok(true)
    }

    /// How many messages were pushed while no peer was connected, at most,
    /// once a peer that is connecting right now has had `grace` to finish
    /// its handshake (a burst pushed at start-up is queued for a moment).
    pub fn queued_after(&mut self, grace: Duration) -> Result<u64> {
        let deadline = Instant::now() + grace;
        loop {
            self.read_events()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if self.queued == 0 || left.is_zero() {
                return Ok(self.queued);
            }
            self.wait_for_event(left.min(stop::SLICE))?;
        }
    }

    /// Waits until a peer has taken what is queued, for `linger` at most
    /// (`None`: as long as it takes); one more Ctrl-C stops the wait.
    pub fn finish(mut self, linger: Option<Duration>) -> Result<Delivery> {
        let deadline = linger.map(|linger| Instant::now() + linger);
        let signals = stop::signals();
        loop {
            self.read_events()?;
            if self.queued == 0 {
                // Connected: let libzmq send the rest before the context closes.
                let left =
                    deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
                let linger = left.map_or(-1, |left| {
                    i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
                });
                self.socket.set_linger(linger)?;
                return Ok(Delivery::Delivered);
            }
            let out_of_time = deadline.is_some_and(|deadline| Instant::now() >= deadline);
            if out_of_time || stop::signals() > signals {
                self.socket.set_linger(0)?;
                return Ok(Delivery::Dropped(self.queued));
            }
            crate::console::flush();
            self.wait_for_event(stop::SLICE)?;
        }
    }

    fn wait_for_event(&self, timeout: Duration) -> Result<()> {
        let millis = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        match self.monitor.poll(zmq::POLLIN, millis) {
            Ok(_) | Err(zmq::Error::EINTR) => Ok(()),
            Err(error) => Err(error).context("cannot watch the PUSH socket"),
        }
    }

    /// Reads the monitor's news: a peer connected (all queued messages go
    /// to it) or went away (what comes next stays queued).
    fn read_events(&mut self) -> Result<()> {
        loop {
            let frames = match self.monitor.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => {
                    self.events_read = Instant::now();
                    self.unchecked = 0;
                    return Ok(());
                }
                Err(error) => return Err(error).context("cannot read socket events"),
            };
            // An event is two frames: 2 bytes of event number, 4 of value,
            // then the peer's endpoint.
            let Some(&[low, high]) = frames.first().and_then(|frame| frame.get(..2)) else {
                continue;
            };
            match zmq::SocketEvent::from_raw(u16::from_ne_bytes([low, high])) {
                zmq::SocketEvent::HANDSHAKE_SUCCEEDED => {
                    self.connected = true;
                    self.queued = 0;
                }
                zmq::SocketEvent::DISCONNECTED => {
                    self.connected = false;
                    self.queued += self.unchecked;
                    self.unchecked = 0;
                }
                _ => {}
            }
        }
    }
}
