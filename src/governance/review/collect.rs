//! What an access review gathers from each event: use of grants, roles and bindings, per
//! caller and per day.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::report::*;
use crate::audit::{AuditEvent, AuditOutcome};
use crate::governance::replay::{decide_again, is_policy_decision};
use crate::governance::trail::TrailWindow;
use crate::policy::{CompiledPolicy, Policy};

/// Distinct resources a review keeps per grant; past it the grant is reported as
/// truncated and not narrowed.
pub const MAX_REACHED_PER_GRANT: usize = 1000;

/// Distinct callers counted per grant; past it the count is a lower bound.
const MAX_CALLERS_PER_GRANT: usize = 100_000;

/// Resources listed per grant in a report.
const SAMPLE: usize = 20;

/// One grant's use.
#[derive(Debug, Default)]
pub(crate) struct GrantStats {
    pub(crate) uses: u64,
    pub(crate) last_used: String,
    callers: HashSet<String>,
    pub(crate) reached: BTreeSet<String>,
    pub(crate) truncated: bool,
}

/// A role's or a binding's use.
#[derive(Debug, Default, Clone)]
pub(crate) struct UseStats {
    uses: u64,
    last_used: String,
}

impl UseStats {
    fn record(&mut self, time: &str) {
        self.uses += 1;
        if time > self.last_used.as_str() {
            time.clone_into(&mut self.last_used);
        }
    }
}

/// One caller's record.
#[derive(Debug)]
struct CallerStats {
    kind: String,
    guest: bool,
    first_seen: String,
    last_seen: String,
    decisions: u64,
    allows: u64,
    roles: BTreeMap<String, UseStats>,
    /// The latest decision with v2 inputs: what the caller holds now.
    latest: Option<AuditEvent>,
}

/// Everything gathered so far.
#[derive(Debug)]
pub(crate) struct Usage {
    policy: Arc<CompiledPolicy>,
    pub(crate) totals: ReviewTotals,
    pub(crate) grants: HashMap<String, GrantStats>,
    roles: HashMap<String, UseStats>,
    pub(crate) bindings: HashMap<String, UseStats>,
    callers: HashMap<String, CallerStats>,
    daily: BTreeMap<String, (u64, u64)>,
    first_event: Option<String>,
    last_event: Option<String>,
}

impl Usage {
    pub(crate) fn new(policy: Arc<CompiledPolicy>) -> Self {
        Self {
            policy,
            totals: ReviewTotals::default(),
            grants: HashMap::new(),
            roles: HashMap::new(),
            bindings: HashMap::new(),
            callers: HashMap::new(),
            daily: BTreeMap::new(),
            first_event: None,
            last_event: None,
        }
    }

    /// Whether role `role` took part in an allow, or is the home of a grant that did.
    pub(crate) fn role_used(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    pub(crate) fn event(&mut self, event: &AuditEvent) {
        if !is_policy_decision(event) {
            self.totals.skipped += 1;
            return;
        }
        self.count(event);
        let credited = self.credited(event);
        let caller = self.caller(event, credited.as_deref());
        if let Some(allow) = credited {
            self.record_allow(&allow, &caller);
        }
    }

    /// The allow `event` credits to the reviewed policy's grants, roles and bindings: the
    /// event itself when the reviewed policy decided it; otherwise the event decided again
    /// under the reviewed policy, when that allows too (grant labels are positions, which
    /// another version may give to other grants). `None` for a refusal, and for an allow
    /// the reviewed policy would not give or cannot decide again (counted).
    fn credited<'e>(&mut self, event: &'e AuditEvent) -> Option<std::borrow::Cow<'e, AuditEvent>> {
        if event.outcome != AuditOutcome::Allow {
            return None;
        }
        if event.policy_version.as_deref() == Some(self.policy.version_hash()) {
            return Some(std::borrow::Cow::Borrowed(event));
        }
        let again =
            decide_again(&self.policy, event, |_| false).filter(|r| r.decision.is_allowed());
        let Some(again) = again else {
            self.totals.uncredited_allows += 1;
            return None;
        };
        let d = again.decision;
        let mut credited = event.clone();
        credited.grant = d.matched.first().map(|m| m.grant.clone());
        credited.roles = d.matched.iter().map(|m| m.role.clone()).collect();
        credited.roles.dedup();
        credited.bindings = d.matched.iter().map(|m| m.binding.clone()).collect();
        credited.bindings.dedup();
        Some(std::borrow::Cow::Owned(credited))
    }

    fn count(&mut self, event: &AuditEvent) {
        let t = &mut self.totals;
        t.decisions += 1;
        let allowed = event.outcome == AuditOutcome::Allow;
        if allowed {
            t.allows += 1;
        } else {
            t.refusals += 1;
        }
        if event.inputs.is_none() {
            t.without_inputs += 1;
        }
        if event.policy_version.as_deref() != Some(self.policy.version_hash()) {
            t.other_policy_versions += 1;
        }
        let day = self
            .daily
            .entry(event.time.get(..10).unwrap_or("?").to_owned())
            .or_default();
        if allowed {
            day.0 += 1;
        } else {
            day.1 += 1;
        }
        if self
            .first_event
            .as_deref()
            .is_none_or(|f| event.time.as_str() < f)
        {
            self.first_event = Some(event.time.clone());
        }
        if self
            .last_event
            .as_deref()
            .is_none_or(|l| event.time.as_str() > l)
        {
            self.last_event = Some(event.time.clone());
        }
    }

    /// Updates the caller's record; returns its label.
    fn caller(&mut self, event: &AuditEvent, credited: Option<&AuditEvent>) -> String {
        let label = match (&event.tenant_id, &event.object_id) {
            (Some(t), Some(o)) => format!("{t}/{o}"),
            _ => String::from("?"),
        };
        let time = &event.time;
        let stats = self
            .callers
            .entry(label.clone())
            .or_insert_with(|| CallerStats {
                kind: kind_name(event.principal_kind).to_owned(),
                guest: event.guest.unwrap_or(false),
                first_seen: time.clone(),
                last_seen: time.clone(),
                decisions: 0,
                allows: 0,
                roles: BTreeMap::new(),
                latest: None,
            });
        stats.decisions += 1;
        if time < &stats.first_seen {
            stats.first_seen.clone_from(time);
        }
        if time >= &stats.last_seen {
            stats.last_seen.clone_from(time);
            stats.guest = event.guest.unwrap_or(stats.guest);
        }
        let newer = stats.latest.as_ref().is_none_or(|l| time >= &l.time);
        if event.inputs.is_some() && newer {
            stats.latest = Some(event.clone());
        }
        if event.outcome == AuditOutcome::Allow {
            stats.allows += 1;
        }
        for role in credited.into_iter().flat_map(roles_of) {
            stats.roles.entry(role.to_owned()).or_default().record(time);
        }
        label
    }

    fn record_allow(&mut self, event: &AuditEvent, caller: &str) {
        let time = &event.time;
        for role in roles_of(event) {
            self.roles.entry(role.to_owned()).or_default().record(time);
        }
        for binding in &event.bindings {
            self.bindings
                .entry(binding.clone())
                .or_default()
                .record(time);
        }
        let Some(grant) = &event.grant else {
            return;
        };
        let stats = self.grants.entry(grant.clone()).or_default();
        stats.uses += 1;
        if time > &stats.last_used {
            stats.last_used.clone_from(time);
        }
        if stats.callers.len() < MAX_CALLERS_PER_GRANT {
            stats.callers.insert(caller.to_owned());
        }
        if stats.reached.len() < MAX_REACHED_PER_GRANT {
            stats.reached.insert(event.resource.clone());
        } else if !stats.reached.contains(&event.resource) {
            stats.truncated = true;
        }
    }

    /// The report, with `suggestion`.
    pub(crate) fn report(
        self,
        policy: &Policy,
        window: &TrailWindow,
        suggestion: Suggestion,
    ) -> ReviewReport {
        let time = |t: Option<std::time::SystemTime>| t.map(crate::audit::rfc3339);
        let mut totals = self.totals.clone();
        totals.callers = self.callers.len() as u64;
        ReviewReport {
            format: REVIEW_FORMAT,
            policy_version: policy.version_hash().to_owned(),
            window: ReviewWindow {
                since: time(window.since),
                until: time(window.until),
                first_event: self.first_event.clone(),
                last_event: self.last_event.clone(),
            },
            totals,
            unused: self.unused(policy),
            grants: self.grant_usage(),
            wide_grants: super::suggest::wide_grants(policy, &self),
            callers: self.callers(),
            daily: self
                .daily
                .iter()
                .map(|(day, &(allows, refusals))| DailyUsage {
                    day: day.clone(),
                    allows,
                    refusals,
                })
                .collect(),
            suggestion,
        }
    }

    fn unused(&self, policy: &Policy) -> Unused {
        let doc = policy.document();
        let roles = doc
            .roles
            .keys()
            .filter(|r| !self.role_used(r))
            .cloned()
            .collect();
        let grants = doc
            .roles
            .iter()
            .flat_map(|(role, def)| {
                def.grants
                    .iter()
                    .enumerate()
                    .map(move |(i, g)| (format!("{role}#{i}"), g))
            })
            .filter(|(label, _)| !self.grants.contains_key(label))
            .map(|(grant, g)| UnusedGrant {
                grant,
                actions: g.actions.clone(),
                resources: g.resources.clone(),
            })
            .collect();
        let bindings = self
            .policy
            .binding_labels()
            .filter(|b| !self.bindings.contains_key(*b))
            .map(str::to_owned)
            .collect();
        Unused {
            roles,
            grants,
            bindings,
        }
    }

    fn grant_usage(&self) -> Vec<GrantUsage> {
        let mut out: Vec<GrantUsage> = self
            .grants
            .iter()
            .map(|(grant, s)| GrantUsage {
                grant: grant.clone(),
                uses: s.uses,
                callers: s.callers.len() as u64,
                last_used: s.last_used.clone(),
                resources_reached: s.reached.len() as u64,
                reached_truncated: s.truncated,
                reached_sample: sample(&s.reached),
            })
            .collect();
        out.sort_by(|a, b| b.uses.cmp(&a.uses).then_with(|| a.grant.cmp(&b.grant)));
        out
    }

    fn callers(&self) -> Vec<CallerEvidence> {
        let mut out: Vec<CallerEvidence> = self
            .callers
            .iter()
            .map(|(label, c)| self.evidence(label, c))
            .collect();
        out.sort_by(|a, b| (&a.tenant_id, &a.object_id).cmp(&(&b.tenant_id, &b.object_id)));
        out
    }

    fn evidence(&self, label: &str, c: &CallerStats) -> CallerEvidence {
        let (tenant, object) = label.split_once('/').unwrap_or((label, ""));
        let held = c.latest.as_ref().and_then(|e| self.held_roles(e));
        let roles_complete =
            held.is_some() && c.latest.as_ref().is_some_and(|e| self.knows_groups(e));
        let mut roles: BTreeMap<String, HeldRole> = held
            .unwrap_or_default()
            .into_iter()
            .map(|(role, bindings, included_by)| {
                let role_use = HeldRole {
                    role: role.clone(),
                    bindings,
                    included_by,
                    uses: 0,
                    last_used: None,
                };
                (role, role_use)
            })
            .collect();
        for (role, used) in &c.roles {
            let entry = roles.entry(role.clone()).or_insert_with(|| HeldRole {
                role: role.clone(),
                bindings: Vec::new(),
                included_by: Vec::new(),
                uses: 0,
                last_used: None,
            });
            entry.uses = used.uses;
            entry.last_used = Some(used.last_used.clone());
        }
        CallerEvidence {
            tenant_id: tenant.to_owned(),
            object_id: object.to_owned(),
            kind: c.kind.clone(),
            guest: c.guest,
            first_seen: c.first_seen.clone(),
            last_seen: c.last_seen.clone(),
            decisions: c.decisions,
            allows: c.allows,
            refusals: c.decisions - c.allows,
            roles_complete,
            roles: roles.into_values().collect(),
        }
    }

    /// Whether `event` recorded every group the reviewed policy could read: all groups,
    /// or those the reviewed policy itself binds, with membership known.
    fn knows_groups(&self, event: &AuditEvent) -> bool {
        use crate::audit::inputs::{AuditGroups, GroupsClaim, GroupsResolution};
        let Some(groups) = event.inputs.as_ref().map(|i| &i.groups) else {
            return false;
        };
        let same_policy = event.policy_version.as_deref() == Some(self.policy.version_hash());
        let recorded = groups.recorded == AuditGroups::All || same_policy;
        let known = match groups.resolution {
            Some(GroupsResolution::Resolved) => same_policy,
            Some(GroupsResolution::Unavailable) => false,
            None => groups.claim == GroupsClaim::Listed,
        };
        recorded && known
    }

    /// The roles the caller of `event` holds under the reviewed policy, with the
    /// bindings conferring each and the held roles including each.
    fn held_roles(&self, event: &AuditEvent) -> Option<Vec<HeldVia>> {
        let caller = event.inputs.as_ref()?.caller(event)?;
        let permissions = self
            .policy
            .permissions_with(&caller.principal, caller.membership());
        Some(
            permissions
                .roles
                .into_iter()
                .map(|r| (r.role, r.bindings, r.included_by))
                .collect(),
        )
    }
}

/// A held role, the bindings conferring it, and the held roles including it.
type HeldVia = (String, Vec<String>, Vec<String>);

/// The roles an allow event names: those conferred, and the home role of its grant.
fn roles_of(event: &AuditEvent) -> impl Iterator<Item = &str> {
    let home = event
        .grant
        .as_deref()
        .and_then(|g| g.rsplit_once('#'))
        .map(|(role, _)| role);
    event
        .roles
        .iter()
        .map(String::as_str)
        .chain(home.filter(|h| !event.roles.iter().any(|r| r == h)))
}

/// The first resources, sorted.
pub(crate) fn sample(reached: &BTreeSet<String>) -> Vec<String> {
    reached.iter().take(SAMPLE).cloned().collect()
}

fn kind_name(kind: Option<crate::principal::PrincipalKind>) -> &'static str {
    use crate::principal::PrincipalKind;
    match kind {
        Some(PrincipalKind::User) => "user",
        Some(PrincipalKind::Application) => "application",
        None => "?",
    }
}
