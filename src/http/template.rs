//! [`ResourceTemplate`]: a resource path filled from a request's path parameters.

use std::fmt;

use crate::policy::PathProblem;

/// A resource path with placeholders filled from a request's path parameters:
/// `models/{model}`, `datasets/{*path}`.
///
/// - `{name}` takes one path segment: the value must be non-empty and contain neither
///   `/` nor `%` (a `%` is what is left of an escape the framework did not decode, such
///   as `%2F`, so both frameworks refuse the same requests).
/// - `{*name}` takes the rest of a wildcard route (`/files/{*path}` in axum,
///   `/files/{path:.*}` in actix-web) and may contain `/`, but not `%`.
///
/// The literal text must already be a valid resource once each placeholder holds one
/// letter: `\`, fullwidth `／` and `．`, control and default-ignorable characters are
/// refused when the template is parsed (see [`PathProblem`]). The filled path is then
/// checked by the policy like any resource: `.`, `..` and empty segments, wildcards and
/// the same characters in a parameter's value are refused there (403). A handler uses
/// the filled, authorized path verbatim and never decodes or normalises it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceTemplate {
    source: String,
    parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplatePart {
    Literal(String),
    Segment(String),
    Rest(String),
}

/// A resource template that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource template {template:?}: {reason}")]
pub struct TemplateError {
    /// The template, as given.
    pub template: String,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The resource rule the template's literal text breaks, when that is what is wrong.
    pub problem: Option<PathProblem>,
}

/// Why a [`ResourceTemplate`] could not be filled for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The route has no parameter of this name: a server bug (500).
    #[error("the route has no path parameter {name:?}")]
    MissingParameter {
        /// The placeholder's name.
        name: String,
    },
    /// The parameter's value cannot be a resource segment (403).
    #[error("path parameter {name:?} is not a valid resource segment")]
    InvalidValue {
        /// The placeholder's name.
        name: String,
    },
    /// A path parameter is not UTF-8 once percent-decoded, so it cannot be a resource
    /// segment (403); the framework (axum) does not say which one.
    #[error("a path parameter is not UTF-8 once percent-decoded")]
    NotUtf8,
}

impl ResourceTemplate {
    /// Parses a template. Placeholder names are ASCII letters, digits and `_`; literal
    /// text holds neither braces nor `*`; the template does not start with `/`.
    ///
    /// # Errors
    /// A [`TemplateError`] saying what is wrong.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let error = |reason| TemplateError {
            template: template.to_owned(),
            reason,
            problem: None,
        };
        if template.is_empty() {
            return Err(error("empty template"));
        }
        if template.starts_with('/') {
            return Err(error("a resource does not start with '/'"));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(0) if rest.starts_with('{') => {
                    let end = rest.find('}').ok_or_else(|| error("unclosed '{'"))?;
                    let inner = &rest[1..end];
                    let (rest_of_path, name) = match inner.strip_prefix('*') {
                        Some(name) => (true, name),
                        None => (false, inner),
                    };
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(error(
                            "a placeholder is {name} or {*name}, name of ASCII letters, digits, '_'",
                        ));
                    }
                    parts.push(if rest_of_path {
                        TemplatePart::Rest(name.to_owned())
                    } else {
                        TemplatePart::Segment(name.to_owned())
                    });
                    rest = &rest[end + 1..];
                }
                Some(0) => return Err(error("unmatched '}'")),
                found => {
                    let end = found.unwrap_or(rest.len());
                    let literal = &rest[..end];
                    if literal.contains('*') {
                        return Err(error("'*' outside a {*name} placeholder"));
                    }
                    parts.push(TemplatePart::Literal(literal.to_owned()));
                    rest = &rest[end..];
                }
            }
        }
        let parsed = Self {
            source: template.to_owned(),
            parts,
        };
        parsed.check_literal_text()?;
        Ok(parsed)
    }

    /// Refuses literal text no filled path could make valid: with every placeholder
    /// holding one letter, the path must pass the resource rules.
    fn check_literal_text(&self) -> Result<(), TemplateError> {
        let sample = self
            .render(|_| Some("x"))
            .expect("every placeholder is filled");
        crate::policy::pattern::validate_resource(&sample).map_err(|problem| TemplateError {
            template: self.source.clone(),
            reason: problem.as_str(),
            problem: Some(problem),
        })
    }

    /// The template, as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the template has at least one placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.parts
            .iter()
            .any(|p| !matches!(p, TemplatePart::Literal(_)))
    }

    /// The placeholders in order: each name, and whether it takes the rest of a path
    /// (`{*name}`) rather than one segment (`{name}`).
    pub fn placeholders(&self) -> impl Iterator<Item = (&str, bool)> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Literal(_) => None,
            TemplatePart::Segment(name) => Some((name.as_str(), false)),
            TemplatePart::Rest(name) => Some((name.as_str(), true)),
        })
    }

    /// Fills the placeholders with `param(name)`.
    ///
    /// # Errors
    /// [`RenderError::MissingParameter`] when `param` has no value for a placeholder,
    /// [`RenderError::InvalidValue`] when a value is empty or holds a forbidden character.
    pub fn render<'a>(
        &self,
        param: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            let (name, one_segment) = match part {
                TemplatePart::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                TemplatePart::Segment(name) => (name, true),
                TemplatePart::Rest(name) => (name, false),
            };
            let value =
                param(name).ok_or_else(|| RenderError::MissingParameter { name: name.clone() })?;
            if value.is_empty() || value.contains('%') || (one_segment && value.contains('/')) {
                return Err(RenderError::InvalidValue { name: name.clone() });
            }
            out.push_str(value);
        }
        Ok(out)
    }
}

impl fmt::Display for ResourceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for ResourceTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let t = ResourceTemplate::parse("models/{model}/versions/{v_1}").unwrap();
        assert!(t.has_placeholders());
        assert_eq!(t.as_str(), "models/{model}/versions/{v_1}");
        assert!(
            !ResourceTemplate::parse("audit/decisions")
                .unwrap()
                .has_placeholders()
        );
        assert!(ResourceTemplate::parse("datasets/{*path}").is_ok());
        for bad in [
            "",
            "/models/{model}",
            "models/{model",
            "models/model}",
            "models/{}",
            "models/{*}",
            "models/{a-b}",
            "models/{{a}}",
            "models/*",
            "models/{**a}",
        ] {
            assert!(ResourceTemplate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ResourceTemplate::parse("models/{").unwrap_err().to_string(),
            "invalid resource template \"models/{\": unclosed '{'"
        );
    }

    /// The literal text of a template follows the resource rules, class by class.
    #[test]
    fn templates_refuse_second_spellings_in_literal_text() {
        for (template, problem) in [
            ("models\\{m}", PathProblem::Backslash),
            ("models/{m}\\x", PathProblem::Backslash),
            ("models\u{FF0F}{m}", PathProblem::SeparatorLookalike),
            (
                "models/{m}/\u{FF0E}\u{FF0E}/x",
                PathProblem::SeparatorLookalike,
            ),
            ("models/\u{200B}{m}", PathProblem::ForbiddenCharacter),
            ("models/{m}\u{FE0F}", PathProblem::ForbiddenCharacter),
            ("models/{m}/\u{E0041}", PathProblem::ForbiddenCharacter),
            ("models/{m}\u{3164}", PathProblem::ForbiddenCharacter),
            ("models/../{m}", PathProblem::DotSegment),
            ("models//{m}", PathProblem::EmptySegment),
        ] {
            let e = ResourceTemplate::parse(template).unwrap_err();
            assert_eq!(e.problem, Some(problem), "{template:?}");
            assert_eq!(e.reason, problem.as_str(), "{template:?}");
        }
        assert_eq!(
            ResourceTemplate::parse("models\\{m}")
                .unwrap_err()
                .to_string(),
            "invalid resource template \"models\\\\{m}\": '\\' in a path"
        );
        assert_eq!(
            ResourceTemplate::parse("models/{").unwrap_err().problem,
            None
        );
    }

    #[test]
    fn templates_render() {
        let t: ResourceTemplate = "models/{model}/at/{*rest}".parse().unwrap();
        let render = |model: &str, rest: Option<&str>| {
            t.render(|name| match name {
                "model" => Some(model),
                "rest" => rest,
                _ => None,
            })
        };
        assert_eq!(
            render("exp-1", Some("a/b")),
            Ok("models/exp-1/at/a/b".to_owned())
        );
        assert_eq!(
            render("exp-1", None),
            Err(RenderError::MissingParameter {
                name: "rest".into()
            })
        );
        for (model, rest) in [
            ("a/b", "c"),
            ("", "c"),
            ("a%2Fb", "c"),
            ("a", "b%2F"),
            ("a", ""),
        ] {
            assert!(
                matches!(
                    render(model, Some(rest)),
                    Err(RenderError::InvalidValue { .. })
                ),
                "{model} {rest}"
            );
        }
    }
}
