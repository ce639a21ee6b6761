//! The batch question: one caller, one action, many resources ("which of these models
//! may this caller invoke?"), the engine behind filtered listings.
//!
//! Per call, and not per item: the caller is checked for expiry and revocation once,
//! the policy is read once (every answer comes from the same policy version, even if a
//! reload lands meanwhile), and group membership is resolved through Graph at most once.
//! Per item there is only the decision itself.
//!
//! **Audit: one event per item.** Each answer is a decision about a named resource, and
//! the trail records it as one, with its inputs (schema v2), so that replay and the
//! access review reproduce listings exactly like single requests ("who could see
//! `models/gpt-4o` last month?" is answered from the same events). A summary event per
//! listing would be smaller but could not be decided again. The events share the
//! request's correlation id; a listing of `n` resources writes `n` events.

use std::time::Instant;

use super::{Caller, Governor, resolve_groups};
use crate::RequestContext;
use crate::audit::{AuditEvent, Membership};
use crate::decision::Decision;
use crate::error::AuthorizeError;
use crate::principal::Principal;

impl Governor {
    /// Decides `action` on each of `resources` for a caller verified earlier, and
    /// records each decision: one [`Decision`] per resource, in order. See
    /// [`filter_allowed`](Self::filter_allowed) for what is shared across the batch.
    ///
    /// # Errors
    /// As [`authorize_principal`](Self::authorize_principal): the caller's token expired
    /// or was revoked since it was verified, or the audit trail fails in strict mode.
    pub async fn authorize_each<R: AsRef<str>>(
        &self,
        principal: &Principal,
        action: &str,
        resources: &[R],
        context: &RequestContext,
    ) -> Result<Vec<Decision>, AuthorizeError> {
        let started = Instant::now();
        if let Err(error) = self.check_still_valid(principal) {
            let listing = resources.first().map_or("", AsRef::as_ref);
            let event =
                AuditEvent::for_token_error(&error, action, listing).with_principal(principal);
            self.record_event(event, context, started).await?;
            return Err(AuthorizeError::InvalidToken(error));
        }
        let policy = self.inner.policy.load_full();
        let membership = match &self.inner.groups {
            Some(resolver) if policy.needs_group_resolution(principal) => {
                let calls = &self.inner.graph_calls;
                match resolve_groups(&**resolver, calls, &policy, principal).await {
                    Some(groups) => Membership::Resolved(groups),
                    None => Membership::Unavailable,
                }
            }
            _ => Membership::FromToken,
        };
        let caller = Caller::Borrowed(principal);
        let mut decisions = Vec::with_capacity(resources.len());
        for resource in resources {
            let (decision, record) =
                self.decide_recorded(&policy, caller, &membership, action, resource.as_ref());
            if let Some(record) = record {
                self.record(record, context, started).await?;
            }
            crate::observe::decided(&self.inner.verifier.hot, &decision);
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// The resources among `resources` on which a caller verified earlier may perform
    /// `action`, in their order: the filtered listing (`GET /v1/models` showing only the
    /// models the caller may invoke, `tools/list` showing only the tools it may call).
    ///
    /// One call for the whole batch: the caller is checked again for expiry and
    /// revocation once, the policy is read once, and group membership is resolved at
    /// most once; per item there is only the decision. A resource the caller may not act
    /// on (including a step-up or a membership lookup that failed) is left out. Every
    /// item's decision is recorded in the audit trail, one event each: every answer is a
    /// decision about a named resource, which replay and the access review reproduce
    /// exactly as they do single requests (a summary per listing could not be decided
    /// again). The events share the request's correlation id.
    ///
    /// ```
    /// # async fn f(governor: entra_governor::Governor, caller: entra_governor::Principal)
    /// # -> Result<(), entra_governor::AuthorizeError> {
    /// let models = ["models/llama-3-70b", "models/gpt-4o", "models/llama-3-8b"];
    /// let visible = governor
    ///     .filter_allowed(&caller, "inference.invoke", &models, &Default::default())
    ///     .await?;
    /// for model in visible {
    ///     println!("{model}");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`authorize_each`](Self::authorize_each).
    pub async fn filter_allowed<'r, R: AsRef<str>>(
        &self,
        principal: &Principal,
        action: &str,
        resources: &'r [R],
        context: &RequestContext,
    ) -> Result<Vec<&'r R>, AuthorizeError> {
        let decisions = self
            .authorize_each(principal, action, resources, context)
            .await?;
        Ok(resources
            .iter()
            .zip(decisions)
            .filter(|(_, decision)| decision.is_allowed())
            .map(|(resource, _)| resource)
            .collect())
    }
}
