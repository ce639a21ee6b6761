//! [`Decision`]: the outcome of one authorization request, as data.
//!
//! A decision says allow or deny and why. It serializes to JSON for audit logs and has a
//! one-line human explanation:
//!
//! ```text
//! allowed: training.submit on models/llama-3 by grant ml-engineer#0 (role ml-engineer via group:0b1f…)
//! denied: datasets.write on datasets/pii/x is outside scope Inference.Invoke
//! denied: models.delete on models/prod-chat by rule prod-models-are-not-deleted
//! ```
//!
//! A decision is always about a *verified* caller: an invalid token is an error (HTTP
//! 401), never a `Decision`; a deny is HTTP 403, except a [`Reason::StepUpRequired`],
//! which is HTTP 401 with an `insufficient_claims` claims challenge. A decision is data:
//! it carries the claims request, never an HTTP header; the HTTP edge (`http::Refusal`)
//! turns it into a status and a `WWW-Authenticate` value for the governor's cloud.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::resource::{MAX_RESOURCE_LEN, PathProblem};

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The request is permitted.
    Allow,
    /// The request is refused.
    Deny,
}

/// Why a decision came out the way it did.
///
/// Serialized with a `code` tag: `{"code":"denied_by_rule","rule":"no-guests-on-pii"}`.
/// New reasons may be added: match with a wildcard arm.
///
/// The three Conditional Access reasons ([`StepUpRequired`](Self::StepUpRequired),
/// [`StepUpNotPossible`](Self::StepUpNotPossible),
/// [`RequirementNotMet`](Self::RequirementNotMet)) come only after the policy would
/// otherwise allow: they are denials ([`Effect::Deny`]), never allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A role held by the caller grants the action on the resource, no deny rule applies,
    /// and the token's scopes allow it.
    Allow,
    /// No role held by the caller grants the action on the resource.
    NoRoleGrants,
    /// A delegated call whose scopes do not allow the action (the scope ceiling).
    OutsideScopes {
        /// The token's scopes (`scp`), as presented.
        scopes: Vec<String>,
    },
    /// A deny rule covers the request; deny overrides every grant.
    DeniedByRule {
        /// The rule's name.
        rule: String,
    },
    /// The action is neither built in nor declared by the policy.
    UnknownAction,
    /// The resource path is malformed.
    InvalidResource {
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// The caller holds both sides of a separation-of-duty rule that covers the request.
    SeparationOfDuties {
        /// The rule's name.
        rule: String,
    },
    /// The caller's groups could not be resolved (Microsoft Graph failed, was throttled
    /// or too slow) and a group binding could change the answer: a transient condition
    /// (HTTP 503 with `Retry-After`).
    GroupMembershipUnavailable,
    /// The token does not list the caller's groups (group overage, or no `groups` claim)
    /// and nothing resolves them, while a group binding could change the answer: a
    /// configuration matter, not an outage (HTTP 403). Configure a group resolver
    /// (Microsoft Graph), or, when the app registration emits group claims,
    /// `groups_claim_emitted` so that a missing claim means "no groups".
    GroupMembershipUnknown {
        /// `true` for a group overage marker (over 200 groups), `false` for a token
        /// without a `groups` claim.
        overage: bool,
    },
    /// The policy would allow, but a requirement (an authentication context, MFA through
    /// the policy's `mfa_auth_context`, or a recent sign-in) is unmet, and the client can
    /// answer a claims challenge (`xms_cc` has `cp1`): send it back to Entra with the
    /// `claims` request (HTTP 401; the HTTP edge builds the `WWW-Authenticate` value).
    StepUpRequired {
        /// The requirement block: `requirements:<name>`, `role:<name>` or
        /// `grant:<role>#<i>`.
        requirement: String,
        /// The authentication context the fresh sign-in must satisfy (`c1`).
        auth_context: String,
        /// The claims request: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`.
        claims: String,
    },
    /// As [`StepUpRequired`](Self::StepUpRequired), but the client did not declare that it
    /// can answer a claims challenge (no `cp1` in `xms_cc`): HTTP 403.
    StepUpNotPossible {
        /// The requirement block, as in [`StepUpRequired`](Self::StepUpRequired).
        requirement: String,
        /// The authentication context a fresh sign-in would have to satisfy.
        auth_context: String,
    },
    /// The policy would allow, but a requirement is unmet that no claims challenge can
    /// satisfy (client authentication strength, client application, MFA without a way to
    /// step up, an app-only caller): HTTP 403.
    RequirementNotMet {
        /// The requirement block, as in [`StepUpRequired`](Self::StepUpRequired).
        requirement: String,
        /// What is missing, for people.
        detail: String,
    },
}

impl Reason {
    /// A stable snake_case code for metrics and logs (`"outside_scopes"`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::NoRoleGrants => "no_role_grants",
            Self::OutsideScopes { .. } => "outside_scopes",
            Self::DeniedByRule { .. } => "denied_by_rule",
            Self::UnknownAction => "unknown_action",
            Self::InvalidResource { .. } => "invalid_resource",
            Self::SeparationOfDuties { .. } => "separation_of_duties",
            Self::GroupMembershipUnavailable => "group_membership_unavailable",
            Self::GroupMembershipUnknown { .. } => "group_membership_unknown",
            Self::StepUpRequired { .. } => "step_up_required",
            Self::StepUpNotPossible { .. } => "step_up_not_possible",
            Self::RequirementNotMet { .. } => "requirement_not_met",
        }
    }
}

/// One way the caller came to be allowed: a binding conferred a role whose grant (its
/// own, or that of a role it includes) matched.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Match {
    /// The binding's label: its `name`, or `group:<id>`, `app_role:<value>`,
    /// `app_permission:<value>`, `directory_role:<id>`, `tenant:<id>`,
    /// `principal:<tid>/<oid>`.
    pub binding: String,
    /// The role the binding confers.
    pub role: String,
    /// The grant that matched, as `<role>#<index>` (the role may be one `role` includes).
    pub grant: String,
    /// For a claim-value binding with a `tenants` qualifier: the qualifying tenant that
    /// issued the caller's token (whose administrators assigned the claim value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<crate::ids::TenantId>,
}

/// The outcome of one authorization request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct Decision {
    /// Allow or deny.
    pub effect: Effect,
    /// The requested action, as given (truncated to 1024 bytes).
    pub action: String,
    /// The requested resource, as given (truncated to 1024 bytes).
    pub resource: String,
    /// Why.
    pub reason: Reason,
    /// For an allow: the bindings, roles and grant that permitted it. Empty for a deny.
    pub matched: Vec<Match>,
}

/// Copies at most [`MAX_RESOURCE_LEN`] bytes (on a character boundary): decisions echo
/// caller input, and callers do not get to make them arbitrarily large.
fn bounded(s: &str) -> String {
    if s.len() <= MAX_RESOURCE_LEN {
        return s.to_owned();
    }
    let mut end = MAX_RESOURCE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Decision {
    pub(crate) fn deny(action: &str, resource: &str, reason: Reason) -> Self {
        Self {
            effect: Effect::Deny,
            action: bounded(action),
            resource: bounded(resource),
            reason,
            matched: Vec::new(),
        }
    }

    pub(crate) fn allow(action: &str, resource: &str, matched: Vec<Match>) -> Self {
        Self {
            effect: Effect::Allow,
            action: action.to_owned(),
            resource: resource.to_owned(),
            reason: Reason::Allow,
            matched,
        }
    }

    /// True for an allow.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The rule that denied the request: a deny rule, a separation-of-duty rule, or the
    /// requirement block (`requirements:<name>`, `role:<name>`, `grant:<role>#<i>`) that
    /// was not met.
    pub fn denied_by(&self) -> Option<&str> {
        match &self.reason {
            Reason::DeniedByRule { rule } | Reason::SeparationOfDuties { rule } => Some(rule),
            Reason::StepUpRequired { requirement, .. }
            | Reason::StepUpNotPossible { requirement, .. }
            | Reason::RequirementNotMet { requirement, .. } => Some(requirement),
            _ => None,
        }
    }

    /// True when the client should be sent back to Entra for a stronger sign-in (a
    /// [`Reason::StepUpRequired`]).
    pub fn is_step_up(&self) -> bool {
        matches!(self.reason, Reason::StepUpRequired { .. })
    }

    /// A one-line explanation for people; caller-supplied text is escaped, so the line
    /// never breaks.
    pub fn explain(&self) -> String {
        self.to_string()
    }
}

/// The claims request a [`Reason::StepUpRequired`] carries for an authentication
/// context: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`. Data, not a
/// header: the HTTP edge encodes it into the claims challenge (`http::challenge`).
pub(crate) fn auth_context_claims(context: &str) -> String {
    serde_json::json!({"access_token": {"acrs": {"essential": true, "value": context}}}).to_string()
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = Escaped(&self.action);
        let resource = Escaped(&self.resource);
        match &self.reason {
            Reason::Allow => {
                write!(f, "allowed: {action} on {resource}")?;
                if let Some(first) = self.matched.first() {
                    write!(f, " by grant {} (", first.grant)?;
                    for (i, m) in self.matched.iter().enumerate() {
                        if i > 0 {
                            f.write_str("; ")?;
                        }
                        write!(f, "role {} via {}", m.role, Escaped(&m.binding))?;
                        if let Some(t) = &m.tenant {
                            write!(f, " trusted for tenant {t}")?;
                        }
                    }
                    f.write_char(')')?;
                }
                Ok(())
            }
            Reason::NoRoleGrants => {
                write!(f, "denied: {action} on {resource}: no role grants it")
            }
            Reason::OutsideScopes { scopes } if scopes.is_empty() => write!(
                f,
                "denied: {action} on {resource}: the token has no scope that allows it"
            ),
            Reason::OutsideScopes { scopes } => {
                let plural = if scopes.len() == 1 { "" } else { "s" };
                write!(
                    f,
                    "denied: {action} on {resource} is outside scope{plural} "
                )?;
                for (i, s) in scopes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Escaped(s))?;
                }
                Ok(())
            }
            Reason::DeniedByRule { rule } => {
                write!(f, "denied: {action} on {resource} by rule {rule}")
            }
            Reason::UnknownAction => write!(f, "denied: {action} on {resource}: unknown action"),
            Reason::InvalidResource { problem } => write!(
                f,
                "denied: {action} on {resource}: invalid resource ({problem})"
            ),
            Reason::SeparationOfDuties { rule } => write!(
                f,
                "denied: {action} on {resource}: the caller holds both duties of separation rule {rule}"
            ),
            Reason::GroupMembershipUnavailable => write!(
                f,
                "denied: {action} on {resource}: group membership could not be resolved now \
                 and a group binding could decide it"
            ),
            Reason::GroupMembershipUnknown { overage: true } => write!(
                f,
                "denied: {action} on {resource}: the token has a group overage marker and a \
                 group binding could decide it; configure a group resolver (Microsoft Graph)"
            ),
            Reason::GroupMembershipUnknown { overage: false } => write!(
                f,
                "denied: {action} on {resource}: the token has no groups claim and a group \
                 binding could decide it; if the app registration emits group claims, set \
                 groups_claim_emitted (a missing claim then means no groups), else configure \
                 a group resolver (Microsoft Graph)"
            ),
            Reason::StepUpRequired {
                requirement,
                auth_context,
                ..
            } => write!(
                f,
                "step-up required: {action} on {resource} needs authentication context \
                 {auth_context} ({requirement})"
            ),
            Reason::StepUpNotPossible {
                requirement,
                auth_context,
            } => write!(
                f,
                "denied: {action} on {resource} needs authentication context {auth_context} \
                 ({requirement}), and the client cannot perform step-up (no cp1 capability)"
            ),
            Reason::RequirementNotMet {
                requirement,
                detail,
            } => write!(
                f,
                "denied: {action} on {resource}: requirement {requirement} not met: {detail}"
            ),
        }
    }
}

/// Displays a string as [`str::escape_debug`] does, without the per-character work when
/// nothing needs escaping (the usual case: action names, resource paths, labels).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |b: u8| (0x20..0x7f).contains(&b) && !matches!(b, b'\\' | b'"' | b'\'');
        if self.0.bytes().all(plain) {
            f.write_str(self.0)
        } else {
            fmt::Display::fmt(&self.0.escape_debug(), f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_display_equals_escape_debug() {
        for s in [
            "models/exp-1",
            "",
            "a\"b",
            "it's",
            "tab\there",
            "back\\slash",
            "ünï",
            "\u{7f}x",
            "\u{200b}z",
        ] {
            assert_eq!(
                Escaped(s).to_string(),
                s.escape_debug().to_string(),
                "{s:?}"
            );
        }
    }

    fn deny(reason: Reason) -> Decision {
        Decision::deny("datasets.write", "datasets/pii/x", reason)
    }

    #[test]
    fn explanations_are_pinned() {
        let cases = [
            (
                deny(Reason::OutsideScopes {
                    scopes: vec!["Inference.Invoke".into()],
                }),
                "denied: datasets.write on datasets/pii/x is outside scope Inference.Invoke",
            ),
            (
                deny(Reason::OutsideScopes {
                    scopes: vec!["A".into(), "B".into()],
                }),
                "denied: datasets.write on datasets/pii/x is outside scopes A, B",
            ),
            (
                deny(Reason::OutsideScopes { scopes: vec![] }),
                "denied: datasets.write on datasets/pii/x: the token has no scope that allows it",
            ),
            (
                deny(Reason::NoRoleGrants),
                "denied: datasets.write on datasets/pii/x: no role grants it",
            ),
            (
                deny(Reason::DeniedByRule {
                    rule: "no-guests-on-pii".into(),
                }),
                "denied: datasets.write on datasets/pii/x by rule no-guests-on-pii",
            ),
            (
                deny(Reason::UnknownAction),
                "denied: datasets.write on datasets/pii/x: unknown action",
            ),
            (
                deny(Reason::InvalidResource {
                    problem: PathProblem::DotSegment,
                }),
                "denied: datasets.write on datasets/pii/x: invalid resource ('.' or '..' segment)",
            ),
            (
                deny(Reason::SeparationOfDuties {
                    rule: "train-or-deploy".into(),
                }),
                "denied: datasets.write on datasets/pii/x: the caller holds both duties of separation rule train-or-deploy",
            ),
            (
                deny(Reason::GroupMembershipUnavailable),
                "denied: datasets.write on datasets/pii/x: group membership could not be resolved now and a group binding could decide it",
            ),
            (
                deny(Reason::GroupMembershipUnknown { overage: true }),
                "denied: datasets.write on datasets/pii/x: the token has a group overage marker and a group binding could decide it; configure a group resolver (Microsoft Graph)",
            ),
            (
                deny(Reason::GroupMembershipUnknown { overage: false }),
                "denied: datasets.write on datasets/pii/x: the token has no groups claim and a group binding could decide it; if the app registration emits group claims, set groups_claim_emitted (a missing claim then means no groups), else configure a group resolver (Microsoft Graph)",
            ),
            (
                deny(Reason::StepUpRequired {
                    requirement: "requirements:pii-needs-c1".into(),
                    auth_context: "c1".into(),
                    claims: r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#.into(),
                }),
                "step-up required: datasets.write on datasets/pii/x needs authentication context c1 (requirements:pii-needs-c1)",
            ),
            (
                deny(Reason::StepUpNotPossible {
                    requirement: "role:release-manager".into(),
                    auth_context: "c2".into(),
                }),
                "denied: datasets.write on datasets/pii/x needs authentication context c2 (role:release-manager), and the client cannot perform step-up (no cp1 capability)",
            ),
            (
                deny(Reason::RequirementNotMet {
                    requirement: "grant:pipeline#0".into(),
                    detail: "the client application is not one of its client_apps".into(),
                }),
                "denied: datasets.write on datasets/pii/x: requirement grant:pipeline#0 not met: the client application is not one of its client_apps",
            ),
            (
                Decision::allow(
                    "training.submit",
                    "models/llama-3",
                    vec![
                        Match {
                            binding: "group:g1".into(),
                            role: "ml-engineer".into(),
                            grant: "ml-engineer#0".into(),
                            tenant: None,
                        },
                        Match {
                            binding: "app_role:ML.Admin".into(),
                            role: "ml-admin".into(),
                            grant: "ml-engineer#0".into(),
                            tenant: Some(
                                crate::TenantId::parse("3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")
                                    .unwrap(),
                            ),
                        },
                    ],
                ),
                "allowed: training.submit on models/llama-3 by grant ml-engineer#0 (role ml-engineer via group:g1; role ml-admin via app_role:ML.Admin trusted for tenant 3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f)",
            ),
        ];
        for (decision, line) in cases {
            assert_eq!(decision.explain(), line);
        }
    }

    #[test]
    fn explanation_is_one_line_whatever_the_input() {
        let d = Decision::deny("x.y\nz", "a\r\nSet-Cookie: 1", Reason::UnknownAction);
        assert!(!d.explain().contains('\n'));
        assert!(!d.explain().contains('\r'));
    }

    #[test]
    fn serializes_with_reason_code() {
        let d = deny(Reason::DeniedByRule {
            rule: "no-guests-on-pii".into(),
        });
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"effect":"deny","action":"datasets.write","resource":"datasets/pii/x","reason":{"code":"denied_by_rule","rule":"no-guests-on-pii"},"matched":[]}"#
        );
        assert_eq!(d.denied_by(), Some("no-guests-on-pii"));
        assert_eq!(d.reason.code(), "denied_by_rule");
        let d = deny(Reason::InvalidResource {
            problem: PathProblem::EmptySegment,
        });
        assert_eq!(
            serde_json::to_value(&d).unwrap()["reason"],
            serde_json::json!({"code": "invalid_resource", "problem": "empty_segment"})
        );
    }

    #[test]
    fn step_up_serializes_its_claims_request_and_no_header() {
        let d = deny(Reason::StepUpRequired {
            requirement: "requirements:pii-needs-c1".into(),
            auth_context: "c1".into(),
            claims: auth_context_claims("c1"),
        });
        assert_eq!(d.effect, Effect::Deny);
        assert_eq!(d.reason.code(), "step_up_required");
        assert_eq!(d.denied_by(), Some("requirements:pii-needs-c1"));
        assert_eq!(
            serde_json::to_value(&d).unwrap()["reason"],
            serde_json::json!({
                "code": "step_up_required",
                "requirement": "requirements:pii-needs-c1",
                "auth_context": "c1",
                "claims": r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#,
            })
        );
        // The header is the HTTP edge's business: no `WWW-Authenticate` text in the data.
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("www_authenticate"), "{json}");
        assert!(!json.contains("Bearer"), "{json}");
    }

    #[test]
    fn echoed_input_is_bounded() {
        let long = "é".repeat(MAX_RESOURCE_LEN);
        let d = Decision::deny(&long, &long, Reason::UnknownAction);
        assert!(d.action.len() <= MAX_RESOURCE_LEN);
        assert!(d.resource.len() <= MAX_RESOURCE_LEN);
    }
}
