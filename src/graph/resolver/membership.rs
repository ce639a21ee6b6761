//! The membership REST calls: `checkMemberGroups` (in batches of 20), or
//! `getMemberObjects` with its paging, and the POST they share.

use super::*;

/// `{"value": [...]}`, with an optional `@odata.nextLink`.
#[derive(Deserialize)]
pub(super) struct ValuePage {
    pub(super) value: Vec<String>,
    #[serde(rename = "@odata.nextLink")]
    pub(super) next_link: Option<String>,
}

impl Inner {
    /// Asks Graph which of `ask` the principal is a member of.
    pub(super) async fn fetch(
        &self,
        principal: &Principal,
        ask: &[GroupId],
        deadline: Instant,
    ) -> Result<Membership, GroupResolutionError> {
        // Fixed before asking: the answer must not outlive the caller's token, nor the
        // configured TTL counted from when the question was asked.
        let valid_until = valid_for(self.answer_life(principal));
        let members = if self.use_get_member_objects {
            let all = self.get_member_objects(principal, deadline).await?;
            ask.iter().filter(|g| all.contains(*g)).cloned().collect()
        } else {
            let mut members = HashSet::new();
            for batch in ask.chunks(CHECK_MEMBER_GROUPS_BATCH) {
                members.extend(self.check_member_groups(principal, batch, deadline).await?);
            }
            members
        };
        Ok(Membership {
            asked: ask.iter().cloned().collect(),
            members,
            valid_until,
        })
    }

    /// `/v1.0/users/{oid}` or `/v1.0/servicePrincipals/{oid}`.
    pub(super) fn object_url(&self, principal: &Principal) -> String {
        let collection = match principal.kind() {
            PrincipalKind::User => "users",
            PrincipalKind::Application => "servicePrincipals",
        };
        format!(
            "{}/v1.0/{collection}/{}",
            self.graph_base,
            principal.object_id()
        )
    }

    pub(super) fn graph_url(&self, raw: &str) -> Result<Url, GroupResolutionError> {
        Url::parse(raw).map_err(|_| GroupResolutionError::Unavailable {
            reason: "the Microsoft Graph URL is not valid".into(),
        })
    }

    /// `checkMemberGroups` for at most 20 groups: the subset the principal is in.
    pub(super) async fn check_member_groups(
        &self,
        principal: &Principal,
        batch: &[GroupId],
        deadline: Instant,
    ) -> Result<Vec<GroupId>, GroupResolutionError> {
        let url = self.graph_url(&format!("{}/checkMemberGroups", self.object_url(principal)))?;
        let ids: Vec<&str> = batch.iter().map(GroupId::as_str).collect();
        let body = json!({ "groupIds": ids }).to_string();
        let page = self.graph_post(principal, &url, &body, deadline).await?;
        if page.next_link.is_some() {
            return Err(unusable(&url));
        }
        // Only groups that were asked about count, whatever else an answer holds.
        Ok(batch
            .iter()
            .filter(|g| {
                page.value
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(g.as_str()))
            })
            .cloned()
            .collect())
    }

    /// `getMemberObjects` (security groups only), every page.
    pub(super) async fn get_member_objects(
        &self,
        principal: &Principal,
        deadline: Instant,
    ) -> Result<HashSet<GroupId>, GroupResolutionError> {
        let first = self.graph_url(&format!("{}/getMemberObjects", self.object_url(principal)))?;
        let origin = first.origin();
        let body = json!({ "securityEnabledOnly": true }).to_string();
        let mut all = HashSet::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            let page = self.graph_post(principal, &url, &body, deadline).await?;
            // Directory roles and administrative units come back too: keep GUIDs, the
            // caller intersects with its groups.
            all.extend(page.value.iter().filter_map(|v| GroupId::parse(v).ok()));
            let Some(next) = page.next_link else {
                return Ok(all);
            };
            url = Url::parse(&next)
                .ok()
                .filter(|next| next.origin() == origin)
                .ok_or_else(|| GroupResolutionError::Unavailable {
                    reason: "Microsoft Graph sent a next page link to another host".into(),
                })?;
        }
        Err(GroupResolutionError::Unavailable {
            reason: format!("Microsoft Graph sent more than {MAX_PAGES} pages"),
        })
    }

    /// POSTs a JSON body to Graph with the tenant's token, retrying per the policy; a 401
    /// gets one more try with a fresh token.
    pub(super) async fn graph_post(
        &self,
        principal: &Principal,
        url: &Url,
        body: &str,
        deadline: Instant,
    ) -> Result<ValuePage, GroupResolutionError> {
        let tenant = principal.tenant();
        let mut fresh_token = false;
        loop {
            let token = self.graph_token(tenant, deadline).await?;
            let answer = self
                .send(
                    tenant,
                    GRAPH,
                    &self.graph_calls,
                    || {
                        Ok(self
                            .fetcher
                            .client
                            .post(url.clone())
                            .bearer_auth(&token.access_token)
                            .header(CONTENT_TYPE, "application/json")
                            .header(ACCEPT, "application/json")
                            .body(body.to_owned()))
                    },
                    url,
                    deadline,
                )
                .await?;
            match answer.status {
                200..=299 => {
                    return serde_json::from_slice(&answer.body).map_err(|_| unusable(url));
                }
                401 if !fresh_token => {
                    // Revoked or rolled: forget this token (unless already replaced).
                    fresh_token = true;
                    self.forget_token(tenant, &token).await;
                }
                401 | 403 => {
                    // Graph refuses the application, whoever is asked about.
                    let error = GroupResolutionError::Unauthorized {
                        service: GRAPH,
                        status: answer.status,
                        code: graph_error_code(&answer.body),
                    };
                    self.hold_tenant(tenant, Some(error.clone()), self.failure_ttl)
                        .await;
                    return Err(error);
                }
                404 => return Err(not_found(principal)),
                status => {
                    return Err(GroupResolutionError::Unavailable {
                        reason: format!(
                            "Microsoft Graph answered HTTP {status} ({})",
                            graph_error_code(&answer.body)
                        ),
                    });
                }
            }
        }
    }
}

pub(super) fn not_found(principal: &Principal) -> GroupResolutionError {
    GroupResolutionError::NotFound {
        kind: match principal.kind() {
            PrincipalKind::User => "user",
            PrincipalKind::Application => "service principal",
        },
        tenant: principal.tenant().clone(),
        object: principal.object_id().clone(),
    }
}

/// An answer that is not what Graph or the token endpoint should have sent.
pub(super) fn unusable(url: &Url) -> GroupResolutionError {
    GroupResolutionError::Unavailable {
        reason: format!(
            "{} answered a document that is not the expected JSON",
            crate::fetch::host_of(url)
        ),
    }
}
