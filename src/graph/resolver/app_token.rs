//! The client-credentials app token Graph is called with: one per tenant, cached until
//! shortly before it expires, forgotten when Graph refuses it.

use super::*;

/// A Microsoft Graph access token for one tenant. `Debug` is redacted.
pub(super) struct GraphToken {
    pub(super) access_token: String,
    pub(super) valid_until: std::time::Instant,
}

impl fmt::Debug for GraphToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GraphToken(<redacted>)")
    }
}

/// The token endpoint's success answer.
#[derive(Deserialize)]
pub(super) struct TokenAnswer {
    pub(super) access_token: String,
    pub(super) expires_in: u64,
}

impl Inner {
    /// The tenant's Graph token: cached, or requested once for all concurrent callers.
    pub(super) async fn graph_token(
        &self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<Arc<GraphToken>, GroupResolutionError> {
        let result = self
            .tokens
            .try_get_with(tenant.clone(), self.request_token(tenant, deadline))
            .await
            .map_err(|e| (*e).clone());
        // Without a token no lookup of the tenant can succeed: hold them all back. (A 429
        // is held for its Retry-After by `send`; a spent budget is this caller's.)
        if let Err(
            error @ (GroupResolutionError::Unauthorized { .. }
            | GroupResolutionError::Unavailable { .. }),
        ) = &result
        {
            self.hold_tenant(tenant, Some(error.clone()), self.failure_ttl)
                .await;
        }
        result
    }

    pub(super) async fn forget_token(&self, tenant: &TenantId, token: &Arc<GraphToken>) {
        let refused = token.clone();
        self.tokens
            .entry(tenant.clone())
            .and_compute_with(|current| async move {
                match current {
                    Some(entry) if Arc::ptr_eq(entry.value(), &refused) => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
    }

    /// Client credentials at `{authority}/{tenant}/oauth2/v2.0/token` for
    /// `{graph_base}/.default`.
    pub(super) async fn request_token(
        &self,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<Arc<GraphToken>, GroupResolutionError> {
        let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", self.authority);
        let url = Url::parse(&endpoint).map_err(|_| GroupResolutionError::Unavailable {
            reason: "the token endpoint URL is not valid".into(),
        })?;
        let scope = format!("{}/.default", self.graph_base);
        let answer = self
            .send(
                tenant,
                TOKEN_ENDPOINT,
                &self.token_requests,
                || {
                    // Built per attempt: a certificate assertion gets a fresh `jti`.
                    let form = self
                        .credential
                        .token_request_form(&self.client_id, &endpoint, &scope)
                        .map_err(|reason| GroupResolutionError::Unavailable {
                            reason: reason.into(),
                        })?;
                    Ok(self
                        .fetcher
                        .client
                        .post(url.clone())
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(ACCEPT, "application/json")
                        .body(form))
                },
                &url,
                deadline,
            )
            .await?;
        match answer.status {
            200 => {
                let token: TokenAnswer =
                    serde_json::from_slice(&answer.body).map_err(|_| unusable(&url))?;
                if token.access_token.is_empty() {
                    return Err(unusable(&url));
                }
                // A hostile `expires_in` (up to u64::MAX) must neither overflow nor pin a
                // token for ever.
                let life = Duration::from_secs(token.expires_in).min(MAX_GRAPH_TOKEN_LIFETIME);
                let keep = life.saturating_sub(TOKEN_REFRESH_MARGIN.min(life / 2));
                Ok(Arc::new(GraphToken {
                    access_token: token.access_token,
                    valid_until: valid_for(keep),
                }))
            }
            400 | 401 | 403 => Err(GroupResolutionError::Unauthorized {
                service: TOKEN_ENDPOINT,
                status: answer.status,
                code: entra_error_code(&answer.body),
            }),
            status => Err(GroupResolutionError::Unavailable {
                reason: format!(
                    "the token endpoint answered HTTP {status} ({})",
                    entra_error_code(&answer.body)
                ),
            }),
        }
    }
}

/// Entra's OAuth error: `error` plus the first AADSTS code, e.g.
/// `invalid_client (AADSTS7000215)`. Never the description.
pub(super) fn entra_error_code(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return "unknown".into();
    };
    let error = value
        .get("error")
        .and_then(Value::as_str)
        .and_then(clean_code);
    let aadsts = value
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|codes| codes.first())
        .and_then(Value::as_u64);
    match (error, aadsts) {
        (Some(error), Some(n)) => format!("{error} (AADSTS{n})"),
        (Some(error), None) => error,
        (None, Some(n)) => format!("AADSTS{n}"),
        (None, None) => "unknown".into(),
    }
}
