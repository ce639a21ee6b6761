//! [`Gate`]: the decision a gateway asks for (Envoy `ext_authz`, nginx `auth_request`,
//! Traefik `forwardAuth`): from a request's method, URI and `Authorization` header to an
//! allow carrying headers for the upstream, or the refusal to send the client.

use std::sync::Arc;
use std::time::Instant;

use super::{Refusal, RenderError, RouteTable, authenticate, authorize, record_invalid_resource};
use crate::audit::{AuditEvent, AuditOutcome};
use crate::config::UpstreamValue;
use crate::{Decision, Governor, Principal, PrincipalKind, RequestContext};

/// The action recorded in the audit trail for a request no route matches.
pub const NO_ROUTE_ACTION: &str = "route";
/// The reason code of a request no route matches.
pub const NO_ROUTE_REASON: &str = "no_route";
/// The reason code of a request whose path is not in canonical form (dot or empty
/// segments, backslashes, escaped dots, slashes or backslashes).
pub const NONCANONICAL_PATH_REASON: &str = "noncanonical_path";

/// Decides gateway requests: the [`RouteTable`] names the action and resource, the
/// [`Governor`] decides, and an allow carries the configured headers to the upstream.
///
/// Deny by default: a request no route matches is refused with 403 (recorded as action
/// [`NO_ROUTE_ACTION`], reason [`NO_ROUTE_REASON`]) before its token is looked at, and so
/// is a path the upstream could resolve to another one (`.`, `..` or empty segments,
/// `\`, `%2e`, `%2f`, `%5c` in any case: reason [`NONCANONICAL_PATH_REASON`]).
#[derive(Clone, Debug)]
pub struct Gate {
    governor: Governor,
    routes: Arc<RouteTable>,
    upstream: Arc<[(String, UpstreamValue)]>,
    remove_authorization: bool,
}

/// An allowed gateway request.
#[derive(Clone, Debug)]
pub struct Allowed {
    /// The verified caller.
    pub principal: Arc<Principal>,
    /// The allowing decision.
    pub decision: Decision,
    /// Headers to set on the request to the upstream, replacing any the client sent.
    pub headers: Vec<(String, String)>,
    /// Remove the `Authorization` header before the upstream sees the request.
    pub remove_authorization: bool,
}

impl Gate {
    /// A gate deciding with `governor` over `routes`; allowed requests carry `upstream`
    /// (header name, value) pairs, and lose their `Authorization` header when
    /// `remove_authorization` is set.
    pub fn new(
        governor: Governor,
        routes: RouteTable,
        upstream: Vec<(String, UpstreamValue)>,
        remove_authorization: bool,
    ) -> Self {
        let upstream = upstream
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Self {
            governor,
            routes: Arc::new(routes),
            upstream,
            remove_authorization,
        }
    }

    /// The governor deciding.
    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// The routes.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The names of the headers an allow sets (lowercase): a gateway must strip them from
    /// client requests it does not send through the gate.
    pub fn upstream_header_names(&self) -> impl Iterator<Item = &str> {
        self.upstream.iter().map(|(name, _)| name.as_str())
    }

    /// Decides the request `method uri` (the URI as the client sent it; a query is
    /// ignored) with the given `Authorization` header values.
    ///
    /// # Errors
    /// The [`Refusal`] to send the client: 403 for an unmatched route or a denial, 401
    /// for a missing or rejected token or a step-up challenge, 400 for a malformed
    /// header, 503 while keys or group memberships are unavailable.
    pub async fn check<'a, I>(
        &self,
        method: &str,
        uri: &str,
        authorization: I,
        context: &RequestContext,
    ) -> Result<Allowed, Refusal>
    where
        I: Iterator<Item = &'a [u8]>,
    {
        let path = uri.split(['?', '#']).next().unwrap_or_default();
        if !is_canonical(path) {
            self.record_unrouted(method, path, NONCANONICAL_PATH_REASON, context)
                .await;
            return Err(Refusal::forbidden());
        }
        let Some(route) = self.routes.find(method, path) else {
            self.record_unrouted(method, path, NO_ROUTE_REASON, context)
                .await;
            return Err(Refusal::forbidden());
        };
        let principal = authenticate(&self.governor, authorization, path, context).await?;
        let resource = match route.resource {
            Ok(resource) => resource,
            Err(e) => {
                if matches!(e, RenderError::InvalidValue { .. } | RenderError::NotUtf8) {
                    record_invalid_resource(
                        &self.governor,
                        &principal,
                        route.action,
                        path,
                        context,
                    )
                    .await;
                }
                return Err(Refusal::from_render_error(&e));
            }
        };
        let decision =
            authorize(&self.governor, &principal, route.action, &resource, context).await?;
        let headers = self.upstream_headers(&principal, &decision)?;
        Ok(Allowed {
            principal,
            decision,
            headers,
            remove_authorization: self.remove_authorization,
        })
    }

    async fn record_unrouted(
        &self,
        method: &str,
        path: &str,
        reason: &str,
        context: &RequestContext,
    ) {
        let why = if reason == NO_ROUTE_REASON {
            "no route matches"
        } else {
            "the path is not in canonical form:"
        };
        let event = AuditEvent::new(AuditOutcome::Deny, NO_ROUTE_ACTION, path)
            .with_reason(reason)
            .with_explanation(format!(
                "{why} {} {}",
                method.escape_debug(),
                path.escape_debug()
            ));
        let _ = self
            .governor
            .record_event(event, context, Instant::now())
            .await;
    }

    /// The headers of an allow. A value that cannot be a header value (visible ASCII and
    /// spaces) refuses the request with 500 rather than leaving the header unset, which
    /// would let a client's header of that name through.
    fn upstream_headers(
        &self,
        principal: &Principal,
        decision: &Decision,
    ) -> Result<Vec<(String, String)>, Refusal> {
        self.upstream
            .iter()
            .map(|(name, value)| {
                let text = upstream_value(*value, principal, decision, &self.governor);
                if text.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                    return Ok((name.clone(), text));
                }
                tracing::error!(
                    header = name.as_str(),
                    "an upstream header value is not visible ASCII; the request is refused with 500"
                );
                Err(Refusal::misconfigured(
                    "an upstream header value cannot be sent",
                ))
            })
            .collect()
    }
}

/// True for a path without dot or empty segments, backslashes, or escaped dots,
/// slashes and backslashes: the path the upstream resolves is the one decided.
pub fn is_canonical(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    // Without allocating: this runs on every gateway request.
    let escaped = rest.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                [w[1], w[2].to_ascii_lowercase()],
                [b'2', b'e' | b'f'] | [b'5', b'c']
            )
    });
    !escaped
        && !rest.contains('\\')
        && rest
            .split('/')
            .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// The text of one upstream header.
fn upstream_value(
    value: UpstreamValue,
    principal: &Principal,
    decision: &Decision,
    governor: &Governor,
) -> String {
    match value {
        UpstreamValue::TenantId => principal.tenant().to_string(),
        UpstreamValue::ObjectId => principal.object_id().to_string(),
        UpstreamValue::Principal => principal.id().to_string(),
        UpstreamValue::Kind => kind_name(principal).to_owned(),
        UpstreamValue::ClientAppId => principal.client_app_id().unwrap_or_default().to_owned(),
        UpstreamValue::Grant => decision
            .matched
            .first()
            .map(|m| format!("{}:{}", m.grant, m.binding))
            .unwrap_or_default(),
        UpstreamValue::Action => decision.action.clone(),
        UpstreamValue::Resource => decision.resource.clone(),
        UpstreamValue::PolicyVersion => governor.policy_version(),
    }
}

/// `user`, `guest` or `application`.
pub fn kind_name(principal: &Principal) -> &'static str {
    match principal.kind() {
        PrincipalKind::Application => "application",
        PrincipalKind::User if principal.is_guest() => "guest",
        PrincipalKind::User => "user",
    }
}

#[cfg(test)]
mod tests {
    use super::is_canonical;

    #[test]
    fn only_canonical_paths_pass() {
        let good = [
            "/",
            "/v1/models/exp-42/infer",
            "/v1/datasets/public/wiki.v2/2024",
            "/v1/a%20b",
        ];
        for path in good {
            assert!(is_canonical(path), "{path}");
        }
        let bad = [
            "",
            "v1/x",
            "//v1/x",
            "/v1//x",
            "/v1/x/",
            "/v1/./x",
            "/v1/../x",
            "/v1/x/..",
            "/v1/%2e%2e/x",
            "/v1/%2E./x",
            "/v1/a%2Fb",
            "/v1/a%5cb",
            "/v1/a\\b",
        ];
        for path in bad {
            assert!(!is_canonical(path), "{path}");
        }
    }
}
