//! `CompiledPolicy::decide` for a principal with 200 groups against a policy of 500 roles
//! and 5,000 bindings, and the same decision by `cedar-policy` on an equivalent policy,
//! measured in the same run.
//!
//! Run: `cargo bench --bench decide`.
//!
//! The Cedar side is what an application would do per request: build the caller's
//! entities from the same principal (the user, its 200 groups with the roles bound to
//! them, the roles they reach) and call `is_authorized`. Static data that does not depend
//! on the caller (the policy set, the group-to-role map) is built once, outside the loop,
//! as our compiled tables are. Translation notes: grants become one `permit` per grant
//! (`principal in Role::"…"`, resource patterns as `like` on `context.resource`, where
//! `*` also crosses `/`: equivalent for the requests measured here); scope ceilings become
//! `forbid … unless { context.scopes.containsAny([...]) }` per action; deny rules become
//! `forbid`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression,
};
use criterion::{Criterion, criterion_group, criterion_main};
use entra_governor::policy::{BUILTIN_ACTIONS, Policy};
use entra_governor::{GroupId, ObjectId, Principal, TenantId, TokenGroups};

const ROLES: usize = 500;
const BINDINGS: usize = 5_000;
const GROUPS_PER_CALLER: usize = 200;
/// How many of the caller's groups the policy binds (the rest are the organisation's
/// other groups, which tokens list too).
const BOUND_GROUPS_OF_CALLER: usize = 20;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OID: &str = "690222be-ff1a-4d56-abd1-7e4f7d38e474";

const SCOPES: &[(&str, &[&str])] = &[
    ("Inference.Invoke", &["inference.*", "models.read"]),
    (
        "Training.Manage",
        &[
            "training.*",
            "datasets.read",
            "models.read",
            "evaluations.run",
        ],
    ),
    ("Models.Manage", &["models.*", "evaluations.run"]),
];

/// splitmix64: deterministic data without a `rand` dependency.
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

struct Grant {
    actions: Vec<&'static str>,
    pattern: String,
}

struct World {
    roles: Vec<(String, Option<usize>, Vec<Grant>)>,
    /// group id -> bound role indices
    bindings: BTreeMap<String, Vec<usize>>,
    app_roles: BTreeMap<String, Vec<usize>>,
}

fn expand(spec: &str) -> Vec<&'static str> {
    BUILTIN_ACTIONS
        .iter()
        .copied()
        .filter(|a| {
            spec == "*"
                || spec == *a
                || spec
                    .strip_suffix(".*")
                    .is_some_and(|f| a.starts_with(&format!("{f}.")))
        })
        .collect()
}

fn world() -> World {
    let mut rng = Rng(42);
    let families = [
        "training.*",
        "models.*",
        "inference.*",
        "datasets.*",
        "evaluations.*",
    ];
    let roles = (0..ROLES)
        .map(|i| {
            let a = BUILTIN_ACTIONS[rng.below(BUILTIN_ACTIONS.len())];
            let mut b = BUILTIN_ACTIONS[rng.below(BUILTIN_ACTIONS.len())];
            if b == a {
                b = "models.read";
            }
            let mut actions = vec![a, b];
            actions.dedup();
            let grants = vec![
                Grant {
                    actions,
                    pattern: format!("models/team-{i}-*"),
                },
                Grant {
                    actions: vec![families[rng.below(families.len())]],
                    pattern: format!("datasets/team-{i}/**"),
                },
            ];
            // Every tenth role includes the next one.
            let include = (i % 10 == 0 && i + 1 < ROLES).then_some(i + 1);
            (format!("role-{i:03}"), include, grants)
        })
        .collect();
    let mut bindings: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut app_roles: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let group_bindings = BINDINGS - 100;
    let groups: Vec<String> = (0..group_bindings / 2).map(|_| rng.guid()).collect();
    // Distinct (subject, role) pairs, so that every binding counts.
    let add = |list: &mut Vec<usize>, rng: &mut Rng| loop {
        let r = rng.below(ROLES);
        if !list.contains(&r) {
            list.push(r);
            break;
        }
    };
    for i in 0..group_bindings {
        add(
            bindings
                .entry(groups[i % groups.len()].clone())
                .or_default(),
            &mut rng,
        );
    }
    for i in 0..100 {
        add(
            app_roles.entry(format!("App.Role{}", i % 50)).or_default(),
            &mut rng,
        );
    }
    World {
        roles,
        bindings,
        app_roles,
    }
}

fn our_policy(w: &World) -> Policy {
    let mut s = String::from("version = 1\n");
    for (name, include, grants) in &w.roles {
        s.push_str(&format!("[roles.{name}]\n"));
        if let Some(i) = include {
            s.push_str(&format!("include = [\"{}\"]\n", w.roles[*i].0));
        }
        s.push_str("grants = [\n");
        for g in grants {
            let actions: Vec<String> = g.actions.iter().map(|a| format!("\"{a}\"")).collect();
            s.push_str(&format!(
                "  {{ actions = [{}], resources = [\"{}\"] }},\n",
                actions.join(", "),
                g.pattern
            ));
        }
        s.push_str("]\n");
    }
    let mut n = 0;
    for (group, roles) in &w.bindings {
        for r in roles {
            s.push_str(&format!(
                "[[bindings]]\ngroup = \"{group}\"\nroles = [\"{}\"]\n",
                w.roles[*r].0
            ));
            n += 1;
        }
    }
    for (value, roles) in &w.app_roles {
        for r in roles {
            s.push_str(&format!(
                "[[bindings]]\napp_role = \"{value}\"\nroles = [\"{}\"]\n",
                w.roles[*r].0
            ));
            n += 1;
        }
    }
    eprintln!(
        "policy: {} roles, {n} bindings, {} groups bound",
        w.roles.len(),
        w.bindings.len()
    );
    s.push_str("[scopes]\n");
    for (scope, ceiling) in SCOPES {
        let c: Vec<String> = ceiling.iter().map(|a| format!("\"{a}\"")).collect();
        s.push_str(&format!("\"{scope}\" = [{}]\n", c.join(", ")));
    }
    s.push_str(
        r#"[[deny]]
name = "no-guests-on-pii"
when = { guest = true }
actions = ["*"]
resources = ["datasets/pii/**"]
[[deny]]
name = "prod-models-are-not-deleted"
actions = ["models.delete"]
resources = ["models/prod-*"]
"#,
    );
    Policy::from_toml_str(&s).expect("bench policy loads")
}

fn cedar_like(pattern: &str) -> String {
    // `**` as a whole trailing segment: `prefix/**` ~ `prefix/*` (Cedar's `*` crosses `/`).
    pattern.replace("**", "*")
}

fn cedar_policies(w: &World) -> PolicySet {
    let mut s = String::new();
    for (name, _, grants) in &w.roles {
        for g in grants {
            let actions: Vec<String> = g
                .actions
                .iter()
                .flat_map(|a| expand(a))
                .map(|a| format!("Action::\"{a}\""))
                .collect();
            s.push_str(&format!(
                "permit (principal in Role::\"{name}\", action in [{}], resource) when {{ context.resource like \"{}\" }};\n",
                actions.join(", "),
                cedar_like(&g.pattern)
            ));
        }
    }
    for a in BUILTIN_ACTIONS {
        let allowed: Vec<String> = SCOPES
            .iter()
            .filter(|(_, c)| c.iter().any(|spec| expand(spec).contains(a)))
            .map(|(scope, _)| format!("\"{scope}\""))
            .collect();
        s.push_str(&format!(
            "forbid (principal, action == Action::\"{a}\", resource) when {{ context.delegated }} unless {{ context.scopes.containsAny([{}]) }};\n",
            allowed.join(", ")
        ));
    }
    s.push_str(
        "forbid (principal, action, resource) when { principal.guest && context.resource like \"datasets/pii/*\" };\n\
         forbid (principal, action == Action::\"models.delete\", resource) when { context.resource like \"models/prod-*\" };\n",
    );
    PolicySet::from_str(&s).expect("cedar policies parse")
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
}

/// Cedar's view of the caller, built from the same principal for every request.
fn cedar_entities(w: &World, p: &Principal) -> Entities {
    let TokenGroups::Listed(groups) = p.groups() else {
        unreachable!()
    };
    let mut parents = HashSet::new();
    let mut entities = Vec::with_capacity(groups.len() + 16);
    let mut reached: HashSet<usize> = HashSet::new();
    let reach = |roles: &[usize], reached: &mut HashSet<usize>| -> HashSet<EntityUid> {
        roles
            .iter()
            .map(|r| {
                let mut x = Some(*r);
                while let Some(i) = x {
                    if !reached.insert(i) {
                        break;
                    }
                    x = w.roles[i].1;
                }
                uid("Role", &w.roles[*r].0)
            })
            .collect()
    };
    for g in groups {
        let u = uid("Group", g.as_str());
        let role_parents = w
            .bindings
            .get(g.as_str())
            .map(|roles| reach(roles, &mut reached))
            .unwrap_or_default();
        entities.push(Entity::new_no_attrs(u.clone(), role_parents));
        parents.insert(u);
    }
    for v in p.roles() {
        let u = uid("AppRole", v);
        let role_parents = w
            .app_roles
            .get(v.as_str())
            .map(|roles| reach(roles, &mut reached))
            .unwrap_or_default();
        entities.push(Entity::new_no_attrs(u.clone(), role_parents));
        parents.insert(u);
    }
    for r in reached {
        let include: HashSet<EntityUid> = w.roles[r]
            .1
            .map(|i| uid("Role", &w.roles[i].0))
            .into_iter()
            .collect();
        entities.push(Entity::new_no_attrs(uid("Role", &w.roles[r].0), include));
    }
    let user = Entity::new(
        uid("User", p.object_id().as_str()),
        HashMap::from([(
            "guest".to_owned(),
            RestrictedExpression::new_bool(p.is_guest()),
        )]),
        parents,
    )
    .unwrap();
    entities.push(user);
    Entities::from_entities(entities, None).expect("entities")
}

fn cedar_decide(
    w: &World,
    policies: &PolicySet,
    authorizer: &Authorizer,
    p: &Principal,
    action: &str,
    resource: &str,
) -> bool {
    let entities = cedar_entities(w, p);
    let context = Context::from_pairs([
        (
            "resource".to_owned(),
            RestrictedExpression::new_string(resource.to_owned()),
        ),
        (
            "delegated".to_owned(),
            RestrictedExpression::new_bool(!p.is_app_only()),
        ),
        (
            "scopes".to_owned(),
            RestrictedExpression::new_set(
                p.scopes()
                    .iter()
                    .map(|s| RestrictedExpression::new_string(s.clone())),
            ),
        ),
    ])
    .unwrap();
    let request = Request::new(
        uid("User", p.object_id().as_str()),
        uid("Action", action),
        uid("Resource", resource),
        context,
        None,
    )
    .unwrap();
    authorizer
        .is_authorized(&request, policies, &entities)
        .decision()
        == cedar_policy::Decision::Allow
}

/// A caller with `GROUPS_PER_CALLER` distinct groups, `bound` of them bound by the policy
/// (drawn without replacement), `keep` among those.
fn caller(w: &World, bound: usize, keep: &[GroupId], rng: &mut Rng) -> Principal {
    let mut bound_ids: Vec<&String> = w.bindings.keys().collect();
    let mut groups: Vec<GroupId> = keep.to_vec();
    while groups.len() < bound {
        let id = GroupId::parse(bound_ids.swap_remove(rng.below(bound_ids.len()))).unwrap();
        if !groups.contains(&id) {
            groups.push(id);
        }
    }
    while groups.len() < GROUPS_PER_CALLER {
        groups.push(GroupId::parse(&rng.guid()).unwrap());
    }
    // Entra lists groups in no particular order; mix the bound ones in.
    for i in (1..groups.len()).rev() {
        groups.swap(i, rng.below(i + 1));
    }
    Principal::builder(
        TenantId::parse(TENANT).unwrap(),
        ObjectId::parse(OID).unwrap(),
    )
    .scopes(["Inference.Invoke", "Training.Manage"])
    .roles(["App.Role7"])
    .groups(TokenGroups::Listed(groups))
    .build()
}

/// The groups of `p` that the policy binds.
fn bound_groups(w: &World, p: &Principal) -> Vec<GroupId> {
    match p.groups() {
        TokenGroups::Listed(g) => g
            .iter()
            .filter(|g| w.bindings.contains_key(g.as_str()))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let w = world();
    let policy = our_policy(&w);
    let compiled = policy.compiled();
    let cedar = cedar_policies(&w);
    let authorizer = Authorizer::new();
    let mut rng = Rng(7);
    let typical = caller(&w, BOUND_GROUPS_OF_CALLER, &[], &mut rng);
    // The typical caller's bound groups and 180 more: every group bound, same request.
    let all_bound = caller(&w, GROUPS_PER_CALLER, &bound_groups(&w, &typical), &mut rng);
    assert_eq!(bound_groups(&w, &all_bound).len(), GROUPS_PER_CALLER);
    assert_eq!(bound_groups(&w, &typical).len(), BOUND_GROUPS_OF_CALLER);

    // An allowed request: some grant of a role the caller holds, within its scopes.
    let perms = compiled.permissions(&typical);
    let (action, resource) = perms
        .grants
        .iter()
        .find(|g| g.resources[0].starts_with("models/"))
        .map(|g| (g.actions[0].clone(), g.resources[0].replace('*', "x")))
        .expect("the caller holds some grant");
    let allow = compiled.decide(&typical, &action, &resource);
    assert!(allow.is_allowed(), "{}", allow.explain());
    assert!(cedar_decide(
        &w,
        &cedar,
        &authorizer,
        &typical,
        &action,
        &resource
    ));
    eprintln!("request: {}", allow.explain());
    let deny_resource = "models/nobody-has-this";
    assert!(
        !compiled
            .decide(&typical, &action, deny_resource)
            .is_allowed()
    );
    assert!(!cedar_decide(
        &w,
        &cedar,
        &authorizer,
        &typical,
        &action,
        deny_resource
    ));

    let mut g = c.benchmark_group("decide");
    g.bench_function("entra-governor/allow", |b| {
        b.iter(|| {
            black_box(compiled.decide(
                black_box(&typical),
                black_box(&action),
                black_box(&resource),
            ))
        })
    });
    g.bench_function("entra-governor/deny-no-role", |b| {
        b.iter(|| {
            black_box(compiled.decide(
                black_box(&typical),
                black_box(&action),
                black_box(deny_resource),
            ))
        })
    });
    let d = compiled.decide(&all_bound, &action, &resource);
    assert!(d.is_allowed(), "{}", d.explain());
    g.bench_function("entra-governor/allow-all-200-groups-bound", |b| {
        b.iter(|| {
            black_box(compiled.decide(
                black_box(&all_bound),
                black_box(&action),
                black_box(&d.resource),
            ))
        })
    });
    g.bench_function("cedar/allow-end-to-end", |b| {
        b.iter(|| {
            black_box(cedar_decide(
                &w,
                &cedar,
                &authorizer,
                black_box(&typical),
                &action,
                &resource,
            ))
        })
    });
    let entities = cedar_entities(&w, &typical);
    g.bench_function("cedar/allow-is_authorized-only", |b| {
        let context = Context::from_pairs([
            (
                "resource".to_owned(),
                RestrictedExpression::new_string(resource.clone()),
            ),
            ("delegated".to_owned(), RestrictedExpression::new_bool(true)),
            (
                "scopes".to_owned(),
                RestrictedExpression::new_set(
                    typical
                        .scopes()
                        .iter()
                        .map(|s| RestrictedExpression::new_string(s.clone())),
                ),
            ),
        ])
        .unwrap();
        let request = Request::new(
            uid("User", OID),
            uid("Action", &action),
            uid("Resource", &resource),
            context,
            None,
        )
        .unwrap();
        b.iter(|| black_box(authorizer.is_authorized(&request, &cedar, &entities)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
