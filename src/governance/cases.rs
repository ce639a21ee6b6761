//! Policy test files: cases kept next to the policy and run in CI
//! (`entra-governor test policy.toml policy.cases.toml`).
//!
//! Each case names a caller, a request and the outcome the policy must give it. A case
//! holds when the decision has the expected outcome and, when given, the expected reason
//! code, grant and denying rule. A case that does not hold reports the explanation of the
//! decision actually made beside the expectation.
//!
//! ```
//! use entra_governor::governance::cases::{CaseFile, run_cases};
//! use entra_governor::policy::Policy;
//!
//! let policy = Policy::from_toml_str(r#"
//! version = 1
//! [roles.data-scientist]
//! grants = [{ actions = ["training.*"], resources = ["models/exp-*"] }]
//! [[bindings]]
//! group = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"
//! roles = ["data-scientist"]
//! [scopes]
//! "Training.Manage" = ["training.*"]
//! "Inference.Invoke" = ["inference.*"]
//! "#)?;
//!
//! let cases = CaseFile::from_toml_str(r#"
//! version = 1
//!
//! [[case]]
//! name = "data scientists train research models"
//! action = "training.submit"
//! resource = "models/exp-1"
//! expect = "allow"
//! grant = "data-scientist#0"
//! [case.caller]
//! tenant = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"
//! object = "690222be-ff1a-4d56-abd1-7e4f7d38e474"
//! groups = ["5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"]
//! scopes = ["Training.Manage"]
//!
//! [[case]]
//! name = "a chat app's token cannot train"
//! action = "training.submit"
//! resource = "models/exp-1"
//! expect = "deny"
//! reason = "outside_scopes"
//! claims = '''{
//!   "ver": "2.0", "tid": "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d",
//!   "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "sub": "pairwise-subject",
//!   "azp": "75dbe77f-10a3-4e59-85fd-8c127544f17c", "scp": "Inference.Invoke",
//!   "groups": ["5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"]
//! }'''
//! "#)?;
//!
//! let report = run_cases(&policy, &cases);
//! assert_eq!((report.cases, report.passed, report.failed), (2, 2, 0));
//! assert_eq!(report.results[1].actual, "deny, reason outside_scopes");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The file
//!
//! | key | meaning |
//! |---|---|
//! | `version` | `1` |
//! | `groups_claim_emitted`, `acct_claim_emitted` | optional, `false` by default: the governor settings of these names, for cases given as `claims` ([`ClaimsSettings`]) |
//! | `[[case]]` | one case; at least one, names unique |
//! | `case.name` | what the case is about, shown in the report |
//! | `case.action`, `case.resource` | the request |
//! | `case.expect` | `"allow"`, `"deny"` or `"step_up"` ([`Outcome`]) |
//! | `case.reason` | optional: the decision's reason code ([`Reason::code`]: `"denied_by_rule"`, `"outside_scopes"`, …) |
//! | `case.grant` | optional, allows only: the grant that allows (`"ml-engineer#0"`) |
//! | `case.denied_by` | optional, denials only: the rule or requirement block that denies ([`Decision::denied_by`]) |
//! | `case.at` | optional: the decision time (RFC 3339 or Unix seconds; only `max_auth_age` reads it); the run's time by default |
//! | `[case.caller]` | the caller, described by hand: a [`CallerSpec`] |
//! | `case.claims` | instead of `caller`: the claims of a decoded access token, a JSON string or an inline table |
//!
//! `step_up` is a denial ([`Reason::StepUpRequired`]) that the client can turn into an
//! allow by signing in again; `deny` is every other denial, so a case expecting `deny`
//! does not hold when the caller would only be sent back for a stronger sign-in.
//!
//! A file that does not have this shape is a [`CaseFileError`] naming the key path
//! (`case[2].caller.tenant`); a case whose caller cannot be built is reported as a
//! failing case, with the reason.
//!
//! [`Reason::code`]: crate::decision::Reason::code
//! [`Reason::StepUpRequired`]: crate::decision::Reason::StepUpRequired

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::caller::{CallerError, CallerSpec, ClaimsSettings, Timestamp, claims_object};
use crate::decision::{Decision, Reason};
use crate::policy::{CompiledPolicy, MembershipSource, Policy};
use crate::principal::Principal;

/// The outcome a case expects; see [the module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The request is allowed.
    Allow,
    /// The request is denied, and no fresh sign-in would change that.
    Deny,
    /// The request is denied until the client signs in again with a stronger or more
    /// recent authentication ([`Reason::StepUpRequired`]).
    StepUp,
}

impl Outcome {
    /// The outcome of a decision.
    pub fn of(decision: &Decision) -> Self {
        match decision.reason {
            _ if decision.is_allowed() => Self::Allow,
            Reason::StepUpRequired { .. } => Self::StepUp,
            _ => Self::Deny,
        }
    }

    /// `"allow"`, `"deny"` or `"step_up"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::StepUp => "step_up",
        }
    }
}

/// One case of a policy test file; the keys are listed in [the module docs](self).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Case {
    /// What the case is about; unique in its file.
    pub name: String,
    /// The requested action.
    pub action: String,
    /// The requested resource.
    pub resource: String,
    /// The expected outcome.
    pub expect: Outcome,
    /// The expected reason code ([`Reason::code`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For an allow: the grant expected to allow (`<role>#<index>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// For a denial: the rule or requirement block expected to deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    /// The decision time; the run's time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The caller, described by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<CallerSpec>,
    /// Instead of `caller`: a decoded access token's claims (a JSON object once loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<serde_json::Value>,
}

impl Case {
    /// The principal this case's caller stands for (not verified: see
    /// [`caller`](super::caller)).
    ///
    /// # Errors
    ///
    /// The [`CallerError`] of [`CallerSpec::to_principal`] or
    /// [`principal_from_claims_with`](super::caller::principal_from_claims_with).
    pub fn principal(&self, settings: &ClaimsSettings) -> Result<Principal, CallerError> {
        match (&self.caller, &self.claims) {
            (Some(spec), None) => spec.to_principal(),
            (None, Some(claims)) => super::caller::principal_from_claims_with(claims, settings),
            _ => Err(CallerError::Inconsistent {
                field: "caller",
                reason: "a case has either caller or claims",
            }),
        }
    }

    /// The expectation, as the report shows it: `deny, reason denied_by_rule, denied_by
    /// no-guests-on-pii`.
    pub fn expectation(&self) -> String {
        let mut text = self.expect.as_str().to_owned();
        let parts = [
            ("reason", &self.reason),
            ("grant", &self.grant),
            ("denied_by", &self.denied_by),
        ];
        for (key, value) in parts {
            if let Some(value) = value {
                text.push_str(&format!(", {key} {value}"));
            }
        }
        text
    }

    /// True when `decision` is what the case expects.
    pub fn holds(&self, decision: &Decision) -> bool {
        let grant = decision.matched.first().map(|m| m.grant.as_str());
        Outcome::of(decision) == self.expect
            && self
                .reason
                .as_deref()
                .is_none_or(|r| r == decision.reason.code())
            && self.grant.as_deref().is_none_or(|g| grant == Some(g))
            && self
                .denied_by
                .as_deref()
                .is_none_or(|d| decision.denied_by() == Some(d))
    }
}

/// A decision as the report shows it, in the terms of [`Case::expectation`]: `allow,
/// grant ml-engineer#0`, `deny, reason denied_by_rule, denied_by no-guests-on-pii`.
pub fn describe(decision: &Decision) -> String {
    let outcome = Outcome::of(decision);
    let mut text = outcome.as_str().to_owned();
    if outcome != Outcome::Allow {
        text.push_str(", reason ");
        text.push_str(decision.reason.code());
    }
    if let Some(m) = decision.matched.first() {
        text.push_str(", grant ");
        text.push_str(&m.grant);
    }
    if let Some(rule) = decision.denied_by() {
        text.push_str(", denied_by ");
        text.push_str(rule);
    }
    text
}

// ------------------------------------------------------------------ errors

/// A policy test file that could not be loaded: where (file, key path) and what.
///
/// Displays as `policy.cases.toml: case[1].caller.tenant (case "guests never read
/// PII"): malformed tenant id: …`, or `policy.cases.toml:12:3: …` for TOML syntax errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFileError {
    origin: Option<String>,
    key_path: String,
    case: Option<String>,
    // Boxed: errors travel in `Result`s, and the kinds carry several strings.
    kind: Box<CaseFileErrorKind>,
}

impl CaseFileError {
    fn new(key_path: impl Into<String>, kind: CaseFileErrorKind) -> Self {
        Self {
            origin: None,
            key_path: key_path.into(),
            case: None,
            kind: Box::new(kind),
        }
    }

    fn in_case(mut self, name: Option<&str>) -> Self {
        self.case = name.map(str::to_owned);
        self
    }

    fn with_origin(mut self, origin: Option<&str>) -> Self {
        self.origin = origin.map(str::to_owned);
        self
    }

    /// The file, when loaded from one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The key path of the offending value (`case[1].caller.tenant`); empty for syntax and
    /// I/O errors.
    pub fn key_path(&self) -> &str {
        &self.key_path
    }

    /// The name of the case at fault, when it has one (and the problem is not its
    /// name).
    pub fn case_name(&self) -> Option<&str> {
        self.case.as_deref()
    }

    /// What was wrong.
    pub fn kind(&self) -> &CaseFileErrorKind {
        &self.kind
    }
}

impl fmt::Display for CaseFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origin = self.origin.as_deref().unwrap_or("cases");
        match &*self.kind {
            CaseFileErrorKind::Syntax {
                line: Some(line),
                column: Some(column),
                ..
            } => write!(f, "{origin}:{line}:{column}: {}", self.kind),
            _ if self.key_path.is_empty() => write!(f, "{origin}: {}", self.kind),
            _ => match &self.case {
                Some(name) => write!(
                    f,
                    "{origin}: {} (case {name:?}): {}",
                    self.key_path, self.kind
                ),
                None => write!(f, "{origin}: {}: {}", self.key_path, self.kind),
            },
        }
    }
}

impl std::error::Error for CaseFileError {}

/// The kinds of [`CaseFileError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseFileErrorKind {
    /// The file could not be read.
    #[error("cannot read: {message}")]
    Io {
        /// The I/O error kind.
        kind: std::io::ErrorKind,
        /// The I/O error message.
        message: String,
    },
    /// Not TOML.
    #[error("{message}")]
    Syntax {
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// A key of the wrong type, an unknown key, a missing key, a malformed id.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// `version` is not one this crate reads.
    #[error("unsupported version {found}: expected 1")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// No `[[case]]`: a test file that tests nothing is a mistake.
    #[error("no cases: add at least one [[case]]")]
    NoCases,
    /// Two cases of one name.
    #[error("duplicate case name {name:?} (first at {first})")]
    DuplicateName {
        /// The name.
        name: String,
        /// The key path of the first case of that name.
        first: String,
    },
    /// A case without a name.
    #[error("a case needs a name")]
    EmptyName,
    /// A case with neither `caller` nor `claims`, or with both.
    #[error("a case has either [case.caller] or claims: {found}")]
    Caller {
        /// `"neither"` or `"both"`.
        found: &'static str,
    },
    /// `claims` is not a JSON object (or a string holding one).
    #[error("{message}")]
    Claims {
        /// What is wrong.
        message: &'static str,
    },
    /// An expectation that no decision can meet (a grant on a denial, `reason = "allow"`
    /// on `expect = "deny"`).
    #[error("{message}")]
    Contradiction {
        /// Why.
        message: String,
    },
}

// ------------------------------------------------------------------ the file

/// The document as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    version: u32,
    #[serde(default)]
    groups_claim_emitted: bool,
    #[serde(default)]
    acct_claim_emitted: bool,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// A loaded, checked policy test file.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseFile {
    origin: Option<String>,
    settings: ClaimsSettings,
    cases: Vec<Case>,
}

impl CaseFile {
    /// Loads a test file from TOML text.
    ///
    /// # Errors
    ///
    /// A [`CaseFileError`] naming the key path at fault.
    pub fn from_toml_str(source: &str) -> Result<Self, CaseFileError> {
        Self::load(source, None)
    }

    /// Loads a test file; errors name the file.
    ///
    /// # Errors
    ///
    /// A [`CaseFileError`]: the file cannot be read, or as
    /// [`from_toml_str`](Self::from_toml_str).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, CaseFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| {
            let kind = CaseFileErrorKind::Io {
                kind: e.kind(),
                message: e.to_string(),
            };
            CaseFileError::new("", kind).with_origin(Some(&origin))
        })?;
        Self::load(&source, Some(&origin))
    }

    /// The cases, in file order.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// The token settings that `claims` cases are read with.
    pub fn claims_settings(&self) -> &ClaimsSettings {
        &self.settings
    }

    /// The file the cases came from, when loaded from one.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    fn load(source: &str, origin: Option<&str>) -> Result<Self, CaseFileError> {
        let mut document = parse(source).map_err(|e| e.with_origin(origin))?;
        check(&mut document).map_err(|e| e.with_origin(origin))?;
        let settings = ClaimsSettings::default()
            .groups_claim_emitted(document.groups_claim_emitted)
            .acct_claim_emitted(document.acct_claim_emitted);
        Ok(Self {
            origin: origin.map(str::to_owned),
            settings,
            cases: document.cases,
        })
    }
}

fn parse(source: &str) -> Result<Document, CaseFileError> {
    let deserializer = toml::Deserializer::parse(source).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(source, s.start)).unzip();
        let message = e.message().to_owned();
        CaseFileError::new(
            "",
            CaseFileErrorKind::Syntax {
                line,
                column,
                message,
            },
        )
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let message = e.inner().message().to_owned();
        let path = e.path().to_string();
        let name = case_name_at(source, &path);
        CaseFileError::new(path, CaseFileErrorKind::Invalid { message }).in_case(name.as_deref())
    })
}

/// The `name` of the case a key path (`case[3].caller.tenant`) points into, read from the
/// TOML alone: the case did not deserialize.
fn case_name_at(source: &str, path: &str) -> Option<String> {
    let rest = path.strip_prefix("case[")?;
    let index: usize = rest[..rest.find(']')?].parse().ok()?;
    let table: toml::Table = toml::from_str(source).ok()?;
    let name = table
        .get("case")?
        .as_array()?
        .get(index)?
        .get("name")?
        .as_str()?;
    (!path.ends_with("].name")).then(|| name.to_owned())
}

fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
    (line, column)
}

/// The rules serde cannot state: a version, some cases, unique names, one caller each,
/// expectations some decision can meet; `claims` strings parsed.
fn check(document: &mut Document) -> Result<(), CaseFileError> {
    if document.version != 1 {
        let kind = CaseFileErrorKind::UnsupportedVersion {
            found: document.version,
        };
        return Err(CaseFileError::new("version", kind));
    }
    if document.cases.is_empty() {
        return Err(CaseFileError::new("case", CaseFileErrorKind::NoCases));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, case) in document.cases.iter().enumerate() {
        check_case(case).map_err(|(key, kind)| {
            let named = !matches!(kind, CaseFileErrorKind::EmptyName);
            CaseFileError::new(at(i, key), kind).in_case(named.then_some(&*case.name))
        })?;
        if let Some(first) = seen.insert(&case.name, i) {
            let name = case.name.clone();
            let first = at(first, "");
            let kind = CaseFileErrorKind::DuplicateName { name, first };
            return Err(CaseFileError::new(at(i, ".name"), kind));
        }
    }
    for (i, case) in document.cases.iter_mut().enumerate() {
        if let Some(claims) = case.claims.take() {
            let claims = claims_object(claims).map_err(|message| {
                CaseFileError::new(at(i, ".claims"), CaseFileErrorKind::Claims { message })
                    .in_case(Some(&case.name))
            })?;
            case.claims = Some(claims);
        }
    }
    Ok(())
}

fn at(i: usize, key: &str) -> String {
    format!("case[{i}]{key}")
}

/// One case's own rules: the key (below the case) and the problem.
fn check_case(case: &Case) -> Result<(), (&'static str, CaseFileErrorKind)> {
    if case.name.trim().is_empty() {
        return Err((".name", CaseFileErrorKind::EmptyName));
    }
    match (&case.caller, &case.claims) {
        (None, None) => return Err(("", CaseFileErrorKind::Caller { found: "neither" })),
        (Some(_), Some(_)) => return Err(("", CaseFileErrorKind::Caller { found: "both" })),
        _ => {}
    }
    let contradiction =
        |key, message: String| Err((key, CaseFileErrorKind::Contradiction { message }));
    let allow = case.expect == Outcome::Allow;
    if !allow && case.grant.is_some() {
        return contradiction(".grant", "only an allow has a grant".into());
    }
    if allow && case.denied_by.is_some() {
        return contradiction(".denied_by", "an allow has no denied_by".into());
    }
    if let Some(reason) = &case.reason {
        let implied = match reason.as_str() {
            "allow" => Outcome::Allow,
            "step_up_required" => Outcome::StepUp,
            _ => Outcome::Deny,
        };
        if implied != case.expect {
            let expect = case.expect.as_str();
            return contradiction(
                ".reason",
                format!("reason {reason:?} contradicts expect = {expect:?}"),
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ running

/// The result of one case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// True when the decision was what the case expects.
    pub passed: bool,
    /// The expectation ([`Case::expectation`]).
    pub expected: String,
    /// The decision made ([`describe`]), or `"no decision"` when the caller could not be
    /// built.
    pub actual: String,
    /// The decision's explanation ([`Decision::explain`]), or why the caller could not be
    /// built.
    pub explanation: String,
    /// The decision made; absent when the caller could not be built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The results of a test file, in file order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CaseReport {
    /// The policy's [`version_hash`](Policy::version_hash).
    pub policy_version: String,
    /// How many cases ran.
    pub cases: usize,
    /// How many held.
    pub passed: usize,
    /// How many did not.
    pub failed: usize,
    /// Every case's result.
    pub results: Vec<CaseResult>,
}

impl CaseReport {
    /// True when every case held.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// The cases that did not hold.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| !r.passed)
    }
}

/// Runs every case against `policy`; cases without `at` are decided at the current
/// time.
pub fn run_cases(policy: &Policy, cases: &CaseFile) -> CaseReport {
    run_cases_at(policy, cases, Timestamp::now())
}

/// Runs every case against `policy`; cases without `at` are decided at `now`.
pub fn run_cases_at(policy: &Policy, cases: &CaseFile, now: Timestamp) -> CaseReport {
    let compiled = policy.compiled();
    let results: Vec<CaseResult> = cases
        .cases
        .iter()
        .map(|case| run_case(&compiled, case, &cases.settings, now))
        .collect();
    let passed = results.iter().filter(|r| r.passed).count();
    CaseReport {
        policy_version: policy.version_hash().to_owned(),
        cases: results.len(),
        passed,
        failed: results.len() - passed,
        results,
    }
}

/// Runs one case: decides its request for its caller (group membership from the token)
/// at its `at`, else at `now`. A caller that cannot be built fails the case.
pub fn run_case(
    policy: &CompiledPolicy,
    case: &Case,
    settings: &ClaimsSettings,
    now: Timestamp,
) -> CaseResult {
    let expected = case.expectation();
    let principal = match case.principal(settings) {
        Ok(principal) => principal,
        Err(e) => {
            return CaseResult {
                name: case.name.clone(),
                passed: false,
                expected,
                actual: "no decision".to_owned(),
                explanation: format!("the caller is invalid: {e}"),
                decision: None,
            };
        }
    };
    let at = case.at.unwrap_or(now).unix_secs();
    let decision = policy.decide_at(
        &principal,
        MembershipSource::FromToken,
        &case.action,
        &case.resource,
        at,
    );
    CaseResult {
        name: case.name.clone(),
        passed: case.holds(&decision),
        expected,
        actual: describe(&decision),
        explanation: decision.explain(),
        decision: Some(decision),
    }
}

#[cfg(test)]
mod tests;
