//! [`Principal`]: one normalised view of a verified v1 or v2 Entra access token.
//!
//! Decisions read only the immutable, typed facts kept here. Display claims (name, UPN,
//! e-mail) are kept apart in [`DisplayClaims`] and are never read by the policy: e-mail
//! and UPN are mutable and, for some account types, unverified (the nOAuth attack).

use serde::{Deserialize, Serialize};

use std::time::SystemTime;

use crate::clock::{from_unix_secs, unix_secs};
use crate::ids::{GroupId, ObjectId, PrincipalId, TenantId};

/// Whether the caller is a signed-in user or an application acting as itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A delegated token: a user, through some client application.
    User,
    /// An app-only token (client credentials): `idtyp=app`, or no `scp` and `oid == sub`.
    Application,
}

/// The token format version (`ver` claim), which selects the issuer form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum TokenVersion {
    /// `ver = "1.0"`: issuer `https://sts.windows.net/{tid}/`.
    #[serde(rename = "1.0")]
    V1,
    /// `ver = "2.0"`: issuer `https://login.microsoftonline.com/{tid}/v2.0`.
    #[serde(rename = "2.0")]
    V2,
}

/// How the calling client application authenticated (`appidacr` / `azpacr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `"0"`: a public client, no credential.
    Public,
    /// `"1"`: a client secret.
    Secret,
    /// `"2"`: a certificate (or a federated credential).
    Certificate,
    /// The claim was absent or held an unknown value.
    Unknown,
}

impl ClientAuth {
    pub(crate) fn from_claim(value: Option<&str>) -> Self {
        match value {
            Some("0") => Self::Public,
            Some("1") => Self::Secret,
            Some("2") => Self::Certificate,
            _ => Self::Unknown,
        }
    }
}

/// Whether the caller is a guest (B2B) account, as far as the token can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GuestStatus {
    /// A member of the tenant that issued the token.
    Member,
    /// A guest: `acct = 1`, or an `idp` naming another tenant or provider.
    Guest,
    /// Not known: the registration emits `acct` and this user token has none. Fails
    /// closed: bindings admit it only with `guests = true`, and every deny rule with a
    /// `guest` condition applies to it.
    Unknown,
}

/// What the token says about group membership.
///
/// "No `groups` claim" is not "no groups": Entra omits the claim when the app registration
/// does not ask for groups, and replaces it with an overage marker past 200 groups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "ids")]
pub enum TokenGroups {
    /// The token lists the caller's groups (possibly none).
    Listed(Vec<GroupId>),
    /// Too many groups to list (`_claim_names`/`_claim_sources`, or `hasgroups`):
    /// membership must be resolved through Microsoft Graph.
    Overage,
    /// The token carries no group information at all.
    NotEmitted,
}

/// The old name of [`TokenGroups`].
#[deprecated(note = "renamed to `TokenGroups`: what the token says about groups")]
pub type Groups = TokenGroups;

/// Mutable, display-only claims. Never used for a decision; audit includes them only when
/// the operator opts in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DisplayClaims {
    /// `name`.
    pub name: Option<String>,
    /// `preferred_username` (v2).
    pub preferred_username: Option<String>,
    /// `upn` (v1).
    pub upn: Option<String>,
    /// `unique_name` (v1).
    pub unique_name: Option<String>,
    /// `email`: unverified for some account types.
    pub email: Option<String>,
}

/// A verified caller: the typed facts of an Entra access token that decisions may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub(crate) id: PrincipalId,
    pub(crate) subject: String,
    pub(crate) kind: PrincipalKind,
    pub(crate) version: TokenVersion,
    pub(crate) client_app_id: Option<String>,
    pub(crate) client_auth: ClientAuth,
    pub(crate) scopes: Vec<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) groups: TokenGroups,
    pub(crate) directory_roles: Vec<String>,
    pub(crate) auth_contexts: Vec<String>,
    pub(crate) auth_methods: Vec<String>,
    pub(crate) auth_time: Option<u64>,
    pub(crate) client_capabilities: Vec<String>,
    pub(crate) home_tenant: TenantId,
    /// A guest, or of unknown guest status (which fails closed as a guest).
    pub(crate) guest: bool,
    /// The token could not say whether the caller is a guest (see
    /// [`GuestStatus::Unknown`]).
    pub(crate) guest_unknown: bool,
    pub(crate) token_id: Option<String>,
    pub(crate) issued_at: Option<u64>,
    pub(crate) expires_at: u64,
    pub(crate) display: DisplayClaims,
}

impl Principal {
    /// Bytes this principal occupies on the heap when shared (`Arc`), its strings and
    /// lists included: what the verified-token cache charges for it. Counts capacities,
    /// not the allocator's own per-block overhead.
    pub(crate) fn heap_bytes(&self) -> usize {
        fn text(s: &str) -> usize {
            s.len()
        }
        fn list(v: &[String], capacity: usize) -> usize {
            capacity * std::mem::size_of::<String>() + v.iter().map(|s| text(s)).sum::<usize>()
        }
        let optional = |s: &Option<String>| s.as_deref().map_or(0, text);
        let groups = match &self.groups {
            TokenGroups::Listed(g) => g.capacity() * std::mem::size_of::<GroupId>(),
            TokenGroups::Overage | TokenGroups::NotEmitted => 0,
        };
        let d = &self.display;
        2 * std::mem::size_of::<usize>() // the Arc's counts
            + std::mem::size_of::<Self>()
            + text(&self.subject)
            + optional(&self.client_app_id)
            + optional(&self.token_id)
            + list(&self.scopes, self.scopes.capacity())
            + list(&self.roles, self.roles.capacity())
            + list(&self.directory_roles, self.directory_roles.capacity())
            + list(&self.auth_contexts, self.auth_contexts.capacity())
            + list(&self.auth_methods, self.auth_methods.capacity())
            + list(&self.client_capabilities, self.client_capabilities.capacity())
            + groups
            + [&d.name, &d.preferred_username, &d.upn, &d.unique_name, &d.email]
                .into_iter()
                .map(optional)
                .sum::<usize>()
    }

    /// Reads the first byte of the lists a decision walks (groups, scopes, roles), so
    /// that a cache hit starts these memory loads before, and overlapping with, its
    /// token comparison instead of one after another during the decision.
    pub(crate) fn touch(&self) {
        let first = |v: &[String]| v.first().and_then(|s| s.as_bytes().first().copied());
        let group = match &self.groups {
            TokenGroups::Listed(g) => g.first().map(|g| g.as_bytes()[0]),
            TokenGroups::Overage | TokenGroups::NotEmitted => None,
        };
        std::hint::black_box((group, first(&self.scopes), first(&self.roles)));
    }

    /// Starts a principal by hand, for [`authorize_principal`](crate) calls on callers
    /// verified elsewhere, and for policy tests. Defaults: a user, v2, no scopes, roles or
    /// groups listed, member (not guest), expiring at `u64::MAX`.
    pub fn builder(tenant: TenantId, object: ObjectId) -> PrincipalBuilder {
        PrincipalBuilder::new(tenant, object)
    }

    /// The identity key `(tid, oid)`.
    pub fn id(&self) -> &PrincipalId {
        &self.id
    }
    /// The tenant that issued the token (`tid`).
    pub fn tenant(&self) -> &TenantId {
        &self.id.tenant
    }
    /// The caller's immutable object id in that tenant (`oid`).
    pub fn object_id(&self) -> &ObjectId {
        &self.id.object
    }
    /// The pairwise subject (`sub`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// User or application.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }
    /// True for app-only (client credentials) tokens.
    pub fn is_app_only(&self) -> bool {
        self.kind == PrincipalKind::Application
    }
    /// The token version the caller presented.
    pub fn version(&self) -> TokenVersion {
        self.version
    }
    /// The calling client application (`azp` in v2, `appid` in v1).
    pub fn client_app_id(&self) -> Option<&str> {
        self.client_app_id.as_deref()
    }
    /// How the client application authenticated (`azpacr` / `appidacr`).
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }
    /// Delegated scopes (`scp`, split on spaces); empty for app-only tokens.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    /// The `roles` claim: app roles assigned to a user, or application permissions granted
    /// to an app-only caller. [`kind`](Self::kind) tells which.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// Group membership as the token states it.
    pub fn groups(&self) -> &TokenGroups {
        &self.groups
    }
    /// Directory role template ids (`wids`).
    pub fn directory_roles(&self) -> &[String] {
        &self.directory_roles
    }
    /// Authentication context ids satisfied at sign-in (`acrs`, e.g. `c1`).
    pub fn auth_contexts(&self) -> &[String] {
        &self.auth_contexts
    }
    /// Authentication methods (`amr`, v1 tokens only).
    pub fn auth_methods(&self) -> &[String] {
        &self.auth_methods
    }
    /// Time of the last interactive authentication (`auth_time`).
    pub fn auth_time(&self) -> Option<SystemTime> {
        self.auth_time.map(from_unix_secs)
    }
    /// Client capabilities (`xms_cc`), e.g. `cp1`.
    pub fn client_capabilities(&self) -> &[String] {
        &self.client_capabilities
    }
    /// True when the client declared it can answer claims challenges (`xms_cc` has `cp1`,
    /// any letter case).
    pub fn can_handle_claims_challenge(&self) -> bool {
        self.client_capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case("cp1"))
    }
    /// The tenant the account belongs to; differs from [`tenant`](Self::tenant) for guests.
    pub fn home_tenant(&self) -> &TenantId {
        &self.home_tenant
    }
    /// True for guest (B2B) accounts: `acct = 1`, or a home tenant other than `tid`; also
    /// true when the guest status is [unknown](GuestStatus::Unknown), which bindings treat
    /// as a guest.
    pub fn is_guest(&self) -> bool {
        self.guest
    }
    /// Member, guest, or unknown (a user token without `acct` where the registration
    /// emits it: see
    /// [`GovernorBuilder::acct_claim_emitted`](crate::GovernorBuilder::acct_claim_emitted)).
    pub fn guest_status(&self) -> GuestStatus {
        match (self.guest, self.guest_unknown) {
            (_, true) => GuestStatus::Unknown,
            (true, false) => GuestStatus::Guest,
            (false, false) => GuestStatus::Member,
        }
    }
    /// The token's unique id (`uti`), also recorded in Entra's sign-in logs.
    pub fn token_id(&self) -> Option<&str> {
        self.token_id.as_deref()
    }
    /// When the token was issued (`iat`).
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.issued_at.map(from_unix_secs)
    }
    /// When the token expires (`exp`).
    pub fn expires_at(&self) -> SystemTime {
        from_unix_secs(self.expires_at)
    }
    /// Display-only claims; never used for decisions.
    pub fn display(&self) -> &DisplayClaims {
        &self.display
    }
}

/// Builds a [`Principal`] by hand; see [`Principal::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build()` is called"]
pub struct PrincipalBuilder {
    principal: Principal,
}

impl PrincipalBuilder {
    fn new(tenant: TenantId, object: ObjectId) -> Self {
        Self {
            principal: Principal {
                subject: object.as_str().to_owned(),
                home_tenant: tenant.clone(),
                id: PrincipalId::new(tenant, object),
                kind: PrincipalKind::User,
                version: TokenVersion::V2,
                client_app_id: None,
                client_auth: ClientAuth::Unknown,
                scopes: Vec::new(),
                roles: Vec::new(),
                groups: TokenGroups::Listed(Vec::new()),
                directory_roles: Vec::new(),
                auth_contexts: Vec::new(),
                auth_methods: Vec::new(),
                auth_time: None,
                client_capabilities: Vec::new(),
                guest: false,
                guest_unknown: false,
                token_id: None,
                issued_at: None,
                expires_at: u64::MAX,
                display: DisplayClaims::default(),
            },
        }
    }

    /// Sets the principal kind.
    pub fn kind(mut self, kind: PrincipalKind) -> Self {
        self.principal.kind = kind;
        self
    }
    /// Sets the token version the caller's token had (v2 by default): v1 tokens prove
    /// MFA through `amr`.
    pub fn version(mut self, version: TokenVersion) -> Self {
        self.principal.version = version;
        self
    }
    /// Sets the delegated scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.principal.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the `roles` claim values.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.principal.roles = roles.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the group membership.
    pub fn groups(mut self, groups: TokenGroups) -> Self {
        self.principal.groups = groups;
        self
    }
    /// Sets the directory role template ids (`wids`).
    pub fn directory_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, w: I) -> Self {
        self.principal.directory_roles = w.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the satisfied authentication contexts (`acrs`).
    pub fn auth_contexts<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.principal.auth_contexts = a.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the authentication methods (`amr`).
    pub fn auth_methods<I: IntoIterator<Item = S>, S: Into<String>>(mut self, a: I) -> Self {
        self.principal.auth_methods = a.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the time of the last interactive authentication (`auth_time`; kept to the
    /// second, as in a token).
    pub fn auth_time(mut self, t: SystemTime) -> Self {
        self.principal.auth_time = Some(unix_secs(t));
        self
    }
    /// Sets the client capabilities (`xms_cc`).
    pub fn client_capabilities<I: IntoIterator<Item = S>, S: Into<String>>(mut self, c: I) -> Self {
        self.principal.client_capabilities = c.into_iter().map(Into::into).collect();
        self
    }
    /// Sets the calling client application and how it authenticated.
    pub fn client_app(mut self, app_id: impl Into<String>, auth: ClientAuth) -> Self {
        self.principal.client_app_id = Some(app_id.into());
        self.principal.client_auth = auth;
        self
    }
    /// Marks the principal's guest status as unknown (a user token without `acct` where
    /// the registration emits it): it fails closed as a guest.
    pub fn guest_unknown(mut self) -> Self {
        self.principal.guest = true;
        self.principal.guest_unknown = true;
        self
    }

    /// Marks the principal as a guest whose account lives in `home_tenant`.
    pub fn guest_from(mut self, home_tenant: TenantId) -> Self {
        self.principal.guest = true;
        self.principal.home_tenant = home_tenant;
        self
    }
    /// Sets the token id (`uti`).
    pub fn token_id(mut self, uti: impl Into<String>) -> Self {
        self.principal.token_id = Some(uti.into());
        self
    }
    /// Sets the expiry (`exp`; kept to the second, as in a token).
    pub fn expires_at(mut self, exp: SystemTime) -> Self {
        self.principal.expires_at = unix_secs(exp);
        self
    }
    /// Finishes the principal.
    pub fn build(self) -> Principal {
        self.principal
    }
}
