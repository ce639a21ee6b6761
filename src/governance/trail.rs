//! Reading a recorded audit trail: the JSON Lines files [`JsonLinesSink`] writes, v1 and
//! v2 events alike, one at a time (memory does not grow with the trail), and the time
//! window a replay or review looks at.
//!
//! [`JsonLinesSink`]: crate::audit::JsonLinesSink

use std::fs::File;
use std::io::{BufRead, BufReader};
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

/// Reads events off a JSON Lines trail, one at a time, counting lines that are not events.
pub struct TrailReader<R> {
    reader: R,
    line: String,
    unreadable: u64,
}

impl<R: BufRead> TrailReader<R> {
    /// Reads `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            line: String::with_capacity(2048),
            unreadable: 0,
        }
    }

    /// The next event, `None` at the end. Blank lines are skipped; lines that are not
    /// audit events (or not UTF-8) are counted in [`unreadable`](Self::unreadable).
    ///
    /// # Errors
    /// [`TrailError::Read`] when the reader fails.
    pub fn next_event(&mut self) -> Result<Option<AuditEvent>, TrailError> {
        loop {
            self.line.clear();
            match self.reader.read_line(&mut self.line) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.unreadable += 1;
                    self.skip_rest_of_line()?;
                    continue;
                }
                Err(e) => return Err(TrailError::Read(e)),
            }
            let text = self.line.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<AuditEvent>(text) {
                Ok(event) => return Ok(Some(event)),
                Err(_) => self.unreadable += 1,
            }
        }
    }

    /// Lines read so far that were not audit events.
    pub fn unreadable(&self) -> u64 {
        self.unreadable
    }

    fn skip_rest_of_line(&mut self) -> Result<(), TrailError> {
        let mut bytes = Vec::new();
        self.reader
            .read_until(b'\n', &mut bytes)
            .map_err(TrailError::Read)?;
        Ok(())
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
