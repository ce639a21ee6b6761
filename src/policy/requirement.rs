//! Conditional Access requirements (`requires = { … }`): validation, compiled form, and
//! the check of one requirement block against a verified caller.

use serde::Serialize;

use crate::principal::{ClientAuth, Principal, PrincipalKind, TokenVersion};

use super::error::{PolicyError, PolicyErrorKind};
use super::model::RequiresDef;

/// The longest `max_auth_age` a policy may set: 30 days.
pub const MAX_AUTH_AGE_SECS: u64 = 30 * 86_400;

/// `amr` values that prove multi-factor authentication (v1 tokens).
const MFA_METHODS: [&str; 2] = ["mfa", "ngcmfa"];

/// The least client authentication a requirement accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MinClientAuth {
    Secret,
    Certificate,
}

impl MinClientAuth {
    fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Certificate => "certificate",
        }
    }

    fn accepts(self, found: ClientAuth) -> bool {
        match self {
            Self::Secret => matches!(found, ClientAuth::Secret | ClientAuth::Certificate),
            Self::Certificate => found == ClientAuth::Certificate,
        }
    }
}

/// One compiled requirement block, with the label decisions name it by.
#[derive(Debug)]
pub(crate) struct Requires {
    /// `role:<name>`, `grant:<role>#<i>` or `requirements:<name>`.
    pub(crate) label: Box<str>,
    pub(crate) mfa: bool,
    pub(crate) auth_context: Option<Box<str>>,
    /// Seconds, and the text as written (for explanations and listings).
    pub(crate) max_auth_age: Option<(u64, Box<str>)>,
    pub(crate) client_auth: Option<MinClientAuth>,
    /// Lower-case client application ids.
    pub(crate) client_apps: Option<Box<[Box<str>]>>,
}

/// Why a requirement block does not hold.
#[derive(Clone, Debug)]
pub(crate) enum Unmet<'a> {
    /// A fresh sign-in through this authentication context (a claims challenge) can
    /// satisfy it.
    StepUp {
        requirement: &'a str,
        auth_context: &'a str,
    },
    /// No claims challenge can satisfy it.
    NotMet {
        requirement: &'a str,
        detail: String,
    },
}

impl Unmet<'_> {
    /// Keeps the more final of two failures: one a step-up cannot fix wins, else the first.
    pub(crate) fn worst<'a>(a: Option<Unmet<'a>>, b: Option<Unmet<'a>>) -> Option<Unmet<'a>> {
        match (a, b) {
            (None, x) | (x, None) => x,
            (Some(a @ Unmet::NotMet { .. }), _) => Some(a),
            (Some(Unmet::StepUp { .. }), Some(b @ Unmet::NotMet { .. })) => Some(b),
            (Some(a), Some(_)) => Some(a),
        }
    }
}

/// Lazily read "now": the clock is read at most once per decision, and only when a
/// requirement with `max_auth_age` applies.
pub(crate) struct Clock(pub(crate) Option<u64>);

impl Clock {
    fn now(&mut self) -> u64 {
        *self.0.get_or_insert_with(crate::clock::unix_now)
    }
}

/// Whether `context` is an authentication context id as Entra writes it: `c1`..`c99`.
pub(crate) fn is_auth_context(context: &str) -> bool {
    let Some(digits) = context.strip_prefix('c') else {
        return false;
    };
    (1..=2).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

pub(crate) fn auth_context(path: &str, value: &str) -> Result<Box<str>, PolicyError> {
    if is_auth_context(value) {
        Ok(value.into())
    } else {
        Err(PolicyError::new(
            path,
            PolicyErrorKind::MalformedAuthContext {
                value: value.to_owned(),
            },
        ))
    }
}

/// Parses `30s`, `30m`, `4h`, `1d`: a positive integer and one unit, at most 30 days.
pub(crate) fn parse_duration(value: &str) -> Option<u64> {
    let unit = match value.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let digits = &value[..value.len() - 1];
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = digits.parse::<u64>().ok()?.checked_mul(unit)?;
    (1..=MAX_AUTH_AGE_SECS).contains(&secs).then_some(secs)
}

/// Validates a `requires` block found at `path`.
pub(crate) fn compile_requires(
    path: &str,
    label: String,
    def: &RequiresDef,
) -> Result<Requires, PolicyError> {
    let err = |p: String, kind| PolicyError::new(p, kind);
    if !def.mfa
        && def.auth_context.is_none()
        && def.max_auth_age.is_none()
        && def.client_auth.is_none()
        && def.client_apps.is_none()
    {
        return Err(err(
            path.to_owned(),
            PolicyErrorKind::Empty { what: "requires" },
        ));
    }
    let auth_context = def
        .auth_context
        .as_deref()
        .map(|c| auth_context(&format!("{path}.auth_context"), c))
        .transpose()?;
    let max_auth_age = match &def.max_auth_age {
        None => None,
        Some(v) => Some((
            parse_duration(v).ok_or_else(|| {
                err(
                    format!("{path}.max_auth_age"),
                    PolicyErrorKind::MalformedDuration { value: v.clone() },
                )
            })?,
            v.as_str().into(),
        )),
    };
    let client_auth = match def.client_auth.as_deref() {
        None => None,
        Some("secret") => Some(MinClientAuth::Secret),
        Some("certificate") => Some(MinClientAuth::Certificate),
        Some(other) => {
            return Err(err(
                format!("{path}.client_auth"),
                PolicyErrorKind::UnknownClientAuth {
                    value: other.to_owned(),
                },
            ));
        }
    };
    let client_apps = match &def.client_apps {
        None => None,
        Some(list) => {
            let base = format!("{path}.client_apps");
            if list.is_empty() {
                return Err(err(
                    base,
                    PolicyErrorKind::Empty {
                        what: "client_apps",
                    },
                ));
            }
            let mut out: Vec<Box<str>> = Vec::with_capacity(list.len());
            for (i, app) in list.iter().enumerate() {
                let p = format!("{base}[{i}]");
                if !crate::ids::is_guid(app) {
                    return Err(err(
                        p,
                        PolicyErrorKind::MalformedGuid {
                            what: "client app id",
                            value: app.clone(),
                        },
                    ));
                }
                let lower = app.to_ascii_lowercase();
                if out.iter().any(|a| **a == *lower) {
                    return Err(err(
                        p,
                        PolicyErrorKind::Duplicate {
                            what: "client app id",
                            name: app.clone(),
                        },
                    ));
                }
                out.push(lower.into());
            }
            Some(out.into())
        }
    };
    Ok(Requires {
        label: label.into(),
        mfa: def.mfa,
        auth_context,
        max_auth_age,
        client_auth,
        client_apps,
    })
}

/// True when the token proves multi-factor authentication.
fn has_mfa(p: &Principal, mfa_context: Option<&str>) -> bool {
    p.auth_methods()
        .iter()
        .any(|m| MFA_METHODS.contains(&m.as_str()))
        || mfa_context.is_some_and(|c| p.auth_contexts().iter().any(|a| a == c))
}

fn client_auth_name(found: ClientAuth) -> &'static str {
    match found {
        ClientAuth::Public => "as a public client (no credential)",
        ClientAuth::Secret => "with a secret",
        ClientAuth::Certificate => "with a certificate",
        ClientAuth::Unknown => "in an unknown way",
    }
}

impl Requires {
    /// Checks the block against the caller: the first failure no step-up can fix, else
    /// the first a step-up can, else `None`.
    pub(crate) fn check<'a>(
        &'a self,
        p: &Principal,
        mfa_context: Option<&'a str>,
        clock: &mut Clock,
    ) -> Option<Unmet<'a>> {
        let requirement = &*self.label;
        let not_met = |detail: String| {
            Some(Unmet::NotMet {
                requirement,
                detail,
            })
        };
        if let Some(apps) = &self.client_apps
            && !p
                .client_app_id()
                .is_some_and(|id| apps.iter().any(|a| a.eq_ignore_ascii_case(id)))
        {
            return not_met("the client application is not one of its client_apps".into());
        }
        if let Some(min) = self.client_auth
            && !min.accepts(p.client_auth())
        {
            return not_met(format!(
                "client authentication with a {} is required, the client authenticated {}",
                min.as_str(),
                client_auth_name(p.client_auth())
            ));
        }
        let app_only = p.kind() == PrincipalKind::Application;
        let mut step_up: Option<&str> = None;
        if let Some(c) = &self.auth_context
            && !p.auth_contexts().iter().any(|a| **a == **c)
        {
            if app_only {
                return not_met(format!(
                    "authentication context {c} is required, which an app-only caller cannot satisfy"
                ));
            }
            step_up = Some(c);
        }
        if self.mfa && !has_mfa(p, mfa_context) {
            match mfa_context {
                _ if app_only => {
                    return not_met(
                        "multi-factor authentication is required, which an app-only caller \
                         cannot satisfy"
                            .into(),
                    );
                }
                Some(c) => {
                    step_up.get_or_insert(c);
                }
                None if p.version() == TokenVersion::V2 => {
                    return not_met(
                        "multi-factor authentication is required; v2 tokens carry no amr and \
                         the policy sets no mfa_auth_context, so the client cannot step up"
                            .into(),
                    );
                }
                None => {
                    return not_met(
                        "multi-factor authentication is required (amr has no mfa) and the \
                         policy sets no mfa_auth_context, so the client cannot step up"
                            .into(),
                    );
                }
            }
        }
        if let Some((secs, text)) = &self.max_auth_age {
            let fresh = p
                .auth_time
                .is_some_and(|t| clock.now().saturating_sub(t) <= *secs);
            if !fresh {
                let via = self.auth_context.as_deref().or(mfa_context);
                match via {
                    _ if app_only => {
                        return not_met(format!(
                            "an interactive sign-in within {text} is required, which an app-only \
                             caller cannot satisfy"
                        ));
                    }
                    Some(c) => {
                        step_up.get_or_insert(c);
                    }
                    None => {
                        return not_met(format!(
                            "an interactive sign-in within {text} is required and no \
                             authentication context is set to request one"
                        ));
                    }
                }
            }
        }
        step_up.map(|auth_context| Unmet::StepUp {
            requirement,
            auth_context,
        })
    }

    /// The block as listed for access reviews.
    pub(crate) fn view(&self) -> RequirementView {
        RequirementView {
            source: self.label.to_string(),
            mfa: self.mfa,
            auth_context: self.auth_context.as_deref().map(str::to_owned),
            max_auth_age: self.max_auth_age.as_ref().map(|(_, t)| t.to_string()),
            client_auth: self.client_auth.map(|c| c.as_str().to_owned()),
            client_apps: self
                .client_apps
                .iter()
                .flatten()
                .map(|a| a.to_string())
                .collect(),
        }
    }
}

/// A requirement block as listed by [`Permissions`](super::Permissions).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct RequirementView {
    /// Where it is attached: `role:<name>`, `grant:<role>#<i>` or `requirements:<name>`.
    pub source: String,
    /// Multi-factor authentication required.
    pub mfa: bool,
    /// The authentication context required.
    pub auth_context: Option<String>,
    /// The longest time since the last interactive sign-in, as written (`4h`).
    pub max_auth_age: Option<String>,
    /// The least client authentication: `secret` or `certificate`.
    pub client_auth: Option<String>,
    /// The client applications allowed (empty: any).
    pub client_apps: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_contexts_and_durations() {
        for ok in ["c1", "c9", "c25", "c99"] {
            assert!(is_auth_context(ok), "{ok}");
        }
        for bad in ["", "c", "c0", "c01", "c100", "C1", "c1 ", "x1", "c-1"] {
            assert!(!is_auth_context(bad), "{bad}");
        }
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("4h"), Some(14_400));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("30d"), Some(MAX_AUTH_AGE_SECS));
        for bad in [
            "",
            "h",
            "0h",
            "31d",
            "4",
            "4 h",
            "-1h",
            "4H",
            "1.5h",
            "4hm",
            "99999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
