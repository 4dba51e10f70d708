//! What `command`, `computer` and `saver` say to each other: the topic, and
//! the JSON messages, read and written with serde.

pub mod ack;

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
