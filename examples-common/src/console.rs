//! Output. Stdout carries the example's own lines and nothing else; it is
//! buffered, and flushed whenever the program is about to wait, so a quiet
//! program shows each line at once while a burst goes out in blocks (one
//! `println!` per message would lock and write once per line). Rejections
//! and summaries go to stderr.
//!
//! The tour, which shows the lines of several programs in one terminal,
//! sets [`STAMP_LINES`]; a tutorial reader may skip that part.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufWriter, Stdout, Write};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// How much of a payload a rejection shows.
const SHOWN_BYTES: usize = 200;

static STDOUT: LazyLock<Mutex<BufWriter<Stdout>>> =
    LazyLock::new(|| Mutex::new(BufWriter::new(std::io::stdout())));

fn stdout() -> MutexGuard<'static, BufWriter<Stdout>> {
    // A thread that panicked while printing leaves a usable buffer behind.
    STDOUT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Prints one line on stdout, like `println!`, into the shared buffer.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::console::say(format_args!($($arg)*)) };
}

/// Prints one line on stderr, like `eprintln!`, after what `say!` buffered,
/// so that the two streams stay in order on a terminal.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => { $crate::console::note(format_args!($($arg)*)) };
}

#[doc(hidden)]
pub fn note(line: fmt::Arguments<'_>) {
    flush();
    if *STAMPED {
        let _ = write_stamped(&mut std::io::stderr().lock(), line);
        return;
    }
    eprintln!("{line}");
}

#[doc(hidden)]
pub fn say(line: fmt::Arguments<'_>) {
    // A closed stdout (`| head`) must not stop a server: its lines are dropped.
    if *STAMPED {
        let _ = write_stamped(&mut *stdout(), line);
        return;
    }
    let _ = writeln!(stdout(), "{line}");
}

/// When this environment variable is set, every line starts with the
/// moment it was printed, in nanoseconds since the Unix epoch, and is
/// written at once. The tour reads each program through pipes of its own,
/// and sorts what it reads by these stamps so that a line that caused
/// another program's line is shown before it.
pub const STAMP_LINES: &str = "EXAMPLES_STAMP_LINES";

static STAMPED: LazyLock<bool> = LazyLock::new(|| std::env::var_os(STAMP_LINES).is_some());

fn write_stamped(out: &mut impl Write, line: fmt::Arguments<'_>) -> std::io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    for part in line.to_string().split('\n') {
        writeln!(out, "{now} {part}")?;
    }
    out.flush()
}

/// Writes out what `say!` buffered; called before every wait.
pub fn flush() {
    let _ = stdout().flush();
}

/// Reports a message that was received but cannot be used, on one stderr line.
pub fn reject(problem: impl fmt::Display, payload: &[u8]) {
    note(format_args!("rejected: {problem}: {}", shown(payload)));
}

/// A payload made fit for one line of a terminal: printable UTF-8 as it is,
/// anything else escaped (`\n`, `\xff`), cut after 200 bytes.
pub fn shown(payload: &[u8]) -> Cow<'_, str> {
    one_line(payload, SHOWN_BYTES)
}

/// A payload on one line, as [`shown`] makes it, but whole: stdout is data.
pub fn whole(payload: &[u8]) -> Cow<'_, str> {
    one_line(payload, usize::MAX)
}

fn one_line(payload: &[u8], limit: usize) -> Cow<'_, str> {
    let head = &payload[..payload.len().min(limit)];
    // Most payloads are printable ASCII: show them as they are, uncopied.
    let printable = |byte: &u8| *byte == b' ' || byte.is_ascii_graphic();
    if payload.len() <= limit && payload.iter().all(printable) {
        if let Ok(text) = std::str::from_utf8(payload) {
            return Cow::Borrowed(text);
        }
    }
    let mut text = String::with_capacity(head.len());
    for chunk in head.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut utf8 = [0; 4];
                let bytes = c.encode_utf8(&mut utf8).as_bytes();
                text.extend(bytes.escape_ascii().map(char::from));
            } else {
                text.push(c);
            }
        }
        text.extend(chunk.invalid().escape_ascii().map(char::from));
    }
    if payload.len() > head.len() {
        text.push_str(&format!("... ({} bytes)", payload.len()));
    }
    Cow::Owned(text)
}

/// A count and its noun, singular or plural:
/// `count(1, ["reply", "replies"])` is `1 reply`.
pub fn count(count: u64, [one, many]: [&str; 2]) -> String {
    match count {
        1 => format!("1 {one}"),
        _ => format!("{count} {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{shown, whole};

    #[test]
    fn printable_text_is_shown_as_it_is() {
        assert_eq!(shown("10001 -5 °C".as_bytes()), "10001 -5 °C");
    }

    #[test]
    fn control_and_invalid_bytes_are_escaped_on_one_line() {
        assert_eq!(shown(b"a\nb\xff\x00"), "a\\nb\\xff\\x00");
    }

    #[test]
    fn whole_payloads_are_escaped_and_never_cut() {
        let long = format!("{}\n", "x".repeat(1000));
        assert_eq!(whole(long.as_bytes()), format!("{}\\n", "x".repeat(1000)));
    }

    #[test]
    fn long_payloads_are_cut_after_200_bytes() {
        let text = shown(&[b'x'; 1000]);
        assert_eq!(text, format!("{}... (1000 bytes)", "x".repeat(200)));
    }
}
