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
//! The saver's side is in `src/bin/saver/acks.rs`, the computer's in
//! `src/bin/computer/acks.rs`; this module is the protocol they share.
//!
//! Why this closes the gap: a result leaves the computer's memory only
//! when the saver said it holds it, so a saver killed at any instant, or a
//! link that drops what it carried, only delays results. Without the flag
//! on either side, results travel as in the original, unacknowledged.

/// How many acknowledgements may wait for one computer, in the saver's
/// PUB socket and in the computer's SUB socket.
pub const HWM: i32 = 100_000;

/// The topic of one unit's acknowledgements: `"42 "`.
pub fn topic(unit: i64) -> String {
    format!("{unit} ")
}

/// Sorted counters as ranges: `[0, 1, 2, 5]` is `0-2,5`.
pub fn ranges(counters: &[i64]) -> String {
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
pub fn parse_ranges(text: &str) -> Option<Vec<(i64, i64)>> {
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
}
