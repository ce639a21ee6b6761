//! Resource paths: how requests spell resources, and what is wrong with a malformed one.
//!
//! A foundation of the decision stage: decisions (which echo resources and name a
//! [`PathProblem`]) and the policy engine (whose patterns follow the same rules) both
//! import it, and it imports neither.
//!
//! # Resources
//!
//! A resource is a hierarchical path such as `models/llama-3-70b`,
//! `datasets/pii/claims-2025` or `endpoints/chat-prod`:
//!
//! - segments are separated by `/`; there is no leading `/`, no trailing `/` and no empty
//!   segment (`a//b`);
//! - `.` and `..` are not segments (no path traversal, no second spelling of a path);
//! - no `\` (a second path separator to Windows file APIs and some URL parsers);
//! - no character that Unicode compatibility normalisation (NFKC) turns into `/`, `.`
//!   or `\`: the fullwidth solidus U+FF0F, fullwidth full stop U+FF0E, fullwidth reverse
//!   solidus U+FF3C, small full stop U+FE52, small reverse solidus U+FE68 and the dot
//!   leaders U+2024–U+2026;
//! - no control characters and no default-ignorable code points (Unicode's
//!   `Default_Ignorable_Code_Point`: bidirectional controls, zero-width characters, soft
//!   hyphen, variation selectors, Hangul fillers, tag characters, …), and no `*`;
//! - at most [`MAX_RESOURCE_LEN`] bytes and [`MAX_SEGMENTS`] segments.
//!
//! Everything else is literal and compared byte for byte: no case folding, no Unicode
//! normalisation, no percent-decoding (`models%2Fx` is one segment). A request for a
//! malformed resource is denied with [`Reason::InvalidResource`](crate::Reason::InvalidResource);
//! it never panics and never matches a pattern.
//!
//! # Handlers use the authorized resource verbatim
//!
//! A decision is about the exact string it was given. A handler must open, read or
//! write exactly that string: it must never percent-decode, case-fold,
//! Unicode-normalise, resolve or otherwise re-spell the resource after the decision,
//! since the re-spelled path is one the policy never saw (`datasets/pii%2Fx` or
//! `datasets／pii` turned into `datasets/pii` after a decision about something else).

use std::fmt;

use serde::Serialize;

/// The longest resource path accepted, in bytes.
pub const MAX_RESOURCE_LEN: usize = 1024;
/// The largest number of segments in a resource path or pattern.
pub const MAX_SEGMENTS: usize = 32;

/// What is wrong with a resource path or a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// The path is longer than [`MAX_RESOURCE_LEN`] bytes.
    TooLong,
    /// The path has more than [`MAX_SEGMENTS`] segments.
    TooDeep,
    /// The path starts with `/`.
    LeadingSlash,
    /// The path has an empty segment (`a//b`, or a trailing `/`).
    EmptySegment,
    /// The path has a `.` or `..` segment.
    DotSegment,
    /// The path contains a control character or a default-ignorable code point
    /// (bidirectional controls, zero-width and other invisible characters).
    ForbiddenCharacter,
    /// The path contains `\`, which some file systems and URL parsers read as `/`.
    Backslash,
    /// The path contains a character that NFKC normalisation turns into `/`, `.` or
    /// `\` (fullwidth solidus U+FF0F, fullwidth full stop U+FF0E, and the like).
    SeparatorLookalike,
    /// A requested resource contains `*`; wildcards belong in patterns only.
    Wildcard,
    /// A pattern uses `**` other than as a whole segment.
    MisplacedDoubleStar,
}

impl PathProblem {
    /// A short description of the problem, the text [`Display`](fmt::Display) prints.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "empty path",
            Self::TooLong => "path longer than 1024 bytes",
            Self::TooDeep => "path deeper than 32 segments",
            Self::LeadingSlash => "leading '/'",
            Self::EmptySegment => "empty segment",
            Self::DotSegment => "'.' or '..' segment",
            Self::ForbiddenCharacter => "control, bidirectional or invisible character",
            Self::Backslash => "'\\' in a path",
            Self::SeparatorLookalike => "a character that normalises to '/', '.' or '\\'",
            Self::Wildcard => "'*' in a resource",
            Self::MisplacedDoubleStar => "'**' must be a whole segment",
        }
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks the rules shared by resources and patterns; calls `segment` for each segment.
pub(crate) fn check_path<'a>(
    path: &'a str,
    mut segment: impl FnMut(usize, &'a str) -> Result<(), PathProblem>,
) -> Result<usize, PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if path.len() > MAX_RESOURCE_LEN {
        return Err(PathProblem::TooLong);
    }
    if path.starts_with('/') {
        return Err(PathProblem::LeadingSlash);
    }
    let mut n = 0;
    for seg in segments(path) {
        if seg.is_empty() {
            return Err(PathProblem::EmptySegment);
        }
        if seg == "." || seg == ".." {
            return Err(PathProblem::DotSegment);
        }
        // Every forbidden character is an ASCII control, `\\` or not ASCII: the byte scan
        // spares plain paths the character decoding.
        if seg
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b == b'\\' || b >= 0x80)
            && let Some(problem) = seg.chars().find_map(character_problem)
        {
            return Err(problem);
        }
        if n == MAX_SEGMENTS {
            return Err(PathProblem::TooDeep);
        }
        segment(n, seg)?;
        n += 1;
    }
    Ok(n)
}

/// What is wrong with `c` in a path, if anything.
fn character_problem(c: char) -> Option<PathProblem> {
    match c {
        '\\' => Some(PathProblem::Backslash),
        '\u{FF0F}'
        | '\u{FF0E}'
        | '\u{FF3C}'
        | '\u{FE52}'
        | '\u{FE68}'
        | '\u{2024}'..='\u{2026}' => Some(PathProblem::SeparatorLookalike),
        c if is_forbidden_in_path(c) => Some(PathProblem::ForbiddenCharacter),
        _ => None,
    }
}

/// The `/`-separated segments of `path`, found with a byte scan (the standard `split`
/// goes through a general character searcher: most of a decision's path work).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(path);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == b'/') {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// A requested resource's segments, split without allocating into a caller's buffer
/// (filled in place: no 512-byte value is moved on the decision path).
pub(crate) type SegmentBuf<'a> = [&'a str; MAX_SEGMENTS];

/// Validates a requested resource and splits it into `buf`; returns the segment count.
pub(crate) fn split_resource<'a>(
    resource: &'a str,
    buf: &mut SegmentBuf<'a>,
) -> Result<usize, PathProblem> {
    check_path(resource, |i, seg| {
        if seg.bytes().any(|b| b == b'*') {
            return Err(PathProblem::Wildcard);
        }
        buf[i] = seg;
        Ok(())
    })
}

/// Validates a resource path as requests must spell it.
pub fn validate_resource(resource: &str) -> Result<(), PathProblem> {
    split_resource(resource, &mut [""; MAX_SEGMENTS]).map(|_| ())
}

/// Unicode's `Default_Ignorable_Code_Point` property (DerivedCoreProperties.txt): code
/// points that render as nothing, so two paths differing only by one look the same. It
/// includes the bidirectional controls and the invisible characters that identifiers
/// refuse too.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// True for characters that must never appear in a resource path or pattern: control
/// characters and default-ignorable code points.
pub(crate) fn is_forbidden_in_path(c: char) -> bool {
    c.is_control() || is_default_ignorable(c)
}
