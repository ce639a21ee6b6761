//! Resource patterns: what grants, deny rules and separation-of-duty rules match
//! resources with.
//!
//! Resources themselves (their rules, [`PathProblem`], [`MAX_RESOURCE_LEN`],
//! [`MAX_SEGMENTS`], [`validate_resource`]) live in [`crate::resource`], which the
//! decision types share without importing the policy engine; they are re-exported here
//! so that `policy::pattern::*` paths keep working.
//!
//! # Patterns
//!
//! Patterns follow the same rules, plus two wildcards:
//!
//! | pattern            | matches                                   | does not match                     |
//! |--------------------|-------------------------------------------|------------------------------------|
//! | `models/llama-3`   | `models/llama-3`                          | `models/Llama-3`, `models/llama-3/v2` |
//! | `models/*`         | `models/llama-3`, `models/gpt`            | `models`, `models/llama-3/v2`      |
//! | `models/llama-*`   | `models/llama-3`, `models/llama-`         | `models/llama/3`, `models/xllama-3` |
//! | `models/*-prod`    | `models/chat-prod`                        | `models/chat-prod-2`               |
//! | `datasets/public/**` | `datasets/public`, `datasets/public/a/b` | `datasets/publicity`, `datasets/pii/a` |
//! | `**/eval-*`        | `eval-1`, `models/x/eval-1`               | `models/eval-1/x`                  |
//! | `**`               | every valid resource                      |                                    |
//!
//! - `*` matches any run of characters inside one segment (never `/`); it may stand alone
//!   (`models/*`: exactly one segment) or be part of a segment (`llama-*`, `*-prod`,
//!   `a*b*c`);
//! - `**` must be a whole segment and matches zero or more whole segments;
//!   `models/**` therefore also matches `models` itself;
//! - any other use of `**` (`models/llama**`, `***`) is rejected when the policy is loaded.

use std::fmt;

pub use crate::resource::{MAX_RESOURCE_LEN, MAX_SEGMENTS, PathProblem, validate_resource};
use crate::resource::{check_path, split_resource};

/// One segment of a compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A literal segment, compared byte for byte.
    Literal(Box<str>),
    /// `*`: any one segment.
    Any,
    /// A segment with `*` inside: the literal pieces between the stars (at least two).
    Glob(Box<[Box<str>]>),
    /// `**`: zero or more segments.
    AnyDepth,
}

impl Token {
    fn matches(&self, seg: &str) -> bool {
        match self {
            Token::Literal(l) => **l == *seg,
            Token::Any => true,
            Token::Glob(pieces) => glob_matches(pieces, seg),
            Token::AnyDepth => true,
        }
    }
}

/// Matches `s` against `p0 * p1 * ... * pn`: leftmost-first placement of the middle
/// pieces is optimal because `*` can absorb any gap.
fn glob_matches(pieces: &[Box<str>], s: &str) -> bool {
    let (first, rest) = pieces.split_first().expect("a glob has two pieces");
    let (last, middle) = rest.split_last().expect("a glob has two pieces");
    if s.len() < first.len() + last.len() || !s.starts_with(&**first) || !s.ends_with(&**last) {
        return false;
    }
    let mut gap = &s[first.len()..s.len() - last.len()];
    for piece in middle {
        match gap.find(&**piece) {
            Some(at) => gap = &gap[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// How a pattern is matched; simple shapes skip the general algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// No wildcard: the resource must equal the pattern.
    Exact,
    /// `prefix/**`: the resource equals `prefix` or starts with `prefix/` (the prefix is
    /// wildcard-free).
    Subtree { prefix_len: usize },
    /// `prefix*` where the only wildcard is a final `*` in the last segment
    /// (`models/llama-*`, `models/*`): the resource starts with `prefix` and has no `/`
    /// after it.
    SegmentPrefix { prefix_len: usize },
    /// `**`: everything.
    Everything,
    /// Anything else. Every match starts with the first `prefix_len` bytes (the literal
    /// text before the first `*`, without a trailing `/`, since `**` may match nothing),
    /// which rejects most resources before the general algorithm runs.
    General { prefix_len: usize },
}

/// A compiled resource pattern; see the [module docs](self) for the syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: Box<str>,
    tokens: Box<[Token]>,
    shape: Shape,
}

impl Pattern {
    /// Parses and compiles a pattern.
    pub fn parse(source: &str) -> Result<Self, PathProblem> {
        let mut tokens = Vec::new();
        check_path(source, |_, seg| {
            let token = if seg == "**" {
                Token::AnyDepth
            } else if seg.contains("**") {
                return Err(PathProblem::MisplacedDoubleStar);
            } else if seg == "*" {
                Token::Any
            } else if seg.contains('*') {
                Token::Glob(seg.split('*').map(Box::from).collect())
            } else {
                Token::Literal(seg.into())
            };
            tokens.push(token);
            Ok(())
        })?;
        let wild = |t: &Token| !matches!(t, Token::Literal(_));
        let shape = match tokens.split_last() {
            _ if !tokens.iter().any(wild) => Shape::Exact,
            Some((Token::AnyDepth, [])) => Shape::Everything,
            Some((Token::AnyDepth, init)) if !init.iter().any(wild) => Shape::Subtree {
                prefix_len: source.len() - 3,
            },
            Some((Token::Any, init)) if !init.iter().any(wild) => Shape::SegmentPrefix {
                prefix_len: source.len() - 1,
            },
            Some((Token::Glob(pieces), init))
                if !init.iter().any(wild) && pieces.len() == 2 && pieces[1].is_empty() =>
            {
                Shape::SegmentPrefix {
                    prefix_len: source.len() - 1,
                }
            }
            _ => {
                let before = &source[..source.find('*').expect("a wildcard")];
                Shape::General {
                    prefix_len: before.strip_suffix('/').unwrap_or(before).len(),
                }
            }
        };
        Ok(Self {
            source: source.into(),
            tokens: tokens.into(),
            shape,
        })
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern matches `resource`; false for malformed resources.
    pub fn matches(&self, resource: &str) -> bool {
        let mut buf = [""; MAX_SEGMENTS];
        match split_resource(resource, &mut buf) {
            Ok(n) => self.matches_segments(resource, &buf[..n]),
            Err(_) => false,
        }
    }

    /// Matches an already validated resource (`whole` is the resource, `segs` its parts).
    pub(crate) fn matches_segments(&self, whole: &str, segs: &[&str]) -> bool {
        match self.shape {
            Shape::Exact => *self.source == *whole,
            Shape::Everything => true,
            Shape::Subtree { prefix_len } => {
                let prefix = &self.source[..prefix_len];
                whole.len() >= prefix_len
                    && whole.as_bytes()[..prefix_len] == *prefix.as_bytes()
                    && (whole.len() == prefix_len || whole.as_bytes()[prefix_len] == b'/')
            }
            Shape::SegmentPrefix { prefix_len } => {
                whole.len() >= prefix_len
                    && whole.as_bytes()[..prefix_len] == self.source.as_bytes()[..prefix_len]
                    && !whole.as_bytes()[prefix_len..].contains(&b'/')
            }
            Shape::General { prefix_len } => {
                whole
                    .as_bytes()
                    .starts_with(&self.source.as_bytes()[..prefix_len])
                    && self.matches_general(segs)
            }
        }
    }

    /// Wildcard matching over segments: `**` is a star over segments, every other token
    /// matches exactly one segment, so backtracking to the last `**` is enough.
    fn matches_general(&self, segs: &[&str]) -> bool {
        let toks = &*self.tokens;
        let (mut t, mut s) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if t < toks.len() {
                if toks[t] == Token::AnyDepth {
                    star = Some((t + 1, s));
                    t += 1;
                    continue;
                }
                if s < segs.len() && toks[t].matches(segs[s]) {
                    t += 1;
                    s += 1;
                    continue;
                }
            } else if s == segs.len() {
                return true;
            }
            match star {
                Some((after, from)) if from < segs.len() => {
                    star = Some((after, from + 1));
                    t = after;
                    s = from + 1;
                }
                _ => return false,
            }
        }
    }

    /// True when the pattern can match every valid resource (`**`).
    pub(crate) fn is_everything(&self) -> bool {
        self.shape == Shape::Everything
    }

    /// True when the first segment is a wildcard: the pattern is not confined to one
    /// top-level collection such as `models/`.
    pub(crate) fn is_unbounded(&self) -> bool {
        !matches!(self.tokens.first(), Some(Token::Literal(_)))
    }

    /// True when some resource matches both patterns (used for separation of duties).
    pub(crate) fn intersects(&self, other: &Pattern) -> bool {
        seq_intersect(&self.tokens, &other.tokens)
    }

    /// True when every resource `other` matches is also matched by `self`. Sound but not
    /// complete: a `false` may be a subsumption this syntactic check cannot see.
    pub(crate) fn subsumes(&self, other: &Pattern) -> bool {
        seq_subsumes(&self.tokens, &other.tokens)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Pieces of a single-segment token as a sequence of characters and stars.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sym {
    Char(char),
    Star,
}

fn symbols(t: &Token) -> Vec<Sym> {
    match t {
        Token::Literal(l) => l.chars().map(Sym::Char).collect(),
        Token::Any => vec![Sym::Star],
        Token::Glob(pieces) => {
            let mut out = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 {
                    out.push(Sym::Star);
                }
                out.extend(p.chars().map(Sym::Char));
            }
            out
        }
        Token::AnyDepth => unreachable!("not a single-segment token"),
    }
}

/// Generic reachability over two sequences: `step(i, j)` lists successor states.
fn reach(n: usize, m: usize, step: impl Fn(usize, usize, &mut Vec<(usize, usize)>)) -> bool {
    let mut seen = vec![false; (n + 1) * (m + 1)];
    let mut stack = vec![(0, 0)];
    let mut next = Vec::new();
    while let Some((i, j)) = stack.pop() {
        if seen[i * (m + 1) + j] {
            continue;
        }
        seen[i * (m + 1) + j] = true;
        if i == n && j == m {
            return true;
        }
        next.clear();
        step(i, j, &mut next);
        stack.extend(next.iter().copied());
    }
    false
}

/// Is there a non-empty segment matched by both single-segment tokens?
fn seg_intersect(a: &Token, b: &Token) -> bool {
    let (x, y) = (symbols(a), symbols(b));
    // Stars match any string; a common string exists iff the sequences can be aligned.
    // Both sides only accept non-empty segments in practice; a pair of patterns whose
    // only common string is empty cannot exist, since each is a non-empty segment
    // or contains a star.
    reach(x.len(), y.len(), |i, j, out| {
        let (xi, yj) = (x.get(i), y.get(j));
        if let Some(Sym::Star) = xi {
            out.push((i + 1, j));
            if yj.is_some() {
                out.push((i, j + 1));
            }
        }
        if let Some(Sym::Star) = yj {
            out.push((i, j + 1));
            if xi.is_some() {
                out.push((i + 1, j));
            }
        }
        if let (Some(Sym::Char(c)), Some(Sym::Char(d))) = (xi, yj)
            && c == d
        {
            out.push((i + 1, j + 1));
        }
    })
}

fn seq_intersect(a: &[Token], b: &[Token]) -> bool {
    reach(a.len(), b.len(), |i, j, out| {
        let (ai, bj) = (a.get(i), b.get(j));
        if let Some(Token::AnyDepth) = ai {
            out.push((i + 1, j));
            if bj.is_some() {
                out.push((i, j + 1));
            }
        }
        if let Some(Token::AnyDepth) = bj {
            out.push((i, j + 1));
            if ai.is_some() {
                out.push((i + 1, j));
            }
        }
        if let (Some(x), Some(y)) = (ai, bj)
            && *x != Token::AnyDepth
            && *y != Token::AnyDepth
            && seg_intersect(x, y)
        {
            out.push((i + 1, j + 1));
        }
    })
}

/// Does single-segment token `g` match every string `h` matches? (`g`'s stars may absorb
/// any run of `h`, including `h`'s stars; `g`'s characters must meet equal characters.)
fn seg_subsumes(g: &Token, h: &Token) -> bool {
    let (x, y) = (symbols(g), symbols(h));
    reach(x.len(), y.len(), |i, j, out| match (x.get(i), y.get(j)) {
        (Some(Sym::Star), yj) => {
            out.push((i + 1, j));
            if yj.is_some() {
                out.push((i, j + 1));
            }
        }
        (Some(Sym::Char(c)), Some(Sym::Char(d))) if c == d => out.push((i + 1, j + 1)),
        _ => {}
    })
}

fn seq_subsumes(g: &[Token], h: &[Token]) -> bool {
    reach(g.len(), h.len(), |i, j, out| match (g.get(i), h.get(j)) {
        (Some(Token::AnyDepth), hj) => {
            out.push((i + 1, j));
            if hj.is_some() {
                out.push((i, j + 1));
            }
        }
        (Some(_), Some(Token::AnyDepth)) | (Some(_), None) | (None, _) => {}
        (Some(x), Some(y)) => {
            if seg_subsumes(x, y) {
                out.push((i + 1, j + 1));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn documented_examples() {
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "models/llama-3",
                &["models/llama-3"],
                &["models/Llama-3", "models/llama-3/v2", "models"],
            ),
            (
                "models/*",
                &["models/llama-3", "models/gpt"],
                &["models", "models/llama-3/v2", "datasets/x"],
            ),
            (
                "models/llama-*",
                &["models/llama-3", "models/llama-", "models/llama-3-70b"],
                &["models/llama/3", "models/xllama-3", "models/llama"],
            ),
            (
                "models/*-prod",
                &["models/chat-prod", "models/-prod"],
                &["models/chat-prod-2", "models/prod"],
            ),
            (
                "datasets/public/**",
                &[
                    "datasets/public",
                    "datasets/public/a",
                    "datasets/public/a/b",
                ],
                &["datasets/publicity", "datasets/pii/a", "datasets"],
            ),
            (
                "**/eval-*",
                &["eval-1", "models/x/eval-1"],
                &["models/eval-1/x", "models/x"],
            ),
            ("**", &["a", "a/b/c"], &[]),
            (
                "a/**/b/**/c",
                &["a/b/c", "a/x/b/y/z/c", "a/b/b/c"],
                &["a/c", "a/b/c/d", "b/c"],
            ),
            (
                "a*b*c",
                &["abc", "aXbYc", "abbc", "aXcbc"],
                &["ab", "acb", "abcX"],
            ),
            ("*/*", &["a/b"], &["a", "a/b/c"]),
        ];
        for (pattern, yes, no) in table {
            let compiled = p(pattern);
            for r in *yes {
                assert!(compiled.matches(r), "{pattern} should match {r}");
            }
            for r in *no {
                assert!(!compiled.matches(r), "{pattern} should not match {r}");
            }
        }
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        let table: &[(&str, PathProblem)] = &[
            ("", PathProblem::Empty),
            ("/models/x", PathProblem::LeadingSlash),
            ("models/", PathProblem::EmptySegment),
            ("models//x", PathProblem::EmptySegment),
            ("models/../pii", PathProblem::DotSegment),
            ("models/./x", PathProblem::DotSegment),
            ("models/llama**", PathProblem::MisplacedDoubleStar),
            ("models/***", PathProblem::MisplacedDoubleStar),
            ("models/\u{202E}x", PathProblem::ForbiddenCharacter),
            ("models/x\u{0}", PathProblem::ForbiddenCharacter),
        ];
        for (pattern, problem) in table {
            assert_eq!(Pattern::parse(pattern), Err(*problem), "{pattern:?}");
        }
        let deep = vec!["a"; MAX_SEGMENTS + 1].join("/");
        assert_eq!(Pattern::parse(&deep), Err(PathProblem::TooDeep));
    }

    #[test]
    fn malformed_resources_never_match() {
        let all = p("**");
        for (r, problem) in [
            ("", PathProblem::Empty),
            ("/models/x", PathProblem::LeadingSlash),
            ("models/", PathProblem::EmptySegment),
            ("models/../pii/x", PathProblem::DotSegment),
            ("models/*", PathProblem::Wildcard),
            ("models/x\r\nX-Injected: 1", PathProblem::ForbiddenCharacter),
        ] {
            assert_eq!(validate_resource(r), Err(problem), "{r:?}");
            assert!(!all.matches(r));
        }
        assert_eq!(
            validate_resource(&"a".repeat(MAX_RESOURCE_LEN + 1)),
            Err(PathProblem::TooLong)
        );
        assert_eq!(validate_resource(&"a".repeat(MAX_RESOURCE_LEN)), Ok(()));
    }

    /// Every character that spells a path a second way, class by class: each code point
    /// of each range is refused in resources and patterns, and its neighbours outside the
    /// ranges are not.
    #[test]
    fn second_spellings_are_refused_class_by_class() {
        use PathProblem::{Backslash, ForbiddenCharacter, SeparatorLookalike};
        /// A class: its name, its code-point ranges, the problem it gets.
        type Class = (&'static str, &'static [(u32, u32)], PathProblem);
        let table: &[Class] = &[
            ("backslash", &[(0x5C, 0x5C)], Backslash),
            ("fullwidth solidus", &[(0xFF0F, 0xFF0F)], SeparatorLookalike),
            (
                "fullwidth full stop",
                &[(0xFF0E, 0xFF0E)],
                SeparatorLookalike,
            ),
            (
                "fullwidth reverse solidus",
                &[(0xFF3C, 0xFF3C)],
                SeparatorLookalike,
            ),
            (
                "small full stop, small reverse solidus",
                &[(0xFE52, 0xFE52), (0xFE68, 0xFE68)],
                SeparatorLookalike,
            ),
            ("dot leaders", &[(0x2024, 0x2026)], SeparatorLookalike),
            ("soft hyphen", &[(0xAD, 0xAD)], ForbiddenCharacter),
            (
                "combining grapheme joiner",
                &[(0x34F, 0x34F)],
                ForbiddenCharacter,
            ),
            ("arabic letter mark", &[(0x61C, 0x61C)], ForbiddenCharacter),
            (
                "hangul fillers",
                &[(0x115F, 0x1160), (0x3164, 0x3164), (0xFFA0, 0xFFA0)],
                ForbiddenCharacter,
            ),
            (
                "khmer inherent vowels",
                &[(0x17B4, 0x17B5)],
                ForbiddenCharacter,
            ),
            (
                "mongolian variation selectors",
                &[(0x180B, 0x180F)],
                ForbiddenCharacter,
            ),
            (
                "zero width, LRM, RLM",
                &[(0x200B, 0x200F)],
                ForbiddenCharacter,
            ),
            (
                "bidi embeddings and overrides",
                &[(0x202A, 0x202E)],
                ForbiddenCharacter,
            ),
            (
                "word joiner, invisible operators, isolates, deprecated formats",
                &[(0x2060, 0x206F)],
                ForbiddenCharacter,
            ),
            (
                "variation selectors",
                &[(0xFE00, 0xFE0F)],
                ForbiddenCharacter,
            ),
            ("byte order mark", &[(0xFEFF, 0xFEFF)], ForbiddenCharacter),
            (
                "unassigned specials",
                &[(0xFFF0, 0xFFF8)],
                ForbiddenCharacter,
            ),
            (
                "shorthand format controls",
                &[(0x1BCA0, 0x1BCA3)],
                ForbiddenCharacter,
            ),
            (
                "musical symbol formats",
                &[(0x1D173, 0x1D17A)],
                ForbiddenCharacter,
            ),
            (
                "tags and variation selectors supplement",
                &[(0xE0000, 0xE0FFF)],
                ForbiddenCharacter,
            ),
        ];
        let mut failed = Vec::new();
        for (class, ranges, problem) in table {
            let refused = |path: &str| {
                validate_resource(path) == Err(*problem)
                    && Pattern::parse(path) == Err(*problem)
                    && !p("**").matches(path)
            };
            let chars = ranges.iter().flat_map(|&(lo, hi)| lo..=hi);
            if let Some(c) = chars
                .filter_map(char::from_u32)
                .find(|c| !refused(&format!("datasets/pii{c}x")))
            {
                failed.push(format!("{class} (U+{:04X})", c as u32));
            }
        }
        assert!(failed.is_empty(), "accepted: {failed:#?}");
        // The neighbours are ordinary characters (the ranges are not too wide).
        for cp in [
            0x5B, 0x5D, 0xFF0D, 0xFF10, 0x2023, 0x2027, 0x17B3, 0x17B6, 0x180A, 0x2070, 0xFE10,
            0xFFA1, 0x1D172, 0x1D17B, 0xE1000,
        ] {
            let path = format!("models/a{}b", char::from_u32(cp).unwrap());
            assert_eq!(validate_resource(&path), Ok(()), "U+{cp:04X}");
        }
    }

    #[test]
    fn matching_is_byte_exact() {
        // Precomposed é vs e + combining acute: different bytes, different resources.
        assert!(!p("models/caf\u{e9}").matches("models/cafe\u{301}"));
        assert!(!p("models/llama-*").matches("models/LLAMA-3"));
        assert!(p("models/caf\u{e9}-*").matches("models/caf\u{e9}-1"));
    }

    #[test]
    fn intersection() {
        let yes = [
            ("models/prod-*", "models/*"),
            ("models/**", "**/prod-x"),
            ("models/*-prod", "models/chat-*"),
            ("a/**", "**/b"),
            ("models/prod-*", "models/prod-*"),
        ];
        let no = [
            ("models/prod-*", "datasets/**"),
            ("models/*-prod", "models/*-dev"),
            ("models/x", "models/x/**/y"),
            ("a/*", "a/*/*"),
        ];
        for (a, b) in yes {
            assert!(p(a).intersects(&p(b)), "{a} & {b}");
            assert!(p(b).intersects(&p(a)), "{b} & {a}");
        }
        for (a, b) in no {
            assert!(!p(a).intersects(&p(b)), "{a} & {b}");
            assert!(!p(b).intersects(&p(a)), "{b} & {a}");
        }
    }

    #[test]
    fn subsumption() {
        let yes = [
            ("**", "models/x"),
            ("datasets/pii/**", "datasets/pii/claims-*"),
            ("datasets/pii/**", "datasets/pii/**"),
            ("models/*", "models/prod-*"),
            ("models/prod-*", "models/prod-a*"),
            ("models/**", "models/*/x/**"),
        ];
        let no = [
            ("models/*", "models/**"),
            ("models/prod-*", "models/*"),
            ("datasets/pii/*", "datasets/pii/**"),
            ("models/a*", "models/*a"),
        ];
        for (g, h) in yes {
            assert!(p(g).subsumes(&p(h)), "{g} >= {h}");
        }
        for (g, h) in no {
            assert!(!p(g).subsumes(&p(h)), "{g} !>= {h}");
        }
    }
}
