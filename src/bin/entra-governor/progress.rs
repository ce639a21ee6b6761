//! Feedback where work is long: a progress bar on standard error while a trail is read,
//! drawn only when standard error is a terminal (nothing when it is piped or redirected,
//! so logs and CI output stay clean), and one summary line at the end, always, on
//! standard error (standard output keeps the report alone, for `--format json`).

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Instant;

use entra_governor::governance::review::render::terminal_safe as safe;
use entra_governor::governance::trail::{self, TrailError};

/// The width of the bar, in cells.
const BAR_CELLS: usize = 30;

/// Opens the trail at `path` for one pass named `pass` ("replaying"), drawing its
/// progress when standard error is a terminal.
///
/// # Errors
/// As [`trail::open`].
pub fn open(path: &Path, pass: &'static str) -> Result<BufReader<Counted>, TrailError> {
    let file = trail::open(path)?.into_inner();
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    let draw = io::stderr().is_terminal() && total > 0;
    Ok(BufReader::with_capacity(
        64 * 1024,
        Counted {
            file,
            pass,
            total,
            read: 0,
            shown: None,
            draw,
        },
    ))
}

/// A trail file that counts what was read from it and redraws the bar at each whole
/// percent.
pub struct Counted {
    file: File,
    pass: &'static str,
    total: u64,
    read: u64,
    shown: Option<u64>,
    draw: bool,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        if self.draw {
            let percent = (self.read.saturating_mul(100) / self.total).min(100);
            if self.shown != Some(percent) {
                self.shown = Some(percent);
                let mut err = io::stderr().lock();
                let _ = write!(err, "\r{}", bar(self.pass, self.read, self.total));
                let _ = err.flush();
            }
        }
        Ok(n)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.draw {
            // Erase the bar: the summary line or the report takes its place.
            let _ = write!(io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

/// `replaying [###########...................]  37%  312.4 of 844.0 MB`.
fn bar(pass: &str, read: u64, total: u64) -> String {
    let total = total.max(1);
    let read = read.min(total);
    let filled = (read as u128 * BAR_CELLS as u128 / total as u128) as usize;
    format!(
        "{pass} [{}{}] {:>3}%  {:.1} of {:.1} MB",
        "#".repeat(filled),
        ".".repeat(BAR_CELLS - filled),
        read * 100 / total,
        read as f64 / 1e6,
        total as f64 / 1e6
    )
}

/// When a command started, for its summary line.
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Prints `<command>: <events> events of <trail> in <secs> s (<rate> events/s)` on
    /// standard error.
    pub fn summary(&self, command: &str, events: u64, trail: &Path) {
        let secs = self.0.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            events as f64 / secs
        } else {
            0.0
        };
        eprintln!(
            "{command}: {events} events of {} in {secs:.2} s ({rate:.0} events/s)",
            safe(&trail.display().to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_what_was_read() {
        assert_eq!(
            bar("replaying", 0, 1_000_000),
            "replaying [..............................]   0%  0.0 of 1.0 MB"
        );
        assert_eq!(
            bar("replaying", 500_000, 1_000_000),
            "replaying [###############...............]  50%  0.5 of 1.0 MB"
        );
        assert_eq!(
            bar("reviewing", 2_000_000, 1_000_000),
            "reviewing [##############################] 100%  1.0 of 1.0 MB"
        );
        // An empty file cannot divide by zero.
        assert!(bar("replaying", 0, 0).contains("  0%"));
    }
}
