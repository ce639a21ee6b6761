//! The least-privilege policy engine: who may train, deploy and invoke what.
//!
//! A policy is a versioned TOML (or JSON) document. Loading it validates everything and
//! compiles it into lookup tables ([`CompiledPolicy`]); deciding is then a pure,
//! infallible function of a verified [`Principal`](crate::Principal), an action and a
//! resource, returning a [`Decision`](crate::decision::Decision) that says why.
//!
//! ```
//! use entra_governor::policy::Policy;
//! use entra_governor::{GroupId, TokenGroups, ObjectId, Principal, TenantId};
//!
//! let policy = Policy::from_toml_str(r#"
//! version = 1
//!
//! [roles.inference-user]
//! grants = [{ actions = ["inference.invoke", "models.read"], resources = ["models/llama-*"] }]
//!
//! [roles.ml-engineer]
//! include = ["inference-user"]
//! grants = [
//!   { actions = ["training.*"], resources = ["models/**"] },
//!   { actions = ["datasets.read"], resources = ["datasets/public/**"] },
//! ]
//!
//! [[bindings]]
//! group = "0b1f2e3d-4c5b-4a69-8877-665544332211"
//! roles = ["ml-engineer"]
//!
//! [scopes]
//! "Inference.Invoke" = ["inference.*", "models.read"]
//! "Training.Manage" = ["training.*", "datasets.read"]
//!
//! [[deny]]
//! name = "no-guests-on-pii"
//! when = { guest = true }
//! actions = ["*"]
//! resources = ["datasets/pii/**"]
//! "#)?;
//! assert!(policy.lint().is_clean());
//! let compiled = policy.compiled();
//!
//! let tenant = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47")?;
//! let user = ObjectId::parse("690222be-ff1a-4d56-abd1-7e4f7d38e474")?;
//! let engineers = GroupId::parse("0b1f2e3d-4c5b-4a69-8877-665544332211")?;
//!
//! // A data scientist, through an app that obtained only Inference.Invoke.
//! let caller = Principal::builder(tenant, user)
//!     .scopes(["Inference.Invoke"])
//!     .groups(TokenGroups::Listed(vec![engineers]))
//!     .build();
//!
//! let ok = compiled.decide(&caller, "inference.invoke", "models/llama-3-70b");
//! assert!(ok.is_allowed());
//! assert_eq!(ok.matched[0].grant, "inference-user#0");
//!
//! let no = compiled.decide(&caller, "training.submit", "models/llama-3-70b");
//! assert!(!no.is_allowed());
//! assert_eq!(
//!     no.explain(),
//!     "denied: training.submit on models/llama-3-70b is outside scope Inference.Invoke"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The document
//!
//! | key | meaning |
//! |---|---|
//! | `version` | `1` |
//! | `on_group_overage` | `"deny"` (default) or `"evaluate_without_groups"`: see [`OnGroupOverage`] |
//! | `[actions] custom` | actions added to the built-in [`BUILTIN_ACTIONS`] (`family.verb`) |
//! | `[roles.<name>]` | `grants = [{ actions, resources }]`, `include = ["other-role"]` (no cycles) |
//! | `[[bindings]]` | one subject (`group`, `app_role`, `app_permission`, `directory_role`, `tenant`, `principal = { tenant, object }`), `roles`, optional `tenants` (claim-value subjects), `guests`, `kinds`, `name` |
//! | `[scopes]` | `"<scope>" = [action specs]`: the scope ceiling of delegated calls |
//! | `[[deny]]` | `name`, optional `when`, `actions`, optional `except_actions`, `resources` |
//! | `[[separation_of_duties]]` | `name`, two `actions`, `resources` |
//! | `mfa_auth_context` | `"c2"`: the authentication context whose Conditional Access policy requires MFA |
//! | `requires = { … }` | on a role (`[roles.x] requires`) or a grant (`{ actions, resources, requires }`): Conditional Access requirements |
//! | `[[requirements]]` | `name`, `actions`, `resources`, `requires`: requirements on every allow of matching requests |
//!
//! Action specs are `family.verb`, `family.*` or `*` ([`action`]); resource patterns are
//! described in [`pattern`].
//!
//! ## Bindings
//!
//! A binding reads one Entra fact, compared byte for byte (no case folding, no Unicode
//! normalisation; GUIDs are stored in lower case as Entra emits them):
//!
//! - `group`: a group object id, from the token's `groups` claim or a resolver
//!   ([`MembershipSource`]);
//! - `app_role`: a value of the `roles` claim of a **user** token (an app role assignment);
//! - `app_permission`: a value of the `roles` claim of an **app-only** token (an
//!   application permission). The two are distinct: a binding that wants both says both
//!   (`app_role = "X"` and `app_permission = "X"` in one binding);
//! - `directory_role`: a directory role template id from `wids`;
//! - `tenant`: every caller whose token was issued in that tenant (`tid`);
//! - `principal`: one user or service principal, `tid` + `oid`.
//!
//! There is no way to bind an e-mail address, UPN or display name.
//!
//! ### Whose administrators a binding trusts
//!
//! `app_role`, `app_permission` and `directory_role` values are set by the administrators
//! of the tenant that issued the token: in a multi-tenant API a partner tenant's admin
//! assigns your app roles to their own users, grants your app permissions to their own
//! client apps, and their Global Administrator carries the same `wids` GUID as yours.
//! Such a binding therefore names the tenants whose values it trusts:
//!
//! ```toml
//! [[bindings]]
//! directory_role = "62e90394-69f5-4237-9190-012177145e10"   # Global Administrator
//! tenants = ["72f988bf-86f1-41af-91ab-2d7cd011db47"]         # ours, not anyone's
//! roles = ["auditor"]
//! ```
//!
//! An unqualified claim-value binding applies whatever tenant issued the token; a
//! [`Governor`](crate::Governor) that accepts exactly one tenant reads it as that tenant,
//! and one that accepts several tenants, or any tenant, refuses the policy
//! ([`ConfigError::UnqualifiedClaimBindings`](crate::ConfigError::UnqualifiedClaimBindings),
//! listing [`CompiledPolicy::unqualified_claim_bindings`]). [`Policy::lint`] reports
//! them; [`Policy::lint_for`] lints for one or several tenants. `tenants` is refused on
//! `group`, `tenant` and `principal` bindings: object ids are unique across tenants. An
//! allow through a qualified binding names the tenant
//! ([`Match::tenant`](crate::decision::Match::tenant)).
//!
//! ### Guests
//!
//! A caller is a guest when its token says `acct = 1` or its `idp` is another tenant or
//! provider. Legacy internal guests carry no `idp`: only the `acct` optional claim shows
//! them, so guest rules need it configured on the app registration, and
//! [`GovernorBuilder::acct_claim_emitted`](crate::GovernorBuilder::acct_claim_emitted)
//! makes a user token without it fail closed (an unknown guest status is a guest to
//! bindings and meets every `guest` condition of deny rules).
//!
//! Guests get nothing from a binding unless it says `guests = true`. `group`,
//! `directory_role` and `tenant` bindings apply to users unless `kinds` says otherwise
//! (`kinds = ["user", "application"]`): Entra hands app-only tokens to any application
//! that asks, so applications are only admitted on purpose. `principal` bindings apply to
//! whichever kind the principal is.
//!
//! ## Scope ceilings
//!
//! A delegated (user) call may do what its roles grant **and** some scope in its `scp`
//! allows. A user with training rights calling through an app that only obtained
//! `Inference.Invoke` cannot submit training. Scopes without an entry allow nothing; a
//! policy without `[scopes]` denies every delegated call. App-only calls have no scopes:
//! their app permissions (and any other binding admitting applications) govern them.
//!
//! ## Deny rules
//!
//! A deny rule overrides every grant. `when` narrows the callers it applies to; all
//! given conditions must hold:
//!
//! ```toml
//! [[deny]]
//! name = "partner-tenant-inference-only"
//! when = { tenant = "3c4d5e6f-0000-4000-8000-000000000001" }  # also: tenant_in, tenant_not_in, guest, kind
//! actions = ["*"]
//! except_actions = ["inference.*"]   # "may only inference.*"
//! resources = ["**"]
//! ```
//!
//! ## Separation of duties
//!
//! `actions = ["training.submit", "models.deploy"], resources = ["models/prod-*"]`: a
//! caller whose roles give both (each on some resource overlapping the patterns) is
//! denied both on those resources, until someone removes one of the roles. [`Policy::lint`]
//! reports binding combinations that lead there.
//!
//! ## Group overage
//!
//! Past 200 groups a token carries an overage marker instead of `groups`, and some app
//! registrations emit no groups at all (Entra also omits the claim for a user in no
//! group, unless told otherwise:
//! [`GovernorBuilder::groups_claim_emitted`](crate::GovernorBuilder::groups_claim_emitted)).
//! Such a caller's group bindings cannot be evaluated from the token: with
//! `on_group_overage = "deny"` (the default) a decision that a group binding could change
//! is denied with [`Reason::GroupMembershipUnknown`](crate::decision::Reason) (HTTP 403,
//! distinct from "no role grants it", its explanation naming the fix). Resolve membership
//! for [`CompiledPolicy::bound_group_ids`] and call [`CompiledPolicy::decide_with`] with
//! [`MembershipSource::Resolved`]; when the lookup failed, [`MembershipSource::Unavailable`]
//! gives [`Reason::GroupMembershipUnavailable`](crate::decision::Reason) (HTTP 503, to be
//! retried).
//!
//! ## Conditional Access requirements and step-up
//!
//! Some operations need a stronger or more recent sign-in than the token shows. A
//! `requires` block lists what the token must prove; every given entry must hold:
//!
//! | key | holds when | a claims challenge can fix it |
//! |---|---|---|
//! | `mfa = true` | `amr` has `mfa` or `ngcmfa` (v1 tokens), or `acrs` has `mfa_auth_context` | through `mfa_auth_context`, if set |
//! | `auth_context = "c1"` | `acrs` has `c1` (`c1`..`c99`; Entra uses `c1`..`c25`) | yes, through `c1` |
//! | `max_auth_age = "4h"` | `auth_time` is present and at most that old (`s`, `m`, `h`, `d`; at most `30d`) | through the block's `auth_context`, else `mfa_auth_context` |
//! | `client_auth = "certificate"` | `azpacr`/`appidacr` is `2`; `"secret"` accepts `1` or `2` | no |
//! | `client_apps = ["<guid>", …]` | `azp`/`appid` is one of them | no |
//!
//! ```toml
//! mfa_auth_context = "c2"          # top level: the context whose CA policy requires MFA
//!
//! [roles.release-manager]
//! requires = { mfa = true }        # every use of this role's own grants
//! grants = [{ actions = ["models.deploy"], resources = ["models/prod-*"] }]
//!
//! [roles.training-pipeline]
//! grants = [
//!   # one grant
//!   { actions = ["training.*"], resources = ["models/**"], requires = { client_auth = "certificate" } },
//! ]
//!
//! [[requirements]]                 # every allow of matching requests, whatever the role
//! name = "pii-needs-c1"
//! actions = ["datasets.read", "training.*"]
//! resources = ["datasets/pii/**"]
//! requires = { auth_context = "c1", max_auth_age = "4h" }
//! ```
//!
//! Semantics, and the choices behind them:
//!
//! - Requirements are checked **only after the policy would otherwise allow**: deny
//!   rules, scope ceilings, grants and separation of duties come first, and a deny stays
//!   a deny (never a step-up).
//! - A role's `requires` applies to the role's **own** grants, wherever the role is held
//!   from (directly or through `include`); a role that includes it does not pass its own
//!   requirements on to the included role's grants. A grant's `requires` applies to that
//!   grant. The request is allowed when **some** grant that covers it has its role and
//!   grant requirements met and every `[[requirements]]` rule covering the request is met:
//!   a role without requirements that also grants the request wins, and the decision
//!   names that grant.
//! - Otherwise the decision is a deny whose reason says what to do. When every path fails
//!   a requirement no challenge can fix (client authentication, client app, MFA without
//!   `mfa_auth_context`, an app-only caller needing an interactive sign-in), the reason
//!   is [`Reason::RequirementNotMet`](crate::decision::Reason::RequirementNotMet) (HTTP
//!   403). When some path can be fixed by a fresh sign-in through an authentication
//!   context, it is [`Reason::StepUpRequired`](crate::decision::Reason::StepUpRequired)
//!   for a client whose token has `cp1` in `xms_cc` (any letter case), carrying the claims
//!   request `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, from which the
//!   HTTP edge builds the `WWW-Authenticate` value of the HTTP 401 for the governor's
//!   cloud; for any other client it is
//!   [`Reason::StepUpNotPossible`](crate::decision::Reason::StepUpNotPossible) (HTTP 403):
//!   it could not react to a challenge. A claims request names one context; when two are
//!   missing, the client steps up twice.
//! - Requirements are labelled `requirements:<name>`, `role:<name>` or
//!   `grant:<role>#<i>` in decisions and audit events
//!   ([`Decision::denied_by`](crate::decision::Decision::denied_by)).
//! - `mfa = true` without `mfa_auth_context` loads: v1 tokens can prove MFA through
//!   `amr`. v2 tokens carry no `amr`, so for them it can only be
//!   [`RequirementNotMet`](crate::decision::Reason::RequirementNotMet), whose detail says
//!   so. Setting `mfa_auth_context` (and a Conditional Access policy requiring MFA on
//!   that context in Entra) is what makes MFA work for v2 tokens.
//! - `max_auth_age` steps up through an authentication context: for the fresh sign-in to
//!   actually happen, that context's Conditional Access policy should set sign-in
//!   frequency to "every time". A token without `auth_time` is not fresh.
//! - `client_auth` and `client_apps` apply to user and app-only tokens alike (`azpacr` /
//!   `appidacr` describe the calling client in both).
//! - The clock is read once per decision, and only when a `max_auth_age` applies; a
//!   policy with no requirements costs one branch per decision.
//!   [`CompiledPolicy::decide_at`] decides at a given time.
//! - [`Permissions`] lists the requirements of each grant
//!   ([`EffectiveGrant::requires`]) and the `[[requirements]]` rules.

use std::path::Path;
use std::sync::Arc;

pub mod action;
mod compile;
mod compiled;
mod decide;
mod error;

pub mod ident;
mod lint;
pub mod model;
pub mod pattern;
mod permissions;
mod requirement;

pub use action::{BUILTIN_ACTIONS, MAX_ACTIONS};
pub use compiled::{CompiledPolicy, MAX_BINDINGS, MAX_ROLES, UnqualifiedBinding};
pub use decide::MembershipSource;
#[allow(deprecated)]
pub use decide::MembershipView;
pub use error::{PolicyError, PolicyErrorKind};
pub use ident::{IdentifierProblem, Script};
pub use lint::{LintCode, LintReport, LintWarning, TenantScope};
pub use model::{OnGroupOverage, PolicyDocument, RequirementRuleDef, RequiresDef};
pub use pattern::{PathProblem, Pattern};
#[allow(deprecated)]
pub use permissions::GroupMembership;
pub use permissions::{
    DenyView, EffectiveGrant, MembershipKnowledge, Permissions, RequirementRuleView, RoleAssignment,
};
pub use requirement::{MAX_AUTH_AGE_SECS, RequirementView};

/// A validated, compiled policy, with its source document for linting and tooling.
#[derive(Debug, Clone)]
pub struct Policy {
    document: PolicyDocument,
    origin: Option<String>,
    compiled: Arc<CompiledPolicy>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = String::with_capacity(64);
    for b in digest.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

impl Policy {
    /// Loads a policy from TOML text.
    pub fn from_toml_str(source: &str) -> Result<Self, PolicyError> {
        Self::load_toml(source, None)
    }

    /// Loads a policy from JSON text (the same shape as the TOML document).
    pub fn from_json_str(source: &str) -> Result<Self, PolicyError> {
        Self::load_json(source, None)
    }

    /// Loads a policy file: JSON when the extension is `.json`, TOML otherwise. Errors
    /// name the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| {
            PolicyError::new(
                "",
                PolicyErrorKind::Io {
                    kind: e.kind(),
                    message: e.to_string(),
                },
            )
            .with_origin(Some(&origin))
        })?;
        if path.extension().is_some_and(|e| e == "json") {
            Self::load_json(&source, Some(&origin))
        } else {
            Self::load_toml(&source, Some(&origin))
        }
    }

    /// Validates and compiles a document built in code. Its version hash is taken over
    /// its canonical JSON form.
    pub fn from_document(document: PolicyDocument) -> Result<Self, PolicyError> {
        let json = serde_json::to_vec(&document).expect("a policy document serializes");
        Self::build(document, sha256_hex(&json), None)
    }

    fn load_toml(source: &str, origin: Option<&str>) -> Result<Self, PolicyError> {
        let document: PolicyDocument = toml::from_str(source).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(source, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            PolicyError::new(
                "",
                PolicyErrorKind::Syntax {
                    line,
                    column,
                    message: e.message().to_owned(),
                },
            )
            .with_origin(origin)
        })?;
        Self::build(document, sha256_hex(source.as_bytes()), origin)
    }

    fn load_json(source: &str, origin: Option<&str>) -> Result<Self, PolicyError> {
        let document: PolicyDocument = serde_json::from_str(source).map_err(|e| {
            let known = e.line() > 0;
            PolicyError::new(
                "",
                PolicyErrorKind::Syntax {
                    line: known.then_some(e.line()),
                    column: known.then_some(e.column()),
                    message: strip_json_position(&e.to_string()),
                },
            )
            .with_origin(origin)
        })?;
        Self::build(document, sha256_hex(source.as_bytes()), origin)
    }

    fn build(
        document: PolicyDocument,
        version_hash: String,
        origin: Option<&str>,
    ) -> Result<Self, PolicyError> {
        let compiled =
            compile::compile(&document, version_hash).map_err(|e| e.with_origin(origin))?;
        Ok(Self {
            document,
            origin: origin.map(str::to_owned),
            compiled: Arc::new(compiled),
        })
    }

    /// The compiled policy, ready to decide; clone the `Arc` freely.
    pub fn compiled(&self) -> Arc<CompiledPolicy> {
        Arc::clone(&self.compiled)
    }

    /// The document as loaded.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The file the policy was loaded from, if any.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Lower-case hex SHA-256 of the policy source; see [`CompiledPolicy::version_hash`].
    pub fn version_hash(&self) -> &str {
        self.compiled.version_hash()
    }

    /// Warnings about over-broad, unused or conflicting entries; see [`LintCode`]. Not
    /// knowing how many tenants the policy serves, it reports every claim-value binding
    /// without `tenants` ([`LintCode::ClaimBindingWithoutTenants`]).
    pub fn lint(&self) -> LintReport {
        lint::lint(&self.document, &self.compiled, None)
    }

    /// Like [`lint`](Self::lint), for a governor that serves `scope`: one tenant
    /// (unqualified claim bindings mean that tenant, and are not reported) or several
    /// (guest bindings are reported too: [`LintCode::GuestsAcrossTenants`]).
    pub fn lint_for(&self, scope: TenantScope) -> LintReport {
        lint::lint(&self.document, &self.compiled, Some(scope))
    }
}

/// serde_json appends " at line L column C"; the error carries those separately.
fn strip_json_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests;
