//! Group overage: resolving group membership that did not fit in the token.
//!
//! Entra puts at most 200 groups in an access token. Past that it drops the `groups` claim
//! and sends an overage marker instead ([`TokenGroups::Overage`](crate::TokenGroups::Overage)), whose
//! `_claim_sources` endpoint points at the retired Azure AD Graph and is never followed.
//! An overage token is **not** "member of nothing": membership must be asked of Microsoft
//! Graph, and when that fails the decision is a deny for "group membership unavailable",
//! never a silent "no groups".
//!
//! [`GroupResolver`] is the contract: given a principal and the groups a policy cares
//! about, return the ones the principal is a (transitive) member of, or a typed
//! [`GroupResolutionError`]. With the `graph` feature (on by default),
//! [`GraphGroupResolver`] implements it with Microsoft Graph:
//!
//! - it signs in as the API's own application with client credentials (a client secret, a
//!   certificate, or a workload identity's federated token) at the cloud's token endpoint
//!   of the **principal's** tenant, or as a managed identity at the local identity
//!   endpoint (IMDS or App Service; its own tenant only), and caches
//!   the Graph token per tenant until shortly before it expires (an `expires_in` above 24 h
//!   counts as 24 h);
//! - it asks the least it needs: `checkMemberGroups` with only the candidate group ids,
//!   20 per call (or, when configured, `getMemberObjects`, intersected with the candidates);
//!   users under `/users/{oid}`, app-only callers under `/servicePrincipals/{oid}`;
//! - it caches answers per `(tid, oid)` with a bounded capacity and a lifetime that never
//!   outlives the caller's token, and merges concurrent lookups of one principal into one;
//! - it honours `429 Retry-After` (at most [`MAX_GRAPH_RETRY_AFTER`], 5 minutes: a longer
//!   or absurd value counts as 5 minutes), retries 5xx and transport failures with a
//!   bounded, jittered backoff, and gives up when the time budget of the decision is spent;
//! - it does not storm a failing or throttling Graph: a failed lookup is remembered for
//!   the principal for `failure_ttl` (default [`DEFAULT_GRAPH_FAILURE_TTL`], 5 s; as many
//!   principals as the membership cache holds), and the principal's lookups in that window
//!   get the same error without a call. Failures of Graph or of the token endpoint as a
//!   whole (5xx or transport failures after the retries, a refused application or
//!   credential) hold back every lookup of the **tenant** for the same time, and a 429
//!   holds back every lookup of its tenant until its `Retry-After` has passed: those fail
//!   fast with [`GroupResolutionError::Throttled`] and the time left. Other tenants are
//!   never held back. Every held-back error is still a transient one to a decision: a deny
//!   for [`GROUP_MEMBERSHIP_UNAVAILABLE`], answered 503 with `Retry-After`.
//!
//! - in fleet mode ([`GraphGroupResolverBuilder::fleet`], feature `redis`) it shares
//!   answers and 429 holds with every replica through Redis: see [`fleet`](crate::fleet).
//!
//! The operator grants the API's app registration the Microsoft Graph **application**
//! permissions `User.Read.All` and `GroupMember.Read.All`, with admin consent, in every
//! tenant whose users are resolved; app-only callers (service principals) also need
//! `Application.Read.All`, Microsoft's least-privileged permission for their memberships.
//!
//! A resolver is a trait object, so tests and special deployments can bring their own:
//!
//! ```
//! use entra_governor::graph::{GroupResolutionError, GroupResolver};
//! use entra_governor::{GroupId, Principal};
//!
//! /// Everyone is a member of exactly one well-known group.
//! struct OneGroup(GroupId);
//!
//! #[async_trait::async_trait]
//! impl GroupResolver for OneGroup {
//!     async fn resolve(
//!         &self,
//!         _principal: &Principal,
//!         candidates: &[GroupId],
//!     ) -> Result<Vec<GroupId>, GroupResolutionError> {
//!         Ok(candidates.iter().filter(|g| **g == self.0).cloned().collect())
//!     }
//! }
//! # let _ = OneGroup(GroupId::parse("00000000-0000-0000-0000-000000000001").unwrap());
//! ```
//!
//! With the Microsoft Graph implementation, against the local Entra look-alike:
//!
//! ```
//! # #[cfg(feature = "graph")]
//! # {
//! use entra_governor::graph::{ClientCredential, GraphGroupResolver, GroupResolver};
//! use entra_governor::testing::TestIdp;
//! use entra_governor::{Cloud, GroupId, TokenGroups, Principal};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let idp = TestIdp::start().await;
//! let resolver = GraphGroupResolver::builder(
//!     &Cloud::custom(idp.authority()),
//!     idp.tenant_id(),
//!     idp.client_id(),
//!     ClientCredential::secret(idp.graph_client_secret()),
//! )
//! .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
//! .build()?;
//!
//! let trainers = GroupId::parse("0b3e3f0c-5b8a-4c4e-9c1d-2f6a7e8d9c01")?;
//! let viewers = GroupId::parse("1c4f4a1d-6c9b-4d5f-8d2e-3a7b8f9e0d12")?;
//! let token = idp.token().overage().sign();
//! # let governor = entra_governor::Governor::builder()
//! #     .cloud(Cloud::custom(idp.authority()))
//! #     .tenant(idp.tenant_id().as_str())
//! #     .client_id(idp.client_id())
//! #     .dangerous_allow_http_loopback()
//! #     .build()?;
//! let principal: Principal = governor.verify(&token).await?;
//! assert_eq!(principal.groups(), &TokenGroups::Overage);
//! idp.set_memberships(principal.object_id(), vec![trainers.clone()]);
//!
//! let member_of = resolver.resolve(&principal, &[trainers.clone(), viewers]).await?;
//! assert_eq!(member_of, vec![trainers]);
//! # Ok(())
//! # }
//! # }
//! # #[cfg(not(feature = "graph"))]
//! # fn main() {}
//! ```

#[cfg(feature = "graph")]
mod credentials;
#[cfg(feature = "graph")]
mod resolver;

use std::time::Duration;

use async_trait::async_trait;

use crate::ids::{GroupId, ObjectId, TenantId};
use crate::principal::Principal;

#[cfg(feature = "graph")]
pub use credentials::{ClientCredential, ManagedIdentityId};
#[cfg(feature = "graph")]
pub use resolver::{
    DEFAULT_GRAPH_CACHE_CAPACITY, DEFAULT_GRAPH_CACHE_TTL, DEFAULT_GRAPH_FAILURE_TTL,
    DEFAULT_GRAPH_MAX_RETRIES, DEFAULT_GRAPH_TIME_BUDGET, GraphGroupResolver,
    GraphGroupResolverBuilder, MAX_GRAPH_RESPONSE_BYTES, MAX_GRAPH_RETRY_AFTER,
};

/// The reason a decision gives when group membership could not be resolved, whatever the
/// [`GroupResolutionError`]: distinct from "not a member".
pub const GROUP_MEMBERSHIP_UNAVAILABLE: &str = "group membership unavailable";

/// Resolves the group membership of a principal whose token could not list it.
///
/// Implementations must be conservative: a group is returned only when membership was
/// established, and anything that prevents an answer is an error, never an empty list.
#[async_trait]
pub trait GroupResolver: Send + Sync {
    /// Returns the subset of `candidates` the principal is a (transitive) member of, in the
    /// order of `candidates` and without duplicates. An empty `candidates` returns an empty
    /// list without any network call.
    async fn resolve(
        &self,
        principal: &Principal,
        candidates: &[GroupId],
    ) -> Result<Vec<GroupId>, GroupResolutionError>;
}

/// Why group membership could not be resolved. Every variant means the same thing to a
/// decision, a deny for [`GROUP_MEMBERSHIP_UNAVAILABLE`] (see
/// [`decision_reason`](Self::decision_reason)); the variants tell an operator what to fix.
///
/// No variant ever holds a client secret, a client assertion or an access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupResolutionError {
    /// Microsoft Graph or the token endpoint could not be reached, answered 5xx after the
    /// retries, or answered something unusable.
    #[error("group membership unavailable: {reason}")]
    Unavailable {
        /// What went wrong (host, status or a fixed phrase; never a body).
        reason: String,
    },
    /// Microsoft Graph kept answering 429 and its `Retry-After` did not fit in the time
    /// budget (or the retries were spent), or the tenant is held back by an earlier 429
    /// whose `Retry-After` has not passed.
    #[error("Microsoft Graph is throttling this application (Retry-After {retry_after_secs} s)")]
    Throttled {
        /// The last `Retry-After` asked for (at most 300), or while held back the time
        /// left of it rounded up, in seconds.
        retry_after_secs: u64,
    },
    /// The time budget of the decision ran out before an answer arrived.
    #[error("group resolution did not finish within its time budget of {budget:?}")]
    BudgetExceeded {
        /// The configured budget.
        budget: Duration,
    },
    /// The token endpoint refused the application's credentials (e.g. `invalid_client`), or
    /// Microsoft Graph refused its token (e.g. `Authorization_RequestDenied`: the
    /// application permissions were not granted).
    #[error("{service} refused the application (HTTP {status}, {code})")]
    Unauthorized {
        /// `"the token endpoint"`, `"the managed identity endpoint"` or
        /// `"Microsoft Graph"`.
        service: &'static str,
        /// The HTTP status.
        status: u16,
        /// Entra's or Graph's error code, e.g. `invalid_client (AADSTS7000215)`, or
        /// `unknown`.
        code: String,
    },
    /// Microsoft Graph does not know the principal's object in its tenant.
    #[error("Microsoft Graph has no {kind} {object} in tenant {tenant}")]
    NotFound {
        /// `user` or `service principal`.
        kind: &'static str,
        /// The principal's tenant.
        tenant: TenantId,
        /// The principal's object id.
        object: ObjectId,
    },
    /// The resolver signs in as a managed identity, which gets tokens only in its own
    /// tenant, and the principal belongs to another: use workload identity federation or a
    /// multi-tenant application credential to resolve other tenants.
    #[error("a managed identity gets tokens only in its own tenant {home}, not in tenant {tenant}")]
    ForeignTenant {
        /// The managed identity's (the resolver's) tenant.
        home: TenantId,
        /// The principal's tenant.
        tenant: TenantId,
    },
}

impl GroupResolutionError {
    /// The reason a decision gives for this error: always
    /// [`GROUP_MEMBERSHIP_UNAVAILABLE`], whichever the variant.
    pub fn decision_reason(&self) -> &'static str {
        GROUP_MEMBERSHIP_UNAVAILABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_group_membership_unavailable() {
        let errors = [
            GroupResolutionError::Unavailable { reason: "x".into() },
            GroupResolutionError::Throttled {
                retry_after_secs: 3,
            },
            GroupResolutionError::BudgetExceeded {
                budget: Duration::from_secs(5),
            },
        ];
        for e in errors {
            assert_eq!(e.decision_reason(), "group membership unavailable");
        }
    }

    #[test]
    fn display_texts_are_pinned() {
        assert_eq!(
            GroupResolutionError::Throttled {
                retry_after_secs: 30
            }
            .to_string(),
            "Microsoft Graph is throttling this application (Retry-After 30 s)"
        );
        assert_eq!(
            GroupResolutionError::BudgetExceeded {
                budget: Duration::from_secs(5)
            }
            .to_string(),
            "group resolution did not finish within its time budget of 5s"
        );
        assert_eq!(
            GroupResolutionError::Unauthorized {
                service: "the token endpoint",
                status: 401,
                code: "invalid_client (AADSTS7000215)".into(),
            }
            .to_string(),
            "the token endpoint refused the application (HTTP 401, invalid_client (AADSTS7000215))"
        );
        assert_eq!(
            GroupResolutionError::NotFound {
                kind: "service principal",
                tenant: TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
                object: ObjectId::parse("690222be-ff1a-4d56-abd1-7e4f7d38e474").unwrap(),
            }
            .to_string(),
            "Microsoft Graph has no service principal 690222be-ff1a-4d56-abd1-7e4f7d38e474 \
             in tenant 72f988bf-86f1-41af-91ab-2d7cd011db47"
        );
    }
}
