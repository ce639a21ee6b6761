//! The Entra rules applied to a signature-verified token's claims, in a fixed order, each
//! failure its own [`TokenError`] variant. The rules follow Microsoft's reference
//! ("Access tokens in the Microsoft identity platform") and its issuer validation for
//! multi-tenant applications.

use std::collections::HashSet;

use crate::clock::from_unix_secs;
use crate::cloud::Cloud;
use crate::error::{TokenError, excerpt};
use crate::ids::{ObjectId, PERSONAL_ACCOUNTS_TENANT, PrincipalId, TenantId};
use crate::principal::{
    ClientAuth, DisplayClaims, Principal, PrincipalKind, TokenGroups, TokenVersion,
};
use crate::token::claims::RawClaims;
use crate::token::keys::{SigningKey, issuer_tenant};

/// Longest an Entra access token can live (28 h with CAE) plus the largest clock skew: a
/// token whose `exp` lies further ahead, or whose `exp - iat` is longer, is refused.
/// Revocation entries older than this are pruned (`revocation` re-exports it).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 28 * 3600 + 600;

/// Microsoft Graph's application id: tokens for it are never ours.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const GRAPH_AUDIENCES: &[&str] = &[
    GRAPH_APP_ID,
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "https://graph.microsoft.us",
    "https://graph.microsoft.us/",
    "https://microsoftgraph.chinacloudapi.cn",
    "https://microsoftgraph.chinacloudapi.cn/",
];

/// Which tenants are accepted.
#[derive(Clone, Debug)]
pub(crate) enum TenantRule {
    /// One tenant (its id is learnt from discovery when configured by domain).
    Single,
    /// An allow-list of tenant ids.
    AllowList(HashSet<TenantId>),
    /// Any tenant except the personal-accounts one (`dangerous_accept_any_tenant`).
    Any,
}

impl TenantRule {
    /// Whether the rule accepts exactly one tenant: `tenant(..)`, or an allow-list of one.
    pub(crate) fn accepts_one_tenant(&self) -> bool {
        match self {
            Self::Single => true,
            Self::AllowList(set) => set.len() == 1,
            Self::Any => false,
        }
    }
}

/// The validation settings the builder produced.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub(crate) cloud: Cloud,
    pub(crate) tenants: TenantRule,
    pub(crate) audiences: Vec<String>,
    pub(crate) accept_v1: bool,
    pub(crate) accept_v2: bool,
    pub(crate) allowed_client_apps: Option<HashSet<String>>,
    pub(crate) skew_secs: u64,
    pub(crate) acl_mode: bool,
    /// The registration emits group claims: no `groups` claim means no groups.
    pub(crate) groups_claim_emitted: bool,
    /// The registration emits `acct`: a user token without it is of unknown guest status.
    pub(crate) acct_claim_emitted: bool,
}

impl Rules {
    fn accepted_versions(&self) -> &'static str {
        match (self.accept_v1, self.accept_v2) {
            (true, true) => "1.0, 2.0",
            (true, false) => "1.0",
            _ => "2.0",
        }
    }
}

/// Applies every claim rule; `single_tenant` is the configured tenant in single mode.
pub(crate) fn check(
    rules: &Rules,
    single_tenant: Option<&TenantId>,
    key: &SigningKey,
    c: RawClaims,
    now: u64,
) -> Result<Principal, TokenError> {
    // The principal's strings and lists are fresh copies, not moved out of `c`: a cached
    // principal lives as long as its token, and copies made after parsing sit together
    // instead of among the parser's short-lived buffers. Moving them left the same live
    // heap but grew resident memory by 3 MiB more per 8 MiB of cache (tests/memory.rs).
    let expires_at = check_times(rules, &c, now)?;
    let version = check_version(rules, c.ver.as_deref())?;
    let tid = check_issuer_and_tenant(rules, single_tenant, key, &c, version)?;
    check_audience(rules, c.aud.as_ref().map(|a| a.0.as_slice()))?;
    let (client_app_id, client_auth) = client_app(version, &c)?;
    if let Some(allowed) = &rules.allowed_client_apps
        && !allowed.contains(&client_app_id)
    {
        return Err(TokenError::ClientAppNotAllowed {
            found: excerpt(&client_app_id),
        });
    }
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
    let scopes: Vec<String> = c
        .scp
        .as_deref()
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let roles = c.roles.clone().unwrap_or_default();
    if scopes.is_empty() && roles.is_empty() && !rules.acl_mode {
        return Err(TokenError::NoScopesOrRoles);
    }
    let kind = principal_kind(c.idtyp.as_deref(), &scopes, oid.as_str(), &subject)?;
    let groups = groups(&c, rules.groups_claim_emitted)?;
    let (home_tenant, guest) = home_tenant(&tid, c.idp.as_deref(), c.acct);
    // With `acct` emitted, a user token without it cannot say it is a member.
    let guest_unknown =
        !guest && rules.acct_claim_emitted && kind == PrincipalKind::User && c.acct.is_none();
    Ok(Principal {
        id: PrincipalId::new(tid, oid),
        subject,
        kind,
        version,
        client_app_id: Some(client_app_id),
        client_auth,
        scopes,
        roles,
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
        expires_at,
        display: DisplayClaims {
            name: c.name,
            preferred_username: c.preferred_username,
            upn: c.upn,
            unique_name: c.unique_name,
            email: c.email,
        },
    })
}

fn check_times(rules: &Rules, c: &RawClaims, now: u64) -> Result<u64, TokenError> {
    let skew = rules.skew_secs;
    let exp = c.exp.ok_or(TokenError::MissingClaim { claim: "exp" })?;
    if now >= exp.saturating_add(skew) {
        return Err(TokenError::Expired {
            expired_at: from_unix_secs(exp),
            now: from_unix_secs(now),
            skew_secs: skew,
        });
    }
    // Entra never issues a token living longer than 28 hours (CAE): neither from now nor
    // from its `iat`. A longer one would also outlive revocation entries, which are
    // pruned after that lifetime.
    let too_far = exp
        > now
            .saturating_add(MAX_TOKEN_LIFETIME_SECS)
            .saturating_add(skew);
    let too_long = c
        .iat
        .is_some_and(|iat| exp.saturating_sub(iat) > MAX_TOKEN_LIFETIME_SECS);
    if too_far || too_long {
        return Err(TokenError::InvalidClaim {
            claim: "exp",
            reason: "lifetime beyond Entra's maximum (28 hours)",
        });
    }
    if let Some(nbf) = c.nbf
        && nbf > now.saturating_add(skew)
    {
        return Err(TokenError::NotYetValid {
            not_before: from_unix_secs(nbf),
            now: from_unix_secs(now),
        });
    }
    if let Some(iat) = c.iat
        && iat > now.saturating_add(skew)
    {
        return Err(TokenError::IssuedInFuture {
            issued_at: from_unix_secs(iat),
            now: from_unix_secs(now),
        });
    }
    Ok(exp)
}

fn check_version(rules: &Rules, ver: Option<&str>) -> Result<TokenVersion, TokenError> {
    let (version, label) = match ver {
        Some("1.0") => (TokenVersion::V1, "1.0"),
        Some("2.0") => (TokenVersion::V2, "2.0"),
        Some(other) => {
            return Err(TokenError::UnsupportedVersion {
                found: excerpt(other),
            });
        }
        None => return Err(TokenError::MissingClaim { claim: "ver" }),
    };
    let accepted = match version {
        TokenVersion::V1 => rules.accept_v1,
        TokenVersion::V2 => rules.accept_v2,
    };
    if !accepted {
        return Err(TokenError::VersionNotAccepted {
            found: label,
            accepted: rules.accepted_versions(),
        });
    }
    Ok(version)
}

/// `iss` byte-exact against the tenant's issuer for this version; `tid` a GUID, allowed,
/// and the one in `iss`; the signing key bound to that tenant's issuer.
fn check_issuer_and_tenant(
    rules: &Rules,
    single_tenant: Option<&TenantId>,
    key: &SigningKey,
    c: &RawClaims,
    version: TokenVersion,
) -> Result<TenantId, TokenError> {
    let tid = c
        .tid
        .as_deref()
        .ok_or(TokenError::MissingClaim { claim: "tid" })?;
    let iss = c
        .iss
        .as_deref()
        .ok_or(TokenError::MissingClaim { claim: "iss" })?;
    let issuer_tenant = single_tenant.map_or(tid, TenantId::as_str);
    let expected = match version {
        TokenVersion::V1 => rules.cloud.v1_issuer_parts(issuer_tenant),
        TokenVersion::V2 => rules.cloud.v2_issuer_parts(issuer_tenant),
    };
    if !crate::cloud::concat_eq(&[iss], &expected) {
        return Err(TokenError::IssuerMismatch {
            expected: expected.concat(),
            found: excerpt(iss),
        });
    }
    // A lower-case GUID: `parse` checks the shape (and would lower-case the rest).
    let tenant = TenantId::parse(tid)
        .ok()
        .filter(|_| !tid.bytes().any(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| TokenError::InvalidTenantId {
            found: excerpt(tid),
        })?;
    let allowed = match &rules.tenants {
        TenantRule::Single => single_tenant == Some(&tenant),
        TenantRule::AllowList(list) => list.contains(&tenant),
        TenantRule::Any => tenant.as_str() != PERSONAL_ACCOUNTS_TENANT,
    };
    if !allowed {
        return Err(TokenError::TenantNotAllowed {
            tenant: tenant.to_string(),
        });
    }
    if !key.binds_parts(tid, &rules.cloud.v2_issuer_parts(tid)) {
        return Err(TokenError::KeyIssuerMismatch {
            kid: excerpt(&key.kid),
            key_issuer: key.issuer.clone(),
            token_issuer: excerpt(iss),
        });
    }
    Ok(tenant)
}

/// The calling client app (`azp` in v2, `appid` in v1) and how it authenticated. Every
/// Entra access token names it; ID tokens of our own app registration (our client id as
/// audience) never do, so a token without it is refused before any other rule sees it.
pub(crate) fn client_app(
    version: TokenVersion,
    c: &RawClaims,
) -> Result<(String, ClientAuth), TokenError> {
    let (app, auth, missing) = match version {
        TokenVersion::V1 => (&c.appid, &c.appidacr, "appid"),
        TokenVersion::V2 => (&c.azp, &c.azpacr, "azp"),
    };
    match app.as_deref() {
        Some(app) if !app.is_empty() => {
            Ok((app.to_owned(), ClientAuth::from_claim(auth.as_deref())))
        }
        _ => Err(TokenError::NotAnAccessToken { missing }),
    }
}

fn check_audience(rules: &Rules, aud: Option<&[String]>) -> Result<(), TokenError> {
    let aud = aud.ok_or(TokenError::MissingClaim { claim: "aud" })?;
    if aud.iter().any(|a| rules.audiences.contains(a)) {
        return Ok(());
    }
    if aud.iter().any(|a| GRAPH_AUDIENCES.contains(&a.as_str())) {
        return Err(TokenError::GraphToken);
    }
    Err(TokenError::AudienceMismatch {
        expected: rules.audiences.clone(),
        found: aud.iter().take(8).map(|a| excerpt(a)).collect(),
    })
}

pub(crate) fn principal_kind(
    idtyp: Option<&str>,
    scopes: &[String],
    oid: &str,
    sub: &str,
) -> Result<PrincipalKind, TokenError> {
    match idtyp {
        Some("app") if !scopes.is_empty() => Err(TokenError::InvalidClaim {
            claim: "idtyp",
            reason: "an app-only token cannot carry delegated scopes",
        }),
        Some("app") => Ok(PrincipalKind::Application),
        Some("user") => Ok(PrincipalKind::User),
        _ if scopes.is_empty() && oid == sub => Ok(PrincipalKind::Application),
        _ => Ok(PrincipalKind::User),
    }
}

pub(crate) fn groups(c: &RawClaims, emitted: bool) -> Result<TokenGroups, TokenError> {
    if c.groups_overage || c.hasgroups == Some(true) {
        return Ok(TokenGroups::Overage);
    }
    let Some(list) = &c.groups else {
        // Entra omits empty claims: when the registration emits groups, none means none.
        return Ok(if emitted {
            TokenGroups::Listed(Vec::new())
        } else {
            TokenGroups::NotEmitted
        });
    };
    list.iter()
        .map(|g| g.0.clone().ok_or(()))
        .collect::<Result<Vec<_>, ()>>()
        .map(TokenGroups::Listed)
        .map_err(|()| TokenError::InvalidClaim {
            claim: "groups",
            reason: "an entry is not a lower-case GUID",
        })
}

/// The account's home tenant and whether it is a guest here: `acct = 1`, or an `idp`
/// that is another tenant or not an Entra tenant at all (a social or personal account).
pub(crate) fn home_tenant(
    tid: &TenantId,
    idp: Option<&str>,
    acct: Option<u64>,
) -> (TenantId, bool) {
    let from_idp = idp.map(|i| (issuer_tenant(i), i));
    let home = match &from_idp {
        Some((Some(home), _)) => home.clone(),
        _ => tid.clone(),
    };
    let foreign_idp = match from_idp {
        Some((Some(home), _)) => home != *tid,
        Some((None, _)) => true,
        None => false,
    };
    (home, acct == Some(1) || foreign_idp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_rules() {
        let s = vec!["x".to_owned()];
        assert_eq!(
            principal_kind(Some("app"), &[], "o", "s").unwrap(),
            PrincipalKind::Application
        );
        assert!(principal_kind(Some("app"), &s, "o", "s").is_err());
        assert_eq!(
            principal_kind(None, &[], "o", "o").unwrap(),
            PrincipalKind::Application
        );
        assert_eq!(
            principal_kind(None, &[], "o", "s").unwrap(),
            PrincipalKind::User
        );
        assert_eq!(
            principal_kind(None, &s, "o", "o").unwrap(),
            PrincipalKind::User
        );
    }

    #[test]
    fn guests_are_recognised() {
        let t = TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let other = "11111111-2222-3333-4444-555555555555";
        assert_eq!(home_tenant(&t, None, None), (t.clone(), false));
        assert_eq!(home_tenant(&t, None, Some(1)), (t.clone(), true));
        let (home, guest) =
            home_tenant(&t, Some(&format!("https://sts.windows.net/{other}/")), None);
        assert_eq!((home.as_str(), guest), (other, true));
        assert!(home_tenant(&t, Some("live.com"), Some(0)).1);
        let own = format!("https://sts.windows.net/{t}/");
        assert_eq!(home_tenant(&t, Some(&own), Some(0)), (t.clone(), false));
    }
}
