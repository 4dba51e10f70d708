//! The outbox (computer and faker): watches a program's PUSH socket and
//! counts what it may still hold. A tutorial reader may skip its insides.
//!
//! A connecting PUSH socket queues what it sends while nobody is listening,
//! and sends it when a peer comes: "queued without a broker". ZeroMQ does
//! not say when a message has left; the outbox knows from the socket's
//! [`Link`] whether a peer is connected, and counts.
//!
//! Trap: a socket with unsent messages holds up the context's end (its
//! linger), for ever if the peer stalls. [`Outbox::finish`] makes that wait
//! deliberate: as long as `--linger` says, and one more Ctrl-C or SIGTERM
//! ends it, saying how many messages may be lost.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::{Link, console, note, stop};

/// How [`Outbox::finish`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Everything sent left the program. Whether the peer read it, PUSH
    /// cannot tell: there is no acknowledgement.
    Sent,
    /// Messages were still in the program, or may have been on a lost
    /// connection, and are lost: `up to 3 results dropped (never sent)`.
    Dropped(String),
}

/// libzmq's defaults: a PUSH socket holds at most this many messages in its
/// queue (`ZMQ_SNDHWM`), and its connection this many bytes being written.
const SEND_HWM: u64 = 1000;
const OUT_BATCH_BYTES: u64 = 8192;

/// A PUSH socket, the link it sends on, and what it may still hold.
pub struct Outbox {
    socket: zmq::Socket,
    link: Link,
    /// Who takes the messages, and what one and many are: `saver`,
    /// `result`, `results`.
    names: [&'static str; 3],
    /// Sent while no peer was connected; sent on a connection (what a
    /// connected socket may still hold); and the shortest message.
    queued: u64,
    sent: u64,
    shortest: u64,
    /// The monitor is read at most this often in a stream of sends.
    events_read: Instant,
}

impl Outbox {
    /// Connects the program's PUSH `socket` to `endpoint` and watches it;
    /// `names` name the peer and the messages (`["saver", "result", "results"]`).
    pub fn connect(
        context: &zmq::Context,
        socket: zmq::Socket,
        endpoint: &str,
        names: [&'static str; 3],
    ) -> Result<Outbox> {
        // Dropped on an error, the socket drops what it holds: only
        // `finish` waits.
        socket.set_linger(0)?;
        // A full queue makes a send wait in slices, looking at Ctrl-C.
        socket.set_sndtimeo(stop::SLICE.as_millis() as i32)?;
        let mut link = Link::connect(context, &socket, endpoint)?;
        link.peer = format!("the {} at {endpoint}", names[0]);
        link.queued = Some(names[2]);
        let (queued, sent, shortest) = (0, 0, u64::MAX);
        let events_read = Instant::now();
        Ok(Outbox {
            socket,
            link,
            names,
            queued,
            sent,
            shortest,
            events_read,
        })
    }

    /// Sends one message. When the queue is full (its high-water mark) this
    /// waits for room: false if Ctrl-C or SIGTERM came first.
    pub fn send(&mut self, message: &[u8]) -> Result<bool> {
        if !self.link.is_connected() || self.events_read.elapsed() >= Duration::from_millis(1) {
            self.read_link()?;
        }
        loop {
            match self.socket.send(message, 0) {
                Ok(()) => break,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) if !stop::requested() => {
                    console::flush();
                    self.read_link()?;
                }
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(false),
                Err(error) => return Err(error).context("cannot send a message"),
            }
        }
        match self.link.is_connected() {
            false => self.queued += 1,
            true => self.sent += 1,
        }
        self.shortest = self.shortest.min(message.len() as u64);
        Ok(true)
    }

    /// True while a peer is connected (as last read).
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// True once after a lost connection was made again: what was on the
    /// old one may be lost.
    pub fn reconnected(&mut self) -> Result<bool> {
        self.read_link()?;
        Ok(self.link.reconnected())
    }

    /// Reads the link's news. A connection made takes every queued message:
    /// they are sent on it, even if it is lost again already.
    fn read_link(&mut self) -> Result<()> {
        if self.link.check(&self.socket)? {
            (self.sent, self.queued) = (self.sent + self.queued, 0);
        }
        self.events_read = Instant::now();
        Ok(())
    }

    /// Waits until what was sent has left the program, for `linger` at
    /// most (`None`: as long as it takes); one more Ctrl-C or SIGTERM ends
    /// the wait. Takes the program's context, to end it: the wait is the
    /// context's end, on a thread of its own, so that nothing makes it deaf.
    /// Every other socket must be closed by then: each holds the context.
    pub fn finish(mut self, context: zmq::Context, linger: Option<Duration>) -> Result<Delivery> {
        self.read_link()?;
        let ([peer, one, many], endpoint) = (self.names, &self.link.endpoint);
        // What a connected socket may still hold: its queue, and the batch
        // it is writing. After a lost connection, as much may be left of
        // what was sent before.
        let batch = OUT_BATCH_BYTES / self.shortest.max(1) + 1;
        let unsent = self.sent.min(SEND_HWM + batch);
        let held = self.queued + unsent;
        let nouns = [format!("queued {one}"), format!("queued {many}")];
        let queued = console::count(self.queued, [&nouns[0], &nouns[1]]);
        let lost = "sent before the connection was lost";
        let (waiting, dropped) = match (self.link.is_connected(), self.queued, unsent) {
            (true, _, _) => (
                format!("the {peer} at {endpoint} to take the last {many}"),
                "never sent".to_owned(),
            ),
            (false, _, 0) => (
                format!("a {peer} at {endpoint} to take {queued}"),
                "never sent".to_owned(),
            ),
            (false, 0, _) => (
                format!("a {peer} at {endpoint} to take up to {unsent} {many} {lost}"),
                lost.to_owned(),
            ),
            (false, _, _) => (
                format!("a {peer} at {endpoint} to take {queued}, and up to {unsent} more {lost}"),
                format!("{} never sent, up to {unsent} {lost}", self.queued),
            ),
        };
        let dropped = format!(
            "up to {} dropped ({dropped})",
            console::count(held, [one, many])
        );
        let waiting = format!("{}: waiting for {waiting}", crate::program_name());
        // Ending the context waits until every message has left (linger -1).
        self.socket.set_linger(-1)?;
        drop(self);
        let (ended, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("linger".to_owned())
            .spawn(move || {
                drop(context);
                let _ = ended.send(());
            })
            .context("cannot start the thread that ends the context")?;

        let wait = stop::LastWait::new(linger);
        let mut said = false;
        loop {
            match done.recv_timeout(stop::SLICE) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return Ok(Delivery::Sent),
                Err(RecvTimeoutError::Timeout) => {}
            }
            // A peer connecting right now takes a moment: say nothing yet.
            if !said && wait.elapsed() >= Duration::from_millis(100) {
                note!("{waiting} ({})", wait.ways_out("drops them"));
                console::flush();
                said = true;
            }
            // The thread stays blocked in libzmq; the program's exit ends it.
            if wait.over() {
                return Ok(Delivery::Dropped(dropped));
            }
        }
    }
}
