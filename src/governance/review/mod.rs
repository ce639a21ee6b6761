//! Access review: from a recorded trail over a window and the policy, what was used and
//! what was not.
//!
//! ```
//! use entra_governor::governance::review::{Review, ReviewOptions};
//! use entra_governor::policy::Policy;
//!
//! let policy = Policy::from_toml_str(r#"
//! version = 1
//! [roles.reader]
//! grants = [{ actions = ["models.read"], resources = ["models/**"] }]
//! [[bindings]]
//! group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
//! roles = ["reader"]
//! "#)?;
//! let mut review = Review::new(&policy, ReviewOptions::default());
//! review.read_trail(std::io::Cursor::new(""))?; // a JSON Lines audit trail
//! let report = review.finish();
//! assert_eq!(report.unused.grants[0].grant, "reader#0"); // nothing used it
//! assert_eq!(report.unused.bindings, ["group:0b1f2e3d-4c5b-4a69-8877-665544332211"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The review reports:
//!
//! - **unused** roles, grants and bindings: none of them took part in an allow;
//! - **grant usage**: allows, callers, last use and the resources each grant reached;
//! - **wide grants**: used grants whose patterns cover far more than was reached
//!   (`models/**` used only on `models/exp-1` and `models/exp-2` suggests
//!   `models/exp-*`);
//! - **per-caller evidence**: the roles each caller holds under the policy (from the
//!   inputs of its last decision) and when each was last used;
//! - **a suggested narrower policy** ([`Suggestion`]): unused grants, bindings and roles
//!   removed, wide patterns narrowed, as TOML and as a diff. [`review_file`] replays it
//!   over the same window and reports the totals, so that "keeps every allow" is a
//!   measured `allow_to_deny = 0`, not a promise.
//!
//! Renderings: [`render::text`], [`render::csv`] (per-caller evidence for an Entra
//! access reviewer), [`render::html`] (one self-contained page), and the JSON document
//! ([`ReviewReport`]).
//!
//! Memory grows with the distinct callers, grants and (up to
//! [`MAX_REACHED_PER_GRANT`] per grant) resources reached, never with the trail's length.

mod collect;
pub mod render;
mod report;
mod suggest;

use std::io::BufRead;
use std::path::Path;
use std::time::SystemTime;

pub use collect::MAX_REACHED_PER_GRANT;
pub use report::*;

use super::replay::Replay;
use super::trail::{self, TrailError, TrailReader, TrailWindow};
use crate::audit::AuditEvent;
use crate::policy::Policy;

/// What a review reads.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ReviewOptions {
    /// The part of the trail to read.
    pub window: TrailWindow,
}

impl ReviewOptions {
    /// Reads only events at or after `since`.
    #[must_use]
    pub fn since(mut self, since: SystemTime) -> Self {
        self.window.since = Some(since);
        self
    }

    /// Reads only events inside `window`.
    #[must_use]
    pub fn window(mut self, window: TrailWindow) -> Self {
        self.window = window;
        self
    }
}

/// A review in progress: feed it events, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct Review {
    policy: Policy,
    options: ReviewOptions,
    usage: collect::Usage,
}

impl Review {
    /// A review of `policy`.
    pub fn new(policy: &Policy, options: ReviewOptions) -> Self {
        Self {
            usage: collect::Usage::new(policy.compiled()),
            policy: policy.clone(),
            options,
        }
    }

    /// Reads a JSON Lines trail to its end.
    ///
    /// # Errors
    /// Only when the reader fails; lines that are not events are counted.
    pub fn read_trail(&mut self, reader: impl BufRead) -> Result<(), TrailError> {
        let mut lines = TrailReader::new(reader);
        while let Some(event) = lines.next_event()? {
            self.event(&event);
        }
        self.usage.totals.unreadable_lines += lines.unreadable();
        Ok(())
    }

    /// Reads one event.
    pub fn event(&mut self, event: &AuditEvent) {
        if self.options.window.contains(event) {
            self.usage.event(event);
        } else {
            self.usage.totals.skipped += 1;
        }
    }

    /// The report, with a suggestion that has not been replayed (see [`review_file`]).
    pub fn finish(self) -> ReviewReport {
        let suggestion = suggest::suggest(&self.policy, &self.usage);
        self.usage
            .report(&self.policy, &self.options.window, suggestion)
    }
}

/// Reviews `policy` over the trail file `path`: reads it once to review, and once more
/// to replay the suggested policy over the same window
/// ([`Suggestion::replay`](report::Suggestion)).
///
/// # Errors
/// When the file cannot be opened or read.
pub fn review_file(
    policy: &Policy,
    path: impl AsRef<Path>,
    options: ReviewOptions,
) -> Result<ReviewReport, TrailError> {
    let path = path.as_ref();
    review_trail(policy, options, |_| trail::open(path))
}

/// The two passes a review reads a trail in: [`review_trail`] opens the trail once for
/// each, so that a caller can say which one is running (a progress bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewPass {
    /// Reading the trail to review the policy.
    Review,
    /// Reading it again to replay the suggested policy.
    ReplaySuggestion,
}

/// [`review_file`] over a trail that `open` opens afresh for each [`ReviewPass`] (the
/// second pass is skipped when the suggestion does not load).
///
/// # Errors
/// When `open` fails or the trail cannot be read.
pub fn review_trail<R: BufRead>(
    policy: &Policy,
    options: ReviewOptions,
    mut open: impl FnMut(ReviewPass) -> Result<R, TrailError>,
) -> Result<ReviewReport, TrailError> {
    let window = options.window;
    let mut review = Review::new(policy, options);
    review.read_trail(open(ReviewPass::Review)?)?;
    let mut report = review.finish();
    if let Ok(suggested) = Policy::from_toml_str(&report.suggestion.policy_toml) {
        let mut replay = Replay::new(&suggested).baseline(policy).window(window);
        replay.read_trail(open(ReviewPass::ReplaySuggestion)?)?;
        report.suggestion.replay = Some(replay.finish().totals);
    }
    Ok(report)
}
