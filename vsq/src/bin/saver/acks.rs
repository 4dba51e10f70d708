//! The saver's side of acknowledged results (`--ack-port`; the protocol is
//! in `vsq::ack`): an XPUB socket on which it tells each unit which of its
//! counters it holds, once they are kept. A tutorial reader may skip it.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use examples_common::{Guard, cannot_bind, cli, frames};
use vsq::ack;

/// Binds the PUB socket computers subscribe to for their unit's
/// acknowledgements: an XPUB, which also says who subscribes.
pub fn bind(
    context: &zmq::Context,
    guard: &Guard,
    address: &str,
    port: u16,
    limit: &cli::ReceiveLimit,
) -> Result<zmq::Socket> {
    let ack_sender = context.socket(zmq::XPUB).context("cannot create a socket")?;
    examples_common::set_up_server(&ack_sender, guard)?;
    ack_sender.set_maxmsgsize(limit.max_message_size)?;
    ack_sender.set_xpub_verbose(true)?;
    // The last acknowledgements go out at exit, if a computer is there to
    // take them within a second.
    ack_sender.set_linger(1000)?;
    // Trap: a PUB socket drops what a slow subscriber has no room for.
    // Acknowledgements are small: give them room (a lost one costs a
    // resend, after --ack-timeout).
    ack_sender.set_sndhwm(ack::HWM)?;
    let endpoint = examples_common::tcp(address, port);
    ack_sender.bind(&endpoint).map_err(cannot_bind(&endpoint))?;
    Ok(ack_sender)
}

impl Kept {
    /// Tells each unit, on `ack_sender`, what was kept since the last call.
    pub fn acknowledge(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        for acknowledgement in self.take_acknowledgements() {
            ack_sender
                .send(acknowledgement.as_bytes(), 0)
                .context("cannot send an acknowledgement")?;
        }
        Ok(())
    }

    /// A computer subscribed to `ack_sender` (the byte 1, then its topic):
    /// tell it everything held for its unit, which it may have missed (the
    /// slow joiner).
    pub fn welcome(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        loop {
            let first = match ack_sender.recv_msg(zmq::DONTWAIT) {
                Ok(first) => first,
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(error) => return Err(error).context("cannot read a subscription"),
            };
            let subscription = frames(ack_sender, first)?;
            let Some(topic) = subscription.first.strip_prefix(b"\x01") else {
                continue;
            };
            if let Some(everything) = self.everything_for(topic) {
                ack_sender
                    .send(everything.as_bytes(), 0)
                    .context("cannot send an acknowledgement")?;
            }
        }
    }
}

/// The counters kept, by unit: all of them, as ranges, and those not yet
/// acknowledged.
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
    fn take_acknowledgements(&mut self) -> Vec<String> {
        std::mem::take(&mut self.fresh)
            .into_iter()
            .map(|(unit, mut counters)| {
                counters.sort_unstable();
                counters.dedup();
                format!("{}{}", ack::topic(unit), ack::ranges(&counters))
            })
            .collect()
    }

    /// Everything held for the unit a subscription names (`"42 "`): what a
    /// computer that subscribes late (the slow joiner) missed.
    fn everything_for(&self, subscription: &[u8]) -> Option<String> {
        let unit: i64 = std::str::from_utf8(subscription).ok()?.strip_suffix(' ')?.parse().ok()?;
        let ranges = self.held.get(&unit)?;
        let counters = ranges
            .iter()
            .map(|&(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}-{last}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        Some(format!("{}{counters}", ack::topic(unit)))
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
    if ranges.get(at + 1).is_some_and(|&(first, _)| first == counter + 1) {
        ranges[at].1 = ranges[at + 1].1;
        ranges.remove(at + 1);
    }
    if at > 0 && ranges[at - 1].1 + 1 == counter {
        ranges[at - 1].1 = ranges[at].1;
        ranges.remove(at);
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn kept_counters_are_acknowledged_once_and_held_as_ranges() {
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
    }
}
