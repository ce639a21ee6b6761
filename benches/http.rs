//! Requests per second of the axum example with and without the governor's layers, under a
//! load generator on loopback. Run by hand, never by CI:
//!
//! ```sh
//! cargo bench --bench http --features axum
//! HTTP_BENCH_CONNECTIONS=128 HTTP_BENCH_SECONDS=10 cargo bench --bench http --features axum
//! ```
//!
//! Two servers in this process, each on its own `127.0.0.1` port:
//!
//! - **with the layers**: `examples/ai_platform.rs`'s own `app()` (this file includes the
//!   example), configured as its demo does: a governor on `examples/policy.toml` that
//!   appends every decision to a JSON Lines audit file, `AuthenticateLayer` on the API and
//!   `RequireLayer` (`inference.invoke` on `models/{model}`) on the inference route;
//! - **without**: the same route and handler work (`examples/platform`'s `infer`: path
//!   parameter, JSON body, JSON answer) with no layer; the caller and decision it reports
//!   were computed once, before the load.
//!
//! Both receive `POST /v1/models/exp-42/infer` with a JSON body and the same bearer tokens:
//! a few hundred distinct Entra-shaped tokens (2,183 bytes), all verified once before the
//! load (known tokens), each presented many times. The load generator is hyper's HTTP/1.1
//! client, one keep-alive connection per task, as many tasks as connections, a warm-up, then
//! a fixed measured window; requests that complete inside it are counted. Every answer must
//! be 200 (anything else fails the run), and on the layered server the audit trail must
//! count exactly one decision per request. The target: with the layers ≥ 85 % of the
//! requests per second without.
//!
//! Server and load generator share one multi-thread tokio runtime and the machine's cores,
//! as with any load generator on the same host: compare the two figures of one run, not
//! figures across machines.
//!
//! Settings (environment variables):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HTTP_BENCH_CONNECTIONS` | 64 | concurrent keep-alive connections |
//! | `HTTP_BENCH_SECONDS` | 5 | measured window per server, seconds |
//! | `HTTP_BENCH_WARMUP_SECONDS` | 1 | warm-up per server before the window, seconds |
//! | `HTTP_BENCH_TOKENS` | 300 | distinct known tokens |
//! | `HTTP_BENCH_ROUNDS` | 1 | rounds of (without, with); totals give the ratio |
//! | `HTTP_BENCH_THREADS` | available cores | tokio worker threads |
//! | `HTTP_BENCH_AUDIT` | `file` | `file` (as the example) or `off` (no audit trail) |
//!
//! Without `--bench` (`cargo test --benches`), one short round checks that it all works.

#[allow(dead_code)] // only `app` and the platform module are used here
#[path = "../examples/ai_platform.rs"]
mod ai_platform;
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, Cloud, Decision, Governor, Policy, Principal, RequestContext};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use ai_platform::platform::{self, AuditFile, InferRequest};

const MODEL: &str = "exp-42";
const BODY: &[u8] = br#"{"input":"hello"}"#;

/// The run's settings, from the environment.
struct Settings {
    connections: usize,
    warm_up: Duration,
    measured: Duration,
    tokens: usize,
    rounds: usize,
    threads: usize,
    audit: bool,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not valid")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env(smoke: bool) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let audit = match var("HTTP_BENCH_AUDIT", "file".to_owned()).as_str() {
            "file" => true,
            "off" => false,
            other => panic!("HTTP_BENCH_AUDIT={other:?}: expected `file` or `off`"),
        };
        if smoke {
            return Self {
                connections: 4,
                warm_up: Duration::from_millis(100),
                measured: Duration::from_millis(300),
                tokens: 20,
                rounds: 1,
                threads: cores,
                audit,
            };
        }
        let seconds = |name, default: f64| Duration::from_secs_f64(var(name, default));
        Self {
            connections: var("HTTP_BENCH_CONNECTIONS", 64),
            warm_up: seconds("HTTP_BENCH_WARMUP_SECONDS", 1.0),
            measured: seconds("HTTP_BENCH_SECONDS", 5.0),
            tokens: var("HTTP_BENCH_TOKENS", 300),
            rounds: var("HTTP_BENCH_ROUNDS", 1),
            threads: var("HTTP_BENCH_THREADS", cores),
            audit,
        }
    }
}

/// The caller and decision the unprotected server reports, computed once.
#[derive(Clone)]
struct Fixed {
    caller: Arc<Principal>,
    decision: Arc<Decision>,
}

/// The example's `infer` without the layers' extractors: the same platform handler.
async fn infer_unprotected(
    State(fixed): State<Fixed>,
    Path(model): Path<String>,
    Json(request): Json<InferRequest>,
) -> Json<Value> {
    Json(platform::infer(
        &fixed.caller,
        &fixed.decision,
        &model,
        &request,
    ))
}

/// The example's inference route and health check, no governor.
fn app_without_governor(fixed: Fixed) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/models/{model}/infer", post(infer_unprotected))
        .with_state(fixed)
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serving") });
    addr
}

/// What one connection saw.
#[derive(Default)]
struct Tally {
    /// Answers received, whenever.
    total: u64,
    /// Answers received inside the measured window.
    measured: u64,
    /// Answers other than 200, by status.
    unexpected: Vec<StatusCode>,
}

/// One keep-alive connection sending requests back to back until `end`.
async fn connection(
    addr: SocketAddr,
    bearers: Arc<Vec<HeaderValue>>,
    first: usize,
    window: (Instant, Instant),
) -> Tally {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let host = HeaderValue::from_str(&addr.to_string()).expect("host");
    let uri = format!("/v1/models/{MODEL}/infer");
    let mut tally = Tally::default();
    let mut n = first;
    while Instant::now() < window.1 {
        let request = Request::post(uri.as_str())
            .header(HOST, host.clone())
            .header(AUTHORIZATION, bearers[n % bearers.len()].clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(BODY)))
            .expect("request");
        n += 1;
        sender.ready().await.expect("connection ready");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status();
        let body = response.into_body().collect().await.expect("body");
        let done = Instant::now();
        tally.total += 1;
        if status != StatusCode::OK || body.to_bytes().is_empty() {
            tally.unexpected.push(status);
        } else if done >= window.0 && done < window.1 {
            tally.measured += 1;
        }
    }
    tally
}

/// Requests per second of the server at `addr`; panics unless every answer was 200.
async fn load(
    name: &str,
    addr: SocketAddr,
    bearers: &Arc<Vec<HeaderValue>>,
    s: &Settings,
) -> (f64, u64) {
    let start = Instant::now() + Duration::from_millis(50);
    let window = (start + s.warm_up, start + s.warm_up + s.measured);
    let tasks: Vec<_> = (0..s.connections)
        .map(|c| {
            let first = c * 7919 % bearers.len();
            tokio::spawn(connection(addr, bearers.clone(), first, window))
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("load task");
        total.total += tally.total;
        total.measured += tally.measured;
        total.unexpected.extend(tally.unexpected);
    }
    assert!(
        total.unexpected.is_empty(),
        "{name}: {} of {} answers were not 200 with a body: {:?}",
        total.unexpected.len(),
        total.total,
        &total.unexpected[..total.unexpected.len().min(10)]
    );
    let rps = total.measured as f64 / s.measured.as_secs_f64();
    println!(
        "{name:<17} {rps:>10.0} req/s  ({} requests in the window, {} in all, every one 200)",
        total.measured, total.total
    );
    (rps, total.total)
}

/// One request with a body check: the route answers what the example answers.
async fn probe(addr: SocketAddr, bearer: &HeaderValue) -> Value {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{addr}/v1/models/{MODEL}/infer"))
        .header(AUTHORIZATION, bearer.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(BODY)
        .send()
        .await
        .expect("probe");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body = response.bytes().await.expect("a body");
    let body: Value = serde_json::from_slice(&body).expect("a JSON answer");
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["output"], format!("[{MODEL}] olleh"));
    body
}

fn audit_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "entra-governor-http-bench-{}.jsonl",
        std::process::id()
    ))
}

async fn run(s: Settings) {
    let idp = TestIdp::start().await;
    let audit_file = AuditFile::new(audit_path());
    let _ = std::fs::remove_file(audit_file.path());
    // The example's demo governor (`examples/platform/mod.rs`, `start`).
    let mut builder = Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback()
        .policy(
            Policy::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"))
                .expect("example policy"),
        );
    let audit: Option<AuditLog> = s.audit.then(|| audit_file.writer().expect("audit file"));
    if let Some(log) = &audit {
        builder = builder.audit(log.clone());
    }
    let governor = builder.build().expect("governor");

    let tokens: Vec<String> = (0..s.tokens).map(|n| common::token(&idp, n)).collect();
    let bearers: Arc<Vec<HeaderValue>> = Arc::new(
        tokens
            .iter()
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).expect("header value"))
            .collect(),
    );
    // Known tokens: each verified (and cached) once before any load.
    for token in &tokens {
        governor.verify(token).await.expect("a valid token");
    }
    assert_eq!(governor.cached_tokens(), s.tokens as u64);
    let caller = governor.verify(&tokens[0]).await.expect("a valid token");
    let resource = format!("models/{MODEL}");
    let decision = governor
        .authorize_principal(
            &caller,
            "inference.invoke",
            &resource,
            &RequestContext::default(),
        )
        .await
        .expect("a decision");
    assert!(decision.is_allowed(), "{decision:?}");
    let fixed = Fixed {
        caller: Arc::new(caller),
        decision: Arc::new(decision),
    };

    let with = serve(ai_platform::app(governor.clone(), audit_file.clone())).await;
    let without = serve(app_without_governor(fixed)).await;
    let (a, b) = (
        probe(with, &bearers[0]).await,
        probe(without, &bearers[0]).await,
    );
    assert_eq!(a["caller"], b["caller"], "both report the same caller");

    println!(
        "POST /v1/models/{MODEL}/infer: {} connections, {} known tokens of {} bytes, \
         {:?} warm-up + {:?} measured, {} tokio threads, audit trail {}",
        s.connections,
        s.tokens,
        tokens[0].len(),
        s.warm_up,
        s.measured,
        s.threads,
        if s.audit { "to a file" } else { "off" },
    );
    let recorded_before = audit.as_ref().map(AuditLog::recorded);
    let (mut sum_with, mut sum_without, mut served_with) = (0.0, 0.0, 0);
    for _ in 0..s.rounds {
        sum_without += load("without the layer", without, &bearers, &s).await.0;
        let (rps, served) = load("with the layers", with, &bearers, &s).await;
        sum_with += rps;
        served_with += served;
    }
    let ratio = sum_with / sum_without;
    println!(
        "ratio (with / without): {ratio:.3}  (target ≥ 0.85: {})",
        if ratio >= 0.85 { "met" } else { "missed" }
    );
    assert_eq!(
        governor.cached_tokens(),
        s.tokens as u64,
        "known tokens only"
    );
    if let (Some(log), Some(before)) = (&audit, recorded_before) {
        log.flush().await;
        assert_eq!(
            log.recorded() - before,
            served_with,
            "one audit event per request"
        );
        assert_eq!(log.dropped(), 0);
        println!(
            "audit trail: {} events recorded, {} written, none dropped",
            log.recorded(),
            log.written()
        );
    }
    drop(idp);
    let _ = std::fs::remove_file(audit_file.path());
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a short check then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let settings = Settings::from_env(smoke);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.threads)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(settings));
}
