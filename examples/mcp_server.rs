//! A minimal MCP server (Streamable HTTP, hand-written JSON-RPC, no MCP SDK) on axum,
//! behind `entra_governor::axum::mcp::McpLayer`, with its protected resource metadata
//! (RFC 9728).
//!
//! ```sh
//! cargo run --example mcp_server --features axum                      # demo: local Entra look-alike, personas, curl commands
//! cargo run --example mcp_server --features axum -- --config my.toml  # your Entra tenant (the shared configuration format)
//! ```
//!
//! Two tools of different sensitivity, decided by `examples/ai_gateway_policy.toml`:
//!
//! | tool | who may call it (`tools.call` on `tools/<name>`) |
//! |---|---|
//! | `search_docs` (read-only) | the LLM team (group `0b6f2c1e-…`, role `llm-user`) and model operators |
//! | `deploy_model` | app role `Models.Operator` (role `model-operator`) only |
//!
//! `tools/list` shows each caller the tools it may call. The server answers it as an SSE
//! stream (`text/event-stream`, a log message then the response) when the client's
//! `Accept` lists `text/event-stream` first, and as `application/json` otherwise, so
//! both forms the layer filters are reachable with `curl`.
//!
//! With `--config`, the resource identifier is `http://<listen address>/mcp` on a
//! loopback address, or `MCP_RESOURCE_URL` (an `https` URL: what clients use).

use std::error::Error;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use entra_governor::ai::mcp::ProtectedResourceMetadata;
use entra_governor::axum::mcp::{McpLayer, metadata_router};
use entra_governor::config::Config;
use entra_governor::testing::{Options, TestIdp, TokenBuilder};
use entra_governor::{Cloud, Governor, Policy, TenantId};
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/ai_gateway_policy.toml"
);
/// The home tenant the policy's `Models.Operator` binding trusts.
const HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
/// The LLM team's group.
const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let mut line = format!("error: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn config_path() -> Result<Option<PathBuf>, BoxError> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(None),
        (Some("--config"), Some(path), None) => Ok(Some(path.into())),
        _ => Err("usage: [--config <file>]  (without --config: a local demo with personas)".into()),
    }
}

async fn run() -> Result<(), BoxError> {
    let (governor, listener, metadata, idp) = match config_path()? {
        Some(path) => {
            let config = Config::load(&path)?;
            let listen = config
                .listen
                .http
                .ok_or("listen.http: the address the MCP server listens on")?;
            let governor = config.governor(config.audit_log()?)?;
            match governor.prefetch_keys().await {
                Ok(n) => println!("{n} signing keys loaded"),
                Err(e) => println!("warning: {e}; requests get 503 until keys arrive"),
            }
            let tenant = config
                .entra
                .tenant
                .clone()
                .or_else(|| config.entra.tenants.first().cloned())
                .ok_or("entra.tenant: the metadata names the tenant's issuer")?;
            let tenant = TenantId::parse(&tenant)
                .map_err(|_| "entra.tenant: the metadata needs the tenant's GUID")?;
            let listener = bind(listen)?;
            let addr = listener.local_addr()?;
            let metadata = match std::env::var("MCP_RESOURCE_URL") {
                Ok(url) => ProtectedResourceMetadata::new(&url)?,
                Err(_) if addr.ip().is_loopback() => {
                    ProtectedResourceMetadata::dangerous_http_loopback(&format!(
                        "http://{addr}/mcp"
                    ))?
                }
                Err(_) => return Err("MCP_RESOURCE_URL: the https URL clients use".into()),
            }
            .entra(governor.cloud(), &tenant, &config.entra.client_id);
            (governor, listener, metadata, None)
        }
        None => {
            let idp =
                TestIdp::start_with(Options::default().tenant(TenantId::parse(HOME_TENANT)?)).await;
            let governor = Governor::builder()
                .cloud(Cloud::custom(idp.authority()))
                .tenant(idp.tenant_id().as_str())
                .client_id(idp.client_id())
                .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
                .policy(Policy::from_path(POLICY)?)
                .build()?;
            let listener = bind(([127, 0, 0, 1], 8080).into())
                .or_else(|_| bind(([127, 0, 0, 1], 0).into()))?;
            let addr = listener.local_addr()?;
            let metadata =
                ProtectedResourceMetadata::dangerous_http_loopback(&format!("http://{addr}/mcp"))?
                    .entra(governor.cloud(), &idp.tenant_id(), &idp.client_id());
            (governor, listener, metadata, Some(idp))
        }
    };
    let metadata = metadata.resource_name("entra-governor example MCP server");
    let addr = listener.local_addr()?;
    if let Some(idp) = &idp {
        print_demo(idp, addr, &metadata);
    }
    println!("listening on http://{addr}");
    let app = app(governor, &metadata);
    axum::serve(tokio::net::TcpListener::from_std(listener)?, app).await?;
    Ok(())
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BoxError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

// ----------------------------------------------------------------------- the MCP server

/// How many tool calls ran (printed in each answer).
#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

fn app(governor: Governor, metadata: &ProtectedResourceMetadata) -> Router {
    Router::new()
        .route("/mcp", post(mcp).layer(McpLayer::new(governor, metadata)))
        .with_state(Calls::default())
        .merge(metadata_router(metadata))
}

fn tools() -> Value {
    json!([
        {
            "name": "search_docs",
            "title": "Search the documentation",
            "description": "Full-text search over the platform documentation (read-only).",
            "inputSchema": {
                "type": "object",
                "properties": { "query": { "type": "string" } },
                "required": ["query"]
            },
            "annotations": { "readOnlyHint": true }
        },
        {
            "name": "deploy_model",
            "title": "Deploy a model",
            "description": "Deploys a registered model to the serving fleet.",
            "inputSchema": {
                "type": "object",
                "properties": { "model": { "type": "string" } },
                "required": ["model"]
            },
            "annotations": { "destructiveHint": true }
        }
    ])
}

/// The MCP endpoint: one JSON-RPC message per POST, already authenticated, its tool
/// authorized and its `tools/list` answer filtered by the layer.
async fn mcp(State(calls): State<Calls>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let id = message.get("id").cloned();
    let method = message["method"].as_str().unwrap_or_default();
    let result = match method {
        "initialize" => json!({
            "protocolVersion": message["params"]["protocolVersion"].as_str().unwrap_or("2025-06-18"),
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": { "name": "entra-governor-example", "version": "0.1.0" }
        }),
        "notifications/initialized" => return StatusCode::ACCEPTED.into_response(),
        "tools/list" => {
            let result = json!({ "tools": tools(), "nextCursor": null });
            let response = json!({ "jsonrpc": "2.0", "id": id, "result": result });
            return if prefers_event_stream(&headers) {
                let log = json!({
                    "jsonrpc": "2.0",
                    "method": "notifications/message",
                    "params": { "level": "info", "data": "listing tools" }
                });
                let stream = format!("data: {log}\n\nevent: message\ndata: {response}\n\n");
                (
                    [
                        (header::CONTENT_TYPE, "text/event-stream"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    stream,
                )
                    .into_response()
            } else {
                json_response(response)
            };
        }
        "tools/call" => {
            let n = calls.0.fetch_add(1, Ordering::Relaxed) + 1;
            let arguments = &message["params"]["arguments"];
            let text = match message["params"]["name"].as_str() {
                Some("search_docs") => format!(
                    "3 documents match {:?} (call {n})",
                    arguments["query"].as_str().unwrap_or_default()
                ),
                Some("deploy_model") => format!(
                    "deploying {} (call {n})",
                    arguments["model"].as_str().unwrap_or("?")
                ),
                _ => {
                    return json_response(json!({
                        "jsonrpc": "2.0", "id": id,
                        "error": { "code": -32602, "message": "unknown tool" }
                    }));
                }
            };
            json!({ "content": [{ "type": "text", "text": text }], "isError": false })
        }
        _ if id.is_none() => return StatusCode::ACCEPTED.into_response(),
        _ => {
            return json_response(json!({
                "jsonrpc": "2.0", "id": id,
                "error": { "code": -32601, "message": "method not found" }
            }));
        }
    };
    json_response(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
}

fn json_response(message: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        message.to_string(),
    )
        .into_response()
}

/// `Accept` lists `text/event-stream` before `application/json`.
fn prefers_event_stream(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let position = |t: &str| accept.find(t).unwrap_or(usize::MAX);
    position("text/event-stream") < position("application/json")
}

// ----------------------------------------------------------------------------- the demo

struct Persona {
    var: &'static str,
    who: &'static str,
    mint: fn(&TestIdp) -> TokenBuilder,
}

const PERSONAS: &[Persona] = &[
    Persona {
        var: "LLM_USER",
        who: "an LLM-team member (group llm-team, scope Tools.Call): search_docs only",
        mint: |idp| idp.token().scopes("Tools.Call").groups([LLM_TEAM]),
    },
    Persona {
        var: "MODEL_OPERATOR",
        who: "a model operator (app role Models.Operator, scope Tools.Call): both tools",
        mint: |idp| idp.token().scopes("Tools.Call").roles(["Models.Operator"]),
    },
];

/// One request the demo prints, and what it gets.
struct Try {
    what: &'static str,
    persona: Option<&'static str>,
    accept: &'static str,
    body: &'static str,
    expect: &'static str,
}

const JSON_FIRST: &str = "application/json, text/event-stream";
const SSE_FIRST: &str = "text/event-stream, application/json";

const TRIES: &[Try] = &[
    Try {
        what: "no token",
        persona: None,
        accept: JSON_FIRST,
        body: r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        expect: "401, WWW-Authenticate: Bearer scope=\"…\", resource_metadata=\"…\"",
    },
    Try {
        what: "the LLM user lists the tools (JSON)",
        persona: Some("LLM_USER"),
        accept: JSON_FIRST,
        body: r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        expect: "200, search_docs only",
    },
    Try {
        what: "the model operator lists the tools (SSE)",
        persona: Some("MODEL_OPERATOR"),
        accept: SSE_FIRST,
        body: r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        expect: "200, text/event-stream: a log message, then search_docs and deploy_model",
    },
    Try {
        what: "the LLM user searches the docs",
        persona: Some("LLM_USER"),
        accept: JSON_FIRST,
        body: r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"search_docs","arguments":{"query":"quotas"}}}"#,
        expect: "200",
    },
    Try {
        what: "the LLM user tries to deploy a model",
        persona: Some("LLM_USER"),
        accept: JSON_FIRST,
        body: r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"deploy_model","arguments":{"model":"llama-3-8b"}}}"#,
        expect: "403, WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"…\", resource_metadata=\"…\"",
    },
    Try {
        what: "the model operator deploys it",
        persona: Some("MODEL_OPERATOR"),
        accept: JSON_FIRST,
        body: r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"deploy_model","arguments":{"model":"llama-3-8b"}}}"#,
        expect: "200",
    },
];

fn print_demo(idp: &TestIdp, addr: SocketAddr, metadata: &ProtectedResourceMetadata) {
    let base = format!("http://{addr}");
    println!("MCP server demo on {base}/mcp");
    println!(
        "Local Entra look-alike at {} (tenant {}, API client id {})",
        idp.authority(),
        idp.tenant_id(),
        idp.client_id()
    );
    println!("Policy: {POLICY}");
    println!("\n# Tokens (valid for one hour; restart for new ones). Paste into a shell:");
    for persona in PERSONAS {
        println!(
            "# {}\nexport {}={}",
            persona.who,
            persona.var,
            (persona.mint)(idp).sign()
        );
    }
    println!("\n# The protected resource metadata (RFC 9728), unauthenticated: 200");
    println!("curl -i {}", metadata.well_known_url());
    println!("\n# Try:");
    for t in TRIES {
        let mut command = format!(
            "curl -i -X POST {base}/mcp -H 'Accept: {}' -H 'Content-Type: application/json'",
            t.accept
        );
        if let Some(var) = t.persona {
            command.push_str(&format!(" -H \"Authorization: Bearer ${var}\""));
        }
        command.push_str(&format!(" -d '{}'", t.body));
        println!("# {}: {}\n{command}", t.what, t.expect);
    }
    println!();
}
