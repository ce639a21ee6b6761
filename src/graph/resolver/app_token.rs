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
        if let Some(identity) = self.credential.as_managed_identity() {
            return self
                .request_identity_token(identity, tenant, deadline)
                .await;
        }
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
                        .map_err(|reason| GroupResolutionError::Unavailable { reason })?;
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
                Ok(graph_token(
                    token.access_token,
                    Duration::from_secs(token.expires_in),
                ))
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

impl Inner {
    /// A managed identity's Graph token from its local endpoint (IMDS or App Service),
    /// for `resource` = the Graph base. Only for the identity's own tenant: a managed
    /// identity is a service principal of one tenant.
    async fn request_identity_token(
        &self,
        identity: &crate::graph::credentials::ManagedIdentity,
        tenant: &TenantId,
        deadline: Instant,
    ) -> Result<Arc<GraphToken>, GroupResolutionError> {
        if *tenant != self.home_tenant {
            return Err(GroupResolutionError::ForeignTenant {
                home: self.home_tenant.clone(),
                tenant: tenant.clone(),
            });
        }
        let url = identity.token_url(&self.graph_base).map_err(|reason| {
            GroupResolutionError::Unavailable {
                reason: reason.into(),
            }
        })?;
        let client = self
            .identity_client
            .as_ref()
            .unwrap_or(&self.fetcher.client);
        let answer = self
            .send(
                tenant,
                MANAGED_IDENTITY,
                &self.token_requests,
                || Ok(identity.request(client, &url)),
                &url,
                deadline,
            )
            .await?;
        match answer.status {
            200 => {
                let (access_token, life) =
                    crate::graph::credentials::parse_identity_answer(&answer.body, unix_now())
                        .ok_or_else(|| unusable(&url))?;
                Ok(graph_token(access_token, life))
            }
            // IMDS: 400 missing `Metadata` header or unknown identity, 404 no identity
            // assigned; App Service: 400 or 401 for a wrong `X-IDENTITY-HEADER`.
            400 | 401 | 403 | 404 => Err(GroupResolutionError::Unauthorized {
                service: MANAGED_IDENTITY,
                status: answer.status,
                code: entra_error_code(&answer.body),
            }),
            status => Err(GroupResolutionError::Unavailable {
                reason: format!(
                    "the managed identity endpoint answered HTTP {status} ({})",
                    entra_error_code(&answer.body)
                ),
            }),
        }
    }
}

/// A Graph token that lives `life`, kept until shortly before it expires. A hostile
/// lifetime (up to u64::MAX seconds) must neither overflow nor pin a token for ever.
fn graph_token(access_token: String, life: Duration) -> Arc<GraphToken> {
    let life = life.min(MAX_GRAPH_TOKEN_LIFETIME);
    let keep = life.saturating_sub(TOKEN_REFRESH_MARGIN.min(life / 2));
    Arc::new(GraphToken {
        access_token,
        valid_until: valid_for(keep),
    })
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
