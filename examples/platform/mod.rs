//! What `ai_platform` (axum) and `actix_platform` (actix-web) share: the configuration
//! file, the demo mode with a local Entra look-alike and personas, an interim decision
//! log, and the API's framework-neutral handlers.
//!
//! The API:
//!
//! | route | requires |
//! |---|---|
//! | `POST /v1/models/{model}/infer` | `inference.invoke` on `models/{model}` |
//! | `POST /v1/training/jobs` | `training.submit` on `models/{base_model}` and `datasets.read` on `datasets/{dataset}` (from the JSON body, decided in the handler) |
//! | `GET /v1/datasets/{*name}` | `datasets.read` on `datasets/{name}` |
//! | `POST /v1/models/{model}/deploy` | `models.deploy` on `models/{model}` |
//! | `GET /v1/audit` | `audit.read` on `audit/decisions` (auditors) |
//! | `GET /v1/me` | a valid token: who you are and what you may do |
//! | `POST /v1/admin/revocations` | `admin.revoke` on `admin/revocations` (platform admins): revokes the caller named in the body |
//! | `GET /v1/admin/fleet` | `admin.read` on `admin/fleet` (platform admins): `Governor::fleet_status()` |
//! | `GET /healthz` | nothing |
//! | `GET /readyz` | nothing: `Governor::health()` as JSON, 200 when ready, 503 when not |
//! | `GET /metrics` | nothing: the Prometheus text format (built with the `metrics` feature: `--features axum,metrics`) |
//!
//! `POST /v1/admin/revocations` takes `{"tenant_id": "<guid>", "object_id": "<guid>"}` and
//! refuses, from now on, every token of that caller issued before now (in fleet mode on
//! every replica). It answers 204 when the revocation is recorded; 400 with a JSON error
//! for a body that is not that object or ids that are not GUIDs; 507 (Insufficient
//! Storage) when the revocation list is full of live entries (nothing was recorded; raise
//! the limit or wait for entries to expire); 503 when the revocation file cannot be
//! written (nothing was recorded; a storage fault worth retrying).

use std::error::Error;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use entra_governor::config::{AuditSinkKind, Config};
use entra_governor::http::{self, Refusal};
use entra_governor::testing::{Options, TestIdp, TokenBuilder};
use entra_governor::{
    ClientAuth, Cloud, Decision, Governor, ObjectId, Policy, Principal, RequestContext, TenantId,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub type BoxError = Box<dyn Error + Send + Sync>;

const EXAMPLE_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
/// The home tenant named by `tenants` in the example policy's claim-value bindings.
pub const DEMO_HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";

// ----------------------------------------------------------------------- configuration

// `--config <file>`: the format of `entra_governor::config`, shared with the decision
// service (`entra-governor serve`); see `examples/ai_platform.toml` and, for every key,
// `examples/service.toml`. The example servers have their routes in code, so they refuse
// a file with `[[routes]]`, and they read the audit trail back only from a `file` sink.

/// Ends the process: a start-up error (a configuration the governor refuses, naming what
/// is wrong) is printed as a sentence, not as a debug dump, and exits with status 1.
pub fn exit_code(result: Result<(), BoxError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and each of its causes, as one line.
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

/// The parsed command line: `--config <file>`, or nothing for the demo.
pub fn config_path() -> Result<Option<PathBuf>, BoxError> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(None),
        (Some("--config"), Some(path), None) => Ok(Some(path.into())),
        _ => Err("usage: [--config <file>]  (without --config: a local demo with personas)".into()),
    }
}

// ---------------------------------------------------------------------------- start-up

/// Everything a server needs, whichever framework serves it.
pub struct Platform {
    /// Verifies tokens and decides.
    pub governor: Governor,
    /// The audit trail the governor writes.
    pub audit: AuditFile,
    /// A bound, non-blocking listener.
    pub listener: std::net::TcpListener,
    /// The local Entra look-alike of the demo mode: it serves as long as this is held.
    pub idp: Option<TestIdp>,
}

/// Reads `--config`, or starts the demo: a local Entra look-alike and the example policy.
pub async fn start() -> Result<Platform, BoxError> {
    let config = config_path()?;
    // Before any governor is built: its request-path metrics bind to the recorder then.
    install_metrics()?;
    let platform = match config {
        Some(path) => {
            let config = Config::load(&path)?;
            if !config.routes.is_empty() {
                return Err(
                    "[[routes]] is for `entra-governor serve`; the example servers' \
                            routes are in code"
                        .into(),
                );
            }
            let listen = config
                .listen
                .http
                .ok_or("listen.http: the address the example server listens on")?;
            let audit = match (config.audit.sink, &config.audit.path) {
                (AuditSinkKind::File, Some(path)) => AuditFile::new(path.clone()),
                _ => {
                    return Err(
                        "audit: the example servers need `sink = \"file\"` and a `path` \
                                (GET /v1/audit reads it back)"
                            .into(),
                    );
                }
            };
            let governor = config.governor(config.audit_log()?)?;
            // Fail fast when Entra cannot be reached; the server would answer 503 anyway.
            match governor.prefetch_keys().await {
                Ok(n) => println!("{n} signing keys loaded"),
                Err(e) => println!("warning: {e}; requests get 503 until keys arrive"),
            }
            Platform {
                governor,
                audit,
                listener: bind(listen)?,
                idp: None,
            }
        }
        None => {
            let listener = bind(([127, 0, 0, 1], 8080).into())
                .or_else(|_| bind(([127, 0, 0, 1], 0).into()))?;
            let platform = demo(listener).await?;
            // Ready from the start (`GET /readyz`), not from the first request.
            platform.governor.prefetch_keys().await?;
            platform
        }
    };
    let addr = platform.listener.local_addr()?;
    match &platform.idp {
        Some(idp) => print_demo(idp, addr, &platform.audit),
        None => println!("listening on http://{addr}"),
    }
    Ok(platform)
}

/// The demo on `listener`: a local Entra look-alike, the example policy, and an audit
/// trail in the temporary directory. Sign the personas' tokens with [`persona_tokens`].
pub async fn demo(listener: std::net::TcpListener) -> Result<Platform, BoxError> {
    let idp = look_alike().await?;
    let audit = AuditFile::new(std::env::temp_dir().join(format!(
        "entra-governor-ai-platform-{}-{}.jsonl",
        std::process::id(),
        listener.local_addr()?.port()
    )));
    let governor = Governor::builder()
        .audit(audit.writer()?)
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
        .policy(Policy::from_path(EXAMPLE_POLICY)?)
        .build()?;
    Ok(Platform {
        governor,
        audit,
        listener,
        idp: Some(idp),
    })
}

/// The local Entra look-alike, with the home tenant the example policy's claim-value
/// bindings trust.
pub async fn look_alike() -> Result<TestIdp, BoxError> {
    let tenant = TenantId::parse(DEMO_HOME_TENANT)?;
    Ok(TestIdp::start_with(Options::default().tenant(tenant)).await)
}

/// Binds a non-blocking listener on `addr`.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, BoxError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const RELEASE_MANAGERS: &str = "2b7e4f1a-9c3d-4e8b-a5f6-1d0c9b8a7e6f";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";
/// The ML engineer's object id: fixed, so that the printed revocation can name her.
const ML_ENGINEER_OID: &str = "3f1e2d4c-6b5a-4978-8e1f-2a3b4c5d6e7f";

/// A persona of the demo: the shell variable holding its token, who it is, and how its
/// token is minted.
pub struct Persona {
    /// The shell variable the printed `export` sets.
    pub var: &'static str,
    /// Who this is, printed above the token.
    pub who: &'static str,
    /// The token's claims.
    pub mint: fn(&TestIdp) -> TokenBuilder,
}

/// The demo's callers. `examples/policy.toml` decides what each may do.
pub const PERSONAS: &[Persona] = &[
    Persona {
        var: "DATA_SCIENTIST",
        who: "a data scientist (group data-scientists)",
        mint: |idp| {
            idp.token()
                .scopes("Inference.Invoke Training.Manage")
                .groups([DATA_SCIENTISTS])
        },
    },
    Persona {
        var: "ML_ENGINEER",
        who: "an ML engineer (group ml-engineers) in a client that handles claims challenges \
              (xms_cc cp1), signed in without the PII auth context c1",
        mint: |idp| ml_engineer(idp).client_capabilities(["cp1"]),
    },
    Persona {
        var: "ML_ENGINEER_C1",
        who: "the same ML engineer after the step-up: signed in with auth context c1 \
              (compliant device + MFA)",
        mint: |idp| ml_engineer(idp).client_capabilities(["cp1"]).acrs(["c1"]),
    },
    Persona {
        var: "RELEASE_MANAGER",
        who: "a release manager (group release-managers), signed in with MFA \
              (auth context c2, the policy's mfa_auth_context)",
        mint: |idp| {
            idp.token()
                .scopes("Models.Manage")
                .groups([RELEASE_MANAGERS])
                .acrs(["c2"])
        },
    },
    Persona {
        var: "AUDITOR",
        who: "an auditor (app role Platform.Auditor)",
        mint: |idp| {
            idp.token()
                .scopes("Audit.Read")
                .roles(["Platform.Auditor"])
                .groups(Vec::<String>::new())
        },
    },
    Persona {
        var: "CI_PIPELINE",
        who: "the CI pipeline (app-only, application permission Training.Pipeline), \
              authenticated with a certificate (azpacr 2)",
        mint: |idp| pipeline(idp).client_auth(ClientAuth::Certificate),
    },
    Persona {
        var: "CI_PIPELINE_SECRET",
        who: "the same pipeline authenticated with a client secret (azpacr 1)",
        mint: |idp| pipeline(idp).client_auth(ClientAuth::Secret),
    },
    Persona {
        var: "PLATFORM_ADMIN",
        who: "a platform administrator (group platform-admins), signed in with MFA \
              (auth context c2): revokes callers and reads the fleet's state",
        mint: |idp| {
            idp.token()
                .scopes("Platform.Admin")
                .groups([PLATFORM_ADMINS])
                .acrs(["c2"])
        },
    },
    Persona {
        var: "GUEST",
        who: "a guest researcher from a partner university (group external-researchers)",
        mint: |idp| {
            idp.token()
                .guest(idp.add_tenant())
                .scopes("Training.Manage")
                .groups([EXTERNAL_RESEARCHERS])
        },
    },
];

fn ml_engineer(idp: &TestIdp) -> TokenBuilder {
    idp.token()
        .oid(ObjectId::parse(ML_ENGINEER_OID).expect("a GUID"))
        .scopes("Inference.Invoke Training.Manage Models.Manage")
        .groups([ML_ENGINEERS])
}

fn pipeline(idp: &TestIdp) -> TokenBuilder {
    idp.token().app_only().roles(["Training.Pipeline"])
}

/// One request the demo prints as a `curl` command, and the status it gets.
pub struct Try {
    /// What it shows.
    pub what: &'static str,
    /// The persona whose token it sends ([`Persona::var`]); `None`: no token.
    pub persona: Option<&'static str>,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path and query.
    pub path: &'static str,
    /// A JSON body.
    pub body: Option<&'static str>,
    /// The status the demo answers.
    pub status: u16,
}

const fn get(what: &'static str, persona: &'static str, path: &'static str, status: u16) -> Try {
    Try {
        what,
        persona: Some(persona),
        method: "GET",
        path,
        body: None,
        status,
    }
}

const fn post(
    what: &'static str,
    persona: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    status: u16,
) -> Try {
    Try {
        what,
        persona: Some(persona),
        method: "POST",
        path,
        body,
        status,
    }
}

const PII: &str = "/v1/datasets/pii/patients";
const JOBS: &str = "/v1/training/jobs";
const DEPLOY: &str = "/v1/models/staging-7/deploy";

/// What the demo prints, in order; `tests/http/demo_axum.rs` and
/// `tests/http/demo_actix.rs` send every one to the running server and check the status.
pub const TRIES: &[Try] = &[
    post(
        "a data scientist calls a research model",
        "DATA_SCIENTIST",
        "/v1/models/exp-42/infer",
        Some(r#"{"input":"hello"}"#),
        200,
    ),
    post(
        "... and submits a training job on curated data",
        "DATA_SCIENTIST",
        JOBS,
        Some(r#"{"dataset":"curated/chat-v2","base_model":"exp-42"}"#),
        202,
    ),
    get(
        "... but may not read personal data (no role grants it)",
        "DATA_SCIENTIST",
        PII,
        403,
    ),
    get(
        "an ML engineer may read personal data, but only after signing in with auth context \
         c1: a claims challenge (WWW-Authenticate: insufficient_claims) her client answers",
        "ML_ENGINEER",
        PII,
        401,
    ),
    get(
        "... and with a c1 token she reads it",
        "ML_ENGINEER_C1",
        PII,
        200,
    ),
    post(
        "... but does not deploy (no role grants it)",
        "ML_ENGINEER",
        DEPLOY,
        None,
        403,
    ),
    post(
        "a release manager signed in with MFA deploys a release candidate",
        "RELEASE_MANAGER",
        DEPLOY,
        None,
        200,
    ),
    post(
        "the CI pipeline, authenticated with a certificate, retrains a release candidate",
        "CI_PIPELINE",
        JOBS,
        Some(r#"{"dataset":"curated/chat-v2","base_model":"staging-7"}"#),
        202,
    ),
    post(
        "... but not with a client secret (the role requires a certificate)",
        "CI_PIPELINE_SECRET",
        JOBS,
        Some(r#"{"dataset":"curated/chat-v2","base_model":"staging-7"}"#),
        403,
    ),
    post(
        "... and never touches personal data (deny rule apps-never-touch-pii)",
        "CI_PIPELINE",
        JOBS,
        Some(r#"{"dataset":"pii/patients","base_model":"staging-7"}"#),
        403,
    ),
    post(
        "a guest trains a research model on public data",
        "GUEST",
        JOBS,
        Some(r#"{"dataset":"public/wiki","base_model":"exp-1"}"#),
        202,
    ),
    get(
        "... but reads no personal data (deny rule no-guests-on-pii)",
        "GUEST",
        PII,
        403,
    ),
    get(
        "the auditor reads the audit trail",
        "AUDITOR",
        "/v1/audit",
        200,
    ),
    get(
        "... which nobody else may",
        "DATA_SCIENTIST",
        "/v1/audit",
        403,
    ),
    get("who am I, and what may I do", "ML_ENGINEER", "/v1/me", 200),
    Try {
        what: "no token",
        persona: None,
        method: "GET",
        path: "/v1/me",
        body: None,
        status: 401,
    },
    get(
        "a platform admin reads the fleet's state (standalone here: one replica)",
        "PLATFORM_ADMIN",
        "/v1/admin/fleet",
        200,
    ),
    get(
        "... which a data scientist may not",
        "DATA_SCIENTIST",
        "/v1/admin/fleet",
        403,
    ),
    post(
        "the admin revokes the ML engineer's tokens (in fleet mode: on every replica)",
        "PLATFORM_ADMIN",
        "/v1/admin/revocations",
        Some(
            r#"{"tenant_id":"8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d","object_id":"3f1e2d4c-6b5a-4978-8e1f-2a3b4c5d6e7f"}"#,
        ),
        204,
    ),
    get(
        "... whose token is refused from now on: a claims challenge sends her client \
         back to sign in",
        "ML_ENGINEER",
        "/v1/me",
        401,
    ),
];

/// Every persona's token, signed by `idp` (valid for one hour).
pub fn persona_tokens(idp: &TestIdp) -> Vec<(&'static Persona, String)> {
    PERSONAS.iter().map(|p| (p, (p.mint)(idp).sign())).collect()
}

impl Try {
    /// The `curl` command for this request against `base` (`http://127.0.0.1:8080`).
    pub fn curl(&self, base: &str) -> String {
        let mut command = match self.method {
            "GET" => format!("curl -i {base}{}", self.path),
            method => format!("curl -i -X {method} {base}{}", self.path),
        };
        if let Some(var) = self.persona {
            command.push_str(&format!(" -H \"authorization: Bearer ${var}\""));
        }
        if let Some(body) = self.body {
            command.push_str(&format!(" -H 'content-type: application/json' -d '{body}'"));
        }
        command
    }
}

/// Prints tokens for personas and ready-to-paste `curl` commands.
fn print_demo(idp: &TestIdp, addr: SocketAddr, audit: &AuditFile) {
    let base = format!("http://{addr}");
    println!("AI platform demo on {base}");
    println!(
        "Local Entra look-alike at {} (tenant {}, API client id {})",
        idp.authority(),
        idp.tenant_id(),
        idp.client_id()
    );
    println!("Policy: {EXAMPLE_POLICY}");
    println!("Audit trail (JSON Lines): {}", audit.path().display());
    println!("\n# Tokens (valid for one hour; restart for new ones). Paste into a shell:");
    for (persona, token) in persona_tokens(idp) {
        println!("# {}\nexport {}={token}", persona.who, persona.var);
    }
    println!("\n# Try:");
    for t in TRIES {
        println!("# {}: {}\n{}", t.what, t.status, t.curl(&base));
    }
    println!();
}

// -------------------------------------------------------------------------- audit file

/// Reads back the audit trail the governor writes (JSON Lines, one event per
/// authorization: allow, deny, invalid token, unavailable), for `GET /v1/audit`.
#[derive(Clone, Debug)]
pub struct AuditFile {
    path: Arc<PathBuf>,
}

impl AuditFile {
    /// The trail at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
        }
    }

    /// The file the governor appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The governor's audit log writing to this file.
    pub fn writer(&self) -> Result<entra_governor::AuditLog, BoxError> {
        let sink = entra_governor::JsonLinesSink::file(&*self.path)?;
        Ok(entra_governor::AuditLog::builder(sink).build())
    }

    /// The last `n` events, oldest first.
    pub fn tail(&self, n: usize) -> Vec<Value> {
        let Ok(file) = std::fs::File::open(&*self.path) else {
            return Vec::new();
        };
        let lines: Vec<Value> = std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

// --------------------------------------------------------------------------- handlers

/// `POST /v1/models/{model}/infer` body.
#[derive(Debug, Deserialize)]
pub struct InferRequest {
    /// The prompt.
    pub input: String,
}

/// `POST /v1/training/jobs` body.
#[derive(Debug, Deserialize)]
pub struct TrainingJob {
    /// The dataset, under `datasets/` (`curated/chat-v2`).
    pub dataset: String,
    /// The model to fine-tune, under `models/` (`exp-42`).
    pub base_model: String,
}

/// After the route's `Require`: answers an inference call.
pub fn infer(
    caller: &Principal,
    decision: &Decision,
    model: &str,
    request: &InferRequest,
) -> Value {
    json!({ "caller": caller.id().to_string(), "decided": decision.explain(), "model": model, "output": format!("[{model}] {}", request.input.chars().rev().collect::<String>()) })
}

/// Decides on the resources named in the body (the route only authenticated), then
/// queues the job.
pub async fn submit_training_job(
    governor: &Governor,
    caller: &Arc<Principal>,
    job: &TrainingJob,
) -> Result<Value, Refusal> {
    for (action, resource) in [
        ("training.submit", format!("models/{}", job.base_model)),
        ("datasets.read", format!("datasets/{}", job.dataset)),
    ] {
        // Decided and recorded in the audit trail, exactly as the route layers do.
        http::authorize(
            governor,
            caller,
            action,
            &resource,
            &RequestContext::default(),
        )
        .await?;
    }
    let id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    Ok(json!({
        "job_id": format!("job-{id}"),
        "status": "queued",
        "base_model": job.base_model,
        "dataset": job.dataset,
    }))
}

/// After the route's `Require`: describes a dataset.
pub fn dataset(caller: &Principal, decision: &Decision, name: &str) -> Value {
    json!({ "caller": caller.id().to_string(), "decided": decision.explain(), "name": name, "records": 1_000_000, "format": "jsonl" })
}

/// After the route's `Require`: starts a deployment.
pub fn deploy(caller: &Principal, decision: &Decision, model: &str) -> Value {
    json!({ "caller": caller.id().to_string(), "decided": decision.explain(), "model": model, "status": "deploying" })
}

/// After the route's `Require`: the last decisions.
pub fn audit_tail(audit: &AuditFile) -> Value {
    json!({ "events": audit.tail(100) })
}

/// Who the caller is and what the policy lets them do.
pub fn me(governor: &Governor, caller: &Principal) -> Value {
    json!({
        "id": caller.id().to_string(),
        "kind": caller.kind(),
        "guest": caller.is_guest(),
        "scopes": caller.scopes(),
        "roles": caller.roles(),
        "permissions": governor.permissions(caller),
    })
}

/// `GET /readyz`: the HTTP status (200 when the governor is ready, 503 when not) and
/// [`Governor::health`] as JSON. Never calls Entra or Graph; holds no token or caller.
pub fn readiness(governor: &Governor) -> (u16, Value) {
    let health = governor.health();
    let status = if health.ready { 200 } else { 503 };
    (status, json!(health))
}

pub use entra_governor::http::admin::{fleet_status, revoke};

// ----------------------------------------------------------------------------- metrics

/// The process's Prometheus recorder, installed by [`start`].
#[cfg(feature = "metrics")]
static METRICS: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
    std::sync::OnceLock::new();

/// Installs the Prometheus recorder `GET /metrics` renders (the decision latency as a
/// histogram, every metric described) and its upkeep thread, once per process. Without the
/// `metrics` feature the governor reports no metric, and this does nothing.
fn install_metrics() -> Result<(), BoxError> {
    #[cfg(feature = "metrics")]
    {
        use entra_governor::observe;
        use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
        if METRICS.get().is_some() {
            return Ok(());
        }
        let handle = observe::HISTOGRAM_BUCKETS
            .iter()
            .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)
            })?
            .install_recorder()?;
        observe::describe();
        // `install_recorder` starts no upkeep: drain histogram samples every 5 s, as the
        // decision service does, so an unscraped server's memory stays bounded.
        let upkeep = handle.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            }
        });
        let _ = METRICS.set(handle);
    }
    Ok(())
}

/// The content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `GET /metrics`: the HTTP status and the Prometheus text, the gauges set from
/// [`Governor::health`] first; 404 with a sentence when this build has no recorder.
pub fn metrics_text(governor: &Governor) -> (u16, String) {
    #[cfg(feature = "metrics")]
    if let Some(handle) = METRICS.get() {
        governor.record_gauges();
        handle.run_upkeep();
        return (200, handle.render());
    }
    let _ = governor;
    (
        404,
        "no metrics in this build: run the example with the `metrics` feature \
         (`--features axum,metrics` or `--features actix,metrics`)\n"
            .to_owned(),
    )
}
