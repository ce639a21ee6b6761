//! A small AI platform API on axum, protected by the Governor.
//!
//! ```sh
//! cargo run --example ai_platform --features axum                    # local demo, personas, curl
//! cargo run --example ai_platform --features axum -- --config examples/ai_platform.toml
//! ```
//!
//! Without `--config` it starts a local Entra look-alike, loads `examples/policy.toml` and
//! prints tokens for several personas with ready-to-paste `curl` commands. With
//! `--config` it trusts the identity provider the file names: real Entra, or any
//! look-alike. `examples/actix_platform.rs` serves the same API with actix-web.

// `pub(crate)`: `benches/http.rs` includes this file to serve the same `app`.
pub(crate) mod platform;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use entra_governor::Governor;
use entra_governor::axum::{AuthenticateLayer, Authenticated, Authorized, RequireLayer};
use entra_governor::http::Refusal;
use serde_json::Value;

use platform::{AuditFile, InferRequest, TrainingJob};

#[derive(Clone)]
struct AppState {
    governor: Governor,
    audit: AuditFile,
}

async fn infer(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    Path(model): Path<String>,
    Json(request): Json<InferRequest>,
) -> Json<Value> {
    Json(platform::infer(&caller, &decision, &model, &request))
}

/// The route only authenticates: the job's model and dataset are in the body, so the
/// handler asks the governor itself and answers a refusal exactly as the layers would.
async fn submit_training_job(
    State(app): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(job): Json<TrainingJob>,
) -> Result<(StatusCode, Json<Value>), Refusal> {
    let queued = platform::submit_training_job(&app.governor, &caller, &job).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

async fn dataset(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    Path(name): Path<String>,
) -> Json<Value> {
    Json(platform::dataset(&caller, &decision, &name))
}

async fn deploy(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    Path(model): Path<String>,
) -> Json<Value> {
    Json(platform::deploy(&caller, &decision, &model))
}

async fn read_audit(
    State(app): State<AppState>,
    Authenticated(_caller): Authenticated,
    Authorized(_decision): Authorized,
) -> Json<Value> {
    Json(platform::audit_tail(&app.audit))
}

async fn me(State(app): State<AppState>, Authenticated(caller): Authenticated) -> Json<Value> {
    Json(platform::me(&app.governor, &caller))
}

/// The body is read as bytes: a malformed one gets the platform's JSON 400, not the
/// framework's rejection text.
async fn revoke(
    State(app): State<AppState>,
    Authenticated(admin): Authenticated,
    Authorized(_decision): Authorized,
    body: Bytes,
) -> Response {
    let answer = platform::revoke(&app.governor, &admin, &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer.body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    }
}

async fn fleet_status(
    State(app): State<AppState>,
    Authenticated(_admin): Authenticated,
    Authorized(_decision): Authorized,
) -> Json<Value> {
    Json(platform::fleet_status(&app.governor))
}

/// `GET /readyz`: 200 when the governor is ready, 503 when not, with its health report.
async fn readyz(State(app): State<AppState>) -> Response {
    let (status, body) = platform::readiness(&app.governor);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(body)).into_response()
}

/// `GET /metrics`: the Prometheus text format (feature `metrics`).
async fn metrics(State(app): State<AppState>) -> Response {
    let (status, text) = platform::metrics_text(&app.governor);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
    let content_type = [(
        axum::http::header::CONTENT_TYPE,
        platform::METRICS_CONTENT_TYPE,
    )];
    (status, content_type, text).into_response()
}

/// The API behind the governor's layers; `benches/http.rs` load-tests this very router.
pub(crate) fn app(governor: Governor, audit: AuditFile) -> Router {
    let require =
        |action: &str, template: &str| RequireLayer::new(governor.clone(), action, template);
    let api = Router::new()
        .route(
            "/v1/models/{model}/infer",
            post(infer).route_layer(require("inference.invoke", "models/{model}")),
        )
        .route("/v1/training/jobs", post(submit_training_job))
        .route(
            "/v1/datasets/{*name}",
            get(dataset).route_layer(require("datasets.read", "datasets/{*name}")),
        )
        .route(
            "/v1/models/{model}/deploy",
            post(deploy).route_layer(require("models.deploy", "models/{model}")),
        )
        .route(
            "/v1/audit",
            get(read_audit).route_layer(require("audit.read", "audit/decisions")),
        )
        .route("/v1/me", get(me))
        .route(
            "/v1/admin/revocations",
            post(revoke).route_layer(require("admin.revoke", "admin/revocations")),
        )
        .route(
            "/v1/admin/fleet",
            get(fleet_status).route_layer(require("admin.read", "admin/fleet")),
        )
        // Outermost: every /v1 request is authenticated once, before routing decides.
        .layer(AuthenticateLayer::new(governor.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(AppState { governor, audit })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit_code(run().await)
}

async fn run() -> Result<(), platform::BoxError> {
    let platform = platform::start().await?;
    let listener = tokio::net::TcpListener::from_std(platform.listener)?;
    let _idp = platform.idp; // the demo's look-alike serves while this is held
    axum::serve(listener, app(platform.governor, platform.audit)).await?;
    Ok(())
}
