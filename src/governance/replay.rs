//! Replay: decide a candidate policy against a recorded audit trail and report what
//! would change.
//!
//! ```
//! use entra_governor::governance::replay::Replay;
//! use entra_governor::policy::Policy;
//!
//! let candidate = Policy::from_toml_str("version = 1")?; // denies everything
//! let mut replay = Replay::new(&candidate);
//! replay.read_trail(std::io::Cursor::new(""))?; // a JSON Lines audit trail
//! let report = replay.finish();
//! assert_eq!(report.totals.decisions, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each decision event of schema v2 carries its inputs
//! ([`DecisionInputs`](crate::audit::DecisionInputs)): the caller is
//! rebuilt from them and decided again under the candidate, at the event's own time (so
//! `max_auth_age` reads as it did). A decision *changed* when its outcome or reason code
//! differs; it is then counted as `allow_to_deny`, `deny_to_allow` (any refusal that
//! becomes an allow) or `other` (a refusal for another reason), and grouped by what
//! caused the change: the recorded grant that no longer allows, the candidate grant that
//! now allows, or the candidate rule or reason that now refuses.
//!
//! Events that cannot be decided again are counted, never guessed:
//!
//! - `not_replayable`: a v1 event (no inputs), or one whose inputs are unreadable;
//! - `inexact`: the trail recorded only the groups its policies bound
//!   ([`AuditGroups::Bound`]) and the candidate binds a group the trail may not have
//!   recorded for the event, and deciding with none and with all of those groups gives
//!   different answers. Such events are still counted in the totals, as decided with the
//!   recorded groups only. A group counts as recorded when the candidate is the event's
//!   own (or shadow) policy, when a [`baseline`](Replay::baseline) policy with the
//!   event's version binds it, or when the trail shows it recorded for another event of
//!   the same policy versions ([`Replay::learn_trail`]). With [`AuditGroups::All`]
//!   the groups a token lists are all known; a membership resolved through Microsoft
//!   Graph still covers only the recording policy's groups, and a token with a group
//!   overage that the recording policy did not need resolved lists none: a candidate
//!   whose groups could matter there is inexact too.
//!
//! Memory is bounded by the number of distinct causes and the examples kept per cause
//! ([`examples_per_change`](Replay::examples_per_change)), not by the trail's length.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

use serde::Serialize;

use crate::audit::inputs::{AuditGroups, GroupsResolution};
use crate::audit::{AuditEvent, AuditOutcome};
use crate::decision::Decision;
use crate::ids::GroupId;
use crate::policy::{CompiledPolicy, MembershipSource, Policy};
use crate::principal::TokenGroups;

use super::trail::{TrailError, TrailReader, TrailWindow};

/// The version of the [`ReplayReport`] JSON document (`format`).
pub const REPLAY_FORMAT: &str = "entra-governor.replay/1";

/// Examples kept per cause of change, by default.
pub const DEFAULT_EXAMPLES_PER_CHANGE: usize = 5;

/// A decision made again: what the candidate decides for a recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replayed {
    /// The candidate's decision.
    pub decision: Decision,
    /// False when the trail lacks group membership the candidate reads and that
    /// membership could change the answer.
    pub exact: bool,
}

/// Decides `event` again under `policy`. `None` when the event is not a decision of a
/// verified caller with v2 inputs. `recorded(group)` says whether the trail would have
/// recorded the caller's membership of `group` for this event (a group the recording
/// policy bound); the event's own and shadow policy versions are checked first.
pub fn decide_again(
    policy: &CompiledPolicy,
    event: &AuditEvent,
    recorded: impl Fn(&GroupId) -> bool,
) -> Option<Replayed> {
    if !event.is_decision() {
        return None;
    }
    let inputs = event.inputs.as_ref()?;
    let caller = inputs.caller(event)?;
    let now = caller.decided_at_secs();
    let decide = |membership: MembershipSource<'_>, principal| {
        policy.decide_at(principal, membership, &event.action, &event.resource, now)
    };
    let decision = decide(caller.membership(), &caller.principal);
    if unresolved_overage(policy, event, &caller) {
        return Some(Replayed {
            decision,
            exact: false,
        });
    }
    let unknown = unknown_groups(policy, event, recorded);
    if unknown.is_empty() {
        return Some(Replayed {
            decision,
            exact: true,
        });
    }
    // Decide again as a member of every group the trail could not record.
    let mut all: Vec<GroupId> = inputs.groups.ids.clone();
    all.extend(unknown);
    let widened = match caller.resolution {
        Some(GroupsResolution::Resolved) => {
            decide(MembershipSource::Resolved(&all), &caller.principal)
        }
        _ => {
            let mut principal = caller.principal.clone();
            principal.groups = TokenGroups::Listed(all.clone());
            decide(MembershipSource::FromToken, &principal)
        }
    };
    let exact = same_answer(&decision, &widened);
    Some(Replayed { decision, exact })
}

/// A token that did not list its groups (overage, or no claim), decided without asking a
/// resolver because the recording policy's groups did not matter, while `policy`'s
/// would: in production `policy` would have had them resolved, and the trail cannot say
/// what the answer would have been.
fn unresolved_overage(
    policy: &CompiledPolicy,
    event: &AuditEvent,
    caller: &crate::audit::inputs::ReplayCaller,
) -> bool {
    let Some(inputs) = &event.inputs else {
        return false;
    };
    let groups = &inputs.groups;
    let version = Some(policy.version_hash());
    let own =
        event.policy_version.as_deref() == version || groups.shadow_policy.as_deref() == version;
    !own && groups.resolution.is_none()
        && groups.claim != crate::audit::inputs::GroupsClaim::Listed
        && policy.needs_group_resolution(&caller.principal)
}

/// The groups `policy` binds whose membership `event` may not have recorded: none when
/// the trail recorded all groups, when membership was unknown anyway, or when the event's
/// own (or shadow) policy is `policy`.
fn unknown_groups(
    policy: &CompiledPolicy,
    event: &AuditEvent,
    recorded: impl Fn(&GroupId) -> bool,
) -> Vec<GroupId> {
    let Some(inputs) = &event.inputs else {
        return Vec::new();
    };
    let groups = &inputs.groups;
    let listed = matches!(groups.claim, crate::audit::inputs::GroupsClaim::Listed);
    let bounded = match groups.resolution {
        Some(GroupsResolution::Unavailable) => false,
        Some(GroupsResolution::Resolved) => true,
        None => listed && groups.recorded == AuditGroups::Bound,
    };
    let version = Some(policy.version_hash());
    if !bounded
        || event.policy_version.as_deref() == version
        || groups.shadow_policy.as_deref() == version
    {
        return Vec::new();
    }
    policy
        .bound_group_ids()
        .iter()
        .filter(|g| !groups.ids.contains(g) && !recorded(g))
        .cloned()
        .collect()
}

/// What a trail shows about the groups its recording policies bound: the groups recorded
/// in events of each (policy version, shadow version), and the baseline policies.
#[derive(Default)]
struct RecordedGroups {
    baselines: Vec<Arc<CompiledPolicy>>,
    seen: HashMap<(Option<String>, Option<String>), HashSet<GroupId>>,
}

impl RecordedGroups {
    fn key(event: &AuditEvent) -> Option<(Option<String>, Option<String>)> {
        let inputs = event.inputs.as_ref()?;
        (inputs.groups.recorded == AuditGroups::Bound).then(|| {
            (
                event.policy_version.clone(),
                inputs.groups.shadow_policy.clone(),
            )
        })
    }

    /// Notes the groups `event` recorded.
    fn learn(&mut self, event: &AuditEvent) {
        let (Some(key), Some(inputs)) = (Self::key(event), &event.inputs) else {
            return;
        };
        if inputs.groups.ids.is_empty() {
            return;
        }
        let seen = self.seen.entry(key).or_default();
        seen.extend(inputs.groups.ids.iter().cloned());
    }

    /// Whether `group` was bound by the policy (or shadow) that recorded `event`.
    fn recorded(&self, event: &AuditEvent, group: &GroupId) -> bool {
        let versions = [
            event.policy_version.as_deref(),
            event
                .inputs
                .as_ref()
                .and_then(|i| i.groups.shadow_policy.as_deref()),
        ];
        let baseline = self.baselines.iter().any(|b| {
            versions.contains(&Some(b.version_hash()))
                && b.bound_group_ids().binary_search(group).is_ok()
        });
        baseline
            || Self::key(event)
                .and_then(|k| self.seen.get(&k))
                .is_some_and(|seen| seen.contains(group))
    }
}

fn same_answer(a: &Decision, b: &Decision) -> bool {
    a.effect == b.effect && a.reason.code() == b.reason.code()
}

/// The replay totals; the field names are those of the JSON document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplayTotals {
    /// Decision events read (v1 and v2).
    pub decisions: u64,
    /// Decisions whose outcome or reason code the candidate changes.
    pub changed: u64,
    /// Recorded allows the candidate refuses.
    pub allow_to_deny: u64,
    /// Recorded refusals the candidate allows.
    pub deny_to_allow: u64,
    /// Recorded refusals the candidate refuses for another reason.
    pub other: u64,
    /// Decisions the trail lacks an input for (see [the module docs](self)).
    pub inexact: u64,
    /// Decision events without v2 inputs, not decided again.
    pub not_replayable: u64,
    /// Lines that are not audit events (counted, skipped).
    pub unreadable_lines: u64,
    /// Events that are not decisions (refused tokens, summaries) or outside the window.
    pub skipped: u64,
}

impl ReplayTotals {
    /// Every recorded allow was decided again, exactly, and is still an allow: nothing
    /// `allow_to_deny`, `inexact`, `not_replayable` or unreadable.
    pub fn keeps_every_allow(&self) -> bool {
        self.allow_to_deny == 0
            && self.inexact == 0
            && self.not_replayable == 0
            && self.unreadable_lines == 0
    }
}

/// One example of a changed decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplayExample {
    /// When it was decided.
    pub time: String,
    /// The caller, `tid/oid`.
    pub caller: String,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// What was recorded: `allow by ml-engineer#0`, `deny: no_role_grants`.
    pub recorded: String,
    /// What the candidate decides, in the same form.
    pub candidate: String,
    /// The candidate's explanation.
    pub explanation: String,
    /// The request's correlation id, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// The token's `uti` (joins Entra's sign-in logs), when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// The changes with one cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChangeGroup {
    /// `allow_to_deny`, `deny_to_allow` or `other`.
    pub change: String,
    /// What caused it: `grant:<role>#<i>` (a recorded grant that no longer allows, or a
    /// candidate grant that now allows), `rule:<name>` or `reason:<code>` (what now
    /// refuses).
    pub cause: String,
    /// How many decisions.
    pub count: u64,
    /// Distinct callers affected.
    pub callers: u64,
    /// Who: the affected callers (`tid/oid`), sorted; at most
    /// [`MAX_LISTED_CALLERS`] (then `callers` says how many in all).
    pub caller_ids: Vec<String>,
    /// For changes of recorded allows: the bindings those allows came through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
    /// The first few.
    pub examples: Vec<ReplayExample>,
}

/// Callers listed by name per cause of change in a [`ReplayReport`].
pub const MAX_LISTED_CALLERS: usize = 1000;

/// What [`Replay`] found: the `entra-governor replay --format json` document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReplayReport {
    /// [`REPLAY_FORMAT`].
    pub format: &'static str,
    /// The candidate policy's version (hash).
    pub candidate_version: String,
    /// The totals.
    pub totals: ReplayTotals,
    /// The changes, grouped by change and cause, largest first.
    pub changes: Vec<ChangeGroup>,
}

struct Group {
    count: u64,
    callers: HashSet<String>,
    bindings: std::collections::BTreeSet<String>,
    examples: Vec<ReplayExample>,
}

/// Most distinct callers counted per cause; past it the count is a lower bound.
const MAX_CALLERS_PER_GROUP: usize = 100_000;

/// A replay in progress: feed it events, then [`finish`](Self::finish).
pub struct Replay {
    candidate: Arc<CompiledPolicy>,
    recorded: RecordedGroups,
    window: TrailWindow,
    examples: usize,
    totals: ReplayTotals,
    groups: HashMap<(&'static str, String), Group>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("candidate", &self.candidate.version_hash())
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

impl Replay {
    /// A replay of `candidate`.
    pub fn new(candidate: &Policy) -> Self {
        Self::of_compiled(candidate.compiled())
    }

    /// A replay of an already compiled candidate.
    pub fn of_compiled(candidate: Arc<CompiledPolicy>) -> Self {
        Self {
            candidate,
            recorded: RecordedGroups::default(),
            window: TrailWindow::default(),
            examples: DEFAULT_EXAMPLES_PER_CHANGE,
            totals: ReplayTotals::default(),
            groups: HashMap::new(),
        }
    }

    /// A policy that recorded (part of) the trail: its bound groups are known to have
    /// been recorded, so events it decided replay exactly.
    #[must_use]
    pub fn baseline(mut self, recording: &Policy) -> Self {
        self.recorded.baselines.push(recording.compiled());
        self
    }

    /// Only events inside `window`.
    #[must_use]
    pub fn window(mut self, window: TrailWindow) -> Self {
        self.window = window;
        self
    }

    /// How many examples to keep per cause (default [`DEFAULT_EXAMPLES_PER_CHANGE`]).
    #[must_use]
    pub fn examples_per_change(mut self, n: usize) -> Self {
        self.examples = n;
        self
    }

    /// Learns, from a first reading of the trail, which groups its recording policies
    /// bound (those recorded in their events), so that replay knows a caller outside such
    /// a group was recorded as outside it. [`replay_file`] reads the file twice for it.
    ///
    /// # Errors
    /// Only when the reader fails.
    pub fn learn_trail(&mut self, reader: impl BufRead) -> Result<(), TrailError> {
        let mut lines = TrailReader::new(reader);
        while let Some(event) = lines.next_event()? {
            self.recorded.learn(&event);
        }
        Ok(())
    }

    /// Reads a JSON Lines trail to its end.
    ///
    /// # Errors
    /// Only when the reader fails; lines that are not events are counted in
    /// `unreadable_lines`.
    pub fn read_trail(&mut self, reader: impl BufRead) -> Result<(), TrailError> {
        let mut lines = TrailReader::new(reader);
        while let Some(event) = lines.next_event()? {
            self.event(&event);
        }
        self.totals.unreadable_lines += lines.unreadable();
        Ok(())
    }

    /// Decides one recorded event again.
    pub fn event(&mut self, event: &AuditEvent) {
        if !self.window.contains(event) || !is_policy_decision(event) {
            self.totals.skipped += 1;
            return;
        }
        self.totals.decisions += 1;
        let recorded = |g: &GroupId| self.recorded.recorded(event, g);
        let Some(replayed) = decide_again(&self.candidate, event, recorded) else {
            self.totals.not_replayable += 1;
            return;
        };
        if !replayed.exact {
            self.totals.inexact += 1;
        }
        self.compare(event, &replayed.decision);
    }

    fn compare(&mut self, event: &AuditEvent, decision: &Decision) {
        let outcome = AuditOutcome::of(decision);
        if outcome == event.outcome && decision.reason.code() == event.reason {
            return;
        }
        self.totals.changed += 1;
        let (change, cause) = change_of(event, decision);
        match change {
            "allow_to_deny" => self.totals.allow_to_deny += 1,
            "deny_to_allow" => self.totals.deny_to_allow += 1,
            _ => self.totals.other += 1,
        }
        let group = self.groups.entry((change, cause)).or_insert_with(|| Group {
            count: 0,
            callers: HashSet::new(),
            bindings: Default::default(),
            examples: Vec::new(),
        });
        group.count += 1;
        if event.outcome == AuditOutcome::Allow && group.bindings.len() < 64 {
            group.bindings.extend(event.bindings.iter().cloned());
        }
        let caller = caller_label(event);
        if group.callers.len() < MAX_CALLERS_PER_GROUP {
            group.callers.insert(caller.clone());
        }
        if group.examples.len() < self.examples {
            group.examples.push(example(event, decision, caller));
        }
    }

    /// The report.
    pub fn finish(self) -> ReplayReport {
        let mut changes: Vec<ChangeGroup> = self
            .groups
            .into_iter()
            .map(|((change, cause), g)| {
                let mut caller_ids: Vec<String> = g.callers.iter().cloned().collect();
                caller_ids.sort_unstable();
                caller_ids.truncate(MAX_LISTED_CALLERS);
                ChangeGroup {
                    change: change.to_owned(),
                    cause,
                    count: g.count,
                    callers: g.callers.len() as u64,
                    caller_ids,
                    bindings: g.bindings.into_iter().collect(),
                    examples: g.examples,
                }
            })
            .collect();
        changes.sort_by(|a, b| (b.count, &a.change, &a.cause).cmp(&(a.count, &b.change, &b.cause)));
        ReplayReport {
            format: REPLAY_FORMAT,
            candidate_version: self.candidate.version_hash().to_owned(),
            totals: self.totals,
            changes,
        }
    }
}

/// Replays a trail file against `candidate`: reads it once to learn which groups were
/// recorded ([`Replay::learn_trail`]), once to decide.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn replay_file(
    candidate: &Policy,
    trail: impl AsRef<std::path::Path>,
) -> Result<ReplayReport, TrailError> {
    let mut replay = Replay::new(candidate);
    replay.learn_trail(super::trail::open(trail.as_ref())?)?;
    replay.read_trail(super::trail::open(trail.as_ref())?)?;
    Ok(replay.finish())
}

/// Whether `event` records a policy's answer (v1 or v2), rather than a refused token or
/// a summary: it names a verified caller and a policy version.
pub(crate) fn is_policy_decision(event: &AuditEvent) -> bool {
    event.object_id.is_some()
        && event.policy_version.is_some()
        && matches!(
            event.outcome,
            AuditOutcome::Allow
                | AuditOutcome::Deny
                | AuditOutcome::StepUp
                | AuditOutcome::Unavailable
        )
        && event.reason != crate::audit::AUDIT_UNAVAILABLE_REASON
}

/// What kind of change `decision` makes to the recorded `event`, and its cause.
pub(crate) fn change_of(event: &AuditEvent, decision: &Decision) -> (&'static str, String) {
    if event.outcome == AuditOutcome::Allow {
        let cause = event
            .grant
            .as_deref()
            .map_or_else(|| "grant:?".to_owned(), |g| format!("grant:{g}"));
        return ("allow_to_deny", cause);
    }
    if decision.is_allowed() {
        let grant = decision.matched.first().map_or("?", |m| m.grant.as_str());
        return ("deny_to_allow", format!("grant:{grant}"));
    }
    ("other", refusal_cause(decision))
}

/// `rule:<name>` for a refusal by a named rule or requirement, else `reason:<code>`.
pub(crate) fn refusal_cause(decision: &Decision) -> String {
    match decision.denied_by() {
        Some(rule) => format!("rule:{rule}"),
        None => format!("reason:{}", decision.reason.code()),
    }
}

fn caller_label(event: &AuditEvent) -> String {
    match (&event.tenant_id, &event.object_id) {
        (Some(t), Some(o)) => format!("{t}/{o}"),
        _ => String::from("?"),
    }
}

fn recorded_label(event: &AuditEvent) -> String {
    match (&event.grant, &event.denied_by) {
        (Some(g), _) if event.outcome == AuditOutcome::Allow => format!("allow by {g}"),
        (_, Some(rule)) => format!("{}: {} ({rule})", event.outcome, event.reason),
        _ => format!("{}: {}", event.outcome, event.reason),
    }
}

pub(crate) fn decision_label(decision: &Decision) -> String {
    let outcome = AuditOutcome::of(decision);
    match (decision.matched.first(), decision.denied_by()) {
        (Some(m), _) => format!("allow by {}", m.grant),
        (None, Some(rule)) => format!("{outcome}: {} ({rule})", decision.reason.code()),
        (None, None) => format!("{outcome}: {}", decision.reason.code()),
    }
}

fn example(event: &AuditEvent, decision: &Decision, caller: String) -> ReplayExample {
    ReplayExample {
        time: event.time.clone(),
        caller,
        action: event.action.clone(),
        resource: event.resource.clone(),
        recorded: recorded_label(event),
        candidate: decision_label(decision),
        explanation: decision.explain(),
        correlation_id: event.correlation_id.clone(),
        token_id: event.token_id.clone(),
    }
}
