//! Decisions per second of the decision service (`entra-governor serve`) through Envoy's
//! gRPC `Check` and through `/forward-auth`, each beside its transport floor measured in
//! the same run by the same load generator. Run by hand, never by CI:
//!
//! ```sh
//! cargo bench --bench service --features service
//! SERVICE_BENCH_SECONDS=10 SERVICE_BENCH_ROUNDS=5 cargo bench --bench service --features service
//! ```
//!
//! - **governed**: the built `entra-governor` binary (release, as `cargo bench` builds it)
//!   as a process, configured like `examples/service.toml` (the example policy, two routes,
//!   three upstream headers, the audit trail in a JSON Lines file), trusting a local Entra
//!   look-alike in this process.
//! - **floors**: in this process, a tonic `Authorization` server that answers every
//!   `Check` with OK, and an axum route answering every `GET /forward-auth` with 200.
//!
//! The load generator (in this process): `SERVICE_BENCH_CONNECTIONS` (64) concurrent
//! connections, each sending back to back: for gRPC one tonic channel (HTTP/2) per
//! connection, for forward-auth one hyper HTTP/1.1 keep-alive connection per task. Every
//! request carries one of `SERVICE_BENCH_TOKENS` (300) distinct Entra-shaped tokens
//! (2.2 KB, 20 groups), all verified once before the load (known tokens), so the figure is
//! the service's steady state. Every answer must be an allow; anything else fails the run.
//! Rounds alternate floor and governed; the ratio is of the totals.
//!
//! For scale, the in-process `Governor::authorize()` of the same known tokens is timed
//! too (mean of a tight loop).
//!
//! Everything shares the machine's cores: compare the figures of one run, not across
//! machines.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use entra_governor::testing::TestIdp;
use envoy_types::ext_authz::v3::CheckResponseExt as _;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse,
};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

const PATH: &str = "/v1/models/exp-42/infer";

struct Settings {
    connections: usize,
    seconds: Duration,
    warm_up: Duration,
    tokens: usize,
    rounds: usize,
}

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Settings {
    fn from_env(smoke: bool) -> Self {
        Self {
            connections: var("SERVICE_BENCH_CONNECTIONS", if smoke { 4 } else { 64 }),
            seconds: Duration::from_secs_f64(var(
                "SERVICE_BENCH_SECONDS",
                if smoke { 0.3 } else { 5.0 },
            )),
            warm_up: Duration::from_secs_f64(var(
                "SERVICE_BENCH_WARMUP_SECONDS",
                if smoke { 0.1 } else { 1.0 },
            )),
            tokens: var("SERVICE_BENCH_TOKENS", if smoke { 8 } else { 300 }),
            rounds: var("SERVICE_BENCH_ROUNDS", if smoke { 1 } else { 3 }),
        }
    }
}

/// The floor's `Check`: always OK.
struct AlwaysOk;

#[tonic::async_trait]
impl Authorization for AlwaysOk {
    async fn check(
        &self,
        _: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(CheckResponse::with_status(
            tonic::Status::ok(""),
        )))
    }
}

async fn floor_grpc() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AuthorizationServer::new(AlwaysOk))
            .serve_with_incoming(incoming),
    );
    addr
}

async fn floor_http() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/forward-auth", get(|| async { "" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The governed service as a process; killed on drop.
struct Governed {
    child: Child,
    http: SocketAddr,
    grpc: SocketAddr,
    _dir: std::path::PathBuf,
}

impl Drop for Governed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_governed(idp: &TestIdp) -> Governed {
    let dir = std::env::temp_dir().join(format!("eg-service-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (http, grpc) = (free_port(), free_port());
    let config = dir.join("service.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "{http}"
grpc = "{grpc}"
[entra]
authority = "{authority}"
dangerous_allow_http_loopback = true
tenant = "{tenant}"
client_id = "{client_id}"
[policy]
path = "{policy}"
[audit]
sink = "file"
path = "decisions.jsonl"
[upstream]
headers = {{ "x-entra-principal" = "principal", "x-entra-kind" = "kind", "x-entra-grant" = "grant" }}
remove_authorization = true
[[routes]]
method = "POST"
path = "/v1/models/{{model}}/infer"
action = "inference.invoke"
resource = "models/{{model}}"
"#,
            authority = idp.authority(),
            tenant = idp.tenant_id(),
            client_id = idp.client_id(),
            policy = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_entra-governor"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the entra-governor binary starts");
    Governed {
        child,
        http,
        grpc,
        _dir: dir,
    }
}

fn check_request(bearer: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    path: PATH.into(),
                    headers: HashMap::from([("authorization".to_owned(), bearer.to_owned())]),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Answers inside the window, over all connections; panics on any non-allow.
async fn load_grpc(addr: SocketAddr, bearers: &Arc<Vec<String>>, s: &Settings) -> u64 {
    let start = Instant::now() + Duration::from_millis(50);
    let window = (start + s.warm_up, start + s.warm_up + s.seconds);
    let mut tasks = Vec::new();
    for c in 0..s.connections {
        let bearers = bearers.clone();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .tcp_nodelay(true)
            .connect()
            .await
            .expect("gRPC connect");
        tasks.push(tokio::spawn(async move {
            let mut client = AuthorizationClient::new(channel);
            let (mut n, mut measured) = (c * 7919, 0u64);
            while Instant::now() < window.1 {
                let answer = client
                    .check(check_request(&bearers[n % bearers.len()]))
                    .await
                    .expect("Check");
                n += 1;
                let code = answer.into_inner().status.map_or(-1, |s| s.code);
                assert_eq!(code, 0, "a Check that was not OK");
                let done = Instant::now();
                if done >= window.0 && done < window.1 {
                    measured += 1;
                }
            }
            measured
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

async fn load_http(addr: SocketAddr, bearers: &Arc<Vec<String>>, s: &Settings) -> u64 {
    let start = Instant::now() + Duration::from_millis(50);
    let window = (start + s.warm_up, start + s.warm_up + s.seconds);
    let mut tasks = Vec::new();
    for c in 0..s.connections {
        let bearers = bearers.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let (mut n, mut measured) = (c * 7919, 0u64);
            while Instant::now() < window.1 {
                let request = hyper::Request::get("/forward-auth")
                    .header("host", addr.to_string())
                    .header("authorization", bearers[n % bearers.len()].as_str())
                    .header("x-original-method", "POST")
                    .header("x-original-uri", PATH)
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                n += 1;
                sender.ready().await.unwrap();
                let response = sender.send_request(request).await.expect("response");
                assert_eq!(
                    response.status(),
                    200,
                    "a forward-auth answer that was not 200"
                );
                response.into_body().collect().await.unwrap();
                let done = Instant::now();
                if done >= window.0 && done < window.1 {
                    measured += 1;
                }
            }
            measured
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total
}

async fn wait_until_ready(governed: &Governed) {
    let url = format!("http://{}/readyz", governed.http);
    for _ in 0..300 {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the service did not become ready");
}

/// Mean time of one in-process `authorize()` of a known token.
async fn in_process(idp: &TestIdp, tokens: &[String]) -> Duration {
    let governor = common::governor(idp, true);
    for t in tokens {
        governor
            .authorize(t, "inference.invoke", "models/exp-42")
            .await
            .unwrap();
    }
    let n = 200_000;
    let start = Instant::now();
    for i in 0..n {
        let d = governor
            .authorize(
                &tokens[i % tokens.len()],
                "inference.invoke",
                "models/exp-42",
            )
            .await
            .unwrap();
        assert!(d.is_allowed());
    }
    start.elapsed() / n as u32
}

async fn run(s: Settings) {
    let idp = TestIdp::start().await;
    let tokens: Vec<String> = (0..s.tokens).map(|n| common::token(&idp, n)).collect();
    let bearers: Arc<Vec<String>> =
        Arc::new(tokens.iter().map(|t| format!("Bearer {t}")).collect());
    let governed = start_governed(&idp);
    wait_until_ready(&governed).await;
    let (floor_g, floor_h) = (floor_grpc().await, floor_http().await);
    // Known tokens: every one verified once by the service before the load.
    for b in bearers.iter() {
        let status = reqwest::Client::new()
            .get(format!("http://{}/forward-auth", governed.http))
            .header("authorization", b.as_str())
            .header("x-original-method", "POST")
            .header("x-original-uri", PATH)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "a bench token is not allowed");
    }
    println!(
        "{} connections, {} distinct known tokens, {:?} windows, {} rounds",
        s.connections, s.tokens, s.seconds, s.rounds
    );
    let mut totals = [0u64; 4];
    for round in 1..=s.rounds {
        let figures = [
            load_grpc(floor_g, &bearers, &s).await,
            load_grpc(governed.grpc, &bearers, &s).await,
            load_http(floor_h, &bearers, &s).await,
            load_http(governed.http, &bearers, &s).await,
        ];
        let rate = |n: u64| n as f64 / s.seconds.as_secs_f64();
        println!(
            "round {round}: gRPC floor {:>8.0}/s governed {:>8.0}/s | forward-auth floor {:>8.0}/s governed {:>8.0}/s",
            rate(figures[0]),
            rate(figures[1]),
            rate(figures[2]),
            rate(figures[3])
        );
        for (t, f) in totals.iter_mut().zip(figures) {
            *t += f;
        }
    }
    let ratio = |governed: u64, floor: u64| governed as f64 / floor.max(1) as f64;
    println!(
        "gRPC Check:   governed / floor = {:.2}",
        ratio(totals[1], totals[0])
    );
    println!(
        "forward-auth: governed / floor = {:.2}",
        ratio(totals[3], totals[2])
    );
    let mean = in_process(&idp, &tokens).await;
    println!("in-process authorize() of a known token: {mean:?} (mean)");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a short check then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(Settings::from_env(smoke)));
}
