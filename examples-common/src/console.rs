//! Output. Stdout carries the example's own lines and nothing else; it is
//! buffered, and flushed whenever the program is about to wait, so a quiet
//! program shows each line at once while a stream goes out in blocks.
//! Rejections and summaries go to stderr.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufWriter, Stdout, Write};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

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
pub fn say(line: fmt::Arguments<'_>) {
    // A closed stdout (`| head`) must not stop a server: its lines are dropped.
    let _ = write_line(&mut *stdout(), line);
}

#[doc(hidden)]
pub fn note(line: fmt::Arguments<'_>) {
    flush();
    let _ = write_line(&mut std::io::stderr().lock(), line);
}

/// When this environment variable is set (the tour sets it), every line
/// starts with the moment it was printed, in nanoseconds since 1970, and is
/// written at once: the tour sorts the lines of several programs by it.
pub const STAMP_LINES: &str = "EXAMPLES_STAMP_LINES";

fn write_line(out: &mut impl Write, line: fmt::Arguments<'_>) -> std::io::Result<()> {
    static STAMPED: LazyLock<bool> = LazyLock::new(|| std::env::var_os(STAMP_LINES).is_some());
    if !*STAMPED {
        return writeln!(out, "{line}");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    for part in line.to_string().split('\n') {
        writeln!(out, "{} {part}", now.as_nanos())?;
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

/// A payload fit for one line of a terminal: printable UTF-8 as it is,
/// anything else escaped (`\n`, `\xff`), cut after 200 bytes.
pub fn shown(payload: &[u8]) -> Cow<'_, str> {
    one_line(payload, 200)
}

/// A payload on one line, as [`shown`] makes it, but whole: stdout is data.
pub fn whole(payload: &[u8]) -> Cow<'_, str> {
    one_line(payload, usize::MAX)
}

fn one_line(payload: &[u8], limit: usize) -> Cow<'_, str> {
    let head = &payload[..payload.len().min(limit)];
    // Most payloads are printable ASCII: show them as they are, uncopied.
    // (One pass over every byte, without a branch, which the compiler
    // makes a few instructions for many bytes at once.)
    let printable_ascii = payload.iter().fold(true, |printable, &byte| {
        printable & (b' '..0x7f).contains(&byte)
    });
    if printable_ascii && head == payload {
        if let Ok(text) = std::str::from_utf8(payload) {
            return Cow::Borrowed(text);
        }
    }
    // Other printable text too. (A byte 0xc2 may start a control character,
    // U+0080 to U+009F; 0xe2 one of the marks below.)
    let control = |byte: &u8| *byte < b' ' || matches!(*byte, 0x7f | 0xc2 | 0xe2);
    if let (true, Ok(text)) = (head == payload, std::str::from_utf8(payload)) {
        if !text.as_bytes().iter().any(control) {
            return Cow::Borrowed(text);
        }
    }
    let mut text = String::with_capacity(head.len());
    for chunk in head.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c.is_control() || reorders_or_breaks(c) {
                true => text.extend(c.to_string().as_bytes().escape_ascii().map(char::from)),
                false => text.push(c),
            }
        }
        text.extend(chunk.invalid().escape_ascii().map(char::from));
    }
    if head.len() < payload.len() {
        text.push_str(&format!("... ({} bytes)", payload.len()));
    }
    Cow::Owned(text)
}

/// Invisible marks that change how a terminal shows a line: the bidi marks,
/// embeddings, overrides and isolates (text shown in another order than it
/// is), and the line and paragraph separators.
fn reorders_or_breaks(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A count and its noun: `count(1, ["reply", "replies"])` is `1 reply`.
pub fn count(count: u64, [one, many]: [&str; 2]) -> String {
    match count {
        1 => format!("1 {one}"),
        _ => format!("{count} {many}"),
    }
}
