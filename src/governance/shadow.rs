//! Shadow policy: a candidate decided beside the live policy on every decision, never
//! enforced.
//!
//! The candidate does not run on the request path. The governor records every decision
//! with its inputs (audit schema v2); the audit log's worker decides each event again
//! under the shadow policy before the sink sees it, so the cost is one decision per event
//! on the worker task, bounded by the audit queue like every event. When the two
//! answers differ, the event carries the shadow's outcome and reason (`shadow`) and the
//! counters ([`ShadowReport`]) say how often each grant or rule changed an answer.
//!
//! A shadow policy therefore needs an audit log
//! ([`ConfigError::ShadowWithoutAudit`](crate::ConfigError::ShadowWithoutAudit)), its
//! own: only the events of the governor that owns the shadow are decided again. While
//! one is set, decision events record the groups both policies bind, so the shadow
//! decides with the membership the token listed. A membership resolved through Microsoft
//! Graph covers the live policy's groups only, and a token with a group overage that the
//! live policy did not need resolved lists none: such decisions are counted `inexact`
//! when the shadow's groups could change the answer (and marked so on the event).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use serde::Serialize;

use crate::audit::{AuditEvent, AuditOutcome, EventHook, ShadowOutcome};
use crate::policy::CompiledPolicy;

use super::replay::{change_of, decide_again};

/// Counters of a shadow policy since it was set; see [`Governor::shadow_report`].
///
/// [`Governor::shadow_report`]: crate::Governor::shadow_report
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShadowReport {
    /// The shadow policy's version (hash); `None` when none is set.
    pub policy_version: Option<String>,
    /// Decisions the shadow policy decided again.
    pub decisions: u64,
    /// Decisions where its outcome or reason code differed.
    pub changed: u64,
    /// Live allows the shadow would refuse.
    pub allow_to_deny: u64,
    /// Live refusals the shadow would allow.
    pub deny_to_allow: u64,
    /// Decisions whose membership the shadow could not fully know (a membership resolved
    /// through Microsoft Graph covers the live policy's groups only): decided with the
    /// groups known.
    pub inexact: u64,
    /// Changes by cause: `grant:<role>#<i>` (a live grant the shadow no longer honours,
    /// or a shadow grant that would allow), `rule:<name>` or `reason:<code>` (what in
    /// the shadow refuses).
    pub by_cause: BTreeMap<String, u64>,
}

/// The shadow slot a governor owns and its audit log's worker reads.
#[derive(Default)]
pub(crate) struct Shadow {
    policy: ArcSwapOption<CompiledPolicy>,
    report: Mutex<ShadowReport>,
    /// The governor instance whose events this shadow decides.
    owner: std::sync::atomic::AtomicU64,
}

impl Shadow {
    /// Runs `f` with the shadow policy, if one is set, without touching its reference
    /// count (the decision path calls this).
    pub(crate) fn with_policy<R>(&self, f: impl FnOnce(Option<&CompiledPolicy>) -> R) -> R {
        let guard = self.policy.load();
        f(guard.as_deref())
    }

    /// The shadow policy, if one is set, shared.
    pub(crate) fn policy(&self) -> Option<Arc<CompiledPolicy>> {
        self.policy.load_full()
    }

    /// Decides only the events of governor `instance`.
    pub(crate) fn set_owner(&self, instance: u64) {
        self.owner
            .store(instance, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets (or clears) the shadow policy; the counters start again.
    pub(crate) fn set(&self, policy: Option<Arc<CompiledPolicy>>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        *report = ShadowReport {
            policy_version: policy.as_ref().map(|p| p.version_hash().to_owned()),
            ..ShadowReport::default()
        };
        self.policy.store(policy);
    }

    /// The counters so far.
    pub(crate) fn report(&self) -> ShadowReport {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self, version: &str, exact: bool, change: Option<(&str, String)>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if report.policy_version.as_deref() != Some(version) {
            return; // decided by a shadow policy replaced since
        }
        report.decisions += 1;
        report.inexact += u64::from(!exact);
        let Some((kind, cause)) = change else {
            return;
        };
        report.changed += 1;
        match kind {
            "allow_to_deny" => report.allow_to_deny += 1,
            "deny_to_allow" => report.deny_to_allow += 1,
            _ => {}
        }
        *report.by_cause.entry(cause).or_insert(0) += 1;
    }
}

impl EventHook for Shadow {
    fn inspect(&self, event: &mut AuditEvent) {
        let owner = self.owner.load(std::sync::atomic::Ordering::SeqCst);
        if event.shadow_of != Some(owner) {
            return;
        }
        let Some(policy) = self.policy.load_full() else {
            return;
        };
        let Some(replayed) = decide_again(&policy, event, |_| false) else {
            return;
        };
        let (decision, exact) = (replayed.decision, replayed.exact);
        let outcome = AuditOutcome::of(&decision);
        let version = policy.version_hash();
        if outcome == event.outcome && decision.reason.code() == event.reason {
            self.count(version, exact, None);
            return;
        }
        self.count(version, exact, Some(change_of(event, &decision)));
        event.shadow = Some(ShadowOutcome {
            policy_version: version.to_owned(),
            outcome,
            reason: decision.reason.code().to_owned(),
            grant: decision.matched.first().map(|m| m.grant.clone()),
            denied_by: decision.denied_by().map(str::to_owned),
            inexact: !exact,
        });
    }
}
