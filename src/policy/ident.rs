//! Identifier hygiene: names a policy author types must look like what they are.
//!
//! Role names, custom actions, rule names, scope names and app role values end up in
//! audit logs, access reviews and `explain()` lines read by people. A name that hides a
//! right-to-left override, a zero-width character or a Cyrillic `а` among Latin letters
//! can make two different names look identical, so the loader rejects them.

use std::fmt;

use serde::Serialize;

/// A writing system, as far as confusable identifiers are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Script {
    /// Latin letters, including accented and fullwidth forms.
    Latin,
    /// Greek letters.
    Greek,
    /// Cyrillic letters.
    Cyrillic,
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Latin => "Latin",
            Self::Greek => "Greek",
            Self::Cyrillic => "Cyrillic",
        })
    }
}

/// Why an identifier in a policy was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "problem")]
#[non_exhaustive]
pub enum IdentifierProblem {
    /// The identifier is empty.
    Empty,
    /// The identifier contains a control character (C0, DEL or C1).
    ControlCharacter {
        /// The offending code point.
        code_point: u32,
    },
    /// The identifier contains a bidirectional formatting character (U+200E/F,
    /// U+202A–U+202E, U+2066–U+2069, U+061C).
    BidiControl {
        /// The offending code point.
        code_point: u32,
    },
    /// The identifier contains an invisible formatting character (zero-width space,
    /// joiners, word joiner, byte order mark, soft hyphen).
    InvisibleCharacter {
        /// The offending code point.
        code_point: u32,
    },
    /// The identifier contains white space (scopes are space-separated in `scp`).
    Whitespace,
    /// The identifier mixes letters of two scripts, e.g. a Cyrillic `а` among Latin letters.
    MixedScripts {
        /// The first script seen.
        first: Script,
        /// The other script.
        second: Script,
    },
    /// The identifier contains a character reserved by the policy format (`#` separates a
    /// role name from a grant number in decisions).
    ReservedCharacter {
        /// The offending code point.
        code_point: u32,
    },
}

impl fmt::Display for IdentifierProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::ControlCharacter { code_point } => {
                write!(f, "contains the control character U+{code_point:04X}")
            }
            Self::BidiControl { code_point } => write!(
                f,
                "contains the bidirectional control character U+{code_point:04X}"
            ),
            Self::InvisibleCharacter { code_point } => {
                write!(f, "contains the invisible character U+{code_point:04X}")
            }
            Self::Whitespace => f.write_str("contains white space"),
            Self::MixedScripts { first, second } => {
                write!(f, "mixes {first} and {second} letters")
            }
            Self::ReservedCharacter { code_point } => {
                write!(f, "contains the reserved character U+{code_point:04X}")
            }
        }
    }
}

pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}'
    )
}

fn script_of(c: char) -> Option<Script> {
    if !c.is_alphabetic() {
        return None;
    }
    match c as u32 {
        0x41..=0x5A
        | 0x61..=0x7A
        | 0xC0..=0x24F
        | 0x1E00..=0x1EFF
        | 0x2C60..=0x2C7F
        | 0xA720..=0xA7FF
        | 0xFF21..=0xFF3A
        | 0xFF41..=0xFF5A => Some(Script::Latin),
        0x370..=0x3FF | 0x1F00..=0x1FFF => Some(Script::Greek),
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => {
            Some(Script::Cyrillic)
        }
        _ => None,
    }
}

/// Which extra characters an identifier may not contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdentKind {
    /// Role and rule names: no white space, no `#`.
    Name,
    /// Scope names, app role values, app permissions, custom actions: no white space.
    Token,
    /// Free-form labels (binding names): white space allowed.
    Label,
}

/// Checks one identifier; see the module docs.
pub(crate) fn check_identifier(value: &str, kind: IdentKind) -> Result<(), IdentifierProblem> {
    if value.is_empty() {
        return Err(IdentifierProblem::Empty);
    }
    let mut seen: Option<Script> = None;
    for c in value.chars() {
        let code_point = c as u32;
        if is_bidi_control(c) {
            return Err(IdentifierProblem::BidiControl { code_point });
        }
        if c.is_control() {
            return Err(IdentifierProblem::ControlCharacter { code_point });
        }
        if is_invisible(c) {
            return Err(IdentifierProblem::InvisibleCharacter { code_point });
        }
        if c.is_whitespace() && kind != IdentKind::Label {
            return Err(IdentifierProblem::Whitespace);
        }
        if c == '#' && kind == IdentKind::Name {
            return Err(IdentifierProblem::ReservedCharacter { code_point });
        }
        if let Some(script) = script_of(c) {
            match seen {
                None => seen = Some(script),
                Some(first) if first != script => {
                    return Err(IdentifierProblem::MixedScripts {
                        first,
                        second: script,
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_pass() {
        for ok in [
            "ml-engineer",
            "Inference.Invoke",
            "Platform.Auditor",
            "données-publiques",
            "модели",
            "μοντέλα",
            "推論",
            "role_2",
        ] {
            assert_eq!(check_identifier(ok, IdentKind::Name), Ok(()), "{ok}");
        }
    }

    #[test]
    fn hidden_and_confusable_characters_are_rejected() {
        let cases: &[(&str, IdentifierProblem)] = &[
            ("", IdentifierProblem::Empty),
            (
                "admin\u{202E}",
                IdentifierProblem::BidiControl { code_point: 0x202E },
            ),
            (
                "ad\u{2066}min",
                IdentifierProblem::BidiControl { code_point: 0x2066 },
            ),
            (
                "a\u{200F}",
                IdentifierProblem::BidiControl { code_point: 0x200F },
            ),
            (
                "admin\n",
                IdentifierProblem::ControlCharacter { code_point: 0x0A },
            ),
            (
                "ad\u{200B}min",
                IdentifierProblem::InvisibleCharacter { code_point: 0x200B },
            ),
            ("Inference Invoke", IdentifierProblem::Whitespace),
            (
                "role#1",
                IdentifierProblem::ReservedCharacter { code_point: 0x23 },
            ),
            // Cyrillic а (U+0430) in a Latin word.
            (
                "\u{0430}dmin",
                IdentifierProblem::MixedScripts {
                    first: Script::Cyrillic,
                    second: Script::Latin,
                },
            ),
            // Greek ο (U+03BF) in a Latin word.
            (
                "Pr\u{03BF}d",
                IdentifierProblem::MixedScripts {
                    first: Script::Latin,
                    second: Script::Greek,
                },
            ),
        ];
        for (value, problem) in cases {
            assert_eq!(
                check_identifier(value, IdentKind::Name),
                Err(*problem),
                "{value:?}"
            );
        }
    }

    #[test]
    fn labels_may_hold_spaces_but_not_controls() {
        assert_eq!(
            check_identifier("data scientists", IdentKind::Label),
            Ok(())
        );
        assert!(check_identifier("data\tscientists", IdentKind::Label).is_err());
        assert_eq!(
            check_identifier("role#1", IdentKind::Token),
            Ok(()),
            "only names reserve #"
        );
    }

    #[test]
    fn problems_display() {
        assert_eq!(
            IdentifierProblem::BidiControl { code_point: 0x202E }.to_string(),
            "contains the bidirectional control character U+202E"
        );
        assert_eq!(
            IdentifierProblem::MixedScripts {
                first: Script::Latin,
                second: Script::Cyrillic
            }
            .to_string(),
            "mixes Latin and Cyrillic letters"
        );
    }
}
