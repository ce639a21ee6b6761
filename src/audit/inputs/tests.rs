//! Randomized round trip: a decision recorded the way the governor records it, written
//! to JSON and read back as the trail does, decides again to the very same answer.
//!
//! Deterministic: a fixed seed drives a small SplitMix64 generator written here (no new
//! dependency). Every assertion names the seed and the case, which is all it takes to
//! run a failing case again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::{AuditGroups, DecisionInputs, GroupFilter, GroupsClaim, GroupsResolution};
use crate::audit::{AuditEvent, AuditOutcome};
use crate::decision::{Decision, Reason};
use crate::governance::replay::{Replay, decide_again};
use crate::ids::{GroupId, ObjectId, TenantId};
use crate::policy::{CompiledPolicy, MembershipSource, Policy};
use crate::principal::{ClientAuth, Principal, PrincipalKind, TokenGroups, TokenVersion};

/// The seed of every run; change it to explore, keep it to reproduce.
const SEED: u64 = 0x5EED_E17A_2026_1201;
/// Callers generated per policy.
const CASES: usize = 4_000;
/// 2026-12-01T10:00:00Z: every decision is made, and recorded, at this instant.
const NOW: u64 = 1_796_119_200;

/// The example policy's home tenant (its claim-value bindings trust it).
const HOME: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
/// The example policy's partner tenant (a tenant binding and a deny rule name it).
const PARTNER: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
/// A tenant no policy names: where guests' accounts live.
const ELSEWHERE: &str = "11111111-2222-4333-8444-555555555555";

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const RELEASE_MANAGERS: &str = "2b7e4f1a-9c3d-4e8b-a5f6-1d0c9b8a7e6f";
const APPLICATION_USERS: &str = "c4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70";
const AUDITORS: &str = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b";
const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
/// The example policy's bound groups.
const BOUND_GROUPS: [&str; 7] = [
    DATA_SCIENTISTS,
    ML_ENGINEERS,
    RELEASE_MANAGERS,
    APPLICATION_USERS,
    AUDITORS,
    PLATFORM_ADMINS,
    EXTERNAL_RESEARCHERS,
];
/// Groups no policy here binds.
const JUNK_GROUPS: [&str; 3] = [
    "0a0b0c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
    "77770000-0000-4000-8000-000000000001",
    "77770000-0000-4000-8000-000000000002",
];

const SCOPES: [&str; 6] = [
    "Inference.Invoke",
    "Training.Manage",
    "Models.Manage",
    "Audit.Read",
    "Platform.Admin",
    "Junk.Scope",
];
const APP_ROLES: [&str; 4] = [
    "Platform.Auditor",
    "Training.Pipeline",
    "Inference.Client",
    "Junk.Role",
];
/// Global Administrator, Global Reader, and a role no policy binds.
const DIRECTORY_ROLES: [&str; 3] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "00000000-0000-4000-8000-00000000d1d1",
];

/// Requests that the example policy (and the time policy below) answer in every way.
const REQUESTS: &[(&str, &str)] = &[
    ("training.submit", "models/exp-1"),
    ("training.submit", "models/prod-3"),
    ("training.submit", "models/staging-2"),
    ("training.read", "models/exp-4"),
    ("models.deploy", "models/prod-1"),
    ("models.deploy", "models/staging-1"),
    ("models.delete", "models/prod-2"),
    ("models.delete", "models/exp-7"),
    ("models.read", "models/staging-1"),
    ("datasets.read", "datasets/pii/x"),
    ("datasets.read", "datasets/public/a"),
    ("datasets.read", "datasets/curated/b"),
    ("datasets.write", "datasets/curated/x"),
    ("inference.invoke", "endpoints/chat-1"),
    ("inference.invoke", "endpoints/partner-1"),
    ("endpoints.scale", "endpoints/chat-2"),
    ("audit.read", "audit/x"),
    ("admin.read", "admin/fleet"),
    ("admin.revoke", "admin/revocations"),
    ("unknown.verb", "models/exp-1"),
    ("models.read", "models//double-slash"),
];

/// A second policy whose answers depend on the time of the decision: `max_auth_age` on
/// a grant, a role and a `[[requirements]]` rule, `auth_context` requirements, MFA,
/// client authentication, and a reachable separation-of-duty conflict.
const TIME_POLICY: &str = r#"
version = 1
on_group_overage = "deny"
mfa_auth_context = "c2"

[actions]
custom = ["endpoints.scale", "admin.revoke", "admin.read"]

[roles.trainer]
grants = [
  { actions = ["training.*"], resources = ["models/exp-*", "models/prod-*"], requires = { max_auth_age = "1h" } },
  { actions = ["datasets.read"], resources = ["datasets/**"] },
  { actions = ["models.read"], resources = ["models/**"] },
]

[roles.deployer]
requires = { auth_context = "c1" }
grants = [
  { actions = ["models.deploy", "models.delete"], resources = ["models/prod-*", "models/staging-*"], requires = { mfa = true, max_auth_age = "1h" } },
  { actions = ["models.read"], resources = ["models/**"] },
]

[roles.reviewer]
grants = [
  { actions = ["audit.read"], resources = ["audit/**"], requires = { max_auth_age = "10m" } },
  { actions = ["admin.read"], resources = ["admin/*"], requires = { client_auth = "certificate" } },
]

[roles.service]
grants = [
  { actions = ["inference.invoke"], resources = ["endpoints/**"] },
  { actions = ["training.submit"], resources = ["models/prod-*"], requires = { max_auth_age = "1h" } },
]

[[bindings]]
group = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
roles = ["trainer"]

[[bindings]]
group = "2b7e4f1a-9c3d-4e8b-a5f6-1d0c9b8a7e6f"
roles = ["deployer"]
guests = true

[[bindings]]
name = "both-sides"
group = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"
roles = ["trainer", "deployer"]
kinds = ["user", "application"]

[[bindings]]
app_role = "Platform.Auditor"
tenants = ["8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"]
roles = ["reviewer"]

[[bindings]]
app_permission = "Inference.Client"
tenants = ["8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"]
roles = ["service", "reviewer"]

[[bindings]]
directory_role = "62e90394-69f5-4237-9190-012177145e10"
tenants = ["8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"]
roles = ["reviewer"]

[[bindings]]
name = "partner"
tenant = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
roles = ["service"]
kinds = ["user", "application"]

[scopes]
"Inference.Invoke" = ["inference.*", "models.read"]
"Training.Manage" = ["training.*", "datasets.read", "models.read", "evaluations.run"]
"Models.Manage" = ["models.*", "datasets.*", "evaluations.run", "endpoints.scale"]
"Audit.Read" = ["audit.read", "models.read", "training.read"]
"Platform.Admin" = ["admin.*"]

[[deny]]
name = "no-guests-on-pii"
when = { guest = true }
actions = ["*"]
resources = ["datasets/pii/**"]

[[requirements]]
name = "pii-needs-c1-recently"
actions = ["datasets.read"]
resources = ["datasets/pii/**"]
requires = { auth_context = "c1", max_auth_age = "4h" }

[[separation_of_duties]]
name = "train-or-deploy-prod"
actions = ["training.submit", "models.deploy"]
resources = ["models/prod-*"]
"#;

/// SplitMix64: tiny, fast, and good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A random subset, in random order.
    fn subset<T: Clone>(&mut self, items: &[T]) -> Vec<T> {
        let mut out: Vec<T> = items.iter().filter(|_| self.chance(40)).cloned().collect();
        for i in (1..out.len()).rev() {
            out.swap(i, self.below(i + 1));
        }
        out
    }

    fn guid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

fn group(id: &str) -> GroupId {
    GroupId::parse(id).unwrap()
}

fn groups(ids: &[&str]) -> Vec<GroupId> {
    ids.iter().map(|g| group(g)).collect()
}

/// Display claims and the token id put on a caller, which the trail must not (or only
/// once) show.
struct Secrets {
    display: Vec<String>,
    token_id: Option<String>,
}

/// A random caller: every token fact a policy reads, varied.
fn caller(rng: &mut Rng) -> (Principal, Secrets) {
    let tenant = if rng.chance(75) { HOME } else { PARTNER };
    let object = ObjectId::parse(&rng.guid()).unwrap();
    let mut b = Principal::builder(TenantId::parse(tenant).unwrap(), object)
        .kind(if rng.chance(70) {
            PrincipalKind::User
        } else {
            PrincipalKind::Application
        })
        .version(if rng.chance(50) {
            TokenVersion::V1
        } else {
            TokenVersion::V2
        })
        .scopes(rng.subset(&SCOPES))
        .roles(rng.subset(&APP_ROLES))
        .directory_roles(rng.subset(&DIRECTORY_ROLES))
        .auth_contexts(rng.subset(&["c1", "c2"]))
        .auth_methods(rng.subset(&["pwd", "mfa"]));
    b = b.groups(match rng.below(10) {
        0..=5 => {
            let mut listed = groups(&rng.subset(&BOUND_GROUPS));
            listed.extend(groups(&rng.subset(&JUNK_GROUPS)));
            for i in (1..listed.len()).rev() {
                listed.swap(i, rng.below(i + 1));
            }
            TokenGroups::Listed(listed)
        }
        6..=7 => TokenGroups::Overage,
        _ => TokenGroups::NotEmitted,
    });
    // Around the 10 minute, 1 hour and 4 hour limits, well inside and well past them, in
    // the future (a skewed clock), and absent.
    let age: Option<i64> = match rng.below(8) {
        0 => None,
        1 => Some(rng.below(600) as i64),
        2 => Some(*rng.pick(&[599, 600, 601, 3599, 3600, 3601, 14_399, 14_400, 14_401])),
        3 => Some(600 + rng.below(3000) as i64),
        4 => Some(3601 + rng.below(10_800) as i64),
        5 => Some(14_401 + rng.below(10 * 86_400) as i64),
        6 => Some(-(rng.below(120) as i64) - 1),
        _ => Some(rng.below(86_400) as i64),
    };
    if let Some(age) = age {
        let at = NOW.checked_add_signed(-age).unwrap();
        b = b.auth_time(UNIX_EPOCH + Duration::from_secs(at));
    }
    if rng.chance(50) {
        b = b.client_capabilities([*rng.pick(&["cp1", "CP1"])]);
    }
    if rng.chance(80) {
        let auth = *rng.pick(&[
            ClientAuth::Public,
            ClientAuth::Secret,
            ClientAuth::Certificate,
            ClientAuth::Unknown,
        ]);
        b = b.client_app(rng.guid(), auth);
    }
    b = match rng.below(6) {
        0 => b.guest_from(TenantId::parse(ELSEWHERE).unwrap()),
        1 => b.guest_from(TenantId::parse(if tenant == HOME { PARTNER } else { HOME }).unwrap()),
        2 => b.guest_unknown(),
        _ => b,
    };
    let token_id = rng.chance(70).then(|| format!("uti{:016x}", rng.next()));
    if let Some(uti) = &token_id {
        b = b.token_id(uti.clone());
    }
    let mut p = b.build();
    // Display claims cannot be set through the builder; the crate's own fields can.
    let mut display = Vec::new();
    if rng.chance(60) {
        let tag = rng.next();
        let d = &mut p.display;
        d.name = Some(format!("Display Name {tag:x}"));
        d.preferred_username = Some(format!("preferred.{tag:x}@contoso.example"));
        d.upn = Some(format!("upn.{tag:x}@contoso.example"));
        d.unique_name = Some(format!("unique.{tag:x}@contoso.example"));
        d.email = Some(format!("mail.{tag:x}@contoso.example"));
        display.extend(
            [
                &d.name,
                &d.preferred_username,
                &d.upn,
                &d.unique_name,
                &d.email,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
    }
    (p, Secrets { display, token_id })
}

/// Where the decision reads membership from: the token (most of the time), or a
/// resolver's answer (some bound groups, sometimes a junk one too), or a failed lookup.
#[derive(Debug)]
enum Membership {
    FromToken,
    Resolved(Vec<GroupId>),
    Unavailable,
}

impl Membership {
    fn random(rng: &mut Rng) -> Self {
        match rng.below(10) {
            0..=5 => Self::FromToken,
            6..=8 => {
                let mut ids = groups(&rng.subset(&BOUND_GROUPS));
                if rng.chance(20) {
                    ids.push(group(JUNK_GROUPS[0]));
                }
                Self::Resolved(ids)
            }
            _ => Self::Unavailable,
        }
    }

    fn source(&self) -> MembershipSource<'_> {
        match self {
            Self::FromToken => MembershipSource::FromToken,
            Self::Resolved(ids) => MembershipSource::Resolved(ids),
            Self::Unavailable => MembershipSource::Unavailable,
        }
    }
}

/// The event the governor records for `decision` (`Governor::finish` and
/// `decision_event` in src/governor/mod.rs, display names off, as by default).
fn recorded_event(
    policy: &CompiledPolicy,
    principal: &Principal,
    decision: &Decision,
    inputs: DecisionInputs,
) -> AuditEvent {
    let outcome = AuditOutcome::of(decision);
    let mut roles: Vec<String> = decision.matched.iter().map(|m| m.role.clone()).collect();
    roles.dedup();
    let mut event =
        AuditEvent::from_principal(principal, outcome, &decision.action, &decision.resource)
            .with_reason(decision.reason.code())
            .with_explanation(decision.explain())
            .with_roles(roles)
            .with_policy_version(policy.version_hash())
            .with_time(UNIX_EPOCH + Duration::from_secs(NOW));
    if let Some(m) = decision.matched.first() {
        event = event.with_grant(m.grant.clone());
        let mut bindings: Vec<&str> = decision.matched.iter().map(|m| &m.binding[..]).collect();
        bindings.dedup();
        event = event.with_bindings(bindings);
    }
    if let Some(t) = decision.matched.iter().find_map(|m| m.tenant.clone()) {
        event = event.with_trusted_tenant(t);
    }
    if let Some(rule) = decision.denied_by() {
        event = event.with_denied_by(rule);
    }
    if let Reason::StepUpRequired { claims, .. } = &decision.reason {
        event = event.with_claims_request(claims.clone());
    }
    event
        .with_latency(Duration::from_micros(42))
        .with_inputs(inputs)
}

/// What one run saw, to show that the cases reached every kind of answer.
#[derive(Default)]
struct Seen {
    reasons: BTreeMap<&'static str, usize>,
    /// Decisions that deciding two hours later would change.
    time_dependent: usize,
    /// Allows through a `max_auth_age` requirement (the sign-in was recent enough).
    fresh_allows: usize,
    /// Refusals that deciding two hours earlier would allow (the sign-in got too old).
    stale_refusals: usize,
    events: usize,
    /// Events decided again under the other policy, and how many of those were inexact.
    cross: usize,
    cross_inexact: usize,
    /// Of those, events recorded with every group (`AuditGroups::All`).
    all_mode_inexact: usize,
}

/// Decides `CASES` random requests under `policy`, records each as the governor does
/// (with both group recording modes), round-trips the event through JSON, and checks
/// that replay under the same policy gives the same decision, exactly; and under
/// `other`, a decision that is exact only when it is the one `other` makes.
fn round_trip(name: &str, policy: &Policy, other: &Policy, seed: u64) -> Seen {
    let compiled = policy.compiled();
    let live: &CompiledPolicy = &compiled;
    let other = other.compiled();
    let mut rng = Rng(seed);
    let mut seen = Seen::default();
    let mut trails: [String; 2] = Default::default();
    for case in 0..CASES {
        let (p, secrets) = caller(&mut rng);
        let membership = Membership::random(&mut rng);
        let &(action, resource) = rng.pick(REQUESTS);
        let at = format!(
            "seed {seed:#x} case {case} ({name}): {action} {resource}, {membership:?}, {p:?}"
        );
        let d = live.decide_at(&p, membership.source(), action, resource, NOW);
        *seen.reasons.entry(d.reason.code()).or_default() += 1;
        let later = live.decide_at(&p, membership.source(), action, resource, NOW + 7200);
        if later != d {
            seen.time_dependent += 1;
        }
        if d.is_allowed() && !later.is_allowed() {
            seen.fresh_allows += 1;
        }
        let earlier = live.decide_at(&p, membership.source(), action, resource, NOW - 7200);
        if !d.is_allowed() && earlier.is_allowed() {
            seen.stale_refusals += 1;
        }
        for (m, mode) in [AuditGroups::Bound, AuditGroups::All]
            .into_iter()
            .enumerate()
        {
            let at = format!("{at} [{mode:?}]");
            let filter = GroupFilter {
                mode,
                live,
                shadow: None,
            };
            let inputs = DecisionInputs::capture(&p, membership.source(), &filter);
            check_recorded_groups(&p, &membership, &filter, &inputs, &at);
            let event = recorded_event(live, &p, &d, inputs);
            let json = serde_json::to_string(&event).unwrap();
            let back: AuditEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{at}: the JSON round trip changed the event");
            assert_eq!(
                serde_json::to_string(&back).unwrap(),
                json,
                "{at}: written twice, the event reads differently"
            );
            check_nothing_leaks(&json, &back, &secrets, &at);

            let again = decide_again(live, &back, |_| false)
                .unwrap_or_else(|| panic!("{at}: a v2 decision is replayable\n{json}"));
            let r = &again.decision;
            assert!(again.exact, "{at}: the event's own policy replays exactly");
            assert_eq!(r.effect, d.effect, "{at}: effect\n{json}");
            assert_eq!(r.reason, d.reason, "{at}: reason\n{json}");
            assert_eq!(
                r.matched.first().map(|m| &m.grant),
                d.matched.first().map(|m| &m.grant),
                "{at}: first grant\n{json}"
            );
            assert_eq!(r.denied_by(), d.denied_by(), "{at}: denied_by\n{json}");
            assert_eq!(*r, d, "{at}: the whole decision\n{json}");
            // What replay compares with: the recorded fields.
            assert_eq!(AuditOutcome::of(r), back.outcome, "{at}");
            assert_eq!(r.reason.code(), back.reason, "{at}");
            assert_eq!(r.matched.first().map(|m| &m.grant), back.grant.as_ref());
            assert_eq!(r.denied_by(), back.denied_by.as_deref(), "{at}");
            assert_eq!(Some(r.explain()), back.explanation, "{at}");

            // The rebuilt caller records the same inputs again: nothing is lost twice.
            let inputs = back.inputs.as_ref().unwrap();
            let rebuilt = inputs.caller(&back).unwrap();
            assert_eq!(rebuilt.decided_at_secs(), NOW, "{at}");
            assert_eq!(
                &DecisionInputs::capture(&rebuilt.principal, rebuilt.membership(), &filter),
                inputs,
                "{at}: the rebuilt caller's inputs"
            );

            // Replay reads the event's own time, not the clock: two hours later it
            // decides as the policy does two hours later.
            let shifted = back
                .clone()
                .with_time(UNIX_EPOCH + Duration::from_secs(NOW + 7200));
            let shifted = decide_again(live, &shifted, |_| false).unwrap();
            assert_eq!(shifted.decision, later, "{at}: decided two hours later");

            check_other_policy(live, &other, &p, &membership, &back, &mut seen, &at);

            trails[m].push_str(&json);
            trails[m].push('\n');
            seen.events += 1;
        }
    }
    // The same events as a JSON Lines trail, replayed as the CLI does.
    for (trail, mode) in trails.iter().zip(["Bound", "All"]) {
        let mut replay = Replay::of_compiled(policy.compiled());
        replay.learn_trail(std::io::Cursor::new(trail)).unwrap();
        replay.read_trail(std::io::Cursor::new(trail)).unwrap();
        let t = replay.finish().totals;
        let at = format!("seed {seed:#x} ({name}, {mode}): {t:?}");
        assert_eq!(t.decisions, CASES as u64, "{at}");
        assert_eq!(
            (
                t.changed,
                t.inexact,
                t.not_replayable,
                t.unreadable_lines,
                t.skipped
            ),
            (0, 0, 0, 0, 0),
            "{at}"
        );
    }
    seen
}

/// Replayed under another policy, an event is exact only when the answer is the one
/// that policy gives (outcome and reason code); with every group recorded from the
/// token it is always exact and the very same decision.
fn check_other_policy(
    live: &CompiledPolicy,
    other: &CompiledPolicy,
    p: &Principal,
    membership: &Membership,
    event: &AuditEvent,
    seen: &mut Seen,
    at: &str,
) {
    let inputs = event.inputs.as_ref().unwrap();
    let (action, resource) = (&event.action, &event.resource);
    let truth = other.decide_at(p, membership.source(), action, resource, NOW);
    // The live policy's bound groups were recorded (or asked of the resolver).
    let recorded = |g: &GroupId| live.bound_group_ids().binary_search(g).is_ok();
    let again = decide_again(other, event, recorded).unwrap();
    seen.cross += 1;
    if again.exact {
        assert_eq!(
            (again.decision.effect, again.decision.reason.code()),
            (truth.effect, truth.reason.code()),
            "{at}: exact under the other policy, yet not its answer"
        );
    } else {
        seen.cross_inexact += 1;
    }
    if inputs.groups.recorded == AuditGroups::All {
        if !again.exact {
            seen.all_mode_inexact += 1;
        }
        // Listed groups are all known; an unresolved overage is known to be unknown
        // only when the other policy needs no groups.
        // A resolver's answer covers the recording policy's groups only.
        if inputs.groups.resolution.is_none() && inputs.groups.claim == GroupsClaim::Listed {
            assert!(again.exact, "{at}: every group recorded, yet inexact");
            assert_eq!(again.decision, truth, "{at}: every group recorded");
        }
    }
}

/// The recorded groups say what the token said and what the decision read, and keep
/// the bound ones only unless told to keep them all (a resolver's answer: always the
/// bound ones).
fn check_recorded_groups(
    p: &Principal,
    membership: &Membership,
    filter: &GroupFilter<'_>,
    inputs: &DecisionInputs,
    at: &str,
) {
    let g = &inputs.groups;
    let claim = match p.groups() {
        TokenGroups::Listed(_) => GroupsClaim::Listed,
        TokenGroups::Overage => GroupsClaim::Overage,
        TokenGroups::NotEmitted => GroupsClaim::NotEmitted,
    };
    assert_eq!(g.claim, claim, "{at}");
    assert_eq!(g.recorded, filter.mode, "{at}");
    assert_eq!(g.shadow_policy, None, "{at}");
    let (resolution, read): (_, &[GroupId]) = match (membership, p.groups()) {
        (Membership::FromToken, TokenGroups::Listed(ids)) => (None, ids),
        (Membership::FromToken, _) => (None, &[]),
        (Membership::Resolved(ids), _) => (Some(GroupsResolution::Resolved), ids),
        (Membership::Unavailable, _) => (Some(GroupsResolution::Unavailable), &[]),
    };
    assert_eq!(g.resolution, resolution, "{at}");
    // All groups the token listed, or the bound ones; a resolver answers about the bound
    // groups only, so only those of its answer are recorded.
    let bound = filter.live.bound_group_ids();
    let all = filter.mode == AuditGroups::All && resolution.is_none();
    let expected: Vec<&GroupId> = read.iter().filter(|id| all || bound.contains(id)).collect();
    assert_eq!(g.ids.iter().collect::<Vec<_>>(), expected, "{at}");
}

/// No display claim reaches the trail (display names are opt-in), and the token id
/// appears once, as `token_id`.
fn check_nothing_leaks(json: &str, event: &AuditEvent, secrets: &Secrets, at: &str) {
    for claim in &secrets.display {
        assert!(!json.contains(claim.as_str()), "{at}: {claim} in {json}");
    }
    assert_eq!(event.display_name, None, "{at}");
    assert_eq!(event.token_id, secrets.token_id, "{at}");
    if let Some(uti) = &secrets.token_id {
        assert_eq!(json.matches(uti.as_str()).count(), 1, "{at}: {json}");
        assert!(
            json.contains(&format!("\"token_id\":\"{uti}\"")),
            "{at}: {json}"
        );
    }
}

fn summary(name: &str, seed: u64, seen: &Seen, took: Duration) -> String {
    let mut text = format!(
        "{name}: seed {seed:#x}, {CASES} cases, {} events in {took:?}; time-dependent {}, \
         fresh allows {}, stale refusals {}; under the other policy {} inexact of {} \
         ({} recorded with all groups);",
        seen.events,
        seen.time_dependent,
        seen.fresh_allows,
        seen.stale_refusals,
        seen.cross_inexact,
        seen.cross,
        seen.all_mode_inexact
    );
    for (code, n) in &seen.reasons {
        let _ = write!(text, " {code}={n}");
    }
    text
}

fn assert_reached(name: &str, seed: u64, seen: &Seen, codes: &[&str]) {
    for code in codes {
        assert!(
            seen.reasons.get(code).is_some_and(|n| *n > 0),
            "seed {seed:#x} ({name}): no case reached {code}: {:?}",
            seen.reasons
        );
    }
}

#[test]
fn random_decisions_under_the_example_policy_replay_exactly_from_the_trail() {
    let policy =
        Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")).unwrap();
    let other = Policy::from_toml_str(TIME_POLICY).unwrap();
    let started = Instant::now();
    let seen = round_trip("example policy", &policy, &other, SEED);
    let took = started.elapsed();
    eprintln!("{}", summary("example policy", SEED, &seen, took));
    assert_reached(
        "example policy",
        SEED,
        &seen,
        &[
            "allow",
            "no_role_grants",
            "outside_scopes",
            "denied_by_rule",
            "unknown_action",
            "invalid_resource",
            "group_membership_unavailable",
            "group_membership_unknown",
            "step_up_required",
            "step_up_not_possible",
            "requirement_not_met",
        ],
    );
}

#[test]
fn random_time_dependent_decisions_replay_at_the_recorded_time() {
    let policy = Policy::from_toml_str(TIME_POLICY).unwrap();
    let other =
        Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml")).unwrap();
    // Another stream of cases than the example policy's.
    let seed = SEED ^ 0x71AE;
    let started = Instant::now();
    let seen = round_trip("time policy", &policy, &other, seed);
    let took = started.elapsed();
    eprintln!("{}", summary("time policy", seed, &seen, took));
    assert_reached(
        "time policy",
        seed,
        &seen,
        &[
            "allow",
            "no_role_grants",
            "outside_scopes",
            "denied_by_rule",
            "separation_of_duties",
            "group_membership_unavailable",
            "group_membership_unknown",
            "step_up_required",
            "step_up_not_possible",
            "requirement_not_met",
        ],
    );
    assert!(
        seen.time_dependent > 0,
        "seed {seed:#x}: no time-dependent case"
    );
    assert!(seen.fresh_allows > 0, "seed {seed:#x}: no fresh allow");
    assert!(seen.stale_refusals > 0, "seed {seed:#x}: no stale refusal");
}
