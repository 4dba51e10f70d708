//! Flags that several programs share. Durations are written `1s`, `250ms`,
//! `0s` and parsed by `humantime`.

use std::time::Duration;

/// The longest duration a flag takes: past any use, and still safe to add
/// to a reading of the clock (a deadline).
const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Parses a duration flag such as `1s`, `250ms` or `0s`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if duration > LONGEST {
        return Err("longer than 100 years, the most a duration flag takes".to_owned());
    }
    Ok(duration)
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

/// The `--allow` flag of every program that binds (see `guard`).
#[derive(Debug, Clone, clap::Args)]
pub struct Allow {
    /// Accept connections only from this network, ADDR/PREFIX or ADDR
    /// (10.0.0.0/8, 192.0.2.7; repeat for more; default: from anyone)
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = network)]
    pub allow: Vec<ipnet::IpNet>,
}

/// Parses a network, `10.0.0.0/8`, or one address, `192.0.2.7` (a /32).
fn network(text: &str) -> Result<ipnet::IpNet, String> {
    match text.parse::<std::net::IpAddr>() {
        Ok(address) => Ok(address.into()),
        Err(_) => text
            .parse()
            .map_err(|_| "not an address, nor an address/prefix (10.0.0.0/8)".to_owned()),
    }
}
