//! The axum adapter end to end: real servers on loopback, a real HTTP client, tokens from
//! the local Entra look-alike, the example policy. The contract is shared with the
//! actix-web tests (`tests/http/contract.rs`).

use crate::common;
use crate::contract;

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use entra_governor::Governor;
use entra_governor::axum::{AuthenticateLayer, Authenticated, Authorized, RequireLayer};
use entra_governor::http::Refusal;
use entra_governor::testing::{Mode, TestIdp};
use serde::Deserialize;

async fn me(Authenticated(caller): Authenticated) -> String {
    caller.id().to_string()
}

async fn decided(Authenticated(_): Authenticated, Authorized(decision): Authorized) -> String {
    format!("{} {}", decision.action, decision.resource)
}

#[derive(Deserialize)]
struct TrainingJob {
    dataset: String,
    base_model: String,
}

/// Resources named in the body are decided in the handler.
async fn submit(
    State(governor): State<Governor>,
    Authenticated(caller): Authenticated,
    Json(job): Json<TrainingJob>,
) -> Result<String, Refusal> {
    for (action, resource) in [
        ("training.submit", format!("models/{}", job.base_model)),
        ("datasets.read", format!("datasets/{}", job.dataset)),
    ] {
        entra_governor::http::authorize(&governor, &caller, action, &resource, &Default::default())
            .await?;
    }
    Ok(format!("training {}", job.base_model))
}

fn app(governor: &Governor) -> Router {
    let require =
        |action: &str, template: &str| RequireLayer::new(governor.clone(), action, template);
    let governed = Router::new()
        .route("/v1/me", get(me))
        .route(
            "/v1/models/{model}/infer",
            post(decided).route_layer(require("inference.invoke", "models/{model}")),
        )
        .route(
            "/v1/datasets/{*name}",
            get(decided).route_layer(require("datasets.read", "datasets/{*name}")),
        )
        .route("/v1/training/jobs", post(submit))
        .route(
            "/v1/broken/{x}",
            get(decided).route_layer(require("models.read", "models/{model}")),
        )
        .route("/v1/undecided", get(decided))
        .layer(AuthenticateLayer::new(governor.clone()));
    let alone = Router::new().route(
        "/alone/models/{model}/infer",
        post(decided).route_layer(require("inference.invoke", "models/{model}")),
    );
    governed.merge(alone).with_state(governor.clone())
}

/// Every route behind `a`'s authentication; `Require` of `a`, `b` or `c` (see
/// `contract::check_two_governors`).
fn two_governors_app(a: &Governor, b: &Governor, c: &Governor) -> Router {
    let infer = |g: &Governor| {
        post(decided).route_layer(RequireLayer::new(
            g.clone(),
            "inference.invoke",
            "models/{model}",
        ))
    };
    Router::new()
        .route("/v1/models/{model}/infer", infer(a))
        .route("/v1/b/models/{model}/infer", infer(b))
        .route("/v1/c/models/{model}/infer", infer(c))
        .layer(AuthenticateLayer::new(a.clone()))
}

async fn serve(governor: &Governor) -> String {
    serve_app(app(governor)).await
}

async fn serve_app(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_http_contract() {
    let idp = TestIdp::start().await;
    let trail = contract::Trail::new();
    let governor = common::builder(&idp)
        .policy(contract::example_policy())
        .audit(trail.log.clone())
        .build()
        .unwrap();
    let base = serve(&governor).await;
    contract::check_contract(&base, &idp, &trail).await;
}

#[tokio::test]
async fn require_of_another_governor_does_not_trust_the_principal_in_the_extensions() {
    let idp = TestIdp::start().await;
    let trail = contract::Trail::new();
    let governor = |client_id: &str| {
        common::builder(&idp)
            .client_id(client_id)
            .policy(contract::example_policy())
            .audit(trail.log.clone())
            .build()
            .unwrap()
    };
    let (a, b) = (governor(&idp.client_id()), governor(&idp.client_id()));
    let c = governor(contract::OTHER_CLIENT_ID);
    let base = serve_app(two_governors_app(&a, &b, &c)).await;
    contract::check_two_governors(&base, &idp, &trail, &b).await;
}

#[tokio::test]
async fn identity_provider_down_is_503_with_retry_after() {
    let idp = TestIdp::start().await;
    let trail = contract::Trail::new();
    let governor = common::builder(&idp)
        .policy(contract::example_policy())
        .audit(trail.log.clone())
        .build()
        .unwrap();
    idp.set_mode(Mode::Down);
    let base = serve(&governor).await;
    contract::check_idp_down(&base, &idp, &trail).await;
}

#[test]
#[should_panic(expected = "invalid resource template \"models/{model\": unclosed '{'")]
fn a_malformed_template_panics_at_start_up() {
    let governor = Governor::builder()
        .tenant("72f988bf-86f1-41af-91ab-2d7cd011db47")
        .client_id("6e74172b-be56-4843-9ff4-e66a39bb12e3")
        .build()
        .unwrap();
    let _ = RequireLayer::new(governor, "models.read", "models/{model");
}

/// A governor for `idp`'s primary tenant and one partner tenant, in allow-list mode or in
/// any-tenant mode, on the cross-tenant policy.
fn multi_tenant_governor(
    idp: &TestIdp,
    partner: &str,
    any_tenant: bool,
    trail: &contract::Trail,
) -> Governor {
    let builder = common::builder(idp);
    let builder = if any_tenant {
        builder.dangerous_accept_any_tenant()
    } else {
        builder.tenants([idp.tenant_id().as_str(), partner])
    };
    builder
        .policy(contract::cross_tenant_policy(idp.tenant_id().as_str()))
        .audit(trail.log.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn partner_tenant_claims_confer_nothing_with_an_allow_list() {
    let idp = TestIdp::start().await;
    let partner = idp.add_tenant();
    let trail = contract::Trail::new();
    let governor = multi_tenant_governor(&idp, partner.as_str(), false, &trail);
    let base = serve(&governor).await;
    contract::check_cross_tenant(&base, &idp, partner.as_str(), &trail).await;
}

#[tokio::test]
async fn partner_tenant_claims_confer_nothing_in_any_tenant_mode() {
    let idp = TestIdp::start().await;
    let partner = idp.add_tenant();
    let trail = contract::Trail::new();
    let governor = multi_tenant_governor(&idp, partner.as_str(), true, &trail);
    let base = serve(&governor).await;
    contract::check_cross_tenant(&base, &idp, partner.as_str(), &trail).await;
}
