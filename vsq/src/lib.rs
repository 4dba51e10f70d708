//! What `command`, `computer` and `saver` say to each other: the topic, and
//! the JSON messages, read and written with serde.

pub mod ack;

/// The saver's table in the `--store` database, and how a result is stored
/// (the store fills in `received_at`): for the saver, and for the bench's
/// floor, SQLite alone doing the same.
pub mod schema {
    /// The results table.
    pub const RESULTS: &str = "CREATE TABLE IF NOT EXISTS results (
    id          INTEGER PRIMARY KEY,
    unit        INTEGER NOT NULL,
    counter     INTEGER NOT NULL,
    x           REAL NOT NULL,
    y           REAL NOT NULL,
    received_at TEXT NOT NULL
)";

    /// With --ack-port: one row per (unit, counter). Only then are results
    /// sent twice, and only then is the index worth what it costs (see the
    /// Performance section in tests/README.md).
    pub const ONCE: &str =
        "CREATE UNIQUE INDEX IF NOT EXISTS results_unit_counter ON results (unit, counter)";

    /// How each result is stored. With --ack-port on a store written
    /// before it kept results by unit and counter, a result sent again (see
    /// `ack`) is stored once, by the unique index above.
    pub const INSERT: &str = "INSERT INTO results (unit, counter, x, y, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

    /// The `user_version` of a store keyed by unit and counter: made with
    /// --ack-port, its `id` is the pair, packed ([`key`]), so that each
    /// result is stored once at the cost of one b-tree, not two.
    pub const KEYED: i64 = 1;

    /// How each result is stored in a keyed store.
    pub const INSERT_KEYED: &str = "INSERT INTO results (id, unit, counter, x, y, received_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";

    /// How a result no computer sends ([`key`] has none for it) is stored
    /// in a keyed store: under a negative `id`, below every other, where no
    /// key can be; [`UNKEYED_ONCE`] keeps each of these pairs once too.
    pub const INSERT_UNKEYED: &str = "INSERT INTO results (id, unit, counter, x, y, received_at)
    VALUES ((SELECT min(0, ifnull(min(id), 0)) - 1 FROM results), ?1, ?2, ?3, ?4, ?5)
    ON CONFLICT DO NOTHING";

    /// Each pair of the results under a negative `id` once: an index of
    /// them alone, which costs the others nothing.
    pub const UNKEYED_ONCE: &str =
        "CREATE UNIQUE INDEX IF NOT EXISTS results_unkeyed ON results (unit, counter) WHERE id < 0";

    /// The `id` of a result in a keyed store: its unit, then its counter,
    /// in 64 bits. None for a result no computer sends (a unit out of 1 to
    /// 9999, a counter out of 0 to 2^48 - 1).
    pub fn key(unit: i64, counter: i64) -> Option<i64> {
        ((1..=9999).contains(&unit) && (0..1 << 48).contains(&counter))
            .then_some(unit << 48 | counter)
    }
}

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The topic `command` publishes on and computers subscribe to.
pub const TOPIC: &str = "politiche2013";

/// A computer's answer to a command: `{"unit": 42, "status": "configured"}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub unit: i64,
    #[serde(default)]
    pub status: String,
}

/// One result of a computer's work, sent to the saver:
/// `{"unit": 42, "counter": 0, "x": 0.12, "y": -1.5}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Computation {
    pub unit: i64,
    pub counter: i64,
    pub x: f64,
    pub y: f64,
}

/// Reads a JSON object into `T`, or says what is wrong with the message
/// (extra keys are allowed).
pub fn parse_object<T: DeserializeOwned>(message: &[u8]) -> Result<T, String> {
    // serde would also read a struct from a JSON array; only objects will do.
    if !message.trim_ascii_start().starts_with(b"{") {
        return Err("not a JSON object".to_owned());
    }
    // JSON is text: serde would skip invalid bytes in a key it ignores.
    let text = std::str::from_utf8(message).map_err(|_| "not UTF-8 text".to_owned())?;
    serde_json::from_str(text).map_err(|error| {
        // Without "at line 1 column 311": rejections of one kind read alike.
        let error = error.to_string();
        let reason = error.rsplit_once(" at line ").map_or(&*error, |(reason, _)| reason);
        format!("bad JSON object ({reason})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_computers_result_has_a_key_in_a_keyed_store_and_no_other_has() {
        assert_eq!(schema::key(1, 0), Some(1 << 48));
        assert_eq!(
            schema::key(9999, (1 << 48) - 1),
            Some((9999 << 48) + (1 << 48) - 1)
        );
        // Keys of neighbouring pairs are neighbours, and never meet.
        assert!(schema::key(42, (1 << 48) - 1) < schema::key(43, 0));
        for (unit, counter) in [(0, 0), (10_000, 0), (1, -1), (1, 1 << 48), (-5, 7)] {
            assert_eq!(schema::key(unit, counter), None, "{unit} {counter}");
        }
    }

    #[test]
    fn results_need_integer_unit_and_counter_and_numeric_x_y() {
        let ok: Computation =
            parse_object(br#"{"unit": 3, "counter": 0, "x": 1, "y": -0.5, "extra": true}"#)
                .unwrap();
        assert_eq!((ok.unit, ok.counter, ok.x, ok.y), (3, 0, 1.0, -0.5));
        assert!(
            parse_object::<Computation>(br#"{"unit": 3.5, "counter": 0, "x": 1, "y": 2}"#).is_err()
        );
        assert!(parse_object::<Computation>(br#"{"unit": 3, "x": 1, "y": 2}"#).is_err());
        assert!(parse_object::<Computation>(br#"[3, 0, 1, 2]"#).is_err());
        assert!(parse_object::<Computation>(b"\xff").is_err());
    }
}
