//! An OpenAI-compatible inference gateway on axum, in front of a stub model server: the
//! model named in each request's body is authorized before the request is forwarded, and
//! `GET /v1/models` lists exactly the models the caller may invoke.
//!
//! ```sh
//! cargo run --example openai_gateway --features axum                  # local demo, personas, curl
//! cargo run --example openai_gateway --features axum -- --config <file>
//! ```
//!
//! Without `--config` it starts a local Entra look-alike, loads
//! `examples/ai_gateway_policy.toml` and prints tokens for several personas with
//! ready-to-paste `curl` commands and the status each gets. With `--config` it trusts the
//! identity provider the file names (the shared configuration format of
//! `entra-governor serve`: real Entra, or any look-alike) and listens on `listen.http`.
//!
//! The gateway forwards an allowed request to the model server with the body it parsed
//! once, adding OpenAI's `user` field (the caller's object id), so the model server's
//! logs join the gateway's audit trail and Entra's sign-in logs.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use entra_governor::ai::openai::{MODEL_ROUTES, ModelCatalog, ModelRoute, OpenAiError};
use entra_governor::axum::Authenticated;
use entra_governor::axum::openai::{ModelRequest, RequireModelLayer, models_router};
use entra_governor::config::Config;
use entra_governor::testing::{Options, TestIdp, TokenBuilder};
use entra_governor::{AuditLog, Cloud, Governor, JsonLinesSink, Policy, TenantId};
use serde_json::{Value, json};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The models the stub model server serves.
pub const MODELS: &[&str] = &["llama-3-70b", "llama-3-8b", "gpt-4o", "mistral-large"];

/// The policy of the demo.
pub const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/ai_gateway_policy.toml"
);

/// The home tenant whose app-role assignments the policy trusts.
const HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";
const FRONTIER_USERS: &str = "4e8d1a2b-9c7f-4b36-a5e0-3f2a1b0c9d8e";

// ------------------------------------------------------------------------- the gateway

/// Where allowed requests go.
#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// The gateway: the OpenAI routes behind `RequireModelLayer`, the filtered listing, and a
/// health check outside both.
pub fn app(governor: Governor, upstream: String) -> Result<Router, BoxError> {
    let route = ModelRoute::new(governor);
    let catalog = ModelCatalog::new(&route, MODELS.iter().copied())?;
    let mut api = Router::new();
    for path in MODEL_ROUTES {
        api = api.route(path, post(forward));
    }
    let upstream = Upstream {
        base: upstream,
        client: reqwest::Client::new(),
    };
    Ok(api
        .route_layer(RequireModelLayer::from_route(route))
        .with_state(upstream)
        .merge(models_router(catalog))
        .route("/healthz", axum::routing::get(|| async { "ok" })))
}

/// Forwards an authorized request: the parsed body, with `user` set to the caller.
async fn forward(
    State(upstream): State<Upstream>,
    Authenticated(caller): Authenticated,
    uri: Uri,
    request: ModelRequest,
) -> Response {
    let mut body = request.into_body();
    body.insert("user".into(), Value::String(caller.id().to_string()));
    let sent = upstream
        .client
        .post(format!("{}{}", upstream.base, uri.path()))
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default())
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(_) => return model_server_unavailable(),
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match answer.bytes().await {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response(),
        Err(_) => model_server_unavailable(),
    }
}

fn model_server_unavailable() -> Response {
    let mut error = OpenAiError::from_refusal(entra_governor::http::Refusal::unavailable(
        "the model server is unavailable",
    ));
    error.status = 502;
    error.retry_after = None;
    error.into_response()
}

// -------------------------------------------------------------------- the model server

/// A stub OpenAI-compatible model server: it answers every model, trusting the gateway
/// in front of it to have decided who may call which.
pub fn model_server() -> Router {
    let mut router = Router::new();
    for path in MODEL_ROUTES {
        router = router.route(path, post(complete));
    }
    router
}

async fn complete(uri: Uri, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    let model = body["model"].as_str().unwrap_or_default();
    let user = body["user"].as_str().unwrap_or_default();
    let text = format!("(stub {model}) hello, {user}");
    axum::Json(match uri.path() {
        "/v1/embeddings" => json!({
            "object": "list",
            "model": model,
            "data": [{ "object": "embedding", "index": 0, "embedding": [0.0, 0.5, 1.0] }],
        }),
        "/v1/chat/completions" => json!({
            "object": "chat.completion",
            "model": model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": text },
                "finish_reason": "stop",
            }],
        }),
        _ => {
            json!({ "object": "text_completion", "model": model, "choices": [{ "index": 0, "text": text }] })
        }
    })
}

// ------------------------------------------------------------------------- the personas

/// A persona of the demo: the shell variable holding its token, who it is, its claims.
pub struct Persona {
    /// The shell variable the printed `export` sets.
    pub var: &'static str,
    /// Who this is.
    pub who: &'static str,
    /// The token's claims.
    pub mint: fn(&TestIdp) -> TokenBuilder,
}

/// The demo's callers; `examples/ai_gateway_policy.toml` decides what each may do.
pub const PERSONAS: &[Persona] = &[
    Persona {
        var: "LLM_TEAM",
        who: "a member of the LLM team (group llm-team): the Llama models",
        mint: |idp| idp.token().scopes("Inference.Invoke").groups([LLM_TEAM]),
    },
    Persona {
        var: "FRONTIER",
        who: "a frontier-model user (group frontier-users) in a client that handles claims \
              challenges (xms_cc cp1), signed in without auth context c1",
        mint: |idp| frontier(idp).client_capabilities(["cp1"]),
    },
    Persona {
        var: "FRONTIER_C1",
        who: "the same user after the step-up: signed in with auth context c1",
        mint: |idp| frontier(idp).client_capabilities(["cp1"]).acrs(["c1"]),
    },
    Persona {
        var: "OUTSIDER",
        who: "a signed-in user of the tenant in no AI group",
        mint: |idp| {
            idp.token()
                .scopes("Inference.Invoke")
                .groups(Vec::<String>::new())
        },
    },
];

fn frontier(idp: &TestIdp) -> TokenBuilder {
    idp.token()
        .scopes("Inference.Invoke")
        .groups([FRONTIER_USERS])
}

/// Every persona's token, signed by `idp`.
pub fn persona_tokens(idp: &TestIdp) -> Vec<(&'static Persona, String)> {
    PERSONAS.iter().map(|p| (p, (p.mint)(idp).sign())).collect()
}

/// One request the demo prints, and what it gets.
pub struct Try {
    /// What it shows.
    pub what: &'static str,
    /// The persona whose token it sends; `None`: no token.
    pub persona: Option<&'static str>,
    /// The path.
    pub path: &'static str,
    /// The JSON body of a `POST`; `None`: a `GET`.
    pub body: Option<&'static str>,
    /// The status it gets.
    pub status: u16,
    /// For a listing: the models it shows.
    pub lists: Option<&'static [&'static str]>,
}

const CHAT: &str = "/v1/chat/completions";

const fn chat(what: &'static str, persona: &'static str, body: &'static str, status: u16) -> Try {
    Try {
        what,
        persona: Some(persona),
        path: CHAT,
        body: Some(body),
        status,
        lists: None,
    }
}

const fn list(what: &'static str, persona: &'static str, lists: &'static [&'static str]) -> Try {
    Try {
        what,
        persona: Some(persona),
        path: "/v1/models",
        body: None,
        status: 200,
        lists: Some(lists),
    }
}

/// What the demo prints, in order; `tests/http/openai_gateway.rs` sends every one.
pub const TRIES: &[Try] = &[
    list(
        "the LLM team lists the models: exactly the two it may invoke",
        "LLM_TEAM",
        &["llama-3-70b", "llama-3-8b"],
    ),
    chat(
        "... and chats with one of them",
        "LLM_TEAM",
        r#"{"model":"llama-3-70b","messages":[{"role":"user","content":"hi"}]}"#,
        200,
    ),
    Try {
        what: "... or embeds with the other",
        persona: Some("LLM_TEAM"),
        path: "/v1/embeddings",
        body: Some(r#"{"model":"llama-3-8b","input":"hi"}"#),
        status: 200,
        lists: None,
    },
    chat(
        "... but may not invoke gpt-4o (403, OpenAI's error shape)",
        "LLM_TEAM",
        r#"{"model":"gpt-4o","messages":[]}"#,
        403,
    ),
    chat(
        "... nor slip it in as a second \"model\" key (400 duplicate_key)",
        "LLM_TEAM",
        r#"{"model":"llama-3-70b","model":"gpt-4o","messages":[]}"#,
        400,
    ),
    Try {
        what: "... and gets the same 404 for a model it may not use as for one that does not exist",
        persona: Some("LLM_TEAM"),
        path: "/v1/models/gpt-4o",
        body: None,
        status: 404,
        lists: None,
    },
    chat(
        "a frontier user without auth context c1 gets a claims challenge (401 insufficient_claims)",
        "FRONTIER",
        r#"{"model":"gpt-4o","messages":[]}"#,
        401,
    ),
    chat(
        "... and after the step-up invokes gpt-4o",
        "FRONTIER_C1",
        r#"{"model":"gpt-4o","messages":[]}"#,
        200,
    ),
    list(
        "... whose listing shows gpt-4o only after the step-up",
        "FRONTIER_C1",
        &["gpt-4o"],
    ),
    list("a user in no AI group sees no model", "OUTSIDER", &[]),
    chat(
        "... and may invoke none",
        "OUTSIDER",
        r#"{"model":"llama-3-8b","messages":[]}"#,
        403,
    ),
    Try {
        what: "no token",
        persona: None,
        path: CHAT,
        body: Some(r#"{"model":"llama-3-8b","messages":[]}"#),
        status: 401,
        lists: None,
    },
];

impl Try {
    /// The `curl` command for this request against `base`.
    pub fn curl(&self, base: &str) -> String {
        let mut command = format!("curl -si {base}{}", self.path);
        if let Some(var) = self.persona {
            command.push_str(&format!(" -H \"authorization: Bearer ${var}\""));
        }
        if let Some(body) = self.body {
            command.push_str(&format!(" -H 'content-type: application/json' -d '{body}'"));
        }
        command
    }
}

fn print_demo(idp: &TestIdp, base: &str) {
    println!("OpenAI-compatible gateway demo on {base}");
    println!(
        "Local Entra look-alike at {} (tenant {}, API client id {})",
        idp.authority(),
        idp.tenant_id(),
        idp.client_id()
    );
    println!("Policy: {POLICY}; models served: {}", MODELS.join(", "));
    println!("\n# Tokens (valid for one hour; restart for new ones). Paste into a shell:");
    for (persona, token) in persona_tokens(idp) {
        println!("# {}\nexport {}={token}", persona.who, persona.var);
    }
    println!("\n# Try:");
    for t in TRIES {
        let outcome = match t.lists {
            Some(models) => format!("{} [{}]", t.status, models.join(", ")),
            None => t.status.to_string(),
        };
        println!("# {}: {outcome}\n{}", t.what, t.curl(base));
    }
    println!();
}

// ---------------------------------------------------------------------------- start-up

/// The demo: a local Entra look-alike and the example policy, the audit trail in the
/// temporary directory.
pub async fn demo() -> Result<(TestIdp, Governor), BoxError> {
    let idp = TestIdp::start_with(Options::default().tenant(TenantId::parse(HOME_TENANT)?)).await;
    let trail = std::env::temp_dir().join(format!(
        "entra-governor-openai-gateway-{}.jsonl",
        std::process::id()
    ));
    let governor = Governor::builder()
        .audit(AuditLog::builder(JsonLinesSink::file(&trail)?).build())
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
        .policy(Policy::from_path(POLICY)?)
        .build()?;
    Ok((idp, governor))
}

/// Serves `router` on a loopback port; its base URL.
async fn serve_locally(router: Router) -> Result<String, BoxError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(base)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let upstream = serve_locally(model_server()).await?;
    let (governor, listen, idp) = match args.as_slice() {
        [] => {
            let (idp, governor) = demo().await?;
            (
                governor,
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                Some(idp),
            )
        }
        [flag, path] if flag == "--config" => {
            let config = Config::load(path)?;
            let listen = config
                .listen
                .http
                .ok_or("listen.http: the address the gateway listens on")?;
            let governor = config.governor(config.audit_log()?)?;
            if let Err(e) = governor.prefetch_keys().await {
                println!("warning: {e}; requests get 503 until keys arrive");
            }
            (governor, listen, None)
        }
        _ => return Err("usage: [--config <file>]  (without --config: a local demo)".into()),
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        // The demo's 8080 is taken: any free loopback port will do.
        Err(_) if idp.is_some() => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
        Err(e) => return Err(format!("cannot listen on {listen}: {e}").into()),
    };
    let base = format!("http://{}", listener.local_addr()?);
    println!("model server (stub) on {upstream}");
    if let Some(idp) = &idp {
        print_demo(idp, &base);
    }
    println!("listening on {base}");
    axum::serve(listener, app(governor, upstream)?).await?;
    Ok(())
}
