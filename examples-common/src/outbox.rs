//! The outbox: a PUSH socket that keeps what it could not send yet.
//!
//! A connecting PUSH socket queues messages while nobody is listening and
//! sends them when a peer arrives: results are "queued without a broker".
//! ZeroMQ does not say when a message has left, so the outbox watches its
//! connection through a socket monitor: what is pushed while no peer is
//! connected counts as queued, until a peer completes its handshake.
//!
//! Trap: a socket with unsent messages holds up the context's teardown
//! (its linger), for ever if the peer stalls. [`Outbox::finish`] makes that
//! wait deliberate: it waits as long as it is told to, and one more Ctrl-C
//! or SIGTERM ends it, saying how many messages may be lost.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::link::{Event, Monitor};
use crate::{note, stop};

/// How [`Outbox::finish`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Everything pushed left the program for the network. Whether the peer
    /// read it, PUSH cannot tell: there is no acknowledgement.
    Sent,
    /// No peer took them in time, or Ctrl-C said not to wait: at most this
    /// many messages were still in the program, and are lost.
    Dropped(u64),
}

/// In a burst of pushes, how often the monitor is read: each read is a
/// system call, and peers do not come and go that often.
const READ_EVENTS_EVERY: Duration = Duration::from_millis(1);

/// How long the last messages may take to leave before the outbox says it
/// is waiting for them (a peer that is connecting right now takes a moment).
const GRACE: Duration = Duration::from_millis(100);

/// libzmq's defaults: a connected PUSH socket holds at most this many
/// messages in its queue (`ZMQ_SNDHWM`), and its connection this many
/// bytes being written (`out_batch_size`).
const SEND_HWM: u64 = 1000;
const OUT_BATCH_BYTES: u64 = 8192;

/// A PUSH socket connected to one endpoint, counting what it still holds.
pub struct Outbox {
    socket: zmq::Socket,
    monitor: Monitor,
    /// For what it says: the "saver" that takes the "results".
    peer: &'static str,
    what: &'static str,
    endpoint: String,
    connected: bool,
    /// Whether a connection was made and then lost; and made again since
    /// [`Outbox::reconnected`] last looked.
    lost: bool,
    reconnected: bool,
    queued: u64,
    /// Pushed while connected, and the shortest such message: what may
    /// still be in the socket's queue at exit.
    sent: u64,
    shortest: u64,
    /// When the monitor was last read, and how many messages were pushed
    /// since without reading it: if the peer turns out to have left, they
    /// may still be queued.
    events_read: Instant,
    unchecked: u64,
}

impl Outbox {
    /// Connects a PUSH socket to `endpoint`; the peer may come later.
    /// `peer` and `what` name the two in what it says (`saver`, `results`).
    pub fn connect(
        context: &zmq::Context,
        endpoint: &str,
        [peer, what]: [&'static str; 2],
    ) -> Result<Outbox> {
        let socket = crate::socket(context, zmq::PUSH)?;
        // Dropped on an error, the socket drops what it holds; only
        // `finish` waits for it.
        socket.set_linger(0)?;
        let monitor = Monitor::new(context, &socket)?;
        crate::connect(&socket, endpoint)?;
        Ok(Outbox {
            socket,
            monitor,
            peer,
            what,
            endpoint: endpoint.to_owned(),
            connected: false,
            lost: false,
            reconnected: false,
            queued: 0,
            sent: 0,
            shortest: u64::MAX,
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
                    self.read_events()?;
                }
                Err(error) => return Err(error).context("cannot push a message"),
            }
        }
        if !self.connected {
            self.queued += 1;
        } else {
            self.sent += 1;
            self.shortest = self.shortest.min(message.len() as u64);
            if !check {
                self.unchecked += 1;
            }
        }
        Ok(true)
    }

    /// True once, after a lost connection was made again: what was on the
    /// old one may be lost.
    pub fn reconnected(&mut self) -> Result<bool> {
        self.read_events()?;
        Ok(std::mem::take(&mut self.reconnected))
    }

    /// Waits until what was pushed has left the program, for `linger` at
    /// most (`None`: as long as it takes); one more Ctrl-C or SIGTERM ends
    /// the wait. Takes the program's context, to close it: the wait is the
    /// context's teardown, done on a thread of its own so that nothing can
    /// make it deaf.
    pub fn finish(mut self, context: zmq::Context, linger: Option<Duration>) -> Result<Delivery> {
        self.read_events()?;
        let waiting = match self.connected {
            false => format!(
                "{}: waiting for a {} at {} to take {} queued {}",
                crate::program_name(),
                self.peer,
                self.endpoint,
                self.queued,
                self.what
            ),
            true => format!(
                "{}: waiting for the {} at {} to take the last {}",
                crate::program_name(),
                self.peer,
                self.endpoint,
                self.what
            ),
        };
        let held = self.held_at_most();
        // Closing the context waits until every message has left (linger
        // -1), on a thread, while we watch the clock and the stop flag.
        self.socket.set_linger(-1)?;
        drop(self);
        let (closed, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("linger".to_owned())
            .spawn(move || {
                drop(context);
                let _ = closed.send(());
            })
            .context("cannot start the thread that closes the sockets")?;

        let wait = stop::LastWait::new(linger);
        let mut said = false;
        loop {
            match done.recv_timeout(stop::SLICE) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(Delivery::Sent),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // The thread stays blocked in libzmq; the program's exit ends it.
            if wait.over() {
                return Ok(Delivery::Dropped(held));
            }
            if !said && wait.elapsed() >= GRACE {
                note!("{waiting} ({})", wait.ways_out("drops them"));
                crate::console::flush();
                said = true;
            }
        }
    }

    /// What may still be in the program, unsent: what is queued for want
    /// of a peer, and what a connected socket can hold in its queue and in
    /// the batch it is writing.
    fn held_at_most(&self) -> u64 {
        let batch = OUT_BATCH_BYTES / self.shortest.max(1) + 1;
        self.queued + self.sent.min(SEND_HWM + batch)
    }

    /// Reads the monitor's news: a peer connected (all queued messages go
    /// to it) or went away (what comes next stays queued).
    fn read_events(&mut self) -> Result<()> {
        while let Some(event) = self.monitor.next()? {
            if event == Event::Connected {
                if std::mem::take(&mut self.lost) {
                    self.reconnected = true;
                    note!(
                        "{}: connected to the {} at {} again",
                        crate::program_name(),
                        self.peer,
                        self.endpoint
                    );
                }
                self.connected = true;
                self.queued = 0;
            } else {
                note!(
                    "{}: lost the connection to the {} at {}; {} wait in the queue until it is back",
                    crate::program_name(),
                    self.peer,
                    self.endpoint,
                    self.what
                );
                self.connected = false;
                self.lost = true;
                self.queued += self.unchecked;
            }
            self.unchecked = 0;
        }
        self.events_read = Instant::now();
        self.unchecked = 0;
        Ok(())
    }
}
