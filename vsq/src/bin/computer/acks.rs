//! The computer's side of acknowledged results (`--ack-port`; the protocol
//! is in `vsq::ack`): a SUB socket for its unit's acknowledgements, and
//! every result kept until the saver says it holds it. A tutorial reader
//! may skip it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use examples_common::{Link, Outbox, cannot_connect, console, frames, note, stop};
use vsq::ack;

use crate::Args;

/// The computer's acknowledgements: the SUB socket they come on, and the
/// results waiting for theirs.
pub struct Acks {
    ack_receiver: zmq::Socket,
    link: Link,
    unacknowledged: Unacknowledged,
    /// --window: at most this many results wait for their acknowledgement.
    window: usize,
    /// When the sockets were last read: each read of an empty socket is a
    /// system call, too many to make for every result of a stream.
    read: Instant,
}

/// How often a stream looks for acknowledgements while there is room.
const READ_ACKS_EVERY: Duration = Duration::from_millis(1);

impl Acks {
    /// Subscribes to the unit's acknowledgements on `port` of the server.
    pub fn subscribe(context: &zmq::Context, args: &Args, port: u16, unit: u16) -> Result<Acks> {
        let ack_receiver = context.socket(zmq::SUB).context("cannot create a socket")?;
        examples_common::set_up_client(&ack_receiver)?;
        ack_receiver.set_maxmsgsize(args.limit.max_message_size)?;
        ack_receiver.set_linger(0)?;
        // Room for a stream's acknowledgements, as the saver gives them.
        ack_receiver.set_rcvhwm(ack::HWM)?;
        let endpoint = examples_common::tcp(&args.server_host, port);
        let link = Link::watch(context, &ack_receiver, &endpoint)?;
        ack_receiver.connect(&endpoint).map_err(cannot_connect(&endpoint))?;
        let unit = i64::from(unit);
        ack_receiver.set_subscribe(ack::topic(unit).as_bytes())?;
        Ok(Acks {
            ack_receiver,
            link,
            unacknowledged: Unacknowledged::new(unit, args.ack_timeout),
            window: args.window as usize,
            read: Instant::now(),
        })
    }

    /// Keeps a result, just sent, until it is acknowledged; at the window,
    /// waits for acknowledgements before the computer computes more. False
    /// if Ctrl-C or SIGTERM came first.
    pub fn keep(
        &mut self,
        counter: i64,
        message: &[u8],
        save_sender: &zmq::Socket,
        outbox: &mut Outbox,
    ) -> Result<bool> {
        // Sent a moment ago: the last read of the acknowledgements (at most
        // a millisecond ago, in a stream) is close enough, without a clock.
        self.unacknowledged.keep(counter, message, self.read);
        self.wait_until(self.window - 1, save_sender, outbox, stop::requested)
    }

    /// At the end, waits until every result is acknowledged: until
    /// --linger, or until one more Ctrl-C or SIGTERM. Returns how many
    /// were not.
    pub fn wait_for_all(
        &mut self,
        args: &Args,
        save_sender: &zmq::Socket,
        outbox: &mut Outbox,
    ) -> Result<u64> {
        let wait = stop::LastWait::new(args.linger);
        // Most come at once: say that we wait only when it takes a while.
        let quick = || wait.over() || wait.elapsed() >= args.ack_timeout;
        if !self.wait_until(0, save_sender, outbox, quick)? && !wait.over() {
            note!(
                "computer: waiting for the saver to acknowledge {} ({})",
                console::count(self.waiting(), ["result", "results"]),
                wait.ways_out("gives up")
            );
            self.wait_until(0, save_sender, outbox, || wait.over())?;
        }
        Ok(self.waiting())
    }

    /// How many results wait for their acknowledgement.
    fn waiting(&self) -> u64 {
        self.unacknowledged.len() as u64
    }

    /// Reads acknowledgements until at most `waiting` results wait for
    /// theirs, sending everything again after a reconnect, and what
    /// waited too long; false if `give_up` said to stop first.
    fn wait_until(
        &mut self,
        waiting: usize,
        save_sender: &zmq::Socket,
        outbox: &mut Outbox,
        give_up: impl Fn() -> bool,
    ) -> Result<bool> {
        if self.unacknowledged.len() <= waiting && self.read.elapsed() < READ_ACKS_EVERY {
            return Ok(true);
        }
        loop {
            self.read = Instant::now();
            // A lost subscription is made again (see the command task).
            self.link.check(&self.ack_receiver)?;
            self.read_acknowledgements()?;
            // What was on a lost connection may be lost: send it all again.
            // Otherwise, send again what waited too long.
            let reconnected = outbox.reconnected()?;
            if reconnected {
                // The saver there now may be another, one that acknowledges
                // nothing: send again on a timeout only once it has.
                self.unacknowledged.heard = false;
            }
            // (While no saver is connected, what is sent again only piles
            // up in the queue: a reconnect sends it all again anyway.)
            let overdue = outbox.is_connected() && self.unacknowledged.overdue();
            if reconnected || overdue {
                let send = |message: &[u8]| {
                    while let Err(error) = save_sender.send(message, 0) {
                        if !outbox.may_retry(error)? {
                            return Ok(false);
                        }
                    }
                    outbox.sent(message)?;
                    Ok(true)
                };
                self.unacknowledged.resend(reconnected, send)?;
            }
            if self.unacknowledged.len() <= waiting {
                return Ok(true);
            }
            if give_up() {
                return Ok(false);
            }
            // One slice at a time, and not through a Poller, which returns
            // at once after Ctrl-C: this wait goes on after the first one.
            console::flush();
            self.ack_receiver
                .poll(zmq::POLLIN, stop::SLICE.as_millis() as i64)
                .context("cannot wait for acknowledgements")?;
        }
    }

    /// Forgets the results that the waiting acknowledgements name.
    fn read_acknowledgements(&mut self) -> Result<()> {
        loop {
            let first = match self.ack_receiver.recv_msg(zmq::DONTWAIT) {
                Ok(first) => first,
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(error) => return Err(error).context("cannot receive an acknowledgement"),
            };
            let acknowledgement = frames(&self.ack_receiver, first)?;
            if let Err(problem) = self.unacknowledged.acknowledge(&acknowledgement.first) {
                console::reject(problem, &acknowledgement.first);
            }
        }
    }
}

/// The computer's side: every result not acknowledged yet, in a window
/// of its counters, with the time it was last sent. Counters come one
/// after the other, so the window is a ring: a result kept or forgotten
/// costs a constant time, and the buffer of a result acknowledged holds
/// the next one.
#[derive(Debug)]
struct Unacknowledged {
    unit: i64,
    /// The counter of the first slot.
    first: i64,
    /// A slot for each counter from `first`: the result waiting, or None
    /// once acknowledged. The first slot always waits.
    slots: VecDeque<Option<Waiting>>,
    /// How many slots wait.
    waiting: usize,
    /// Buffers of results acknowledged, for the next ones.
    spare: Vec<Vec<u8>>,
    timeout: Duration,
    /// Whether any acknowledgement came: a saver without --ack-port sends
    /// none, and is not flooded with results sent again.
    heard: bool,
}

/// A result that waits for its acknowledgement.
#[derive(Debug)]
struct Waiting {
    sent: Instant,
    message: Vec<u8>,
}

/// How many buffers of acknowledged results are kept for the next ones.
const SPARE: usize = 1024;

impl Unacknowledged {
    /// `timeout`: how long a result may wait for its acknowledgement
    /// before it is sent again.
    fn new(unit: i64, timeout: Duration) -> Unacknowledged {
        Unacknowledged {
            unit,
            first: 0,
            slots: VecDeque::new(),
            waiting: 0,
            spare: Vec::new(),
            timeout,
            heard: false,
        }
    }

    /// Keeps a result, sent at `sent`, until it is acknowledged. Its
    /// counter follows the last one kept.
    fn keep(&mut self, counter: i64, message: &[u8], sent: Instant) {
        if self.slots.is_empty() {
            self.first = counter;
        }
        // A counter past the next one leaves empty slots between.
        while self.first + (self.slots.len() as i64) < counter {
            self.slots.push_back(None);
        }
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(message);
        self.slots.push_back(Some(Waiting {
            sent,
            message: buffer,
        }));
        self.waiting += 1;
    }

    /// How many results wait for their acknowledgement.
    fn len(&self) -> usize {
        self.waiting
    }

    /// Forgets the results an acknowledgement names; says what is wrong
    /// with one that cannot be read.
    fn acknowledge(&mut self, acknowledgement: &[u8]) -> Result<(), String> {
        let topic = ack::topic(self.unit);
        let ranges = std::str::from_utf8(acknowledgement)
            .ok()
            .and_then(|text| text.strip_prefix(&topic))
            .and_then(ack::parse_ranges)
            .ok_or_else(|| format!("not an acknowledgement \"{topic}<counters>\""))?;
        self.heard = true;
        let end = self.first + self.slots.len() as i64;
        for (first, last) in ranges {
            // Only the part of the range in the window.
            for counter in first.max(self.first)..=last.min(end - 1) {
                let slot = &mut self.slots[(counter - self.first) as usize];
                if let Some(waiting) = slot.take() {
                    self.waiting -= 1;
                    if self.spare.len() < SPARE {
                        self.spare.push(waiting.message);
                    }
                }
            }
        }
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.first += 1;
        }
        Ok(())
    }

    /// True when the oldest result waited longer than the timeout (its
    /// acknowledgement, or the result itself, was lost), from a saver that
    /// acknowledges.
    fn overdue(&self) -> bool {
        self.heard
            && self
                .slots
                .iter()
                .flatten()
                .next()
                .is_some_and(|oldest| oldest.sent.elapsed() >= self.timeout)
    }

    /// Sends again, oldest first, every result (`all`) or those that waited
    /// longer than the timeout; `send` returns false to stop.
    fn resend(
        &mut self,
        all: bool,
        mut send: impl FnMut(&[u8]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        for waiting in self.slots.iter_mut().flatten() {
            if all || now.duration_since(waiting.sent) >= self.timeout {
                if !send(&waiting.message)? {
                    break;
                }
                waiting.sent = now;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_acknowledgement_no_saver_sends_is_refused() {
        let mut unacknowledged = Unacknowledged::new(4, Duration::from_secs(1));
        unacknowledged.keep(0, b"result", Instant::now());
        unacknowledged.acknowledge(b"4 5--9223372036854775808").unwrap_err();
        assert_eq!(unacknowledged.len(), 1);
    }

    #[test]
    fn acknowledged_results_are_forgotten_and_the_rest_kept() {
        let mut unacknowledged = Unacknowledged::new(42, Duration::from_secs(1));
        for counter in 0..6 {
            unacknowledged.keep(
                counter,
                format!("result {counter}").as_bytes(),
                Instant::now(),
            );
        }
        unacknowledged.acknowledge(b"7 0").unwrap_err();
        unacknowledged.acknowledge(b"42 0-2,4").unwrap();
        assert_eq!(unacknowledged.len(), 2);
        let mut resent = Vec::new();
        unacknowledged
            .resend(true, |message| {
                resent.push(message.to_vec());
                Ok(true)
            })
            .unwrap();
        assert_eq!(resent, [b"result 3".to_vec(), b"result 5".to_vec()]);
        // Far past the window, or before it: nothing to forget.
        unacknowledged.acknowledge(b"42 100-200,0-1").unwrap();
        assert_eq!(unacknowledged.len(), 2);
        unacknowledged.acknowledge(b"42 3-5").unwrap();
        assert_eq!((unacknowledged.len(), unacknowledged.slots.len()), (0, 0));
        // A buffer acknowledged holds the next result.
        unacknowledged.keep(6, b"result 6", Instant::now());
        assert!(unacknowledged.spare.len() >= 3);
    }
}
