//! Quickstart: a local Entra look-alike, a `Governor` pointed at it, and a table of
//! tokens tried with their outcomes.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use entra_governor::graph::{ClientCredential, GraphGroupResolver};
use entra_governor::http::Refusal;
use entra_governor::testing::{Options, TestIdp};
use entra_governor::{
    ClientAuth, Cloud, Governor, GroupId, ObjectId, Policy, Principal, TenantId, TokenError,
};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The home tenant whose administrators `examples/policy.toml`'s app role and app
    // permission bindings trust (`tenants = [..]`).
    let home = TenantId::parse("8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d")?;
    let idp = TestIdp::start_with(Options::default().tenant(home)).await;
    // Microsoft Graph (served by the look-alike too) resolves callers with >200 groups.
    let graph = GraphGroupResolver::builder(
        &Cloud::custom(idp.authority()),
        idp.tenant_id(),
        idp.client_id(),
        ClientCredential::secret(idp.graph_client_secret()),
    )
    .dangerous_allow_http_loopback()
    .build()?;
    let governor = Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
        .policy(Policy::from_path(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/policy.toml"
        ))?)
        .group_resolver(graph)
        .build()?;

    println!("Local Entra look-alike at {}", idp.authority());
    println!(
        "API client id {}, tenant {}\n",
        idp.client_id(),
        idp.tenant_id()
    );

    let other_tenant = idp.add_tenant();
    let cases: Vec<(&str, String)> = vec![
        (
            "valid v2 user token",
            idp.token().scopes("Inference.Invoke").sign(),
        ),
        ("valid v1 user token", idp.token().v1().sign()),
        (
            "valid app-only token",
            idp.token().app_only().roles(["Training.Pipeline"]).sign(),
        ),
        ("guest user", idp.token().guest(other_tenant.clone()).sign()),
        ("expired an hour ago", idp.token().expires_in(-3600).sign()),
        (
            "wrong audience",
            idp.token().audience("api://someone-else").sign(),
        ),
        (
            "Microsoft Graph token",
            idp.token()
                .audience("00000003-0000-0000-c000-000000000000")
                .sign(),
        ),
        (
            "another tenant",
            idp.token().tenant(other_tenant.clone()).sign(),
        ),
        (
            "iss tenant != tid",
            idp.token()
                .claim("tid", json!(other_tenant.as_str()))
                .sign(),
        ),
        (
            "forged signature",
            idp.token().sign_with_foreign_key().sign(),
        ),
        ("alg: none", idp.token().header("alg", json!("none")).sign()),
        (
            "roles as a string",
            idp.token().claim("roles", json!("Admin")).sign(),
        ),
        ("no scp and no roles", idp.token().app_only().sign()),
    ];

    let tried = cases.len();
    println!("{:<24} {:<8} outcome", "token", "status");
    println!("{}", "-".repeat(100));
    for (label, token) in cases {
        let (status, outcome) = match governor.verify(&token).await {
            Ok(p) => ("200".to_owned(), describe(&p)),
            Err(e) => (
                Refusal::from_token_error(&e, governor.cloud())
                    .status
                    .to_string(),
                rejection(&e),
            ),
        };
        println!("{label:<24} {status:<8} {outcome}");
    }
    println!(
        "\nKeys fetched: {} discovery request(s), {} JWKS request(s) for {} tokens.",
        idp.discovery_requests(),
        idp.jwks_requests(),
        tried
    );

    decisions(&idp, &governor).await?;
    Ok(())
}

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
const RELEASE_MANAGERS: &str = "2b7e4f1a-9c3d-4e8b-a5f6-1d0c9b8a7e6f";

/// Several personas ask for training and inference work under `examples/policy.toml`.
async fn decisions(idp: &TestIdp, governor: &Governor) -> Result<(), Box<dyn std::error::Error>> {
    let guest_home = idp.add_tenant();
    let scientist = idp
        .token()
        .scopes("Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let scientist_inference_app = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let engineer = idp
        .token()
        .scopes("Models.Manage")
        .groups([ML_ENGINEERS])
        .sign();
    // The same engineer through an MSAL client that handles claims challenges (cp1), and
    // after stepping up to the PII auth context c1.
    let engineer_cp1 = idp
        .token()
        .scopes("Models.Manage")
        .groups([ML_ENGINEERS])
        .client_capabilities(["cp1"])
        .sign();
    let engineer_c1 = idp
        .token()
        .scopes("Models.Manage")
        .groups([ML_ENGINEERS])
        .client_capabilities(["cp1"])
        .acrs(["c1"])
        .sign();
    let release_manager = idp
        .token()
        .scopes("Models.Manage")
        .groups([RELEASE_MANAGERS])
        .client_capabilities(["cp1"])
        .sign();
    // MFA on a v2 token shows as the MFA auth context c2 (`mfa_auth_context`).
    let release_manager_mfa = idp
        .token()
        .scopes("Models.Manage")
        .groups([RELEASE_MANAGERS])
        .acrs(["c2"])
        .sign();
    let pipeline = idp
        .token()
        .app_only()
        .roles(["Training.Pipeline"])
        .client_auth(ClientAuth::Certificate)
        .sign();
    let pipeline_secret = idp
        .token()
        .app_only()
        .roles(["Training.Pipeline"])
        .client_auth(ClientAuth::Secret)
        .sign();
    let auditor = idp
        .token()
        .scopes("Audit.Read")
        .roles(["Platform.Auditor"])
        .groups(Vec::<String>::new())
        .sign();
    let guest = idp
        .token()
        .scopes("Training.Manage")
        .guest(guest_home.clone())
        .groups([EXTERNAL_RESEARCHERS])
        .sign();
    let guest_engineer = idp
        .token()
        .scopes("Models.Manage")
        .guest(guest_home)
        .groups([ML_ENGINEERS])
        .sign();
    // A senior engineer in 300 groups: the token carries an overage marker, no groups.
    let senior = ObjectId::parse("5e410000-0000-4000-8000-000000000300")?;
    let mut groups: Vec<GroupId> = (0..299)
        .map(|i| GroupId::parse(&format!("77770000-0000-4000-8000-{i:012x}")))
        .collect::<Result<_, _>>()?;
    groups.push(GroupId::parse(ML_ENGINEERS)?);
    idp.set_memberships(&senior, groups);
    let overage = idp
        .token()
        .oid(senior)
        .scopes("Models.Manage")
        .overage()
        .sign();
    let requests: Vec<(&str, &String, &str, &str)> = vec![
        (
            "data scientist",
            &scientist,
            "training.submit",
            "models/exp-llama-8b",
        ),
        (
            "data scientist",
            &scientist,
            "training.submit",
            "models/prod-chat",
        ),
        (
            "data scientist via chat app",
            &scientist_inference_app,
            "training.submit",
            "models/exp-llama-8b",
        ),
        (
            "data scientist via chat app",
            &scientist_inference_app,
            "inference.invoke",
            "endpoints/chat-prod",
        ),
        (
            "ML engineer",
            &engineer,
            "datasets.write",
            "datasets/curated/claims-2025",
        ),
        (
            "ML engineer",
            &engineer,
            "models.delete",
            "models/prod-chat",
        ),
        (
            "ML engineer",
            &engineer,
            "datasets.read",
            "datasets/pii/claims-2025",
        ),
        (
            "ML engineer (cp1 client)",
            &engineer_cp1,
            "datasets.read",
            "datasets/pii/claims-2025",
        ),
        (
            "ML engineer (acrs c1)",
            &engineer_c1,
            "datasets.read",
            "datasets/pii/claims-2025",
        ),
        (
            "release manager (cp1)",
            &release_manager,
            "models.deploy",
            "models/prod-chat",
        ),
        (
            "release manager (MFA, c2)",
            &release_manager_mfa,
            "models.deploy",
            "models/prod-chat",
        ),
        (
            "CI pipeline (app-only)",
            &pipeline,
            "training.submit",
            "models/staging-llama",
        ),
        (
            "CI pipeline (secret)",
            &pipeline_secret,
            "training.submit",
            "models/staging-llama",
        ),
        (
            "CI pipeline (app-only)",
            &pipeline,
            "models.deploy",
            "models/prod-chat",
        ),
        (
            "auditor (app role)",
            &auditor,
            "audit.read",
            "audit/2026/11",
        ),
        (
            "guest researcher",
            &guest,
            "training.submit",
            "models/exp-llama-8b",
        ),
        (
            "guest researcher",
            &guest,
            "datasets.read",
            "datasets/pii/claims-2025",
        ),
        (
            "guest in ML engineers",
            &guest_engineer,
            "datasets.write",
            "datasets/curated/claims-2025",
        ),
        (
            "engineer, 300 groups",
            &overage,
            "datasets.write",
            "datasets/curated/claims-2025",
        ),
    ];
    println!(
        "\nDecisions under examples/policy.toml (policy {}):\n",
        &governor.policy_version()[..12]
    );
    for (persona, token, action, resource) in requests {
        let decision = governor.authorize(token, action, resource).await?;
        println!("{persona:<28} {}", decision.explain());
        if let Some(refusal) = Refusal::from_decision(&decision, governor.cloud())
            && refusal.status == 401
        {
            println!(
                "{:<28} -> 401 WWW-Authenticate: {}",
                "",
                refusal.www_authenticate.unwrap_or_default()
            );
        }
    }
    println!(
        "\nThe 300-group engineer was resolved through Microsoft Graph: {} checkMemberGroups call(s).",
        idp.check_member_groups_requests()
    );
    Ok(())
}

fn describe(p: &Principal) -> String {
    format!(
        "accepted: {:?} {} (guest: {}), scopes {:?}, roles {:?}",
        p.kind(),
        p.id(),
        p.is_guest(),
        p.scopes(),
        p.roles()
    )
}

fn rejection(e: &TokenError) -> String {
    format!("rejected: {e}")
}
