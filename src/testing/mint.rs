//! [`TokenBuilder`]: mints Entra-shaped v1 and v2 access tokens (and, for refusal tests, ID
//! tokens) for a [`TestIdp`].

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::keys::RsaKey;
use super::{TestIdp, random_b64, random_guid};
use crate::ids::{ObjectId, TenantId};
use crate::principal::ClientAuth;

const USER_NAME: &str = "Test User";
const USER_LOGIN: &str = "test.user@contoso.example";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// One `.claim` / `.without` (or `.header` / `.without_header`) call, replayed in order over
/// the computed defaults.
#[derive(Clone, Debug)]
enum Edit {
    Set(String, Value),
    Remove(String),
}

fn apply(edits: &[Edit], map: &mut Map<String, Value>) {
    for edit in edits {
        match edit {
            Edit::Set(name, value) => {
                map.insert(name.clone(), value.clone());
            }
            Edit::Remove(name) => {
                map.remove(name);
            }
        }
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: ToString,
{
    items.into_iter().map(|s| s.to_string()).collect()
}

/// A consuming builder for one access token; start it with [`TestIdp::token`].
///
/// Defaults: a v2 delegated user token for the idp's primary tenant, audience
/// [`TestIdp::client_id`], client app [`TestIdp::client_app_id`] (`azp` in v2, `appid` in
/// v1, as every Entra access token carries), scope `access_as_user`,
/// valid from now for one hour, signed with the current key. Setters can be called in any
/// order: version, kind and tenant are combined when the claims are computed, and the
/// `claim` / `without` edits are applied last, in call order. No setter panics.
#[derive(Debug)]
#[must_use = "a token builder does nothing until `sign()` is called"]
pub struct TokenBuilder {
    idp: TestIdp,
    now: i64,
    version: Version,
    app_only: bool,
    id_token: bool,
    tenant: TenantId,
    guest_home: Option<TenantId>,
    audience: Value,
    oid: ObjectId,
    subject: Option<String>,
    default_subject: String,
    scopes: Option<String>,
    roles: Option<Vec<String>>,
    groups: Option<Vec<String>>,
    overage: bool,
    has_groups: bool,
    wids: Option<Vec<String>>,
    acrs: Option<Vec<String>>,
    amr: Option<Vec<String>>,
    auth_time: Option<u64>,
    client_capabilities: Option<Vec<String>>,
    client_app: String,
    client_auth: Option<ClientAuth>,
    expires_in: i64,
    not_before: i64,
    issued_at: i64,
    uti: String,
    claim_edits: Vec<Edit>,
    header_edits: Vec<Edit>,
    kid: Option<String>,
    foreign_key: bool,
    raw_header: Option<String>,
    raw_payload: Option<Vec<u8>>,
}

impl TokenBuilder {
    pub(crate) fn new(idp: TestIdp) -> TokenBuilder {
        let state = idp.state().clone();
        let oid = ObjectId::parse(&random_guid()).expect("random_guid makes GUIDs");
        TokenBuilder {
            now: now(),
            version: Version::V2,
            app_only: false,
            id_token: false,
            tenant: state.primary.clone(),
            guest_home: None,
            audience: Value::String(state.client_id.clone()),
            oid,
            subject: None,
            // Entra's `sub` is a pairwise 43-character base64url value.
            default_subject: random_b64::<32>(),
            scopes: None,
            roles: None,
            groups: None,
            overage: false,
            has_groups: false,
            wids: None,
            acrs: None,
            amr: None,
            auth_time: None,
            client_capabilities: None,
            client_app: state.client_app_id.clone(),
            client_auth: None,
            expires_in: 3600,
            not_before: 0,
            issued_at: 0,
            uti: random_b64::<16>(),
            claim_edits: Vec::new(),
            header_edits: Vec::new(),
            kid: None,
            foreign_key: false,
            raw_header: None,
            raw_payload: None,
            idp,
        }
    }

    /// A v1 token: `iss` `{authority}/{tid}/`, `ver` "1.0", `appid`/`appidacr`,
    /// `unique_name`/`upn`, `amr` `["pwd"]`, and `x5t` in the header.
    pub fn v1(mut self) -> Self {
        self.version = Version::V1;
        self
    }

    /// A v2 token (the default).
    pub fn v2(mut self) -> Self {
        self.version = Version::V2;
        self
    }

    /// An app-only (client credentials) token: no `scp`, `sub == oid`, `idtyp` "app",
    /// client authenticated with a secret (`azpacr`/`appidacr` "1"), no user names.
    pub fn app_only(mut self) -> Self {
        self.app_only = true;
        self
    }

    /// An ID token of the same app registration instead of an access token: `aud` is still
    /// [`TestIdp::client_id`], but there is no `azp`/`azpacr` (v2) or `appid`/`appidacr`
    /// (v1), no default `scp`, and a `nonce`. Combine with [`roles`](Self::roles) for an ID
    /// token that carries the user's app roles. A verifier must refuse it.
    pub fn id_token(mut self) -> Self {
        self.id_token = true;
        self
    }

    /// The tenant the token is issued in: sets `tid` and a matching `iss`.
    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = tenant;
        self
    }

    /// A guest (B2B) user from `home`: `acct` 1 and `idp` `https://sts.windows.net/{home}/`.
    pub fn guest(mut self, home: TenantId) -> Self {
        self.guest_home = Some(home);
        self
    }

    /// A single `aud` string.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Value::String(audience.into());
        self
    }

    /// An `aud` array (legal JWT, never sent by Entra).
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.audience = json!(strings(audiences));
        self
    }

    /// The caller's object id (`oid`; also `sub` of app-only tokens).
    pub fn oid(mut self, oid: ObjectId) -> Self {
        self.oid = oid;
        self
    }

    /// The `sub` claim (by default random for users, the `oid` for apps).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The `scp` claim, space separated, exactly as given (also on app-only tokens).
    pub fn scopes(mut self, scopes: impl Into<String>) -> Self {
        self.scopes = Some(scopes.into());
        self
    }

    /// The `roles` claim.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.roles = Some(strings(roles));
        self
    }

    /// The `groups` claim (group object ids, or anything else for hostile tests).
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.groups = Some(strings(groups));
        self
    }

    /// Group overage: no `groups`; `_claim_names`/`_claim_sources` point at Azure AD Graph.
    pub fn overage(mut self) -> Self {
        self.overage = true;
        self
    }

    /// `hasgroups: true` (the implicit-flow overage marker).
    pub fn has_groups(mut self) -> Self {
        self.has_groups = true;
        self
    }

    /// The `wids` claim (directory role template ids).
    pub fn wids<I, S>(mut self, wids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.wids = Some(strings(wids));
        self
    }

    /// The `acrs` claim (satisfied authentication contexts, `c1`..`c25`).
    pub fn acrs<I, S>(mut self, acrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.acrs = Some(strings(acrs));
        self
    }

    /// The `amr` claim (v1 default `["pwd"]`; absent from v2 unless set).
    pub fn amr<I, S>(mut self, amr: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.amr = Some(strings(amr));
        self
    }

    /// The `auth_time` claim (seconds since the Unix epoch).
    pub fn auth_time(mut self, auth_time: u64) -> Self {
        self.auth_time = Some(auth_time);
        self
    }

    /// The `xms_cc` claim (client capabilities, e.g. `cp1`).
    pub fn client_capabilities<I, S>(mut self, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        self.client_capabilities = Some(strings(capabilities));
        self
    }

    /// The calling client application (`azp` in v2, `appid` in v1).
    pub fn client_app(mut self, client_app: impl Into<String>) -> Self {
        self.client_app = client_app.into();
        self
    }

    /// How the client app authenticated (`azpacr` in v2, `appidacr` in v1); `Unknown` omits
    /// the claim. Default: `Public` ("0") for user tokens, `Secret` ("1") for app-only ones.
    pub fn client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = Some(client_auth);
        self
    }

    /// `exp` = now + `seconds` (negative: already expired). Default 3600.
    pub fn expires_in(mut self, seconds: i64) -> Self {
        self.expires_in = seconds;
        self
    }

    /// `nbf` = now + `offset` seconds. Default 0.
    pub fn not_before(mut self, offset: i64) -> Self {
        self.not_before = offset;
        self
    }

    /// `iat` = now + `offset` seconds. Default 0.
    pub fn issued_at(mut self, offset: i64) -> Self {
        self.issued_at = offset;
        self
    }

    /// Sets (or overrides) any claim, after all defaults are computed.
    pub fn claim(mut self, name: impl Into<String>, value: Value) -> Self {
        self.claim_edits.push(Edit::Set(name.into(), value));
        self
    }

    /// Removes a claim, after all defaults are computed.
    pub fn without(mut self, name: impl Into<String>) -> Self {
        self.claim_edits.push(Edit::Remove(name.into()));
        self
    }

    /// Sets (or overrides) a header member; the token is then signed raw with aws-lc-rs.
    pub fn header(mut self, name: impl Into<String>, value: Value) -> Self {
        self.header_edits.push(Edit::Set(name.into(), value));
        self
    }

    /// Removes a header member; the token is then signed raw with aws-lc-rs.
    pub fn without_header(mut self, name: impl Into<String>) -> Self {
        self.header_edits.push(Edit::Remove(name.into()));
        self
    }

    /// Puts this `kid` in the header and signs with that key if the idp holds it; otherwise
    /// keeps signing with the current key (an "unknown kid" token).
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Signs with a key the idp never publishes, under the kid of the signing key: the
    /// signature must not verify.
    pub fn sign_with_foreign_key(mut self) -> Self {
        self.foreign_key = true;
        self
    }

    /// Uses these exact bytes as the header JSON (base64url-encoded and raw-signed).
    pub fn raw_header(mut self, header: impl Into<String>) -> Self {
        self.raw_header = Some(header.into());
        self
    }

    /// Uses these exact bytes as the payload (base64url-encoded and raw-signed).
    pub fn raw_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.raw_payload = Some(payload.into());
        self
    }

    /// The claims that [`sign`](Self::sign) would encode (ignoring any
    /// [`raw_payload`](Self::raw_payload)).
    pub fn claims(&self) -> Value {
        Value::Object(self.claim_map())
    }

    /// The header that [`sign`](Self::sign) would encode (ignoring any
    /// [`raw_header`](Self::raw_header)).
    pub fn header_json(&self) -> Value {
        let (_, kid) = self.signing_key();
        Value::Object(self.header_map(&kid))
    }

    /// Signs and returns the compact JWS `header.payload.signature`.
    pub fn sign(self) -> String {
        let (key, kid) = self.signing_key();
        let raw = self.raw_header.is_some()
            || self.raw_payload.is_some()
            || !self.header_edits.is_empty();
        if !raw {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some(kid.clone());
            if self.version == Version::V1 {
                header.x5t = Some(kid);
            }
            let claims = self.claims();
            // Cannot fail: an RSA key with RS256, and claims that are already JSON.
            return jsonwebtoken::encode(
                &header,
                &claims,
                &EncodingKey::from_rsa_der(key.pkcs1_der()),
            )
            .expect("TestIdp: jsonwebtoken failed to encode a well-formed token");
        }

        let header = match &self.raw_header {
            Some(header) => header.clone().into_bytes(),
            None => Value::Object(self.header_map(&kid))
                .to_string()
                .into_bytes(),
        };
        let payload = match &self.raw_payload {
            Some(payload) => payload.clone(),
            None => self.claims().to_string().into_bytes(),
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    /// The key that signs and the kid the header names.
    fn signing_key(&self) -> (Arc<RsaKey>, String) {
        let state = self.idp.state();
        let (key, kid) = {
            let ring = state.keys();
            match &self.kid {
                Some(kid) => (
                    ring.find(kid).unwrap_or_else(|| ring.current().clone()),
                    kid.clone(),
                ),
                None => (ring.current().clone(), ring.current().kid().to_owned()),
            }
        };
        if self.foreign_key {
            (state.foreign_key(), kid)
        } else {
            (key, kid)
        }
    }

    fn header_map(&self, kid: &str) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("JWT"));
        header.insert("alg".into(), json!("RS256"));
        if self.version == Version::V1 {
            header.insert("x5t".into(), json!(kid));
        }
        header.insert("kid".into(), json!(kid));
        apply(&self.header_edits, &mut header);
        header
    }

    fn claim_map(&self) -> Map<String, Value> {
        let state = self.idp.state();
        let tid = self.tenant.as_str();
        let v1 = self.version == Version::V1;
        let mut c = Map::new();
        let mut set = |name: &str, value: Value| {
            c.insert(name.to_owned(), value);
        };

        set("aud", self.audience.clone());
        if v1 {
            set("iss", json!(format!("{}/{tid}/", state.v1_issuer_base)));
        } else {
            set("iss", json!(format!("{}/{tid}/v2.0", state.v2_issuer_base)));
        }
        set("iat", json!(self.now.saturating_add(self.issued_at)));
        set("nbf", json!(self.now.saturating_add(self.not_before)));
        set("exp", json!(self.now.saturating_add(self.expires_in)));
        set("tid", json!(tid));
        set("oid", json!(self.oid.as_str()));
        let subject = match (&self.subject, self.app_only) {
            (Some(subject), _) => subject.clone(),
            (None, true) => self.oid.as_str().to_owned(),
            (None, false) => self.default_subject.clone(),
        };
        set("sub", json!(subject));
        set("uti", json!(self.uti));
        set("ver", json!(if v1 { "1.0" } else { "2.0" }));

        let client_auth = match self.client_auth {
            Some(ClientAuth::Public) => Some("0"),
            Some(ClientAuth::Secret) => Some("1"),
            Some(ClientAuth::Certificate) => Some("2"),
            Some(ClientAuth::Unknown) => None,
            None if self.app_only => Some("1"),
            None => Some("0"),
        };
        let (client_claim, client_auth_claim) = if v1 {
            ("appid", "appidacr")
        } else {
            ("azp", "azpacr")
        };
        if self.id_token {
            set("nonce", json!(random_b64::<16>()));
        } else {
            set(client_claim, json!(self.client_app));
            if let Some(client_auth) = client_auth {
                set(client_auth_claim, json!(client_auth));
            }
        }

        if self.app_only {
            set("idtyp", json!("app"));
        } else {
            set("name", json!(USER_NAME));
            if v1 {
                set("unique_name", json!(USER_LOGIN));
                set("upn", json!(USER_LOGIN));
            } else {
                set("preferred_username", json!(USER_LOGIN));
            }
        }

        match (&self.scopes, self.app_only) {
            (Some(scopes), _) => set("scp", json!(scopes)),
            (None, false) if !self.id_token => set("scp", json!("access_as_user")),
            (None, false) => {}
            (None, true) => {}
        }
        match (&self.amr, v1 && !self.app_only) {
            (Some(amr), _) => set("amr", json!(amr)),
            (None, true) => set("amr", json!(["pwd"])),
            (None, false) => {}
        }
        if let Some(roles) = &self.roles {
            set("roles", json!(roles));
        }
        if self.overage {
            set("_claim_names", json!({ "groups": "src1" }));
            set(
                "_claim_sources",
                json!({ "src1": { "endpoint": format!(
                    "https://graph.windows.net/{tid}/users/{}/getMemberObjects",
                    self.oid
                ) } }),
            );
        } else if let Some(groups) = &self.groups {
            set("groups", json!(groups));
        }
        if self.has_groups {
            set("hasgroups", json!(true));
        }
        if let Some(wids) = &self.wids {
            set("wids", json!(wids));
        }
        if let Some(acrs) = &self.acrs {
            set("acrs", json!(acrs));
        }
        if let Some(auth_time) = self.auth_time {
            set("auth_time", json!(auth_time));
        }
        if let Some(capabilities) = &self.client_capabilities {
            set("xms_cc", json!(capabilities));
        }
        if let Some(home) = &self.guest_home {
            set("acct", json!(1));
            set("idp", json!(format!("https://sts.windows.net/{home}/")));
        }

        apply(&self.claim_edits, &mut c);
        c
    }
}

fn now() -> i64 {
    i64::try_from(crate::clock::unix_now()).unwrap_or(i64::MAX)
}
