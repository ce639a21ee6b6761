//! [`Governor`]: the one entry point. Configuration lives in [`builder`].

mod batch;
pub(crate) mod builder;
pub mod health;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::audit::{
    AuditEvent, AuditGroups, AuditLog, DecidedEvent, DecidedFields, DecisionFacts, Membership,
    decision_event,
};
use crate::clock::{from_unix_secs, unix_now, unix_secs_ceil};
use crate::cloud::Cloud;
use crate::decision::Decision;
use crate::error::{AuthorizeError, ConfigError, ReloadError, TokenError};
use crate::governance::shadow::{Shadow, ShadowReport};
use crate::graph::GroupResolver;
use crate::ids::{PrincipalId, TenantId};
use crate::policy::{CompiledPolicy, Permissions, Policy, TenantScope};
use crate::principal::Principal;
use crate::revocation::{RevocationError, Revocations, Subject};
use crate::token::Verifier;

pub use builder::GovernorBuilder;

/// Verifies Entra access tokens and answers authorization questions.
///
/// Cheap to clone (an `Arc` inside) and meant to be shared by every request handler.
/// Reading keys never takes a lock that serialises callers.
#[derive(Clone)]
pub struct Governor {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Unique in the process: ties a principal the adapters put in the request
    /// extensions to the governor that verified it.
    // Read by the web-framework adapters only (a principal in the request extensions is
    // trusted by the governor that verified it).
    #[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
    pub(crate) instance: u64,
    pub(crate) verifier: Verifier,
    pub(crate) policy: Arc<ArcSwap<CompiledPolicy>>,
    pub(crate) revocations: Arc<Revocations>,
    pub(crate) audit: Option<AuditLog>,
    pub(crate) audit_display_names: bool,
    /// Which groups decision events record.
    pub(crate) audit_groups: AuditGroups,
    /// The shadow policy slot, read by the audit log's worker once attached.
    pub(crate) shadow: Arc<Shadow>,
    /// The shadow slot is the audit log's hook.
    pub(crate) shadow_attached: std::sync::atomic::AtomicBool,
    pub(crate) groups: Option<Arc<dyn GroupResolver>>,
    /// How the last group lookup ended, for [`Governor::health`].
    pub(crate) graph_calls: health::GraphCalls,
    /// Fleet mode: the shared state's tasks run while this is held.
    #[cfg(feature = "redis")]
    pub(crate) fleet: Option<crate::fleet::Attached>,
}

/// Per-request facts that are not in the token, for the audit trail.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    /// The request or correlation id (for example the `x-request-id` header).
    pub correlation_id: Option<String>,
    /// The caller's W3C trace context (the `traceparent` header), which the audit event
    /// carries so that exported records join the caller's trace.
    pub trace_parent: Option<crate::audit::TraceParent>,
}

impl RequestContext {
    /// A context carrying a correlation id.
    pub fn with_correlation_id(id: impl Into<String>) -> Self {
        Self {
            correlation_id: Some(id.into()),
            ..Self::default()
        }
    }

    /// This context with the caller's W3C trace context.
    pub fn with_trace_parent(mut self, trace_parent: crate::audit::TraceParent) -> Self {
        self.trace_parent = Some(trace_parent);
        self
    }
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("authority", &self.inner.verifier.cloud().authority())
            .field("audiences", &self.inner.verifier.audiences())
            .finish_non_exhaustive()
    }
}

/// The next [`Inner::instance`]; never reused, so a principal verified by a dropped
/// governor can never pass for one verified by a later one.
static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh governor instance id.
pub(crate) fn next_instance() -> u64 {
    NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl Governor {
    /// Starts a configuration with secure defaults.
    pub fn builder() -> GovernorBuilder {
        GovernorBuilder::default()
    }

    /// Verifies a bearer token (without the `Bearer ` prefix) and returns the caller.
    ///
    /// # Errors
    /// A [`TokenError`] naming the first rule the token broke; see [`crate::token`] for
    /// the order. [`TokenError::KeysUnavailable`] when keys could not be obtained.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_shared(token).await.map(Arc::unwrap_or_clone)
    }

    /// Verification without copying a cached principal (the HTTP edge keeps it shared in
    /// the request extensions).
    pub(crate) async fn verify_shared(&self, token: &str) -> Result<Arc<Principal>, TokenError> {
        let principal = self.inner.verifier.verify(token).await?;
        self.check_revocation(&principal)?;
        Ok(principal)
    }

    fn check_revocation(&self, principal: &Principal) -> Result<(), TokenError> {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.inner.fleet {
            fleet.fleet.check_fresh()?;
        }
        let Some(before) = self.inner.revocations.revoked_before(principal.id()) else {
            return Ok(());
        };
        // A token without `iat` cannot prove it is newer: refuse it.
        if principal.issued_at.is_some_and(|iat| iat >= before) {
            return Ok(());
        }
        Err(TokenError::Revoked {
            revoked_before: from_unix_secs(before),
            can_handle_claims_challenge: principal.can_handle_claims_challenge(),
        })
    }

    /// Refuses, from now on, every token of this caller issued before `issued_before`
    /// (typically now), rounded up to the whole second: token times have whole seconds
    /// only, so a token issued in the same second is refused too. Takes effect at once, survives policy reloads, and is saved to the
    /// revocation file when one is configured. In fleet mode every replica enforces it
    /// too, once Redis has it: delivery is retried until Redis takes it. Clients that handle claims challenges get
    /// the CAE `insufficient_claims` challenge; others get 401 `invalid_token`.
    ///
    /// # Errors
    /// [`RevocationError::Full`] when the bounded list is full of live entries, or an I/O
    /// error saving the file; the revocation is then not recorded.
    pub fn revoke(
        &self,
        id: &PrincipalId,
        issued_before: std::time::SystemTime,
    ) -> Result<(), RevocationError> {
        let before = unix_secs_ceil(issued_before);
        self.inner
            .revocations
            .revoke_principal(id.clone(), before, unix_now())?;
        self.share_revocation(Subject::Principal(id.clone()), before);
        Ok(())
    }

    /// Queues a revocation for the fleet, in fleet mode.
    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
    fn share_revocation(&self, subject: Subject, before: u64) {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.inner.fleet {
            fleet.fleet.enqueue(subject, before);
        }
    }

    /// The Microsoft cloud whose tokens this governor accepts: the authority a claims
    /// challenge sends the client back to (the HTTP edge's `Refusal::from_decision` and
    /// `Refusal::from_token_error` take it).
    pub fn cloud(&self) -> &Cloud {
        self.inner.verifier.cloud()
    }

    /// How many verified tokens are cached (for dashboards and tests).
    pub fn cached_tokens(&self) -> u64 {
        self.inner.verifier.cached_tokens()
    }

    /// Bytes the verified-token cache counts against its budget (each entry weighs its
    /// token, its verified claims and itself): within the configured
    /// [`verified_token_cache`](GovernorBuilder::verified_token_cache) bound, except that
    /// an insert in progress counts its entry just before it evicts to make room.
    pub fn cached_token_bytes(&self) -> u64 {
        self.inner.verifier.cached_token_bytes()
    }

    /// How many revocation entries are held (for dashboards and tests); expired ones are
    /// pruned on the next revocation.
    pub fn revocation_count(&self) -> usize {
        self.inner.revocations.len()
    }

    /// Like [`revoke`](Self::revoke), for every caller of a tenant.
    ///
    /// # Errors
    /// As [`revoke`](Self::revoke).
    pub fn revoke_tenant(
        &self,
        tenant: &TenantId,
        issued_before: std::time::SystemTime,
    ) -> Result<(), RevocationError> {
        let before = unix_secs_ceil(issued_before);
        self.inner
            .revocations
            .revoke_tenant(tenant.clone(), before, unix_now())?;
        self.share_revocation(Subject::Tenant(tenant.clone()), before);
        Ok(())
    }

    /// Verifies the token, then decides whether its caller may perform `action` on
    /// `resource` under the current policy. Deny by default.
    ///
    /// An invalid token is an error (HTTP 401 material); a verified caller who may not
    /// act gets `Ok` with a denying [`Decision`] (HTTP 403 material).
    ///
    /// # Errors
    /// [`AuthorizeError::InvalidToken`] when the token does not verify.
    pub async fn authorize(
        &self,
        token: &str,
        action: &str,
        resource: &str,
    ) -> Result<Decision, AuthorizeError> {
        self.authorize_with(token, action, resource, &RequestContext::default())
            .await
    }

    /// [`authorize`](Self::authorize) with per-request context for the audit trail.
    ///
    /// # Errors
    /// As [`authorize`](Self::authorize), plus [`AuthorizeError::AuditUnavailable`] in
    /// strict audit mode while the audit trail is failing.
    pub async fn authorize_with(
        &self,
        token: &str,
        action: &str,
        resource: &str,
        context: &RequestContext,
    ) -> Result<Decision, AuthorizeError> {
        let started = Instant::now();
        let run = async {
            let principal = self
                .verify_recorded_since(token, action, resource, context, started)
                .await?;
            let caller = Caller::Shared(&principal);
            self.decide_and_record(caller, action, resource, context, started)
                .await
        };
        let span = crate::audit::decide_span(action, resource, context);
        let result = tracing::Instrument::instrument(run, span).await;
        crate::observe::authorized(&self.inner.verifier.hot, &result, started);
        result
    }

    async fn verify_recorded_since(
        &self,
        token: &str,
        action: &str,
        resource: &str,
        context: &RequestContext,
        started: Instant,
    ) -> Result<Arc<Principal>, AuthorizeError> {
        match self.verify_shared(token).await {
            Ok(principal) => Ok(principal),
            Err(error) => {
                let event = AuditEvent::for_token_error(&error, action, resource);
                Box::pin(self.record_event(event, context, started)).await?;
                Err(AuthorizeError::InvalidToken(error))
            }
        }
    }

    /// Decides for a caller verified earlier (by [`verify`](Self::verify), or by your own
    /// middleware), under the policy current at the time of the call, and records it.
    ///
    /// The principal is checked again first, as [`verify`](Self::verify) would check its
    /// token now: a token that has expired since (beyond this governor's clock skew) or a
    /// caller revoked since is refused with the same [`TokenError`] (HTTP 401).
    ///
    /// # Errors
    /// [`AuthorizeError::InvalidToken`] with [`TokenError::Expired`] or
    /// [`TokenError::Revoked`]; [`AuthorizeError::AuditUnavailable`] in strict audit mode
    /// while the audit trail is failing.
    pub async fn authorize_principal(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
        context: &RequestContext,
    ) -> Result<Decision, AuthorizeError> {
        let caller = Caller::Borrowed(principal);
        self.authorize_caller(caller, action, resource, context)
            .await
    }

    /// [`authorize_principal`](Self::authorize_principal) for a caller held in an `Arc`,
    /// as the adapters hand verified callers over (`Authenticated` in axum and
    /// actix-web, the tonic layer's extension): the same checks, decision and audit
    /// event, but with an audit trail the event is built by the trail's worker from the
    /// shared caller, off the request path, where `authorize_principal` builds it before
    /// returning.
    ///
    /// # Errors
    /// As [`authorize_principal`](Self::authorize_principal).
    pub async fn authorize_shared(
        &self,
        principal: &Arc<Principal>,
        action: &str,
        resource: &str,
        context: &RequestContext,
    ) -> Result<Decision, AuthorizeError> {
        let caller = Caller::Shared(principal);
        self.authorize_caller(caller, action, resource, context)
            .await
    }

    async fn authorize_caller(
        &self,
        caller: Caller<'_>,
        action: &str,
        resource: &str,
        context: &RequestContext,
    ) -> Result<Decision, AuthorizeError> {
        let started = Instant::now();
        let run = async {
            let principal = caller.principal();
            if let Err(error) = self.check_still_valid(principal) {
                let event =
                    AuditEvent::for_token_error(&error, action, resource).with_principal(principal);
                Box::pin(self.record_event(event, context, started)).await?;
                return Err(AuthorizeError::InvalidToken(error));
            }
            self.decide_and_record(caller, action, resource, context, started)
                .await
        };
        let span = crate::audit::decide_span(action, resource, context);
        let result = tracing::Instrument::instrument(run, span).await;
        crate::observe::authorized(&self.inner.verifier.hot, &result, started);
        result
    }

    /// The checks of [`verify`](Self::verify) that time can change: expiry (with the
    /// clock skew) and revocation.
    fn check_still_valid(&self, principal: &Principal) -> Result<(), TokenError> {
        let (now, skew) = (unix_now(), self.inner.verifier.skew_secs());
        let exp = principal.expires_at;
        if now >= exp.saturating_add(skew) {
            return Err(TokenError::Expired {
                expired_at: from_unix_secs(exp),
                now: from_unix_secs(now),
                skew_secs: skew,
            });
        }
        self.check_revocation(principal)
    }

    /// This governor's process-unique instance id; its clones share it.
    #[cfg_attr(not(any(feature = "axum", feature = "actix")), allow(dead_code))]
    pub(crate) fn instance(&self) -> u64 {
        self.inner.instance
    }

    async fn decide_and_record(
        &self,
        caller: Caller<'_>,
        action: &str,
        resource: &str,
        context: &RequestContext,
        started: Instant,
    ) -> Result<Decision, AuthorizeError> {
        // The slow paths (a Graph lookup, writing the trail) are boxed so that the common
        // path stays a small future that callers move cheaply.
        let (decision, record) = match self.decide_now(caller, action, resource) {
            Ok(done) => done,
            Err((policy, resolver)) => {
                let calls = &self.inner.graph_calls;
                let lookup = resolve_groups(&*resolver, calls, &policy, caller.principal());
                let membership = match Box::pin(lookup).await {
                    Some(groups) => Membership::Resolved(groups),
                    None => Membership::Unavailable,
                };
                self.decide_recorded(&policy, caller, &membership, action, resource)
            }
        };
        if let Some(record) = record {
            Box::pin(self.record(record, context, started)).await?;
        }
        Ok(decision)
    }

    /// Decides without waiting when no group lookup is needed (the usual case), reading
    /// the policy through a borrowed guard: without an audit trail no reference count is
    /// touched, so cores do not contend on the policy. Otherwise hands back the policy to
    /// decide with, held across the lookup, and the resolver to ask.
    fn decide_now(
        &self,
        caller: Caller<'_>,
        action: &str,
        resource: &str,
    ) -> Result<(Decision, Option<Record>), NeedsGroups> {
        let policy = self.inner.policy.load();
        if let Some(resolver) = &self.inner.groups
            && policy.needs_group_resolution(caller.principal())
        {
            return Err((arc_swap::Guard::into_inner(policy), Arc::clone(resolver)));
        }
        let membership = Membership::FromToken;
        Ok(self.decide_recorded(&policy, caller, &membership, action, resource))
    }

    /// Decides, and makes the decision's audit record when a trail is configured. With
    /// a trail the decision is made at the instant the event records, read once, so
    /// that a replay at the event's time reads `max_auth_age` exactly as the decision
    /// did. A shared caller's event is built by the audit worker
    /// ([`DecidedEvent`](crate::audit::DecidedEvent)); a borrowed one's, here.
    fn decide_recorded(
        &self,
        policy: &Arc<CompiledPolicy>,
        caller: Caller<'_>,
        membership: &Membership,
        action: &str,
        resource: &str,
    ) -> (Decision, Option<Record>) {
        let principal = caller.principal();
        if self.inner.audit.is_none() {
            let decision = policy.decide_with(principal, membership.source(), action, resource);
            return (decision, None);
        }
        let time = std::time::SystemTime::now();
        let secs = crate::clock::unix_secs(time);
        let decision = policy.decide_at(principal, membership.source(), action, resource, secs);
        let attached = self.inner.shadow_attached.load(Ordering::Relaxed);
        let shadow_of = attached.then_some(self.inner.instance);
        let (groups, display_names) = (self.inner.audit_groups, self.inner.audit_display_names);
        let record = match caller {
            Caller::Shared(principal) => Record::Decided(DecidedEvent {
                principal: Arc::clone(principal),
                decision: decision.clone(),
                membership: membership.clone(),
                policy: Arc::clone(policy),
                shadow: self.inner.shadow.policy(),
                groups,
                display_names,
                shadow_of,
                time,
                latency: std::time::Duration::ZERO,
                trace_parent: None,
                correlation_id: None,
                refused: false,
            }),
            Caller::Borrowed(principal) => {
                let event = self.inner.shadow.with_policy(|shadow| {
                    decision_event(&DecisionFacts {
                        principal,
                        decision: &decision,
                        membership: membership.source(),
                        policy,
                        shadow,
                        groups,
                        display_names,
                        shadow_of,
                        time,
                    })
                });
                Record::Event(Box::new(event))
            }
        };
        (decision, Some(record))
    }

    /// Records a decision's audit record (see [`record_event`](Self::record_event)).
    async fn record(
        &self,
        record: Record,
        context: &RequestContext,
        started: Instant,
    ) -> Result<(), AuthorizeError> {
        let mut decided = match record {
            Record::Event(event) => return self.record_event(*event, context, started).await,
            Record::Decided(decided) => decided,
        };
        let Some(audit) = &self.inner.audit else {
            return Ok(());
        };
        decided.latency = started.elapsed();
        decided.trace_parent = context.trace_parent;
        decided.correlation_id.clone_from(&context.correlation_id);
        crate::audit::record_decided(|| DecidedFields::of_decided(&decided));
        audit
            .record_decided(decided)
            .await
            .map_err(|_| AuthorizeError::AuditUnavailable)
    }

    /// Records an audit event, if an audit log is configured, with the request's latency
    /// so far and correlation id: the one way the crate writes to the trail.
    ///
    /// An event about a verified caller goes on the trail's queue; one without a caller (a
    /// refusal before anyone was authenticated: no, several or a malformed
    /// `Authorization` header, a rejected token) goes on the log's side queue, which never
    /// waits, so a flood of them cannot hold up real decisions (see
    /// [`AuditLog::record_unauthenticated`]). In strict mode a failing trail refuses the
    /// request.
    pub(crate) async fn record_event(
        &self,
        event: AuditEvent,
        context: &RequestContext,
        started: Instant,
    ) -> Result<(), AuthorizeError> {
        let Some(audit) = &self.inner.audit else {
            return Ok(());
        };
        let authenticated = event.object_id.is_some();
        let event = with_request(event, context, started);
        crate::audit::record_decided(|| DecidedFields::of_event(&event));
        let recorded = if authenticated {
            audit.record(event).await
        } else {
            audit.record_unauthenticated(event)
        };
        recorded.map_err(|_| AuthorizeError::AuditUnavailable)
    }

    /// Flushes and stops the audit trail (if any): every event recorded before the call is
    /// written; in fleet mode, also takes this replica off the fleet's list. Call it on
    /// graceful shutdown.
    pub async fn shutdown(&self) {
        if let Some(audit) = &self.inner.audit {
            audit.shutdown().await;
        }
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.inner.fleet {
            crate::fleet::check_out(&fleet.fleet).await;
        }
    }

    /// The caller's effective grants under the current policy (for user interfaces and
    /// access reviews).
    pub fn permissions(&self, principal: &Principal) -> Permissions {
        self.inner.policy.load().permissions(principal)
    }

    /// Replaces the policy atomically. Requests already deciding finish on the policy
    /// they started with; later ones use the new one. In fleet mode this changes this
    /// replica only ([`fleet_status`](Self::fleet_status) then shows it apart); use
    /// `publish_policy` to change every replica. A [`Policy`] is validated when it
    /// is loaded, so an invalid one never gets this far: see
    /// [`reload_policy_from_path`](Self::reload_policy_from_path).
    ///
    /// # Errors
    /// [`ConfigError::UnqualifiedClaimBindings`] when this governor accepts more than one
    /// tenant and the policy has claim-value bindings without `tenants`; the current
    /// policy keeps serving.
    pub fn reload_policy(&self, policy: Policy) -> Result<(), ConfigError> {
        check_tenant_trust(self.tenant_scope(), &policy.compiled())?;
        self.inner.policy.store(policy.compiled());
        Ok(())
    }

    /// Sets, replaces or (with `None`) removes the shadow policy; its counters start
    /// again. See [`governance::shadow`](crate::governance::shadow).
    ///
    /// # Errors
    /// [`ConfigError::ShadowWithoutAudit`] without an audit log,
    /// [`ConfigError::AuditLogShadowTaken`] when the log serves another governor's
    /// shadow, and the tenant-trust errors of [`reload_policy`](Self::reload_policy).
    pub fn reload_shadow_policy(&self, policy: Option<Policy>) -> Result<(), ConfigError> {
        let Some(policy) = policy else {
            self.inner.shadow.set(None);
            return Ok(());
        };
        let audit = self
            .inner
            .audit
            .as_ref()
            .ok_or(ConfigError::ShadowWithoutAudit)?;
        let compiled = policy.compiled();
        check_tenant_trust(self.tenant_scope(), &compiled)?;
        let attached = &self.inner.shadow_attached;
        if attached
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            && let Err(error) = attach_shadow(audit, &self.inner.shadow, self.inner.instance)
        {
            attached.store(false, Ordering::SeqCst);
            return Err(error);
        }
        self.inner.shadow.set(Some(compiled));
        Ok(())
    }

    /// The shadow policy's counters since it was set (all zero, and no version, when
    /// none is set).
    pub fn shadow_report(&self) -> ShadowReport {
        self.inner.shadow.report()
    }

    /// Loads, validates and swaps in a policy file; on any error the current policy keeps
    /// serving and the error says which file and key were wrong.
    ///
    /// # Errors
    /// The [`PolicyError`](crate::PolicyError) of the new file, or the [`ConfigError`] of
    /// [`reload_policy`](Self::reload_policy).
    pub fn reload_policy_from_path(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<(), ReloadError> {
        let reloaded = Policy::from_path(path)
            .map_err(ReloadError::from)
            .and_then(|policy| Ok(self.reload_policy(policy)?));
        #[cfg(feature = "metrics")]
        crate::observe::policy_reloaded(reloaded.is_ok());
        reloaded
    }

    /// Whether this governor accepts one tenant or several: what an unqualified
    /// claim-value binding may mean, and how [`Policy::lint_for`] should lint.
    pub fn tenant_scope(&self) -> TenantScope {
        tenant_scope_of(&self.inner.verifier)
    }

    /// This replica's view of the fleet: its mode, its policy version, how old its view
    /// of the shared revocations is, and every live replica's policy version. Never
    /// waits on Redis. A standalone governor reports itself as the only replica.
    pub fn fleet_status(&self) -> crate::fleet::FleetStatus {
        #[cfg(feature = "redis")]
        if let Some(fleet) = &self.inner.fleet {
            return fleet.fleet.status(self.policy_version());
        }
        crate::fleet::FleetStatus::standalone(self.policy_version())
    }

    /// Publishes a policy (TOML) to the fleet and applies it here: validated first (as
    /// [`reload_policy`](Self::reload_policy) would), sealed with the fleet key, and
    /// applied by every replica at its next heartbeat after it validates it again. A
    /// replica that refuses it keeps its policy and says why in
    /// [`FleetStatus::fleet_policy_rejected`](crate::fleet::FleetStatus::fleet_policy_rejected).
    /// Returns the published version hash.
    ///
    /// # Errors
    /// [`FleetError::InvalidPolicy`](crate::fleet::FleetError::InvalidPolicy) (nothing is
    /// published), [`FleetError::Redis`](crate::fleet::FleetError::Redis), or
    /// [`FleetError::NotInFleetMode`](crate::fleet::FleetError::NotInFleetMode).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub async fn publish_policy(&self, source: &str) -> Result<String, crate::fleet::FleetError> {
        let Some(fleet) = &self.inner.fleet else {
            return Err(crate::fleet::FleetError::NotInFleetMode);
        };
        crate::fleet::publish_policy(&fleet.fleet, &fleet.attachment, source).await
    }

    /// The current policy's version hash (SHA-256 of its source).
    pub fn policy_version(&self) -> String {
        self.inner.policy.load().version_hash().to_owned()
    }

    /// Fetches the signing keys now (if none are held yet) and returns how many are held:
    /// for start-up warm-up and readiness probes.
    ///
    /// # Errors
    /// [`TokenError::KeysUnavailable`] when the identity provider cannot be reached.
    pub async fn prefetch_keys(&self) -> Result<usize, TokenError> {
        self.inner.verifier.prefetch_keys().await
    }

    /// The key ids currently held, sorted (for diagnostics).
    pub fn key_ids(&self) -> Vec<String> {
        self.inner.verifier.key_ids()
    }
}

/// The policy's view of the tenants a verifier accepts.
fn tenant_scope_of(verifier: &Verifier) -> TenantScope {
    if verifier.accepts_one_tenant() {
        TenantScope::Single
    } else {
        TenantScope::Multiple
    }
}

/// Refuses a policy whose claim-value bindings would trust every tenant the verifier
/// accepts (see [`check_tenant_trust`]).
pub(crate) fn check_policy_for(
    verifier: &Verifier,
    policy: &CompiledPolicy,
) -> Result<(), ConfigError> {
    check_tenant_trust(tenant_scope_of(verifier), policy)
}

/// Refuses a policy whose claim-value bindings would trust other tenants'
/// administrators: in a governor that accepts several tenants every `app_role`,
/// `app_permission` and `directory_role` binding must name the tenants it trusts.
pub(crate) fn check_tenant_trust(
    scope: TenantScope,
    policy: &CompiledPolicy,
) -> Result<(), ConfigError> {
    let unqualified = policy.unqualified_claim_bindings();
    if scope == TenantScope::Multiple && !unqualified.is_empty() {
        return Err(ConfigError::UnqualifiedClaimBindings {
            bindings: unqualified.to_vec(),
        });
    }
    Ok(())
}

/// `event` with the request's latency so far, trace context and correlation id.
fn with_request(event: AuditEvent, context: &RequestContext, started: Instant) -> AuditEvent {
    let mut event = event.with_latency(started.elapsed());
    event.trace_parent = context.trace_parent;
    match &context.correlation_id {
        Some(id) => event.with_correlation_id(id.clone()),
        None => event,
    }
}

/// The caller of a decision: shared with the token cache (its audit event is built by
/// the audit worker) or borrowed from the application (its event is built at once).
#[derive(Clone, Copy)]
pub(crate) enum Caller<'a> {
    Shared(&'a Arc<Principal>),
    Borrowed(&'a Principal),
}

impl Caller<'_> {
    fn principal(&self) -> &Principal {
        match self {
            Self::Shared(principal) => principal,
            Self::Borrowed(principal) => principal,
        }
    }
}

/// A decision's audit record, not yet queued: an event, or what the worker builds one
/// from.
#[expect(
    clippy::large_enum_variant,
    reason = "the large variant is the common one; boxing it would allocate per decision"
)]
pub(crate) enum Record {
    Event(Box<AuditEvent>),
    Decided(DecidedEvent),
}

/// A decision that must first resolve group membership: the policy it started under and
/// the resolver to ask.
type NeedsGroups = (Arc<CompiledPolicy>, Arc<dyn GroupResolver>);

/// Resolves group membership through `resolver`, for a token that could not list it
/// (overage) when a group binding could matter. Only the groups the policy binds are
/// asked about. A failed lookup is `None`: "membership unavailable", never "member of
/// nothing".
async fn resolve_groups(
    resolver: &dyn GroupResolver,
    calls: &health::GraphCalls,
    policy: &CompiledPolicy,
    principal: &Principal,
) -> Option<Vec<crate::ids::GroupId>> {
    let started = crate::observe::Stopwatch::start();
    let result = resolver.resolve(principal, policy.bound_group_ids()).await;
    crate::observe::graph_lookup_took(started);
    calls.note(&result);
    match result {
        Ok(groups) => Some(groups),
        Err(error) => {
            tracing::warn!(%error, principal = %principal.id(), "group membership unavailable");
            None
        }
    }
}

/// Makes `shadow` the hook of `audit`'s worker.
pub(crate) fn attach_shadow(
    audit: &AuditLog,
    shadow: &Arc<Shadow>,
    owner: u64,
) -> Result<(), ConfigError> {
    shadow.set_owner(owner);
    if audit.attach_hook(Arc::clone(shadow) as Arc<dyn crate::audit::EventHook>) {
        Ok(())
    } else {
        Err(ConfigError::AuditLogShadowTaken)
    }
}
