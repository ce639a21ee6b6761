//! The actix-web adapter end to end: real servers on loopback, a real HTTP client, tokens
//! from the local Entra look-alike, the example policy. The contract is shared with the
//! axum tests (`tests/http/contract.rs`).

use crate::common;
use crate::contract;

use actix_web::{App, HttpServer, web};
use entra_governor::Governor;
use entra_governor::actix::{Authenticate, Authenticated, Authorized, Require};
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
    governor: web::Data<Governor>,
    Authenticated(caller): Authenticated,
    job: web::Json<TrainingJob>,
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

/// Serves the contract's routes on a loopback port, on one worker thread.
fn serve(governor: &Governor) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let governor = governor.clone();
    let server = HttpServer::new(move || {
        let g = governor.clone();
        let require = |action: &str, template: &str| Require::new(g.clone(), action, template);
        App::new()
            .app_data(web::Data::new(g.clone()))
            .service(
                web::scope("/v1")
                    .wrap(Authenticate::new(g.clone()))
                    .route("/me", web::get().to(me))
                    .service(
                        web::resource("/models/{model}/infer")
                            .route(web::post().to(decided))
                            .wrap(require("inference.invoke", "models/{model}")),
                    )
                    .service(
                        web::resource("/datasets/{name:.*}")
                            .route(web::get().to(decided))
                            .wrap(require("datasets.read", "datasets/{*name}")),
                    )
                    .route("/training/jobs", web::post().to(submit))
                    .service(
                        web::resource("/broken/{x}")
                            .route(web::get().to(decided))
                            .wrap(require("models.read", "models/{model}")),
                    )
                    .route("/undecided", web::get().to(decided)),
            )
            .service(
                web::resource("/alone/models/{model}/infer")
                    .route(web::post().to(decided))
                    .wrap(require("inference.invoke", "models/{model}")),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    base
}

#[actix_web::test]
async fn the_http_contract() {
    let idp = TestIdp::start().await;
    let trail = contract::Trail::new();
    let governor = common::builder(&idp)
        .policy(contract::example_policy())
        .audit(trail.log.clone())
        .build()
        .unwrap();
    let base = serve(&governor);
    contract::check_contract(&base, &idp, &trail).await;
}

/// Every route behind `a`'s authentication; `Require` of `a`, `b` or `c` (see
/// `contract::check_two_governors`). One worker thread.
fn serve_two_governors(a: &Governor, b: &Governor, c: &Governor) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (a, b, c) = (a.clone(), b.clone(), c.clone());
    let server = HttpServer::new(move || {
        let infer = |prefix: &str, g: &Governor| {
            web::resource(format!("{prefix}/models/{{model}}/infer"))
                .route(web::post().to(decided))
                .wrap(Require::new(
                    g.clone(),
                    "inference.invoke",
                    "models/{model}",
                ))
        };
        App::new().service(
            web::scope("/v1")
                .wrap(Authenticate::new(a.clone()))
                .service(infer("", &a))
                .service(infer("/b", &b))
                .service(infer("/c", &c)),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    base
}

#[actix_web::test]
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
    let base = serve_two_governors(&a, &b, &c);
    contract::check_two_governors(&base, &idp, &trail, &b).await;
}

#[actix_web::test]
async fn identity_provider_down_is_503_with_retry_after() {
    let idp = TestIdp::start().await;
    let trail = contract::Trail::new();
    let governor = common::builder(&idp)
        .policy(contract::example_policy())
        .audit(trail.log.clone())
        .build()
        .unwrap();
    idp.set_mode(Mode::Down);
    let base = serve(&governor);
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
    let _ = Require::new(governor, "models.read", "models/{model");
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

#[actix_web::test]
async fn partner_tenant_claims_confer_nothing_with_an_allow_list() {
    let idp = TestIdp::start().await;
    let partner = idp.add_tenant();
    let trail = contract::Trail::new();
    let governor = multi_tenant_governor(&idp, partner.as_str(), false, &trail);
    let base = serve(&governor);
    contract::check_cross_tenant(&base, &idp, partner.as_str(), &trail).await;
}

#[actix_web::test]
async fn partner_tenant_claims_confer_nothing_in_any_tenant_mode() {
    let idp = TestIdp::start().await;
    let partner = idp.add_tenant();
    let trail = contract::Trail::new();
    let governor = multi_tenant_governor(&idp, partner.as_str(), true, &trail);
    let base = serve(&governor);
    contract::check_cross_tenant(&base, &idp, partner.as_str(), &trail).await;
}
