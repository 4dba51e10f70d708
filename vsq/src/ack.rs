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

/// The most bytes of one acknowledgement: far below any receiver's limit
/// (`--max-message-size`, 64 KiB by default). What says more goes in
/// pieces, each `"<unit> "` and some of the ranges.
pub const PIECE_BYTES: usize = 1024;

/// Sorted counters as inclusive ranges: `[0, 1, 2, 5]` is `(0, 2), (5, 5)`.
pub fn ranges_of(counters: &[i64]) -> Vec<(i64, i64)> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &counter in counters {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == counter => *last = counter,
            Some((_, last)) if *last == counter => {}
            _ => ranges.push((counter, counter)),
        }
    }
    ranges
}

/// A unit's acknowledgement of `ranges`, in pieces of at most
/// [`PIECE_BYTES`]: `"42 0-99,101"`.
pub fn pieces(unit: i64, ranges: impl IntoIterator<Item = (i64, i64)>) -> Vec<String> {
    let topic = topic(unit);
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for (first, last) in ranges {
        let range = match first == last {
            true => first.to_string(),
            false => format!("{first}-{last}"),
        };
        if !piece.is_empty() && piece.len() + 1 + range.len() > PIECE_BYTES {
            pieces.push(std::mem::take(&mut piece));
        }
        if piece.is_empty() {
            piece.push_str(&topic);
        } else {
            piece.push(',');
        }
        piece.push_str(&range);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
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
    fn counters_travel_as_ranges_in_pieces() {
        let ranges = ranges_of(&[0, 1, 2, 5, 7, 8, 8]);
        assert_eq!(ranges, [(0, 2), (5, 5), (7, 8)]);
        assert_eq!(pieces(42, ranges), ["42 0-2,5,7-8"]);
        // Many isolated counters: every piece fits, and says all of them.
        let counters: Vec<i64> = (0..10_000).map(|n| 10_000_000 + 2 * n).collect();
        let pieces = pieces(3, ranges_of(&counters));
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|piece| piece.len() <= PIECE_BYTES && piece.starts_with("3 ")));
        let said: Vec<(i64, i64)> = pieces
            .iter()
            .flat_map(|piece| parse_ranges(piece.strip_prefix("3 ").unwrap()).unwrap())
            .collect();
        assert_eq!(said, ranges_of(&counters));
        assert_eq!(parse_ranges("0-2,5,7-8").unwrap(), [(0, 2), (5, 5), (7, 8)]);
        assert_eq!(parse_ranges("x"), None);
        // Counters start at 0, and a range goes up: anything else is no
        // acknowledgement a saver sends.
        assert_eq!(parse_ranges("5--9223372036854775808"), None);
        assert_eq!(parse_ranges("-9223372036854775808-5"), None);
        assert_eq!(parse_ranges("5-2"), None);
    }
}
