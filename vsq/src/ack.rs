//! Acknowledged results: the ZeroMQ Guide's answer (its reliability
//! chapter) to "PUSH/PULL cannot tell what arrived".
//!
//! ```text
//!   computer                                   saver
//!   PUSH  -- {"unit": 42, "counter": 7, ...} -> PULL   (as always)
//!   SUB   <------------- "42 0-99,101" ------- PUB     (--ack-port)
//! ```
//!
//! - The saver, once it has kept a burst of results (committed them with
//!   `--store`, printed them without), publishes on each unit's own topic
//!   which counters it now holds: `"<unit> "`, then the counters as ranges
//!   (`0-99,101`), so that a stream's acknowledgements stay small.
//! - The computer subscribes to its own unit, keeps every result until it
//!   is acknowledged, and sends again all that is not: after a reconnect
//!   (what was on the old connection may be lost), and whenever no
//!   acknowledgement came for a while (what was sent may have reached a
//!   saver that died before keeping it). It keeps at most a window of
//!   results: at the window it waits, so its memory stays bounded.
//! - A result sent twice is stored once (with `--store`: the saver's table
//!   has one row per (unit, counter)), and acknowledged again; without
//!   `--store` the saver prints it again.
//!
//! Why this closes the gap: a result leaves the computer's memory only
//! when the saver said it holds it, so a saver killed at any instant, or a
//! link that drops what it carried, only delays results. Without the flag
//! on either side, results travel as in the original, unacknowledged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use examples_common::{Link, Outbox, console, stop, take};

/// How many acknowledgements may wait for one computer, in the saver's
/// PUB socket and in the computer's SUB socket.
pub const HWM: i32 = 100_000;

/// The topic of one unit's acknowledgements: `"42 "`.
pub fn topic(unit: i64) -> String {
    format!("{unit} ")
}

/// The saver's side: the counters kept, by unit: all of them, as ranges,
/// and those not yet acknowledged.
#[derive(Debug, Default)]
pub struct Kept {
    held: BTreeMap<i64, Vec<(i64, i64)>>,
    fresh: BTreeMap<i64, Vec<i64>>,
}

impl Kept {
    /// Keeps a result, to be acknowledged (again, if it was sent again);
    /// false if it was kept already.
    pub fn add(&mut self, unit: i64, counter: i64) -> bool {
        // A computer counts from 0: a counter below, or one the ranges
        // cannot go past, is kept but never acknowledged.
        if !(0..i64::MAX).contains(&counter) {
            return true;
        }
        self.fresh.entry(unit).or_default().push(counter);
        hold(self.held.entry(unit).or_default(), counter)
    }

    /// One acknowledgement per unit for what was kept since the last call,
    /// `"<unit> <ranges>"`.
    pub fn take_acknowledgements(&mut self) -> Vec<String> {
        std::mem::take(&mut self.fresh)
            .into_iter()
            .map(|(unit, mut counters)| {
                counters.sort_unstable();
                counters.dedup();
                format!("{}{}", topic(unit), ranges(&counters))
            })
            .collect()
    }

    /// Everything held for the unit a subscription names (`"42 "`): what a
    /// computer that subscribes late (the slow joiner) missed.
    pub fn everything_for(&self, subscription: &[u8]) -> Option<String> {
        let unit: i64 = std::str::from_utf8(subscription)
            .ok()?
            .strip_suffix(' ')?
            .parse()
            .ok()?;
        let ranges = self.held.get(&unit)?;
        let counters = ranges
            .iter()
            .map(|&(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}-{last}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        Some(format!("{}{counters}", topic(unit)))
    }
}

/// Adds a counter to sorted, disjoint ranges, merging neighbours; false if
/// they held it already.
fn hold(ranges: &mut Vec<(i64, i64)>, counter: i64) -> bool {
    // Counters come mostly in order: most extend the last range.
    if let Some((_, last)) = ranges.last_mut() {
        if *last + 1 == counter {
            *last = counter;
            return true;
        }
    }
    let at = ranges.partition_point(|&(_, last)| last < counter);
    if ranges.get(at).is_some_and(|&(first, _)| first <= counter) {
        return false;
    }
    ranges.insert(at, (counter, counter));
    if ranges
        .get(at + 1)
        .is_some_and(|&(first, _)| first == counter + 1)
    {
        ranges[at].1 = ranges[at + 1].1;
        ranges.remove(at + 1);
    }
    if at > 0 && ranges[at - 1].1 + 1 == counter {
        ranges[at - 1].1 = ranges[at].1;
        ranges.remove(at);
    }
    true
}

/// Sorted counters as ranges: `[0, 1, 2, 5]` is `0-2,5`.
fn ranges(counters: &[i64]) -> String {
    let mut text = String::new();
    let mut counters = counters.iter().copied().peekable();
    while let Some(first) = counters.next() {
        let mut last = first;
        while counters.next_if(|&next| next == last + 1).is_some() {
            last += 1;
        }
        if !text.is_empty() {
            text.push(',');
        }
        match first == last {
            true => text.push_str(&first.to_string()),
            false => text.push_str(&format!("{first}-{last}")),
        }
    }
    text
}

/// Reads `0-2,5` back as inclusive ranges.
fn parse_ranges(text: &str) -> Option<Vec<(i64, i64)>> {
    text.split(',')
        .map(|range| {
            let (first, last) = match range.split_once('-') {
                Some((first, last)) => (first.parse().ok()?, last.parse().ok()?),
                None => range.parse().ok().map(|counter| (counter, counter))?,
            };
            // Counters start at 0, and a range goes up.
            (0 <= first && first <= last).then_some((first, last))
        })
        .collect()
}

/// The computer's side: every result not acknowledged yet, by counter,
/// with the time it was last sent.
#[derive(Debug)]
pub struct Unacknowledged {
    unit: i64,
    results: BTreeMap<i64, (Instant, Vec<u8>)>,
    timeout: Duration,
    /// Whether any acknowledgement came: a saver without --ack-port sends
    /// none, and is not flooded with results sent again.
    heard: bool,
}

impl Unacknowledged {
    /// `timeout`: how long a result may wait for its acknowledgement
    /// before it is sent again.
    pub fn new(unit: i64, timeout: Duration) -> Unacknowledged {
        Unacknowledged {
            unit,
            results: BTreeMap::new(),
            timeout,
            heard: false,
        }
    }

    /// Keeps a result, sent now, until it is acknowledged.
    pub fn keep(&mut self, counter: i64, message: &[u8]) {
        self.results
            .insert(counter, (Instant::now(), message.to_vec()));
    }

    /// How many results wait for their acknowledgement.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    /// Forgets the results an acknowledgement names; says what is wrong
    /// with one that cannot be read.
    pub fn acknowledge(&mut self, acknowledgement: &[u8]) -> Result<(), String> {
        let topic = topic(self.unit);
        let ranges = std::str::from_utf8(acknowledgement)
            .ok()
            .and_then(|text| text.strip_prefix(&topic))
            .and_then(parse_ranges)
            .ok_or_else(|| format!("not an acknowledgement \"{topic}<counters>\""))?;
        self.heard = true;
        for (first, last) in ranges {
            if last - first < self.results.len() as i64 {
                for counter in first..=last {
                    self.results.remove(&counter);
                }
            } else {
                self.results
                    .retain(|counter, _| !(first..=last).contains(counter));
            }
        }
        Ok(())
    }

    /// True when the oldest result waited longer than the timeout (its
    /// acknowledgement, or the result itself, was lost), from a saver that
    /// acknowledges.
    pub fn overdue(&self) -> bool {
        self.heard
            && self
                .results
                .first_key_value()
                .is_some_and(|(_, (sent, _))| sent.elapsed() >= self.timeout)
    }

    /// Sends again, oldest first, every result (`all`) or those that waited
    /// longer than the timeout; `send` returns false to stop.
    pub fn resend(
        &mut self,
        all: bool,
        mut send: impl FnMut(&[u8]) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        for (sent, message) in self.results.values_mut() {
            if all || now.duration_since(*sent) >= self.timeout {
                if !send(message)? {
                    break;
                }
                *sent = now;
            }
        }
        Ok(())
    }
}

/// The computer's side, with its sockets: its unit's acknowledgements,
/// read from `receiver`, and the results waiting for theirs.
pub struct Acks {
    link: Link,
    receiver: zmq::Socket,
    unacknowledged: Unacknowledged,
    /// When the sockets were last read: each read of an empty socket is a
    /// system call, too many to make for every result of a stream.
    read: Instant,
}

/// How often a stream looks for acknowledgements while there is room.
const READ_ACKS_EVERY: Duration = Duration::from_millis(1);

impl Acks {
    pub fn new(receiver: zmq::Socket, link: Link, unit: i64, timeout: Duration) -> Acks {
        let unacknowledged = Unacknowledged::new(unit, timeout);
        let read = Instant::now();
        Acks {
            link,
            receiver,
            unacknowledged,
            read,
        }
    }

    /// Keeps a result until it is acknowledged.
    pub fn keep(&mut self, counter: i64, message: &[u8]) {
        self.unacknowledged.keep(counter, message);
    }

    /// How many results wait for their acknowledgement.
    pub fn waiting(&self) -> u64 {
        self.unacknowledged.len() as u64
    }

    /// Reads acknowledgements until at most `waiting` results wait for
    /// theirs, sending everything again after a reconnect, and what
    /// waited too long; false if `give_up` said to stop first.
    pub fn wait_until(
        &mut self,
        waiting: usize,
        outbox: &mut Outbox,
        give_up: impl Fn() -> bool,
    ) -> Result<bool> {
        if self.unacknowledged.len() <= waiting && self.read.elapsed() < READ_ACKS_EVERY {
            return Ok(true);
        }
        loop {
            self.read = Instant::now();
            // A lost subscription is made again (see the command task).
            self.link.check(&self.receiver)?;
            while let Some(acknowledgement) = take(&self.receiver)? {
                if let Err(problem) = self.unacknowledged.acknowledge(&acknowledgement.first) {
                    console::reject(problem, &acknowledgement.first);
                }
            }
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
                let send = |message: &[u8]| outbox.send(message);
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
            match self
                .receiver
                .poll(zmq::POLLIN, stop::SLICE.as_millis() as i64)
            {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(error) => return Err(error).context("cannot wait for acknowledgements"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn counters_travel_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(parse_ranges("0-2,5,7-8").unwrap(), [(0, 2), (5, 5), (7, 8)]);
        assert_eq!(parse_ranges("x"), None);
        // Counters start at 0, and a range goes up: anything else is no
        // acknowledgement a saver sends.
        assert_eq!(parse_ranges("5--9223372036854775808"), None);
        assert_eq!(parse_ranges("-9223372036854775808-5"), None);
        assert_eq!(parse_ranges("5-2"), None);
    }

    #[test]
    fn an_acknowledgement_no_saver_sends_is_refused() {
        let mut unacknowledged = Unacknowledged::new(4, Duration::from_secs(1));
        unacknowledged.keep(0, b"result");
        unacknowledged
            .acknowledge(b"4 5--9223372036854775808")
            .unwrap_err();
        assert_eq!(unacknowledged.results.len(), 1);
    }

    #[test]
    fn acknowledged_results_are_forgotten_and_the_rest_kept() {
        let mut kept = Kept::default();
        for counter in [0, 1, 2, 4] {
            kept.add(42, counter);
        }
        kept.add(7, 0);
        let acknowledgements = kept.take_acknowledgements();
        assert_eq!(acknowledgements, ["7 0", "42 0-2,4"]);
        kept.add(42, 3);
        kept.add(42, 1);
        assert_eq!(kept.everything_for(b"42 ").unwrap(), "42 0-4");
        kept.add(42, 9);
        kept.add(42, 7);
        assert_eq!(kept.everything_for(b"42 ").unwrap(), "42 0-4,7,9");
        // Kept already, so sent again; and new.
        assert!(!kept.add(42, 0) && !kept.add(42, 3) && !kept.add(42, 9));
        assert!(kept.add(42, 5) && kept.add(42, 10) && kept.add(7, 1));
        assert_eq!(kept.everything_for(b"8 "), None);

        let mut unacknowledged = Unacknowledged::new(42, Duration::from_secs(1));
        for counter in 0..6 {
            unacknowledged.keep(counter, b"result");
        }
        unacknowledged.acknowledge(b"7 0").unwrap_err();
        unacknowledged
            .acknowledge(acknowledgements[1].as_bytes())
            .unwrap();
        assert_eq!(
            unacknowledged.results.keys().copied().collect::<Vec<_>>(),
            [3, 5]
        );
    }
}
