//! The outbox (computer and faker): watches a program's PUSH socket and
//! counts what it may still hold. A tutorial reader may skip it.
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

/// What a PUSH socket may hold: the link it sends on, and its counts.
pub struct Outbox {
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
    /// Watches the connection the PUSH `socket` is about to make to
    /// `endpoint` (call it before `socket.connect(endpoint)`); `names` name
    /// the peer and the messages (`["saver", "result", "results"]`).
    ///
    /// It also gives the socket a linger of 0, so that only [`Outbox::finish`]
    /// waits for what it holds (dropped on an error, the socket drops it), and
    /// a send timeout of one slice: a send into a full queue gives up after
    /// it, so that the program can look at Ctrl-C (see [`Outbox::may_retry`]).
    pub fn watch(
        context: &zmq::Context,
        socket: &zmq::Socket,
        endpoint: &str,
        names: [&'static str; 3],
    ) -> Result<Outbox> {
        socket.set_linger(0)?;
        socket.set_sndtimeo(stop::SLICE.as_millis() as i32)?;
        let mut link = Link::watch(context, socket, endpoint)?;
        link.peer = format!("the {} at {endpoint}", names[0]);
        link.queued = Some(names[2]);
        let (queued, sent, shortest) = (0, 0, u64::MAX);
        let events_read = Instant::now();
        Ok(Outbox {
            link,
            names,
            queued,
            sent,
            shortest,
            events_read,
        })
    }

    /// After a send failed with `error`: true to send again, false if
    /// Ctrl-C or SIGTERM came, an error if the send cannot work at all.
    ///
    /// Trap: with no peer to take them, messages fill the queue (its
    /// high-water mark, 1000), and a send then waits for room, for ever
    /// with no peer. The send timeout ends each wait after a slice.
    pub fn may_retry(&mut self, error: zmq::Error) -> Result<bool> {
        if error != zmq::Error::EAGAIN {
            return Err(error).context("cannot send a message");
        }
        console::flush();
        self.read_link()?;
        Ok(!stop::requested())
    }

    /// Counts one `message` that the socket took.
    pub fn sent(&mut self, message: &[u8]) -> Result<()> {
        if !self.link.is_connected() || self.events_read.elapsed() >= Duration::from_millis(1) {
            self.read_link()?;
        }
        match self.link.is_connected() {
            false => self.queued += 1,
            true => self.sent += 1,
        }
        self.shortest = self.shortest.min(message.len() as u64);
        Ok(())
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
        if self.link.check_sender()? {
            (self.sent, self.queued) = (self.sent + self.queued, 0);
        }
        self.events_read = Instant::now();
        Ok(())
    }

    /// Waits until what `socket` holds has left the program, for `linger`
    /// at most (`None`: as long as it takes); one more Ctrl-C or SIGTERM
    /// ends the wait. Takes the program's context, to end it: the wait is
    /// the context's end, on a thread of its own, so that nothing makes it
    /// deaf. Every other socket must be closed by then: each holds the
    /// context.
    pub fn finish(
        mut self,
        socket: zmq::Socket,
        context: zmq::Context,
        linger: Option<Duration>,
    ) -> Result<Delivery> {
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
        socket.set_linger(-1)?;
        drop((self, socket));
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
