//! The AI platform API of `ai_platform.rs`, served with actix-web.
//!
//! ```sh
//! cargo run --example actix_platform --features actix                # local demo, personas, curl
//! cargo run --example actix_platform --features actix -- --config examples/ai_platform.toml
//! ```

// `pub(crate)`: `tests/http/demo_actix.rs` includes this file to serve the same API.
pub(crate) mod platform;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use entra_governor::Governor;
use entra_governor::actix::{Authenticate, Authenticated, Authorized, Require};
use entra_governor::http::Refusal;

use platform::{AuditFile, InferRequest, TrainingJob};

async fn infer(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    model: web::Path<String>,
    request: web::Json<InferRequest>,
) -> HttpResponse {
    HttpResponse::Ok().json(platform::infer(&caller, &decision, &model, &request))
}

/// The route only authenticates: the job's model and dataset are in the body, so the
/// handler asks the governor itself and answers a refusal exactly as the middleware would.
async fn submit_training_job(
    governor: web::Data<Governor>,
    Authenticated(caller): Authenticated,
    job: web::Json<TrainingJob>,
) -> Result<HttpResponse, Refusal> {
    let queued = platform::submit_training_job(&governor, &caller, &job).await?;
    Ok(HttpResponse::Accepted().json(queued))
}

async fn dataset(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    name: web::Path<String>,
) -> HttpResponse {
    HttpResponse::Ok().json(platform::dataset(&caller, &decision, &name))
}

async fn deploy(
    Authenticated(caller): Authenticated,
    Authorized(decision): Authorized,
    model: web::Path<String>,
) -> HttpResponse {
    HttpResponse::Ok().json(platform::deploy(&caller, &decision, &model))
}

async fn read_audit(
    audit: web::Data<AuditFile>,
    Authenticated(_caller): Authenticated,
    Authorized(_decision): Authorized,
) -> HttpResponse {
    HttpResponse::Ok().json(platform::audit_tail(&audit))
}

async fn me(governor: web::Data<Governor>, Authenticated(caller): Authenticated) -> HttpResponse {
    HttpResponse::Ok().json(platform::me(&governor, &caller))
}

/// The body is read as bytes: a malformed one gets the platform's JSON 400, not the
/// framework's rejection text.
async fn revoke(
    governor: web::Data<Governor>,
    Authenticated(admin): Authenticated,
    Authorized(_decision): Authorized,
    body: web::Bytes,
) -> HttpResponse {
    let answer = platform::revoke(&governor, &admin, &body);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match answer.body {
        Some(body) => HttpResponse::build(status).json(body),
        None => HttpResponse::build(status).finish(),
    }
}

async fn fleet_status(
    governor: web::Data<Governor>,
    Authenticated(_admin): Authenticated,
    Authorized(_decision): Authorized,
) -> HttpResponse {
    HttpResponse::Ok().json(platform::fleet_status(&governor))
}

/// `GET /readyz`: 200 when the governor is ready, 503 when not, with its health report.
async fn readyz(governor: web::Data<Governor>) -> HttpResponse {
    let (status, body) = platform::readiness(&governor);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    HttpResponse::build(status).json(body)
}

/// `GET /metrics`: the Prometheus text format (feature `metrics`).
async fn metrics(governor: web::Data<Governor>) -> HttpResponse {
    let (status, text) = platform::metrics_text(&governor);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
    HttpResponse::build(status)
        .content_type(platform::METRICS_CONTENT_TYPE)
        .body(text)
}

/// The routes; `Require` wraps each resource, where the path parameters are known.
fn api(config: &mut web::ServiceConfig, governor: &Governor) {
    let require = |action: &str, template: &str| Require::new(governor.clone(), action, template);
    config.service(
        web::scope("/v1")
            .service(
                web::resource("/models/{model}/infer")
                    .route(web::post().to(infer))
                    .wrap(require("inference.invoke", "models/{model}")),
            )
            .route("/training/jobs", web::post().to(submit_training_job))
            .service(
                web::resource("/datasets/{name:.*}")
                    .route(web::get().to(dataset))
                    .wrap(require("datasets.read", "datasets/{*name}")),
            )
            .service(
                web::resource("/models/{model}/deploy")
                    .route(web::post().to(deploy))
                    .wrap(require("models.deploy", "models/{model}")),
            )
            .service(
                web::resource("/audit")
                    .route(web::get().to(read_audit))
                    .wrap(require("audit.read", "audit/decisions")),
            )
            .route("/me", web::get().to(me))
            .service(
                web::resource("/admin/revocations")
                    .route(web::post().to(revoke))
                    .wrap(require("admin.revoke", "admin/revocations")),
            )
            .service(
                web::resource("/admin/fleet")
                    .route(web::get().to(fleet_status))
                    .wrap(require("admin.read", "admin/fleet")),
            )
            // Every /v1 request is authenticated once, before the resources' `Require`.
            .wrap(Authenticate::new(governor.clone())),
    );
}

/// The API behind the governor's middleware, serving on `listener`; the demo test
/// (`tests/http/demo_actix.rs`) runs this very server.
pub(crate) fn server(
    governor: Governor,
    audit: AuditFile,
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(governor.clone()))
            .app_data(web::Data::new(audit.clone()))
            .route("/healthz", web::get().to(|| async { "ok" }))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            .configure(|config| api(config, &governor))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    platform::exit_code(run().await)
}

async fn run() -> Result<(), platform::BoxError> {
    let platform = platform::start().await?;
    let _idp = platform.idp; // the demo's look-alike serves while this is held
    server(platform.governor, platform.audit, platform.listener)?.await?;
    Ok(())
}
