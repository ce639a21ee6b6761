//! Operations: `/healthz` (the process answers), `/readyz` (it can decide), `/metrics`
//! (Prometheus text format), and the
//! admin routes (revocations, fleet mode, the shadow policy's counters), each behind the
//! policy like any other request.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use entra_governor::axum::{AuthenticateLayer, Authenticated, Authorized, RequireLayer};
use entra_governor::http::admin;
use serde_json::{Value, json};

use super::Service;

/// The operations routes; the admin ones need the policy's `admin.revoke` on
/// `admin/revocations` and `admin.read` on `admin/fleet` and `admin/shadow`.
pub fn routes(service: &Service) -> Router<Service> {
    let governor = service.governor().clone();
    let require =
        |action: &str, resource: &str| RequireLayer::new(governor.clone(), action, resource);
    let admin_routes = Router::new()
        .route(
            "/v1/admin/revocations",
            post(revoke).route_layer(require("admin.revoke", "admin/revocations")),
        )
        .route(
            "/v1/admin/fleet",
            get(fleet).route_layer(require("admin.read", "admin/fleet")),
        )
        .route(
            "/v1/admin/shadow",
            get(shadow).route_layer(require("admin.read", "admin/shadow")),
        )
        .layer(AuthenticateLayer::new(governor.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(admin_routes)
}

/// 200 when this replica can decide: [`Governor::health`](entra_governor::Governor::health)
/// is ready (signing keys loaded, the audit trail writable where strict mode requires it,
/// the fleet's revocation view current where strict mode requires it) and the service is
/// not shutting down; else 503. The body says which, with the policy version, the reload
/// counters and the whole health report under `health`.
async fn readyz(State(service): State<Service>) -> Response {
    let governor = service.governor();
    let health = governor.health();
    let fleet_current = health.fleet.as_ref().is_none_or(|fleet| fleet.current);
    let stopping = *service.stopping.borrow();
    let ready = health.ready && !stopping;
    let body = json!({
        "ready": ready,
        "keys": health.keys.loaded,
        "policy_version": health.policy.version,
        "shadow_policy_version": health.policy.shadow_version,
        "policy_reloads": { "ok": service.reloads.ok(), "failed": service.reloads.failed() },
        "fleet_current": fleet_current,
        "stopping": stopping,
        "health": health,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The Prometheus text exposition format; the gauges are set from
/// [`Governor::health`](entra_governor::Governor::health) first.
async fn metrics(State(service): State<Service>) -> Response {
    service.governor().record_gauges();
    let content_type = [(
        axum::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4",
    )];
    (content_type, service.metrics.render()).into_response()
}

async fn revoke(
    State(service): State<Service>,
    Authenticated(admin): Authenticated,
    Authorized(_decision): Authorized,
    body: Bytes,
) -> Response {
    let answer = admin::revoke(service.governor(), &admin, &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer.body {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    }
}

async fn fleet(
    State(service): State<Service>,
    Authenticated(_admin): Authenticated,
    Authorized(_decision): Authorized,
) -> Json<Value> {
    Json(admin::fleet_status(service.governor()))
}

/// The shadow policy's counters: how often it would have decided otherwise, by cause.
async fn shadow(
    State(service): State<Service>,
    Authenticated(_admin): Authenticated,
    Authorized(_decision): Authorized,
) -> Json<entra_governor::governance::shadow::ShadowReport> {
    Json(service.governor().shadow_report())
}
