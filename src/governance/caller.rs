//! Entra-shaped callers for policy tests and `explain`: [`CallerSpec`] describes one by
//! hand, [`principal_from_claims`] reads the claims of a decoded access token, and
//! [`Caller`] loads either from JSON.
//!
//! **Nothing here verifies a token.** No signature, issuer, audience, lifetime, tenant
//! or client-application check is made: a [`Principal`] built here is what the governor
//! *would* see if such a token were valid, for policy tests and explanations only. Never
//! authorize a request with it; verified principals come from
//! [`Governor`](crate::Governor).
//!
//! What *is* the same as real verification is the mapping from claims to a principal:
//! claim types and duplicates are checked by the verifier's own parser, and the verifier's
//! rules decide the principal kind (`idtyp`, else no `scp` and `oid == sub`), the group
//! state (`groups`, overage markers, [`ClaimsSettings::groups_claim_emitted`]) and the
//! guest status (`acct`, `idp`, [`ClaimsSettings::acct_claim_emitted`]).
//!
//! ```
//! use entra_governor::governance::caller::{Caller, ClaimsSettings};
//! use entra_governor::{GuestStatus, PrincipalKind};
//!
//! // A caller described by hand.
//! let spec = Caller::from_json_str(r#"{
//!     "tenant": "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d",
//!     "object": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
//!     "groups": ["5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"],
//!     "scopes": ["Training.Manage"],
//!     "acrs": ["c2"],
//!     "auth_time": "2026-12-01T10:00:00Z"
//! }"#)?;
//! let user = spec.to_principal(&ClaimsSettings::default())?;
//! assert_eq!(user.scopes(), ["Training.Manage"]);
//! assert_eq!(user.kind(), PrincipalKind::User);
//!
//! // The claims of a decoded v1 token (a guest, by `acct`).
//! let claims = Caller::from_json_str(r#"{"claims": {
//!     "ver": "1.0",
//!     "tid": "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d",
//!     "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438",
//!     "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
//!     "appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c",
//!     "appidacr": "0",
//!     "scp": "Inference.Invoke Training.Manage",
//!     "amr": ["pwd", "mfa"],
//!     "acct": 1
//! }}"#)?;
//! let guest = claims.to_principal(&ClaimsSettings::default())?;
//! assert_eq!(guest.scopes(), ["Inference.Invoke", "Training.Manage"]);
//! assert_eq!(guest.guest_status(), GuestStatus::Guest);
//! assert_eq!(guest.auth_methods(), ["pwd", "mfa"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A caller by hand: [`CallerSpec`]
//!
//! | key | claim | default |
//! |---|---|---|
//! | `tenant` | `tid`, a GUID | required |
//! | `object` | `oid`, a GUID | required |
//! | `kind` | `"user"` or `"application"` (app-only, `idtyp = app`) | `"user"` |
//! | `groups` | `groups`, group object ids | `[]` |
//! | `groups_claim` | `"listed"` (the token lists `groups`, possibly none), `"overage"` (an overage marker), `"not_emitted"` (no group claim at all) | `"listed"` |
//! | `roles` | `roles`: app roles of a user, application permissions of an application | `[]` |
//! | `scopes` | `scp`, one entry a scope (users only) | `[]` |
//! | `directory_roles` | `wids`, directory role template ids | `[]` |
//! | `guest` | `acct = 1` | `false` |
//! | `home_tenant` | the tenant in `idp`; another tenant than `tenant` makes a guest | `tenant` |
//! | `guest_unknown` | a user token without `acct` where the registration emits it | `false` |
//! | `acrs` | `acrs`, satisfied authentication contexts (`c1`) | `[]` |
//! | `amr` | `amr`, authentication methods (v1 tokens only) | `[]` |
//! | `auth_time` | `auth_time`: RFC 3339 (`"2026-12-01T10:00:00Z"`) or Unix seconds | absent |
//! | `xms_cc` | `xms_cc`, client capabilities (`cp1`) | `[]` |
//! | `client_app` | `azp` / `appid`, a GUID | absent |
//! | `client_auth` | `azpacr` / `appidacr`: `"public"`, `"secret"`, `"certificate"` (needs `client_app`) | unknown |
//! | `token_version` | `ver`: `"v1"` or `"v2"` | `"v2"` |
//!
//! A spec that no Entra token could match is refused ([`CallerError::Inconsistent`]):
//! scopes or guest status on an application, `amr` in a v2 token, groups with an overage
//! marker, `client_auth` without `client_app`.
//!
//! # The JSON a [`Caller`] reads
//!
//! Either a [`CallerSpec`] object, or an object whose only key is `claims`, holding the
//! claims of a decoded access token (an object, or a string holding one):
//! `{"claims": {"ver": "2.0", "tid": "…", "oid": "…", "sub": "…", "azp": "…", "scp": "…"}}`.
//! `ver`, `tid`, `oid`, `sub` and `azp` (v2) or `appid` (v1) are required, as in a real
//! token. The claims pass through [`serde_json::Value`], so of two members with exactly
//! the same name only the last survives; members differing only in letter case are
//! refused, as the verifier refuses them.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::clock::{from_unix_secs, unix_secs};
use crate::error::{TokenError, excerpt};
use crate::ids::{GroupId, ObjectId, PrincipalId, TenantId, is_guid};
use crate::principal::{
    ClientAuth, DisplayClaims, Principal, PrincipalKind, TokenGroups, TokenVersion,
};
use crate::token::claims::{self, RawClaims};
use crate::token::validate;

/// Why a caller could not be built. Messages quote at most a shortened value, never a
/// whole token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallerError {
    /// The caller file is not JSON.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The JSON does not have the shape of a caller (unknown key, wrong type, bad GUID).
    #[error("{key_path}: {message}")]
    Shape {
        /// Where (`groups[1]`; `.` for the whole document).
        key_path: String,
        /// What is wrong.
        message: String,
    },
    /// A spec that no Entra token could match.
    #[error("{field}: {reason}")]
    Inconsistent {
        /// The spec key at fault.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The claims break one of the verifier's claim rules.
    #[error("claims: {0}")]
    Claims(#[from] TokenError),
}

/// Token settings that change how claims map to a principal: the
/// [`GovernorBuilder`](crate::GovernorBuilder) settings of the same names (and the service
/// configuration's `[entra]` keys). Only claims are read with them; a [`CallerSpec`] says
/// its group and guest state itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClaimsSettings {
    /// The app registration emits group claims: a token without `groups` is in no group
    /// (otherwise its membership is unknown).
    #[serde(default)]
    pub groups_claim_emitted: bool,
    /// The app registration emits `acct`: a user token without it is of unknown guest
    /// status (which fails closed as a guest).
    #[serde(default)]
    pub acct_claim_emitted: bool,
}

impl ClaimsSettings {
    /// Sets [`groups_claim_emitted`](Self::groups_claim_emitted).
    pub fn groups_claim_emitted(mut self, emitted: bool) -> Self {
        self.groups_claim_emitted = emitted;
        self
    }

    /// Sets [`acct_claim_emitted`](Self::acct_claim_emitted).
    pub fn acct_claim_emitted(mut self, emitted: bool) -> Self {
        self.acct_claim_emitted = emitted;
        self
    }
}

// ------------------------------------------------------------------------ times

/// The latest instant accepted, 9999-12-31T23:59:59Z (as the rest of the crate).
const LATEST_SECS: u64 = 253_402_300_799;

/// An instant in whole seconds, as token claims hold it: written as RFC 3339
/// (`2026-12-01T10:00:00Z`, any offset, fractions dropped) or as Unix seconds; shown and
/// serialized as RFC 3339 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// A time that is neither RFC 3339 nor Unix seconds between 1970 and 9999.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time {found:?}: expected RFC 3339 (2026-12-01T10:00:00Z) or Unix seconds, \
     from 1970 to 9999"
)]
pub struct InvalidTimestamp {
    /// The value given (shortened).
    pub found: String,
}

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch, if before the year 10000.
    pub fn from_unix_secs(secs: u64) -> Option<Self> {
        (secs <= LATEST_SECS).then_some(Self(secs))
    }

    /// The current time.
    pub fn now() -> Self {
        Self(unix_secs(SystemTime::now()).min(LATEST_SECS))
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(self) -> u64 {
        self.0
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        from_unix_secs(self.0)
    }
}

impl FromStr for Timestamp {
    type Err = InvalidTimestamp;

    fn from_str(s: &str) -> Result<Self, InvalidTimestamp> {
        let secs = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>().ok()
        } else {
            parse_rfc3339(s)
        };
        secs.and_then(Self::from_unix_secs)
            .ok_or_else(|| InvalidTimestamp { found: excerpt(s) })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rem) = (self.0 / 86_400, self.0 % 86_400);
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
        write!(f, "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time (2026-12-01T10:00:00Z) or Unix seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                parse_rfc3339(v)
                    .and_then(Timestamp::from_unix_secs)
                    .ok_or_else(|| E::custom(InvalidTimestamp { found: excerpt(v) }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Timestamp::from_unix_secs(v).ok_or_else(|| E::custom("a time after the year 9999"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("a time before 1970"))?;
                self.visit_u64(v)
            }
            // A TOML date-time (`at = 2026-12-01T10:00:00Z`, unquoted) arrives as a map
            // of one entry holding its text.
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Timestamp, A::Error> {
                match map.next_entry::<String, String>()? {
                    Some((key, text)) if key == TOML_DATETIME => self.visit_str(&text),
                    _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The one key of the map a TOML date-time deserializes as.
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, in seconds since the epoch.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let num = |at: usize, len: usize| -> Option<u64> {
        b.get(at..at + len)?.iter().try_fold(0u64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't'))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let offset = utc_offset(skip_fraction(text.get(19..)?)?)?;
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(i64::try_from(local).ok()? - offset).ok()
}

/// The text after an optional `.digits` fraction.
fn skip_fraction(rest: &str) -> Option<&str> {
    let Some(fraction) = rest.strip_prefix('.') else {
        return Some(rest);
    };
    let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
    (len > 0).then(|| &fraction[len..])
}

/// `Z` or `±HH:MM`, in seconds east of UTC.
fn utc_offset(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let b = zone.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |at: usize| zone.get(at..at + 2)?.parse::<i64>().ok();
    if b.len() != 6 || b[3] != b':' || !b[1..3].iter().chain(&b[4..]).all(u8::is_ascii_digit) {
        return None;
    }
    let (hours, minutes) = (two(1)?, two(4)?);
    (hours < 24 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a Gregorian date from 1970 on (H. Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y / 400, y % 400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Gregorian date `days` after 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    (year, month, day)
}

// ------------------------------------------------------------------- the spec

/// What the token says about groups, for [`CallerSpec::groups_claim`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupsClaim {
    /// The token lists the caller's groups ([`CallerSpec::groups`], possibly none).
    #[default]
    Listed,
    /// An overage marker instead of `groups` (more than 200 groups).
    Overage,
    /// No group claim at all: the app registration emits none.
    NotEmitted,
}

/// How the client application authenticated (`azpacr` / `appidacr`), for
/// [`CallerSpec::client_auth`]; see [`ClientAuth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuthSpec {
    /// `0`: a public client.
    Public,
    /// `1`: a client secret.
    Secret,
    /// `2`: a certificate.
    Certificate,
}

impl From<ClientAuthSpec> for ClientAuth {
    fn from(spec: ClientAuthSpec) -> Self {
        match spec {
            ClientAuthSpec::Public => Self::Public,
            ClientAuthSpec::Secret => Self::Secret,
            ClientAuthSpec::Certificate => Self::Certificate,
        }
    }
}

/// The token version (`ver`), for [`CallerSpec::token_version`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum VersionSpec {
    /// A v1 token (`ver = "1.0"`): it carries `amr`.
    #[serde(rename = "v1")]
    V1,
    /// A v2 token (`ver = "2.0"`).
    #[default]
    #[serde(rename = "v2")]
    V2,
}

impl From<VersionSpec> for TokenVersion {
    fn from(spec: VersionSpec) -> Self {
        match spec {
            VersionSpec::V1 => Self::V1,
            VersionSpec::V2 => Self::V2,
        }
    }
}

fn user() -> PrincipalKind {
    PrincipalKind::User
}

fn is_user(kind: &PrincipalKind) -> bool {
    *kind == PrincipalKind::User
}

/// An Entra-shaped caller described by hand, for policy tests and `explain`; the keys are
/// listed in [the module docs](self#a-caller-by-hand-callerspec). Not verified: see
/// [the module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CallerSpec {
    /// The tenant that issued the token (`tid`).
    pub tenant: TenantId,
    /// The caller's object id in that tenant (`oid`).
    pub object: ObjectId,
    /// A user (delegated token) or an application (app-only token).
    #[serde(default = "user", skip_serializing_if = "is_user")]
    pub kind: PrincipalKind,
    /// The `groups` claim, when [`groups_claim`](Self::groups_claim) is `listed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupId>,
    /// Whether the token lists groups, has an overage marker, or has no group claim.
    #[serde(default)]
    pub groups_claim: GroupsClaim,
    /// The `roles` claim: app roles of a user, application permissions of an application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The delegated scopes (`scp`), one scope an entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Directory role template ids (`wids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_roles: Vec<String>,
    /// A guest account (`acct = 1`).
    #[serde(default)]
    pub guest: bool,
    /// The account's home tenant (the tenant of `idp`); another tenant makes a guest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_tenant: Option<TenantId>,
    /// A user token without `acct` where the registration emits it: fails closed as a
    /// guest.
    #[serde(default)]
    pub guest_unknown: bool,
    /// Satisfied authentication contexts (`acrs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
    /// Authentication methods (`amr`; v1 tokens only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The last interactive sign-in (`auth_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<Timestamp>,
    /// Client capabilities (`xms_cc`, e.g. `cp1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xms_cc: Vec<String>,
    /// The calling client application (`azp` / `appid`), a GUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_app: Option<String>,
    /// How the client application authenticated (`azpacr` / `appidacr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuthSpec>,
    /// The token version (`ver`).
    #[serde(default)]
    pub token_version: VersionSpec,
}

impl CallerSpec {
    /// A member user of `tenant`, with no groups, roles or scopes: set the public fields
    /// for the rest.
    pub fn new(tenant: TenantId, object: ObjectId) -> Self {
        Self {
            tenant,
            object,
            kind: PrincipalKind::User,
            groups: Vec::new(),
            groups_claim: GroupsClaim::Listed,
            roles: Vec::new(),
            scopes: Vec::new(),
            directory_roles: Vec::new(),
            guest: false,
            home_tenant: None,
            guest_unknown: false,
            acrs: Vec::new(),
            amr: Vec::new(),
            auth_time: None,
            xms_cc: Vec::new(),
            client_app: None,
            client_auth: None,
            token_version: VersionSpec::V2,
        }
    }

    /// The principal the governor would build from a valid token with these claims.
    ///
    /// # Errors
    ///
    /// [`CallerError::Inconsistent`] for a spec no Entra token could match.
    pub fn to_principal(&self) -> Result<Principal, CallerError> {
        self.check()?;
        let client_app = self.client_app()?;
        let mut b = Principal::builder(self.tenant.clone(), self.object.clone())
            .kind(self.kind)
            .version(self.token_version.into())
            .scopes(self.scopes.iter().cloned())
            .roles(self.roles.iter().cloned())
            .groups(self.token_groups())
            .directory_roles(self.directory_roles.iter().cloned())
            .auth_contexts(self.acrs.iter().cloned())
            .auth_methods(self.amr.iter().cloned())
            .client_capabilities(self.xms_cc.iter().cloned());
        if let Some(t) = self.auth_time {
            b = b.auth_time(t.to_system_time());
        }
        if let Some(app) = client_app {
            b = b.client_app(
                app,
                self.client_auth.map_or(ClientAuth::Unknown, Into::into),
            );
        }
        // The verifier's guest rule, fed the claims this spec stands for.
        let idp = self
            .home_tenant
            .as_ref()
            .map(|h| format!("https://sts.windows.net/{h}/"));
        let (home, guest) =
            validate::home_tenant(&self.tenant, idp.as_deref(), self.guest.then_some(1));
        if guest {
            b = b.guest_from(home);
        } else if self.guest_unknown {
            b = b.guest_unknown();
        }
        Ok(b.build())
    }

    /// Refuses combinations that no Entra token has.
    fn check(&self) -> Result<(), CallerError> {
        let bad = |field, reason| Err(CallerError::Inconsistent { field, reason });
        let app = self.kind == PrincipalKind::Application;
        if app && !self.scopes.is_empty() {
            return bad("scopes", "an app-only token carries no delegated scopes");
        }
        if app && (self.guest || self.guest_unknown || self.home_tenant.is_some()) {
            return bad("guest", "an application is never a guest");
        }
        if self.guest_unknown && (self.guest || self.home_tenant.is_some()) {
            return bad(
                "guest_unknown",
                "an unknown guest status excludes guest and home_tenant",
            );
        }
        if !self.groups.is_empty() && self.groups_claim != GroupsClaim::Listed {
            return bad(
                "groups",
                "groups are listed only with groups_claim = \"listed\"",
            );
        }
        if !self.amr.is_empty() && self.token_version == VersionSpec::V2 {
            return bad(
                "amr",
                "only v1 tokens carry amr: set token_version = \"v1\"",
            );
        }
        if self.client_auth.is_some() && self.client_app.is_none() {
            return bad("client_auth", "client_auth needs client_app");
        }
        Ok(())
    }

    /// The client application id, lower case as Entra emits it.
    fn client_app(&self) -> Result<Option<String>, CallerError> {
        match &self.client_app {
            Some(app) if !is_guid(app) => Err(CallerError::Inconsistent {
                field: "client_app",
                reason: "not a GUID",
            }),
            app => Ok(app.as_deref().map(str::to_ascii_lowercase)),
        }
    }

    fn token_groups(&self) -> TokenGroups {
        match self.groups_claim {
            GroupsClaim::Listed => TokenGroups::Listed(self.groups.clone()),
            GroupsClaim::Overage => TokenGroups::Overage,
            GroupsClaim::NotEmitted => TokenGroups::NotEmitted,
        }
    }
}

// ----------------------------------------------------------------- claims

/// [`principal_from_claims_with`] under the default settings (no group or `acct` claims
/// configured on the app registration).
///
/// **For policy tests and explanations only: verifies nothing** (see
/// [the module docs](self)).
///
/// # Errors
///
/// [`CallerError::Claims`] when a claim has the wrong type or appears twice, `ver`,
/// `tid`, `oid`, `sub` or the client application (`azp` / `appid`) is missing or
/// malformed, or the claims contradict each other (an `idtyp = app` token with scopes).
pub fn principal_from_claims(claims: &serde_json::Value) -> Result<Principal, CallerError> {
    principal_from_claims_with(claims, &ClaimsSettings::default())
}

/// The principal the governor would build from a valid access token with these claims
/// (a decoded payload), with the given token settings.
///
/// **For policy tests and explanations only.** No signature, issuer, audience, lifetime,
/// tenant or client-application allow-list check is made, nor the "scopes or roles"
/// rule; never authorize a request with the result. The mapping itself (claim types,
/// kind, groups, guest status) is the verifier's.
///
/// # Errors
///
/// As [`principal_from_claims`].
pub fn principal_from_claims_with(
    claims: &serde_json::Value,
    settings: &ClaimsSettings,
) -> Result<Principal, CallerError> {
    if !claims.is_object() {
        return Err(TokenError::InvalidPayload {
            reason: "not a JSON object",
        }
        .into());
    }
    let payload = serde_json::to_vec(claims).map_err(|_| TokenError::InvalidPayload {
        reason: "not serializable",
    })?;
    let c = claims::parse(&payload)?;
    map_claims(c, settings).map_err(Into::into)
}

/// The verifier's claim mapping (`token::validate::check`), without its checks of
/// issuer, audience, times and allow-lists.
fn map_claims(c: RawClaims, settings: &ClaimsSettings) -> Result<Principal, TokenError> {
    let version = version_of(c.ver.as_deref())?;
    let tid = tenant_of(c.tid.as_deref())?;
    let oid = match c.oid.as_deref() {
        None => return Err(TokenError::MissingClaim { claim: "oid" }),
        Some(oid) => ObjectId::parse(oid).map_err(|_| TokenError::InvalidClaim {
            claim: "oid",
            reason: "not a GUID",
        })?,
    };
    let subject = c
        .sub
        .clone()
        .ok_or(TokenError::MissingClaim { claim: "sub" })?;
    let (client_app_id, client_auth) = validate::client_app(version, &c)?;
    let scopes: Vec<String> = c
        .scp
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let kind = validate::principal_kind(c.idtyp.as_deref(), &scopes, oid.as_str(), &subject)?;
    let groups = validate::groups(&c, settings.groups_claim_emitted)?;
    let (home_tenant, guest) = validate::home_tenant(&tid, c.idp.as_deref(), c.acct);
    let guest_unknown =
        !guest && settings.acct_claim_emitted && kind == PrincipalKind::User && c.acct.is_none();
    Ok(Principal {
        id: PrincipalId::new(tid, oid),
        subject,
        kind,
        version,
        client_app_id: Some(client_app_id),
        client_auth,
        scopes,
        roles: c.roles.unwrap_or_default(),
        groups,
        directory_roles: c.wids.unwrap_or_default(),
        auth_contexts: c.acrs.unwrap_or_default(),
        auth_methods: c.amr.unwrap_or_default(),
        auth_time: c.auth_time,
        client_capabilities: c.xms_cc.unwrap_or_default(),
        home_tenant,
        guest: guest || guest_unknown,
        guest_unknown,
        token_id: c.uti,
        issued_at: c.iat,
        expires_at: c.exp.unwrap_or(u64::MAX),
        display: DisplayClaims {
            name: c.name,
            preferred_username: c.preferred_username,
            upn: c.upn,
            unique_name: c.unique_name,
            email: c.email,
        },
    })
}

fn version_of(ver: Option<&str>) -> Result<TokenVersion, TokenError> {
    match ver {
        Some("1.0") => Ok(TokenVersion::V1),
        Some("2.0") => Ok(TokenVersion::V2),
        Some(other) => Err(TokenError::UnsupportedVersion {
            found: excerpt(other),
        }),
        None => Err(TokenError::MissingClaim { claim: "ver" }),
    }
}

/// A lower-case GUID, as the verifier requires of `tid`.
fn tenant_of(tid: Option<&str>) -> Result<TenantId, TokenError> {
    let tid = tid.ok_or(TokenError::MissingClaim { claim: "tid" })?;
    TenantId::parse(tid)
        .ok()
        .filter(|_| !tid.bytes().any(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| TokenError::InvalidTenantId {
            found: excerpt(tid),
        })
}

// ----------------------------------------------------------------- loading

/// A caller as `explain --caller` and policy test files give it: described by hand, or
/// by the claims of a decoded access token. Not verified: see [the module docs](self).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Caller {
    /// Described key by key.
    Spec(Box<CallerSpec>),
    /// The claims of a decoded access token (a JSON object).
    Claims(serde_json::Value),
}

impl Caller {
    /// Reads a caller from JSON: a [`CallerSpec`] object, or `{"claims": {…}}` (see
    /// [the module docs](self#the-json-a-caller-reads)).
    ///
    /// # Errors
    ///
    /// [`CallerError::Syntax`] for text that is not JSON, [`CallerError::Shape`] (with
    /// the key path) for JSON that is not a caller.
    pub fn from_json_str(text: &str) -> Result<Self, CallerError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| CallerError::Syntax {
                line: e.line(),
                column: e.column(),
                message: strip_position(&e.to_string()),
            })?;
        Self::from_json_value(value)
    }

    /// Reads a caller from a JSON value, as [`from_json_str`](Self::from_json_str).
    ///
    /// # Errors
    ///
    /// [`CallerError::Shape`], with the key path.
    pub fn from_json_value(value: serde_json::Value) -> Result<Self, CallerError> {
        let shape = |key_path: &str, message: String| CallerError::Shape {
            key_path: key_path.to_owned(),
            message,
        };
        let serde_json::Value::Object(mut map) = value else {
            return Err(shape(".", "expected a JSON object".into()));
        };
        let Some(claims) = map.remove("claims") else {
            return serde_path_to_error::deserialize(serde_json::Value::Object(map))
                .map(|spec| Self::Spec(Box::new(spec)))
                .map_err(|e| {
                    shape(
                        &e.path().to_string(),
                        strip_position(&e.inner().to_string()),
                    )
                });
        };
        if let Some(other) = map.keys().next() {
            let message = format!(
                "a claims caller has no other key, found {:?}",
                excerpt(other)
            );
            return Err(shape(".", message));
        }
        claims_object(claims)
            .map(Self::Claims)
            .map_err(|message| shape("claims", message.into()))
    }

    /// The principal the governor would build for this caller; `settings` apply to
    /// claims only.
    ///
    /// # Errors
    ///
    /// As [`CallerSpec::to_principal`] and [`principal_from_claims_with`].
    pub fn to_principal(&self, settings: &ClaimsSettings) -> Result<Principal, CallerError> {
        match self {
            Self::Spec(spec) => spec.to_principal(),
            Self::Claims(claims) => principal_from_claims_with(claims, settings),
        }
    }
}

/// A JSON object of claims, or a string holding one (as a TOML file may give it).
pub(crate) fn claims_object(value: serde_json::Value) -> Result<serde_json::Value, &'static str> {
    let value = match value {
        serde_json::Value::String(text) => {
            serde_json::from_str(&text).map_err(|_| "a string of claims must hold a JSON object")?
        }
        other => other,
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err("expected a JSON object of claims (or a string holding one)")
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TID: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
    const OTHER: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
    const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";
    const APP: &str = "75dbe77f-10a3-4e59-85fd-8c127544f17c";
    const GROUP: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

    /// A v2 user token's claims, plus `extra`.
    fn v2(extra: serde_json::Value) -> serde_json::Value {
        let mut claims = json!({
            "ver": "2.0", "tid": TID, "oid": OID, "sub": "pairwise", "azp": APP,
            "azpacr": "0", "scp": "Inference.Invoke"
        });
        let (serde_json::Value::Object(base), serde_json::Value::Object(extra)) =
            (&mut claims, extra)
        else {
            unreachable!("both are objects")
        };
        base.extend(extra);
        claims
    }

    fn claims_error(claims: serde_json::Value) -> TokenError {
        match principal_from_claims(&claims) {
            Err(CallerError::Claims(e)) => e,
            other => panic!("{claims}: {other:?}"),
        }
    }

    #[test]
    fn v1_tokens_carry_amr_and_name_their_app_by_appid() {
        let p = principal_from_claims(&json!({
            "ver": "1.0", "tid": TID, "oid": OID, "sub": "pairwise", "appid": APP,
            "appidacr": "2", "scp": "user_impersonation", "amr": ["pwd", "mfa"],
            "uti": "FVsGxYXI30-TuikuuUoFAA"
        }))
        .unwrap();
        assert_eq!(p.version(), TokenVersion::V1);
        assert_eq!(p.auth_methods(), ["pwd", "mfa"]);
        assert_eq!(p.client_app_id(), Some(APP));
        assert_eq!(p.client_auth(), ClientAuth::Certificate);
        assert_eq!(p.token_id(), Some("FVsGxYXI30-TuikuuUoFAA"));
        assert_eq!(p.kind(), PrincipalKind::User);
    }

    #[test]
    fn a_v1_token_names_its_app_by_appid_not_azp() {
        let e = claims_error(json!({
            "ver": "1.0", "tid": TID, "oid": OID, "sub": "s", "azp": APP, "scp": "x"
        }));
        assert_eq!(e, TokenError::NotAnAccessToken { missing: "appid" });
    }

    #[test]
    fn app_only_by_idtyp_or_by_oid_equal_to_sub_without_scopes() {
        let by_idtyp = json!({
            "ver": "2.0", "tid": TID, "oid": OID, "sub": "not-the-oid", "azp": APP,
            "idtyp": "app", "roles": ["Training.Pipeline"]
        });
        let p = principal_from_claims(&by_idtyp).unwrap();
        assert_eq!(p.kind(), PrincipalKind::Application);
        assert_eq!(p.roles(), ["Training.Pipeline"]);
        let by_sub = json!({
            "ver": "2.0", "tid": TID, "oid": OID, "sub": OID, "azp": APP,
            "roles": ["Inference.Client"]
        });
        assert!(principal_from_claims(&by_sub).unwrap().is_app_only());
        // The same without idtyp and with another sub is a user with app roles.
        let user = json!({
            "ver": "2.0", "tid": TID, "oid": OID, "sub": "pairwise", "azp": APP,
            "roles": ["Platform.Auditor"]
        });
        assert_eq!(
            principal_from_claims(&user).unwrap().kind(),
            PrincipalKind::User
        );
    }

    #[test]
    fn an_app_only_token_with_scopes_is_refused() {
        let e = claims_error(v2(json!({"idtyp": "app"})));
        assert!(
            matches!(e, TokenError::InvalidClaim { claim: "idtyp", .. }),
            "{e:?}"
        );
    }

    #[test]
    fn guests_by_acct_or_by_a_foreign_idp() {
        let p = principal_from_claims(&v2(json!({"acct": 1}))).unwrap();
        assert_eq!(p.guest_status(), crate::principal::GuestStatus::Guest);
        assert_eq!(p.home_tenant().as_str(), TID);
        let idp = format!("https://sts.windows.net/{OTHER}/");
        let p = principal_from_claims(&v2(json!({"idp": idp}))).unwrap();
        assert!(p.is_guest());
        assert_eq!(p.home_tenant().as_str(), OTHER);
        let member = principal_from_claims(&v2(json!({"acct": 0}))).unwrap();
        assert_eq!(member.guest_status(), crate::principal::GuestStatus::Member);
    }

    #[test]
    fn acct_emitted_makes_a_user_without_acct_unknown() {
        let settings = ClaimsSettings::default().acct_claim_emitted(true);
        let p = principal_from_claims_with(&v2(json!({})), &settings).unwrap();
        assert_eq!(p.guest_status(), crate::principal::GuestStatus::Unknown);
        assert!(p.is_guest());
    }

    #[test]
    fn group_states_follow_the_verifier() {
        let overage = v2(json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {}}));
        assert_eq!(
            *principal_from_claims(&overage).unwrap().groups(),
            TokenGroups::Overage
        );
        let implicit = v2(json!({"hasgroups": true}));
        assert_eq!(
            *principal_from_claims(&implicit).unwrap().groups(),
            TokenGroups::Overage
        );
        let none = v2(json!({}));
        assert_eq!(
            *principal_from_claims(&none).unwrap().groups(),
            TokenGroups::NotEmitted
        );
        let emitted = ClaimsSettings::default().groups_claim_emitted(true);
        let p = principal_from_claims_with(&none, &emitted).unwrap();
        assert_eq!(*p.groups(), TokenGroups::Listed(Vec::new()));
        let listed = principal_from_claims(&v2(json!({"groups": [GROUP]}))).unwrap();
        let group = GroupId::parse(GROUP).unwrap();
        assert_eq!(*listed.groups(), TokenGroups::Listed(vec![group]));
        let upper = claims_error(v2(json!({"groups": [GROUP.to_uppercase()]})));
        assert!(matches!(
            upper,
            TokenError::InvalidClaim {
                claim: "groups",
                ..
            }
        ));
    }

    #[test]
    fn scp_is_split_on_spaces() {
        let p =
            principal_from_claims(&v2(json!({"scp": " Training.Manage  Models.Manage "}))).unwrap();
        assert_eq!(p.scopes(), ["Training.Manage", "Models.Manage"]);
    }

    #[test]
    fn conditional_access_claims_are_kept() {
        let p = principal_from_claims(&v2(json!({
            "acrs": ["c1"], "xms_cc": ["CP1"], "auth_time": 1_764_583_200_u64, "wids": ["w"]
        })))
        .unwrap();
        assert_eq!(p.auth_contexts(), ["c1"]);
        assert!(p.can_handle_claims_challenge());
        assert_eq!(p.auth_time(), Some(from_unix_secs(1_764_583_200)));
        assert_eq!(p.directory_roles(), ["w"]);
    }

    #[test]
    fn claim_errors_are_the_verifiers_and_quote_no_token() {
        let missing = |claim: &str| {
            let mut c = v2(json!({}));
            c.as_object_mut().unwrap().remove(claim);
            claims_error(c)
        };
        assert_eq!(missing("ver"), TokenError::MissingClaim { claim: "ver" });
        assert_eq!(missing("tid"), TokenError::MissingClaim { claim: "tid" });
        assert_eq!(missing("oid"), TokenError::MissingClaim { claim: "oid" });
        assert_eq!(missing("sub"), TokenError::MissingClaim { claim: "sub" });
        assert_eq!(
            missing("azp"),
            TokenError::NotAnAccessToken { missing: "azp" }
        );
        let upper = claims_error(v2(json!({"tid": TID.to_uppercase()})));
        assert!(matches!(upper, TokenError::InvalidTenantId { .. }));
        let typed = claims_error(v2(json!({"roles": "Admin"})));
        assert!(matches!(
            typed,
            TokenError::InvalidClaimType { claim: "roles", .. }
        ));
        let twice = claims_error(v2(json!({"TID": TID})));
        assert!(matches!(twice, TokenError::DuplicateClaim { claim: "tid" }));
        let e = principal_from_claims(&json!(["not", "claims"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "claims: invalid token payload: not a JSON object"
        );
        let e = principal_from_claims(&v2(json!({"ver": "3.0"}))).unwrap_err();
        assert_eq!(e.to_string(), "claims: unsupported token version \"3.0\"");
    }

    fn spec(json: serde_json::Value) -> Result<Principal, CallerError> {
        let spec: CallerSpec = serde_json::from_value(json).unwrap();
        spec.to_principal()
    }

    #[test]
    fn a_spec_builds_what_the_same_claims_build() {
        let by_hand = spec(json!({
            "tenant": TID, "object": OID, "groups": [GROUP], "scopes": ["Training.Manage"],
            "roles": ["Platform.Auditor"], "directory_roles": ["w"], "acrs": ["c2"],
            "amr": ["mfa"], "token_version": "v1", "auth_time": "2025-12-01T10:00:00Z",
            "xms_cc": ["cp1"], "client_app": APP.to_uppercase(), "client_auth": "secret",
            "guest": true
        }))
        .unwrap();
        let from_claims = principal_from_claims(&json!({
            "ver": "1.0", "tid": TID, "oid": OID, "sub": OID, "appid": APP, "appidacr": "1",
            "scp": "Training.Manage", "roles": ["Platform.Auditor"], "groups": [GROUP],
            "wids": ["w"], "acrs": ["c2"], "amr": ["mfa"], "auth_time": 1_764_583_200_u64,
            "xms_cc": ["cp1"], "acct": 1
        }))
        .unwrap();
        assert_eq!(
            by_hand,
            Principal {
                expires_at: u64::MAX,
                ..from_claims
            }
        );
    }

    #[test]
    fn a_spec_guest_by_home_tenant() {
        let p = spec(json!({"tenant": TID, "object": OID, "home_tenant": OTHER})).unwrap();
        assert!(p.is_guest());
        assert_eq!(p.home_tenant().as_str(), OTHER);
        let p = spec(json!({"tenant": TID, "object": OID, "home_tenant": TID})).unwrap();
        assert!(!p.is_guest());
        let p = spec(json!({"tenant": TID, "object": OID, "guest_unknown": true})).unwrap();
        assert_eq!(p.guest_status(), crate::principal::GuestStatus::Unknown);
    }

    #[test]
    fn a_spec_no_token_could_match_is_refused() {
        let refused = |extra: serde_json::Value| {
            let mut j = json!({"tenant": TID, "object": OID});
            j.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            match spec(j) {
                Err(CallerError::Inconsistent { field, .. }) => field,
                other => panic!("{extra}: {other:?}"),
            }
        };
        assert_eq!(
            refused(json!({"kind": "application", "scopes": ["x"]})),
            "scopes"
        );
        assert_eq!(
            refused(json!({"kind": "application", "guest": true})),
            "guest"
        );
        assert_eq!(
            refused(json!({"guest_unknown": true, "guest": true})),
            "guest_unknown"
        );
        assert_eq!(
            refused(json!({"groups": [GROUP], "groups_claim": "overage"})),
            "groups"
        );
        assert_eq!(refused(json!({"amr": ["mfa"]})), "amr");
        assert_eq!(
            refused(json!({"client_auth": "certificate"})),
            "client_auth"
        );
        assert_eq!(refused(json!({"client_app": "not-a-guid"})), "client_app");
        let e = spec(json!({"tenant": TID, "object": OID, "amr": ["mfa"]})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "amr: only v1 tokens carry amr: set token_version = \"v1\""
        );
    }

    #[test]
    fn spec_group_states() {
        let p = spec(json!({"tenant": TID, "object": OID, "groups_claim": "overage"})).unwrap();
        assert_eq!(*p.groups(), TokenGroups::Overage);
        let p = spec(json!({"tenant": TID, "object": OID, "groups_claim": "not_emitted"}));
        assert_eq!(*p.unwrap().groups(), TokenGroups::NotEmitted);
    }

    #[test]
    fn callers_load_from_either_shape_with_key_paths() {
        let spec = Caller::from_json_str(&format!(r#"{{"tenant":"{TID}","object":"{OID}"}}"#));
        assert!(matches!(spec, Ok(Caller::Spec(_))));
        let claims = Caller::from_json_str(r#"{"claims": {"ver": "2.0"}}"#).unwrap();
        assert_eq!(claims, Caller::Claims(json!({"ver": "2.0"})));
        let text = Caller::from_json_str(r#"{"claims": "{\"ver\": \"2.0\"}"}"#).unwrap();
        assert_eq!(text, claims);
        let shape = |text: &str| Caller::from_json_str(text).unwrap_err().to_string();
        assert_eq!(
            shape(&format!(
                r#"{{"tenant":"{TID}","object":"{OID}","groups":["{GROUP}","x"]}}"#
            )),
            "groups[1]: malformed group id: expected a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
        );
        assert!(
            shape(&format!(
                r#"{{"tenant":"{TID}","object":"{OID}","colour":1}}"#
            ))
            .starts_with("colour: unknown field `colour`")
        );
        assert_eq!(
            shape(r#"{"claims": {}, "tenant": "x"}"#),
            ".: a claims caller has no other key, found \"tenant\""
        );
        assert_eq!(
            shape(r#"{"claims": [1]}"#),
            "claims: expected a JSON object of claims (or a string holding one)"
        );
        assert_eq!(shape("[]"), ".: expected a JSON object");
        assert_eq!(
            shape("{\n  \"tenant\": }"),
            "line 2, column 13: expected value"
        );
    }

    #[test]
    fn timestamps_read_rfc3339_and_unix_seconds() {
        let t = |s: &str| s.parse::<Timestamp>().map(Timestamp::unix_secs);
        assert_eq!(t("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(t("2025-12-01T10:00:00Z"), Ok(1_764_583_200));
        assert_eq!(t("2025-12-01t10:00:00.999z"), Ok(1_764_583_200));
        assert_eq!(t("2025-12-01T11:30:00+01:30"), Ok(1_764_583_200));
        assert_eq!(t("2025-12-01T08:00:00-02:00"), Ok(1_764_583_200));
        assert_eq!(t("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
        assert_eq!(t("1764583200"), Ok(1_764_583_200));
        for bad in [
            "",
            "2025-12-01",
            "2025-12-01T10:00:00",
            "2025-12-01 10:00:00Z",
            "2025-13-01T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2025-12-01T24:00:00Z",
            "2025-12-01T10:00:00.Z",
            "2025-12-01T10:00:00+1:00",
            "1970-01-01T00:00:00+00:01",
            "1969-12-31T23:59:59Z",
            "-5",
            "253402300800",
            "2025-12-01T10:00:00Zjunk",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        let e = "yesterday".parse::<Timestamp>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid time \"yesterday\": expected RFC 3339 (2026-12-01T10:00:00Z) or Unix \
             seconds, from 1970 to 9999"
        );
    }

    #[test]
    fn timestamps_show_as_rfc3339_and_read_toml_datetimes() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "9999-12-31T23:59:59Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(text));
        }
        #[derive(Deserialize)]
        struct At {
            at: Timestamp,
        }
        let native: At = toml::from_str("at = 2025-12-01T10:00:00Z").unwrap();
        let quoted: At = toml::from_str("at = \"2025-12-01T10:00:00Z\"").unwrap();
        let number: At = toml::from_str("at = 1764583200").unwrap();
        assert_eq!(native.at.unix_secs(), 1_764_583_200);
        assert_eq!(quoted.at, native.at);
        assert_eq!(number.at, native.at);
        assert!(toml::from_str::<At>("at = 2025-12-01T10:00:00").is_err());
        assert!(toml::from_str::<At>("at = -1").is_err());
    }
}
