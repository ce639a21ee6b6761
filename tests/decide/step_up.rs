//! Conditional Access requirements and step-up, end to end: real tokens from the local
//! Entra look-alike, `Governor::authorize`, and the exact HTTP answer a client gets.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use entra_governor::http::Refusal;
use entra_governor::testing::{TestIdp, TokenBuilder};
use entra_governor::{
    AuditLog, AuditOutcome, ClientAuth, Cloud, Decision, Governor, MemorySink, Policy, Reason,
};

const OTHER_APP: &str = "0f0e0d0c-0b0a-4909-8807-060504030201";

/// A policy exercising every attachment: a `[[requirements]]` rule, role requirements,
/// grant requirements.
fn policy(allowed_app: &str) -> Policy {
    Policy::from_toml_str(&format!(
        r#"
version = 1
mfa_auth_context = "c2"

[roles.analyst]
grants = [
  {{ actions = ["datasets.read"], resources = ["datasets/**"] }},
  {{ actions = ["training.submit"], resources = ["models/**"], requires = {{ max_auth_age = "4h" }} }},
  {{ actions = ["inference.invoke"], resources = ["endpoints/**"], requires = {{ client_apps = ["{allowed_app}"] }} }},
]

[roles.deployer]
requires = {{ mfa = true }}
grants = [{{ actions = ["models.deploy"], resources = ["models/**"] }}]

[roles.staging-deployer]
grants = [{{ actions = ["models.deploy"], resources = ["models/staging-*"] }}]

[roles.pipeline]
requires = {{ client_auth = "certificate" }}
grants = [{{ actions = ["training.submit"], resources = ["models/**"] }}]

[[bindings]]
app_role = "Analyst"
roles = ["analyst"]

[[bindings]]
app_role = "Deployer"
roles = ["deployer"]

[[bindings]]
app_role = "StagingDeployer"
roles = ["staging-deployer"]

[[bindings]]
app_permission = "Pipeline"
roles = ["pipeline"]

[scopes]
"access_as_user" = ["*"]

[[requirements]]
name = "pii-needs-c1"
actions = ["datasets.read", "training.*"]
resources = ["datasets/pii/**"]
requires = {{ auth_context = "c1" }}
"#
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

async fn setup() -> (TestIdp, Governor, MemorySink) {
    let idp = TestIdp::start().await;
    let sink = MemorySink::new();
    let g = common::builder(&idp)
        .policy(policy(&idp.client_app_id()))
        .audit(AuditLog::builder(sink.clone()).build())
        .build()
        .unwrap();
    (idp, g, sink)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The challenge Microsoft's samples send, for the look-alike's authority.
fn challenge(idp: &TestIdp, context: &str) -> String {
    let claims =
        format!(r#"{{"access_token":{{"acrs":{{"essential":true,"value":"{context}"}}}}}}"#);
    format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", \
         error=\"insufficient_claims\", claims=\"{}\"",
        idp.authority(),
        STANDARD.encode(claims)
    )
}

fn user(idp: &TestIdp, roles: &[&str]) -> TokenBuilder {
    idp.token().roles(roles.iter().copied())
}

async fn decide(g: &Governor, token: String, action: &str, resource: &str) -> Decision {
    g.authorize(&token, action, resource).await.unwrap()
}

fn assert_step_up(d: &Decision, g: &Governor, idp: &TestIdp, requirement: &str, context: &str) {
    let claims =
        format!(r#"{{"access_token":{{"acrs":{{"essential":true,"value":"{context}"}}}}}}"#);
    assert_eq!(
        d.reason,
        Reason::StepUpRequired {
            requirement: requirement.into(),
            auth_context: context.into(),
            claims,
        },
        "{d}"
    );
    assert!(!d.is_allowed());
    assert!(d.is_step_up());
    let r = Refusal::from_decision(d, g.cloud()).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.www_authenticate, Some(challenge(idp, context)));
    assert_eq!(
        r.body_json(),
        r#"{"error":"insufficient_claims","error_description":"a stronger or more recent sign-in is required"}"#
    );
}

fn assert_forbidden(d: &Decision) {
    let r = Refusal::from_decision(d, &Cloud::global()).unwrap();
    assert_eq!(r.status, 403, "{d}");
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer error=\"insufficient_scope\"")
    );
    assert!(
        !r.body_json().contains("c1"),
        "the body names no requirement"
    );
}

// ------------------------------------------------------------------ auth context

#[tokio::test]
async fn an_auth_context_in_acrs_satisfies_the_requirement() {
    let (idp, g, _) = setup().await;
    let t = user(&idp, &["Analyst"]).acrs(["c1"]).sign();
    let d = decide(&g, t, "datasets.read", "datasets/pii/claims-2025").await;
    assert!(d.is_allowed(), "{d}");
    assert_eq!(d.matched[0].grant, "analyst#0");
    // Other contexts do not count.
    let t = user(&idp, &["Analyst"])
        .acrs(["c2", "c3"])
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, t, "datasets.read", "datasets/pii/claims-2025").await;
    assert_step_up(&d, &g, &idp, "requirements:pii-needs-c1", "c1");
}

#[tokio::test]
async fn an_unmet_auth_context_challenges_a_cp1_client_with_the_exact_header() {
    let (idp, g, sink) = setup().await;
    let t = user(&idp, &["Analyst"])
        .client_capabilities(["CP1"]) // case-insensitive
        .sign();
    let d = decide(&g, t, "datasets.read", "datasets/pii/claims-2025").await;
    assert_step_up(&d, &g, &idp, "requirements:pii-needs-c1", "c1");
    assert_eq!(
        challenge(&idp, "c1"),
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", \
             error=\"insufficient_claims\", \
             claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\"",
            idp.authority()
        )
    );
    assert_eq!(
        d.explain(),
        "step-up required: datasets.read on datasets/pii/claims-2025 needs authentication \
         context c1 (requirements:pii-needs-c1)"
    );
    // Outside the rule's resources nothing is asked.
    let t = user(&idp, &["Analyst"]).client_capabilities(["cp1"]).sign();
    assert!(
        decide(&g, t, "datasets.read", "datasets/public/x")
            .await
            .is_allowed()
    );
    g.shutdown().await;
    let events = sink.events();
    assert_eq!(events[0].outcome, AuditOutcome::StepUp);
    assert_eq!(events[0].reason, "step_up_required");
    // The trail records the requirement and the claims request, not the HTTP header of
    // the refusal.
    assert_eq!(
        events[0].denied_by.as_deref(),
        Some("requirements:pii-needs-c1")
    );
    assert_eq!(
        events[0].claims_request.as_deref(),
        Some(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
    );
    assert_eq!(
        events[1].claims_request, None,
        "only a step-up asks for claims"
    );
    let json = serde_json::to_string(&events[0]).unwrap();
    assert!(!json.contains("www_authenticate"), "{json}");
    assert!(!json.contains("insufficient_claims"), "{json}");
    assert_eq!(events[1].outcome, AuditOutcome::Allow);
}

#[tokio::test]
async fn a_client_without_cp1_gets_a_403_saying_it_cannot_step_up() {
    let (idp, g, sink) = setup().await;
    let t = user(&idp, &["Analyst"]).sign();
    let d = decide(&g, t, "datasets.read", "datasets/pii/claims-2025").await;
    assert_eq!(
        d.reason,
        Reason::StepUpNotPossible {
            requirement: "requirements:pii-needs-c1".into(),
            auth_context: "c1".into(),
        }
    );
    assert_eq!(d.reason.code(), "step_up_not_possible");
    assert!(
        d.explain()
            .ends_with("and the client cannot perform step-up (no cp1 capability)"),
        "{d}"
    );
    assert_forbidden(&d);
    g.shutdown().await;
    assert_eq!(sink.events()[0].outcome, AuditOutcome::Deny);
    assert_eq!(
        sink.events()[0].denied_by.as_deref(),
        Some("requirements:pii-needs-c1")
    );
}

#[tokio::test]
async fn a_deny_stays_a_deny_and_no_grant_is_not_a_step_up() {
    let (idp, g, _) = setup().await;
    // No role grants datasets.write: requirements never turn that into a step-up.
    let t = user(&idp, &["Analyst"]).client_capabilities(["cp1"]).sign();
    let d = decide(&g, t, "datasets.write", "datasets/pii/x").await;
    assert_eq!(d.reason, Reason::NoRoleGrants);
}

// ------------------------------------------------------------------------- MFA

#[tokio::test]
async fn mfa_is_met_by_v1_amr() {
    let (idp, g, _) = setup().await;
    for amr in ["mfa", "ngcmfa"] {
        let t = user(&idp, &["Deployer"]).v1().amr(["pwd", amr]).sign();
        let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
        assert!(d.is_allowed(), "{amr}: {d}");
    }
    // v1 with only a password, through a cp1 client: step up through the MFA context.
    let t = user(&idp, &["Deployer"])
        .v1()
        .amr(["pwd"])
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
    assert_step_up(&d, &g, &idp, "role:deployer", "c2");
}

#[tokio::test]
async fn mfa_is_met_by_the_mfa_auth_context_on_v2() {
    let (idp, g, _) = setup().await;
    let t = user(&idp, &["Deployer"]).acrs(["c2"]).sign();
    let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
    assert!(d.is_allowed(), "{d}");
    assert_eq!(d.matched[0].grant, "deployer#0");
}

#[tokio::test]
async fn unmet_mfa_on_v2_steps_up_for_the_mfa_context() {
    let (idp, g, _) = setup().await;
    let t = user(&idp, &["Deployer"])
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
    assert_step_up(&d, &g, &idp, "role:deployer", "c2");
    let t = user(&idp, &["Deployer"]).sign();
    let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
    assert_eq!(
        d.reason,
        Reason::StepUpNotPossible {
            requirement: "role:deployer".into(),
            auth_context: "c2".into(),
        }
    );
}

#[tokio::test]
async fn a_role_without_requirements_that_also_allows_wins() {
    let (idp, g, _) = setup().await;
    let t = user(&idp, &["Deployer", "StagingDeployer"])
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, t.clone(), "models.deploy", "models/staging-7").await;
    assert!(d.is_allowed(), "{d}");
    assert_eq!(d.matched[0].grant, "staging-deployer#0");
    // Where only the MFA role reaches, the step-up is back.
    let d = decide(&g, t, "models.deploy", "models/prod-chat").await;
    assert_step_up(&d, &g, &idp, "role:deployer", "c2");
}

// -------------------------------------------------------------------- auth age

#[tokio::test]
async fn max_auth_age_met_and_stale() {
    let (idp, g, _) = setup().await;
    let fresh = user(&idp, &["Analyst"]).auth_time(now() - 3600).sign();
    let d = decide(&g, fresh, "training.submit", "models/exp-1").await;
    assert!(d.is_allowed(), "{d}");
    // Five hours ago, with 4h allowed: step up (through mfa_auth_context, the block names
    // no context of its own).
    let stale = user(&idp, &["Analyst"])
        .auth_time(now() - 5 * 3600)
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, stale, "training.submit", "models/exp-1").await;
    assert_step_up(&d, &g, &idp, "grant:analyst#1", "c2");
    // No auth_time at all is not fresh.
    let unknown = user(&idp, &["Analyst"]).client_capabilities(["cp1"]).sign();
    let d = decide(&g, unknown, "training.submit", "models/exp-1").await;
    assert!(d.is_step_up(), "{d}");
}

// --------------------------------------------------- client authentication, apps

#[tokio::test]
async fn certificate_client_auth_for_app_only_callers() {
    let (idp, g, _) = setup().await;
    let cert = idp
        .token()
        .app_only()
        .roles(["Pipeline"])
        .client_auth(ClientAuth::Certificate)
        .sign();
    let d = decide(&g, cert, "training.submit", "models/staging-1").await;
    assert!(d.is_allowed(), "{d}");
    let secret = idp
        .token()
        .app_only()
        .roles(["Pipeline"])
        .client_auth(ClientAuth::Secret)
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, secret, "training.submit", "models/staging-1").await;
    assert_eq!(
        d.reason,
        Reason::RequirementNotMet {
            requirement: "role:pipeline".into(),
            detail: "client authentication with a certificate is required, the client \
                     authenticated with a secret"
                .into(),
        }
    );
    assert_eq!(d.reason.code(), "requirement_not_met");
    assert_forbidden(&d);
    // Same for a v1 token (appidacr).
    let v1 = idp
        .token()
        .v1()
        .app_only()
        .roles(["Pipeline"])
        .client_auth(ClientAuth::Certificate)
        .sign();
    assert!(
        decide(&g, v1, "training.submit", "models/staging-1")
            .await
            .is_allowed()
    );
}

#[tokio::test]
async fn allowed_client_apps_per_grant() {
    let (idp, g, _) = setup().await;
    let ours = user(&idp, &["Analyst"]).sign();
    let d = decide(&g, ours, "inference.invoke", "endpoints/chat").await;
    assert!(d.is_allowed(), "{d}");
    let other = user(&idp, &["Analyst"])
        .client_app(OTHER_APP)
        .client_capabilities(["cp1"])
        .sign();
    let d = decide(&g, other, "inference.invoke", "endpoints/chat").await;
    assert_eq!(
        d.reason,
        Reason::RequirementNotMet {
            requirement: "grant:analyst#2".into(),
            detail: "the client application is not one of its client_apps".into(),
        }
    );
    assert_forbidden(&d);
}

#[tokio::test]
async fn permissions_list_requirements() {
    let (idp, g, _) = setup().await;
    let t = user(&idp, &["Deployer", "Analyst"]).sign();
    let p = g.verify(&t).await.unwrap();
    let perms = g.permissions(&p);
    let deploy = perms
        .grants
        .iter()
        .find(|gr| gr.grant == "deployer#0")
        .unwrap();
    assert_eq!(deploy.requires.len(), 1);
    assert_eq!(deploy.requires[0].source, "role:deployer");
    assert!(deploy.requires[0].mfa);
    let train = perms
        .grants
        .iter()
        .find(|gr| gr.grant == "analyst#1")
        .unwrap();
    assert_eq!(train.requires[0].max_auth_age.as_deref(), Some("4h"));
    assert_eq!(perms.requirement_rules.len(), 1);
    assert_eq!(
        perms.requirement_rules[0].requires.auth_context.as_deref(),
        Some("c1")
    );
}
