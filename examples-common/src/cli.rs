//! Flags that several programs share. Durations are written `1s`, `250ms`,
//! `0s` and parsed by `humantime`.

use std::time::Duration;

/// Parses a duration flag such as `1s`, `250ms` or `0s`.
pub fn duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// Writes a duration back the way a user types it (`1s`, `250ms`).
pub fn show_duration(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(duration)
}

/// Parses a TCP port: 1 to 65535.
pub fn port() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..)
}

/// Parses a count that must be at least 1 (`--count`, `--requests`, ...).
pub fn count() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

/// The `--max-message-size` flag of every program that receives.
#[derive(Debug, Clone, clap::Args)]
pub struct ReceiveLimit {
    /// Largest message accepted, in bytes; a peer that sends a larger one is disconnected
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub max_message_size: i64,
}
