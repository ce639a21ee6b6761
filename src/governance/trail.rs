//! Reading a recorded audit trail: the JSON Lines files [`JsonLinesSink`] writes, v1 and
//! v2 events alike, one at a time (memory does not grow with the trail), and the time
//! window a replay or review looks at.
//!
//! [`JsonLinesSink`]: crate::audit::JsonLinesSink

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::audit::{AuditEvent, parse_rfc3339_millis};

/// Why a trail could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrailError {
    /// The file could not be opened.
    #[error("cannot open the audit trail {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed part way.
    #[error("cannot read the audit trail")]
    Read(#[source] std::io::Error),
    /// A duration such as `--since` was not `<n>s`, `<n>m`, `<n>h` or `<n>d`.
    #[error("`{found}` is not a duration such as 30d, 12h, 90m or 45s")]
    Duration {
        /// The text given (at most 32 bytes of it).
        found: String,
    },
}

/// Opens a trail file for reading.
///
/// # Errors
/// [`TrailError::Open`].
pub fn open(path: &Path) -> Result<BufReader<File>, TrailError> {
    let file = File::open(path).map_err(|source| TrailError::Open {
        path: path.to_owned(),
        source,
    })?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// The longest line read as an event: longer ones (no audit event comes near) are
/// skipped and counted as unreadable, so a stray file cannot make a reader hold it whole.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// Reads events off a JSON Lines trail, one at a time, counting lines that are not events.
pub struct TrailReader<R> {
    reader: R,
    line: Vec<u8>,
    unreadable: u64,
}

impl<R: BufRead> TrailReader<R> {
    /// Reads `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: Vec::with_capacity(2048),
            unreadable: 0,
        }
    }

    /// The next event, `None` at the end. Blank lines are skipped; lines that are not
    /// audit events (not JSON, not UTF-8, or longer than [`MAX_LINE_BYTES`]) are counted
    /// in [`unreadable`](Self::unreadable).
    ///
    /// # Errors
    /// [`TrailError::Read`] when the reader fails.
    pub fn next_event(&mut self) -> Result<Option<AuditEvent>, TrailError> {
        loop {
            self.line.clear();
            let read = (&mut self.reader)
                .take(MAX_LINE_BYTES)
                .read_until(b'\n', &mut self.line)
                .map_err(TrailError::Read)?;
            if read == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') && read as u64 == MAX_LINE_BYTES {
                self.unreadable += 1;
                self.skip_rest_of_line()?;
                continue;
            }
            let text = self.line.trim_ascii();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<AuditEvent>(text) {
                Ok(event) => return Ok(Some(event)),
                Err(_) => self.unreadable += 1,
            }
        }
    }

    /// Lines read so far that were not audit events.
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }

    /// Discards the rest of an over-long line, a bounded piece at a time.
    fn skip_rest_of_line(&mut self) -> Result<(), TrailError> {
        loop {
            let buf = self.reader.fill_buf().map_err(TrailError::Read)?;
            if buf.is_empty() {
                return Ok(());
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.reader.consume(i + 1);
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    self.reader.consume(n);
                }
            }
        }
    }
}

impl<R> std::fmt::Debug for TrailReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrailReader")
            .field("unreadable", &self.unreadable)
            .finish_non_exhaustive()
    }
}

/// The part of a trail a replay or review reads: events at or after `since` and before
/// `until` (either open).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrailWindow {
    /// The first instant included.
    pub since: Option<SystemTime>,
    /// The first instant excluded.
    pub until: Option<SystemTime>,
}

impl TrailWindow {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Events of the last `age` before `now`.
    pub fn last(age: Duration, now: SystemTime) -> Self {
        Self {
            since: now.checked_sub(age),
            until: None,
        }
    }

    /// Events at or after `since`.
    pub fn since(since: SystemTime) -> Self {
        Self {
            since: Some(since),
            until: None,
        }
    }

    /// Whether `event` falls inside; an event whose time cannot be read falls outside
    /// any bounded window.
    pub fn contains(&self, event: &AuditEvent) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(time) = parse_rfc3339_millis(&event.time) else {
            return false;
        };
        self.since.is_none_or(|s| time >= s) && self.until.is_none_or(|u| time < u)
    }
}

/// Parses a look-back such as `30d`, `12h`, `90m` or `45s` (up to 100 years).
///
/// # Errors
/// [`TrailError::Duration`].
pub fn parse_lookback(text: &str) -> Result<Duration, TrailError> {
    let bad = || TrailError::Duration {
        found: text.chars().take(32).collect(),
    };
    let unit = match text.as_bytes().last() {
        Some(b's') => 1,
        Some(b'm') => 60,
        Some(b'h') => 3600,
        Some(b'd') => 86_400,
        _ => return Err(bad()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let secs = digits.parse::<u64>().map_err(|_| bad())? * unit;
    if secs == 0 || secs > 100 * 365 * 86_400 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// Parses an RFC 3339 UTC time (`2026-11-01T00:00:00Z`), as trail events write it.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    parse_rfc3339_millis(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_long_and_non_utf8_lines_are_counted_and_skipped() {
        let event = r#"{"schema_version":1,"time":"2026-11-02T10:00:00.000Z","outcome":"deny","reason":"x","action":"a","resource":"r"}"#;
        let long = "x".repeat(MAX_LINE_BYTES as usize + 10);
        let mut text = Vec::new();
        for line in [
            event.as_bytes(),
            b"",
            b"not json",
            long.as_bytes(),
            &[0xff, 0xfe][..],
            event.as_bytes(),
        ] {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        text.extend_from_slice(event.as_bytes()); // the last line without a newline
        let mut reader = TrailReader::new(std::io::Cursor::new(text));
        let mut events = 0;
        while let Some(e) = reader.next_event().unwrap() {
            assert_eq!(e.action, "a");
            events += 1;
        }
        assert_eq!((events, reader.unreadable()), (3, 3));
    }

    #[test]
    fn windows_and_lookbacks() {
        assert_eq!(
            parse_lookback("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_lookback("90m").unwrap(), Duration::from_secs(5400));
        for bad in [
            "",
            "d",
            "0d",
            "30",
            "3 d",
            "-1d",
            "1w",
            "9999999999d",
            "３d",
        ] {
            assert!(parse_lookback(bad).is_err(), "{bad}");
        }
        let at = |s: &str| {
            AuditEvent::new(crate::AuditOutcome::Deny, "a", "r").with_time(parse_time(s).unwrap())
        };
        let window = TrailWindow::since(parse_time("2026-11-01T00:00:00Z").unwrap());
        assert!(window.contains(&at("2026-11-01T00:00:00.000Z")));
        assert!(!window.contains(&at("2026-10-31T23:59:59.999Z")));
        let mut broken = at("2026-11-02T00:00:00Z");
        broken.time = "yesterday".into();
        assert!(
            !window.contains(&broken),
            "an unreadable time is outside a bounded window"
        );
        assert!(TrailWindow::all().contains(&broken));
    }
}
