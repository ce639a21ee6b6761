//! A decision's audit event, and [`DecidedEvent`]: a decision handed to the audit worker,
//! which builds its event there.
//!
//! With an audit trail, every decision becomes a schema v2 event: the caller's ids, the
//! decision's reason, explanation, roles, grant and bindings, and the inputs it read
//! ([`DecisionInputs`]). Building one copies a few dozen strings and formats two (the
//! explanation and the time). The request path does none of that: it queues what the
//! event is made from (the verified caller, shared with the token cache; a copy of the
//! decision; the policy that decided; the instant it decided) and the worker builds the
//! event before its hook and sink see it. The event is the same either way: the same
//! function builds it from the same facts ([`decision_event`]), and nothing it reads
//! can change in between (the caller and the policy are immutable and held, the time
//! was read when the decision was made).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::event::{AuditEvent, AuditOutcome};
use super::inputs::{AuditGroups, DecisionInputs, GroupFilter};
use super::trace_parent::TraceParent;
use crate::decision::{Decision, Reason};
use crate::ids::GroupId;
use crate::policy::{CompiledPolicy, MembershipSource};
use crate::principal::Principal;

/// Everything a decision's audit event is made from, borrowed.
pub(crate) struct DecisionFacts<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) decision: &'a Decision,
    pub(crate) membership: MembershipSource<'a>,
    /// The policy that decided: its version, and the groups it binds.
    pub(crate) policy: &'a CompiledPolicy,
    /// The shadow policy set when the decision was made: the groups it binds.
    pub(crate) shadow: Option<&'a CompiledPolicy>,
    pub(crate) groups: AuditGroups,
    pub(crate) display_names: bool,
    /// The governor instance whose shadow policy decides the event again, if attached.
    pub(crate) shadow_of: Option<u64>,
    pub(crate) time: SystemTime,
}

/// The audit record of a decision: who, what, the roles, grant and bindings that
/// decided, and what it read (schema v2).
pub(crate) fn decision_event(facts: &DecisionFacts<'_>) -> AuditEvent {
    let DecisionFacts {
        principal,
        decision,
        ..
    } = *facts;
    let mut roles: Vec<String> = decision.matched.iter().map(|m| m.role.clone()).collect();
    roles.dedup();
    let mut bindings: Vec<String> = Vec::new();
    for m in &decision.matched {
        if bindings.last() != Some(&m.binding) {
            bindings.push(m.binding.clone());
        }
    }
    let filter = GroupFilter {
        mode: facts.groups,
        live: facts.policy,
        shadow: facts.shadow,
    };
    let mut event = AuditEvent::at(
        facts.time,
        AuditOutcome::of(decision),
        decision.action.clone(),
        decision.resource.clone(),
    )
    .with_principal(principal);
    event.reason = decision.reason.code().to_owned();
    event.explanation = Some(decision.explain());
    event.roles = roles;
    event.policy_version = Some(facts.policy.version_hash().to_owned());
    event.grant = decision.matched.first().map(|m| m.grant.clone());
    event.bindings = bindings;
    event.trusted_tenant = decision.matched.iter().find_map(|m| m.tenant.clone());
    event.denied_by = decision.denied_by().map(str::to_owned);
    if let Reason::StepUpRequired { claims, .. } = &decision.reason {
        event.claims_request = Some(claims.clone());
    }
    event.inputs = Some(DecisionInputs::capture(
        principal,
        facts.membership,
        &filter,
    ));
    event.shadow_of = facts.shadow_of;
    if facts.display_names {
        event = event.with_display_name_of(principal);
    }
    event
}

/// Where a queued decision read the caller's group membership from (an owned
/// [`MembershipSource`]).
#[derive(Clone)]
pub(crate) enum Membership {
    /// The token's own claims.
    FromToken,
    /// A resolver's answer.
    Resolved(Vec<GroupId>),
    /// A resolver was asked and failed.
    Unavailable,
}

impl Membership {
    /// The borrowed form, which decisions read.
    pub(crate) fn source(&self) -> MembershipSource<'_> {
        match self {
            Self::FromToken => MembershipSource::FromToken,
            Self::Resolved(groups) => MembershipSource::Resolved(groups),
            Self::Unavailable => MembershipSource::Unavailable,
        }
    }
}

/// A decision queued for the audit worker, which builds its event
/// ([`into_event`](Self::into_event)); see [the module docs](self).
pub(crate) struct DecidedEvent {
    pub(crate) principal: Arc<Principal>,
    pub(crate) decision: Decision,
    pub(crate) membership: Membership,
    pub(crate) policy: Arc<CompiledPolicy>,
    pub(crate) shadow: Option<Arc<CompiledPolicy>>,
    pub(crate) groups: AuditGroups,
    pub(crate) display_names: bool,
    pub(crate) shadow_of: Option<u64>,
    pub(crate) time: SystemTime,
    /// The request's part: set when the event is recorded.
    pub(crate) latency: Duration,
    pub(crate) trace_parent: Option<TraceParent>,
    pub(crate) correlation_id: Option<String>,
    /// Strict mode refused the request although the decision allowed it: the event says
    /// so (see [`refuse_allow`]).
    pub(crate) refused: bool,
}

impl DecidedEvent {
    /// The decision's audit event, exactly as it would have been built on the request
    /// path.
    pub(crate) fn into_event(self) -> AuditEvent {
        let facts = DecisionFacts {
            principal: &self.principal,
            decision: &self.decision,
            membership: self.membership.source(),
            policy: &self.policy,
            shadow: self.shadow.as_deref(),
            groups: self.groups,
            display_names: self.display_names,
            shadow_of: self.shadow_of,
            time: self.time,
        };
        let mut event = decision_event(&facts).with_latency(self.latency);
        event.trace_parent = self.trace_parent;
        event.correlation_id = self.correlation_id;
        if self.refused {
            refuse_allow(&mut event);
        }
        event
    }
}

/// Rewrites an `allow` that strict mode refused (the trail is failing): the trail must
/// not say "allowed" for a request the caller is about to refuse.
pub(crate) fn refuse_allow(event: &mut AuditEvent) {
    event.explanation = Some(format!(
        "would have been allowed ({}); refused because the audit trail is unavailable (strict mode)",
        event.reason
    ));
    event.outcome = AuditOutcome::Unavailable;
    event.reason = super::AUDIT_UNAVAILABLE_REASON.to_owned();
}
