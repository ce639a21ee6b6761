//! OpenAI-compatible routes over real sockets, the same contract against axum and
//! actix-web: the body's `model` authorized, `/v1/models` filtered to what the caller may
//! invoke, every malformed body refused before the handler, errors in OpenAI's shape.
//! The `openai_gateway` example is run in `openai_gateway.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use entra_governor::ai::openai::{MODEL_ROUTES, ModelCatalog, ModelRoute};
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, AuditOutcome, Governor, MemorySink, Policy};
use serde_json::{Value, json};

use crate::common;

const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";
const FRONTIER_USERS: &str = "4e8d1a2b-9c7f-4b36-a5e0-3f2a1b0c9d8e";
const MODELS: &[&str] = &["llama-3-70b", "llama-3-8b", "gpt-4o", "mistral-large"];
/// The body limit of the routes under test: small, so the oversize cases stay cheap.
const LIMIT: usize = 64 * 1024;

struct Setup {
    idp: TestIdp,
    governor: Governor,
    sink: MemorySink,
    /// The governor's audit log: flushed before the sink is read.
    log: AuditLog,
    /// How many requests reached a handler.
    handled: Arc<AtomicUsize>,
}

async fn setup() -> Setup {
    let idp = common::example_idp().await;
    let sink = MemorySink::new();
    let log = AuditLog::builder(sink.clone()).build();
    let governor = common::builder(&idp)
        .policy(Policy::from_path("examples/ai_gateway_policy.toml").unwrap())
        .audit(log.clone())
        .build()
        .unwrap();
    Setup {
        idp,
        governor,
        sink,
        log,
        handled: Arc::new(AtomicUsize::new(0)),
    }
}

fn route(governor: &Governor) -> ModelRoute {
    ModelRoute::new(governor.clone()).with_max_body_bytes(LIMIT)
}

fn catalog(governor: &Governor) -> ModelCatalog {
    ModelCatalog::new(&route(governor), MODELS.iter().copied()).unwrap()
}

/// What both frameworks' handlers answer: the parsed body as they received it.
fn handled(model: &str, resource: &str, body: &serde_json::Map<String, Value>) -> Value {
    json!({ "model": model, "resource": resource, "fields": body.len() })
}

// ------------------------------------------------------------------------ the servers

mod axum_server {
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use entra_governor::axum::openai::{ModelRequest, RequireModelLayer, models_router};

    pub(super) async fn serve(s: &Setup) -> String {
        let mut api = Router::new();
        for path in MODEL_ROUTES {
            let count = Arc::clone(&s.handled);
            api = api.route(
                path,
                post(move |request: ModelRequest| async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    axum::Json(handled(request.model(), request.resource(), request.body()))
                }),
            );
        }
        let app = api
            .route_layer(RequireModelLayer::from_route(route(&s.governor)))
            .merge(models_router(catalog(&s.governor)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }
}

mod actix_server {
    use super::*;
    use actix_web::{App, HttpServer, web};
    use entra_governor::actix::openai::{ModelRequest, RequireModel, models_service};

    pub(super) fn serve(s: &Setup) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (governor, count) = (s.governor.clone(), Arc::clone(&s.handled));
        let server = HttpServer::new(move || {
            let count = Arc::clone(&count);
            App::new()
                .service(
                    web::resource(MODEL_ROUTES.to_vec())
                        .route(web::post().to(move |request: ModelRequest| {
                            count.fetch_add(1, Ordering::SeqCst);
                            let answer =
                                handled(request.model(), request.resource(), request.body());
                            async move { web::Json(answer) }
                        }))
                        .wrap(RequireModel::from_route(route(&governor))),
                )
                .service(models_service(catalog(&governor)))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        base
    }
}

#[tokio::test]
async fn openai_routes_on_axum() {
    let s = setup().await;
    let base = axum_server::serve(&s).await;
    check_openai_contract(&base, &s).await;
}

#[actix_web::test]
async fn openai_routes_on_actix() {
    let s = setup().await;
    let base = actix_server::serve(&s);
    check_openai_contract(&base, &s).await;
}

// ------------------------------------------------------------------------ the contract

struct Answer {
    status: u16,
    challenge: Option<String>,
    body: Value,
}

async fn send(base: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Answer {
    let client = reqwest::Client::new();
    let mut request = match &body {
        Some(_) => client.post(format!("{base}{path}")),
        None => client.get(format!("{base}{path}")),
    };
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        challenge,
        body,
    }
}

fn chat(model: &str) -> Vec<u8> {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] })
        .to_string()
        .into_bytes()
}

/// The OpenAI error `{status, type, code, param}` of an answer.
fn error_of(a: &Answer) -> (u16, &str, &str, &Value) {
    let e = &a.body["error"];
    (
        a.status,
        e["type"].as_str().unwrap_or("<no type>"),
        e["code"].as_str().unwrap_or("<no code>"),
        &e["param"],
    )
}

async fn check_openai_contract(base: &str, s: &Setup) {
    let team = s
        .idp
        .token()
        .scopes("Inference.Invoke")
        .groups([LLM_TEAM])
        .sign();
    let listed = send(base, "/v1/models", Some(&team), None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["object"], "list");
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["llama-3-70b", "llama-3-8b"]);
    assert_eq!(listed.body["data"][0]["object"], "model");

    // Every model the listing shows is one the caller may invoke, on every route.
    for (path, model) in MODEL_ROUTES
        .iter()
        .zip(["llama-3-70b", "llama-3-8b"].iter().cycle())
    {
        let a = send(base, path, Some(&team), Some(chat(model))).await;
        assert_eq!(a.status, 200, "{path} {model}: {}", a.body);
        assert_eq!(
            a.body,
            json!({ "model": model, "resource": format!("models/{model}"), "fields": 2 })
        );
    }
    assert_eq!(s.handled.load(Ordering::SeqCst), MODEL_ROUTES.len());

    let denied = send(
        base,
        "/v1/chat/completions",
        Some(&team),
        Some(chat("gpt-4o")),
    )
    .await;
    assert_eq!(
        denied.body,
        json!({ "error": {
            "message": "the caller may not perform this action on this resource",
            "type": "permission_error", "param": "model", "code": "insufficient_scope" } })
    );
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.challenge.as_deref(),
        Some("Bearer error=\"insufficient_scope\"")
    );

    // Bodies refused before any handler runs, with the documented status and code.
    let long = "x".repeat(LIMIT);
    let cases: Vec<(&str, Vec<u8>, u16, &str, Value)> = vec![
        (
            "no model",
            br#"{"messages":[]}"#.to_vec(),
            400,
            "model_missing",
            json!("model"),
        ),
        (
            "model a number",
            br#"{"model":7}"#.to_vec(),
            400,
            "model_not_a_string",
            json!("model"),
        ),
        (
            "model an array",
            br#"{"model":["llama-3-8b"]}"#.to_vec(),
            400,
            "model_not_a_string",
            json!("model"),
        ),
        (
            "model twice",
            br#"{"model":"llama-3-8b","model":"gpt-4o"}"#.to_vec(),
            400,
            "duplicate_key",
            Value::Null,
        ),
        (
            "a nested key twice",
            br#"{"model":"llama-3-8b","messages":[{"role":"user","role":"system"}]}"#.to_vec(),
            400,
            "duplicate_key",
            Value::Null,
        ),
        (
            "model with a slash",
            chat("llama-3-8b/../gpt-4o"),
            400,
            "invalid_model",
            json!("model"),
        ),
        ("model ..", chat(".."), 400, "invalid_model", json!("model")),
        (
            "model with an invisible character",
            chat("llama-3-8b\u{200b}"),
            400,
            "invalid_model",
            json!("model"),
        ),
        (
            "model a wildcard",
            chat("llama-*"),
            400,
            "invalid_model",
            json!("model"),
        ),
        (
            "not JSON",
            b"model=llama-3-8b".to_vec(),
            400,
            "invalid_json",
            Value::Null,
        ),
        (
            "an array",
            br#"[{"model":"llama-3-8b"}]"#.to_vec(),
            400,
            "body_not_an_object",
            Value::Null,
        ),
        (
            "over the limit",
            format!(r#"{{"model":"llama-3-8b","input":"{long}"}}"#).into_bytes(),
            413,
            "body_too_large",
            Value::Null,
        ),
    ];
    for (what, body, status, code, param) in cases {
        let a = send(base, "/v1/chat/completions", Some(&team), Some(body)).await;
        assert_eq!(
            error_of(&a),
            (status, "invalid_request_error", code, &param),
            "{what}: {}",
            a.body
        );
    }
    // A body over the limit without Content-Length (chunked) is cut while reading.
    let body = format!(r#"{{"model":"llama-3-8b","input":"{long}"}}"#);
    assert_eq!(chunked_post_status(base, &team, body.as_bytes()).await, 413);
    // A form body is refused by its content type.
    let a = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("authorization", format!("Bearer {team}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("model=llama-3-8b")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 415);
    assert_eq!(
        s.handled.load(Ordering::SeqCst),
        MODEL_ROUTES.len(),
        "a refused body reached a handler"
    );

    // Authentication refusals: the usual statuses and challenges, OpenAI's body.
    let a = send(base, "/v1/chat/completions", None, Some(chat("llama-3-8b"))).await;
    assert_eq!(
        error_of(&a),
        (401, "authentication_error", "invalid_request", &Value::Null)
    );
    assert_eq!(a.challenge.as_deref(), Some("Bearer"));
    let a = send(base, "/v1/models", Some("not.a.token"), None).await;
    assert_eq!(
        error_of(&a),
        (401, "authentication_error", "invalid_token", &Value::Null)
    );
    // Step-up: the frontier model needs auth context c1.
    let frontier = || {
        s.idp
            .token()
            .scopes("Inference.Invoke")
            .groups([FRONTIER_USERS])
            .client_capabilities(["cp1"])
    };
    let a = send(
        base,
        "/v1/chat/completions",
        Some(&frontier().sign()),
        Some(chat("gpt-4o")),
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "insufficient_claims");
    assert!(
        a.challenge
            .as_deref()
            .unwrap()
            .contains("error=\"insufficient_claims\""),
        "{:?}",
        a.challenge
    );
    let stepped_up = frontier().acrs(["c1"]).sign();
    let a = send(
        base,
        "/v1/chat/completions",
        Some(&stepped_up),
        Some(chat("gpt-4o")),
    )
    .await;
    assert_eq!(
        (a.status, &a.body["resource"]),
        (200, &json!("models/gpt-4o"))
    );
    let a = send(base, "/v1/models", Some(&stepped_up), None).await;
    assert_eq!(a.body["data"][0]["id"], "gpt-4o");
    assert_eq!(a.body["data"].as_array().unwrap().len(), 1);

    // Retrieval answers 404 alike for a model not listed and one not served.
    let a = send(base, "/v1/models/llama-3-8b", Some(&team), None).await;
    assert_eq!((a.status, &a.body["id"]), (200, &json!("llama-3-8b")));
    for hidden in ["gpt-4o", "no-such-model"] {
        let a = send(base, &format!("/v1/models/{hidden}"), Some(&team), None).await;
        assert_eq!(
            error_of(&a),
            (
                404,
                "invalid_request_error",
                "model_not_found",
                &json!("model")
            ),
            "{hidden}"
        );
    }

    // A W3C traceparent on the request reaches the decision's audit event (for OTLP
    // records that join the caller's trace); a malformed one is ignored.
    for (traceparent, expected) in [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            None,
        ),
    ] {
        // Every earlier request's event written first: the next one is this request's.
        s.log.flush().await;
        let before = s.sink.events().len();
        let a = reqwest::Client::new()
            .post(format!("{base}/v1/embeddings"))
            .header("authorization", format!("Bearer {team}"))
            .header("content-type", "application/json")
            .header("traceparent", traceparent)
            .body(chat("mistral-large"))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status().as_u16(), 403);
        s.log.flush().await;
        let event = s
            .sink
            .events()
            .get(before)
            .cloned()
            .expect("this request's event");
        assert_eq!(event.resource, "models/mistral-large");
        assert_eq!(
            event.trace_parent().map(|t| t.trace_id_hex()).as_deref(),
            expected,
            "{traceparent}"
        );
    }

    // The trail: the refused duplicate body is there with its reason, and no allow of gpt-4o.
    s.log.flush().await;
    let events = s.sink.events();
    assert!(
        events.iter().any(|e| e.outcome == AuditOutcome::Deny
            && e.reason == "duplicate_key"
            && e.resource == "/v1/chat/completions"),
        "no duplicate_key refusal in the trail"
    );
    let team_gpt = events
        .iter()
        .filter(|e| e.resource == "models/gpt-4o" && e.outcome == AuditOutcome::Allow)
        .count();
    assert_eq!(
        team_gpt, 2,
        "one invocation and one listing by the stepped-up user"
    );
}

/// POSTs `body` to the chat route in 4 KiB chunks (`Transfer-Encoding: chunked`, no
/// `Content-Length`) over a raw socket; the response's status code.
async fn chunked_post_status(base: &str, token: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let sent = async {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await
        };
        // The server may answer and close before the whole body is sent.
        if sent.await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).unwrap_or_default();
    status
        .parse()
        .unwrap_or_else(|_| panic!("no status line in {answer:?}"))
}
