//! The saver's side of acknowledged results (`--ack-port`; the protocol is
//! in `vsq::ack`): an XPUB socket on which it tells each unit which of its
//! counters it holds, once they are kept. A tutorial reader may skip it.
//!
//! Bounded under any peer: only a unit's topic (`"42 "`, units 1 to 9999)
//! is a subscription; the saver remembers at most [`MAX_RANGES`] ranges of
//! counters a unit (the oldest go first: a late computer may then send
//! those again, and is acknowledged again); every acknowledgement and
//! welcome goes in pieces of at most [`ack::PIECE_BYTES`]; a unit is
//! welcomed at most once a second.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use examples_common::{Guard, cannot_bind, console, frames};
use vsq::ack;

/// The most ranges of counters held for one unit.
pub const MAX_RANGES: usize = 256;

/// A computer's unit: 1 to 9999.
const UNITS: std::ops::RangeInclusive<i64> = 1..=9999;

/// How often a unit may be welcomed (told all that is held for it).
const WELCOME_EVERY: Duration = Duration::from_secs(1);

/// The longest subscription: the byte 1, then `"9999 "`. Longer ones make
/// libzmq drop their peer before the saver sees them.
const SUBSCRIPTION_BYTES: i64 = 64;

/// Binds the PUB socket computers subscribe to for their unit's
/// acknowledgements: an XPUB, which also hands the saver each subscription,
/// to apply (a unit's topic) or refuse (anything else).
pub fn bind(
    context: &zmq::Context,
    guard: &Guard,
    address: &str,
    port: u16,
) -> Result<zmq::Socket> {
    let mut ack_sender = context.socket(zmq::XPUB).context("cannot create a socket")?;
    examples_common::set_up_server(&ack_sender, guard)?;
    ack_sender.set_maxmsgsize(SUBSCRIPTION_BYTES)?;
    set_xpub_manual(&mut ack_sender).context("cannot set up the acknowledgements' socket")?;
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

/// ZMQ_XPUB_MANUAL: the XPUB applies no subscription by itself; the saver
/// applies those it accepts (`set_subscribe` after reading one).
#[allow(unsafe_code)]
fn set_xpub_manual(socket: &mut zmq::Socket) -> zmq::Result<()> {
    let on: std::ffi::c_int = 1;
    // SAFETY: `as_mut_ptr` is the live socket this function borrows; the
    // option takes an int, passed by address with its size, read only
    // during the call.
    let done = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_MANUAL as std::ffi::c_int,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of_val(&on),
        )
    };
    match done {
        0 => Ok(()),
        _ => Err(zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })),
    }
}

/// The counters kept, by unit: all of them, as ranges, and those not yet
/// acknowledged.
#[derive(Debug, Default)]
pub struct Kept {
    /// Each unit's ranges, by their first counter.
    held: HashMap<i64, BTreeMap<i64, i64>>,
    fresh: BTreeMap<i64, Vec<i64>>,
    /// When each unit was last welcomed, and the units owed a welcome
    /// that came too soon after the last.
    welcomed: HashMap<i64, Instant>,
    owed: BTreeSet<i64>,
}

impl Kept {
    /// Keeps a result, to be acknowledged (again, if it was sent again);
    /// false if it was kept already.
    pub fn add(&mut self, unit: i64, counter: i64) -> bool {
        // No computer has a unit out of range, nor counts below 0; the
        // ranges cannot go past i64::MAX. Kept, never acknowledged.
        if !UNITS.contains(&unit) || !(0..i64::MAX).contains(&counter) {
            return true;
        }
        self.fresh.entry(unit).or_default().push(counter);
        hold(self.held.entry(unit).or_default(), counter)
    }

    /// Tells each unit, on `ack_sender`, what was kept since the last
    /// call, and welcomes the units owed a welcome whose time has come.
    pub fn acknowledge(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        for (unit, mut counters) in std::mem::take(&mut self.fresh) {
            counters.sort_unstable();
            for piece in ack::pieces(unit, ack::ranges_of(&counters)) {
                send(ack_sender, &piece)?;
            }
        }
        for unit in std::mem::take(&mut self.owed) {
            self.welcome_unit(ack_sender, unit)?;
        }
        Ok(())
    }

    /// True while a unit is owed a welcome: the saver has to look again soon.
    pub fn owes_a_welcome(&self) -> bool {
        !self.owed.is_empty()
    }

    /// Reads the subscriptions waiting on `ack_sender`: applies a unit's
    /// (and tells its computer everything held for its unit, which it may
    /// have missed: the slow joiner), refuses any other.
    pub fn welcome(&mut self, ack_sender: &zmq::Socket) -> Result<()> {
        loop {
            let first = match ack_sender.recv_msg(zmq::DONTWAIT) {
                Ok(first) => first,
                Err(zmq::Error::EAGAIN) => return Ok(()),
                Err(error) => return Err(error).context("cannot read a subscription"),
            };
            let subscription = frames(ack_sender, first)?;
            let Some((&verb, topic)) = subscription.first.split_first() else {
                continue;
            };
            let Some(unit) = unit_of(topic) else {
                let problem = "subscription not a unit's topic \"<unit> \"";
                console::reject(problem, topic);
                continue;
            };
            if verb == 0 {
                ack_sender.set_unsubscribe(topic)?;
                continue;
            }
            ack_sender.set_subscribe(topic)?;
            self.welcome_unit(ack_sender, unit)?;
        }
    }

    /// Tells a unit everything held for it, at most once a second: a
    /// welcome asked for sooner is owed, and paid by [`Kept::acknowledge`].
    fn welcome_unit(&mut self, ack_sender: &zmq::Socket, unit: i64) -> Result<()> {
        let welcomed = self.welcomed.get(&unit);
        if welcomed.is_some_and(|at| at.elapsed() < WELCOME_EVERY) {
            self.owed.insert(unit);
            return Ok(());
        }
        self.welcomed.insert(unit, Instant::now());
        if let Some(ranges) = self.held.get(&unit) {
            let ranges = ranges.iter().map(|(&first, &last)| (first, last));
            for piece in ack::pieces(unit, ranges) {
                send(ack_sender, &piece)?;
            }
        }
        Ok(())
    }
}

fn send(ack_sender: &zmq::Socket, acknowledgement: &str) -> Result<()> {
    ack_sender.send(acknowledgement, 0).context("cannot send an acknowledgement")
}

/// The unit a subscription names: `"42 "`, a unit from 1 to 9999.
fn unit_of(topic: &[u8]) -> Option<i64> {
    let digits = topic.strip_suffix(b" ")?;
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let unit: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    // "042 " is no computer's topic: it writes "42 ".
    (UNITS.contains(&unit) && ack::topic(unit).as_bytes() == topic).then_some(unit)
}

/// Adds a counter to disjoint ranges (by first counter), merging
/// neighbours, in O(log n); false if they held it already. Past
/// [`MAX_RANGES`], the lowest range is forgotten.
fn hold(ranges: &mut BTreeMap<i64, i64>, counter: i64) -> bool {
    let before = ranges.range(..=counter).next_back().map(|(&first, &last)| (first, last));
    if before.is_some_and(|(_, last)| last >= counter) {
        return false;
    }
    let joins_before = before.filter(|&(_, last)| last + 1 == counter);
    let after = ranges.remove(&(counter + 1));
    match (joins_before, after) {
        (Some((first, _)), after) => ranges.insert(first, after.unwrap_or(counter)),
        (None, after) => ranges.insert(counter, after.unwrap_or(counter)),
    };
    if ranges.len() > MAX_RANGES {
        ranges.pop_first();
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn held(kept: &Kept, unit: i64) -> Vec<(i64, i64)> {
        kept.held[&unit].iter().map(|(&first, &last)| (first, last)).collect()
    }

    #[test]
    fn kept_counters_are_held_as_ranges_and_known_again() {
        let mut kept = Kept::default();
        for counter in [0, 1, 2, 4] {
            assert!(kept.add(42, counter));
        }
        kept.add(7, 0);
        kept.add(42, 3);
        assert_eq!(held(&kept, 42), [(0, 4)]);
        kept.add(42, 9);
        kept.add(42, 7);
        assert_eq!(held(&kept, 42), [(0, 4), (7, 7), (9, 9)]);
        kept.add(42, 8);
        assert_eq!(held(&kept, 42), [(0, 4), (7, 9)]);
        // Kept already, so sent again; and new.
        assert!(!kept.add(42, 0) && !kept.add(42, 3) && !kept.add(42, 9));
        assert!(kept.add(42, 5) && kept.add(42, 10) && kept.add(7, 1));
        // No unit of a computer: kept, never held.
        assert!(kept.add(0, 1) && kept.add(10_000, 1) && kept.add(0, 1));
        assert!(!kept.held.contains_key(&0));
    }

    #[test]
    fn a_unit_holds_a_bounded_number_of_ranges_the_highest() {
        let mut kept = Kept::default();
        // Isolated, and falling: each its own range.
        for counter in (0..10_000).rev() {
            kept.add(5, 2 * counter);
        }
        let ranges = held(&kept, 5);
        assert_eq!(ranges.len(), MAX_RANGES);
        assert_eq!(ranges.last(), Some(&(19_998, 19_998)));
    }

    #[test]
    fn only_a_units_topic_is_a_subscription() {
        assert_eq!(unit_of(b"42 "), Some(42));
        assert_eq!(unit_of(b"9999 "), Some(9999));
        for bad in [
            &b""[..],
            b"42",
            b"0 ",
            b"10000 ",
            b"042 ",
            b"-1 ",
            b"4 2 ",
            b"x ",
        ] {
            assert_eq!(unit_of(bad), None, "{bad:?}");
        }
    }
}
