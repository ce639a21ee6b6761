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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[cfg(feature = "redis")]
use entra_governor::fleet::{Fleet, FleetKey};
#[cfg(feature = "graph")]
use entra_governor::graph::{ClientCredential, GraphGroupResolver};
use entra_governor::http::{self, Refusal};
use entra_governor::testing::{Options, TestIdp, TokenBuilder};
use entra_governor::{
    ClientAuth, Cloud, Decision, Governor, ObjectId, Policy, Principal, PrincipalId,
    RequestContext, RevocationError, TenantId,
};
use serde::Deserialize;
use serde_json::{Value, json};

pub type BoxError = Box<dyn Error + Send + Sync>;

const EXAMPLE_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
/// The home tenant named by `tenants` in the example policy's claim-value bindings.
pub const DEMO_HOME_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";

// ----------------------------------------------------------------------- configuration

/// `--config <file>`: see `examples/ai_platform.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The authorization policy (TOML).
    pub policy: PathBuf,
    /// Where decisions are appended as JSON Lines (read back by `GET /v1/audit`).
    pub audit_log: PathBuf,
    /// The identity provider.
    pub entra: EntraConfig,
    /// A JSON file keeping revocations across restarts (single replica).
    #[serde(default)]
    pub revocations_file: Option<PathBuf>,
    /// Group overage resolved through Microsoft Graph.
    #[serde(default)]
    pub graph: Option<GraphConfig>,
    /// Fleet mode: state shared with every replica through Redis (feature `redis`).
    #[serde(default)]
    pub fleet: Option<FleetConfig>,
}

/// The `[graph]` table: resolve group overage through Microsoft Graph, signing in as the
/// `[entra]` application with a client secret.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "graph"), allow(dead_code))] // parsed only to refuse it
pub struct GraphConfig {
    /// The name of the environment variable holding the client secret (never the
    /// secret itself: configuration files end up in repositories).
    pub client_secret_env: String,
    /// How long a membership answer is cached, in seconds (never past the token's expiry).
    #[serde(default)]
    pub cache_ttl_secs: Option<u64>,
}

/// The `[fleet]` table: share revocations, Graph memberships and the policy version with
/// every replica through Redis.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // parsed only to refuse it
pub struct FleetConfig {
    /// `rediss://host:6380` (TLS), or `redis://` to a loopback host; a password or ACL
    /// user goes in the URL.
    pub redis_url: String,
    /// The name of the environment variable holding the fleet key (at least 32 bytes,
    /// the same on every replica).
    pub key_env: String,
    /// The prefix of every key the fleet writes: one per service.
    #[serde(default)]
    pub namespace: Option<String>,
    /// This replica's id in the fleet status (default: host name, process id, a suffix).
    #[serde(default)]
    pub replica_id: Option<String>,
    /// Strict mode: refuse with 503 while the local view of the fleet's revocations is
    /// older than this many seconds (at least 2). Off by default.
    #[serde(default)]
    pub strict_max_staleness_secs: Option<u64>,
}

/// The `[entra]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// `global` (default), `us_government` or `china`.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Any authority base URL instead of a named cloud (a local look-alike).
    #[serde(default)]
    pub authority: Option<String>,
    /// One tenant: GUID or verified domain.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Several tenants (GUIDs): a multi-tenant API with an allow-list.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// The API's application (client) id.
    pub client_id: String,
    /// Extra accepted audiences (App ID URIs).
    #[serde(default)]
    pub app_id_uris: Vec<String>,
    /// Allow a plain-http authority on a loopback host (local look-alikes only).
    #[serde(default)]
    pub dangerous_allow_http_loopback: bool,
    /// The app registration emits group claims: a token without `groups` is in no group.
    #[serde(default)]
    pub groups_claim_emitted: bool,
    /// The app registration emits the `acct` optional claim: a user token without it is
    /// of unknown guest status (fails closed).
    #[serde(default)]
    pub acct_claim_emitted: bool,
}

impl Config {
    /// Reads and parses a configuration file; relative paths in it are relative to the
    /// file's directory.
    pub fn load(path: &Path) -> Result<Self, BoxError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        config.policy = dir.join(&config.policy);
        config.audit_log = dir.join(&config.audit_log);
        if let Some(file) = &mut config.revocations_file {
            *file = dir.join(&*file);
        }
        Ok(config)
    }

    /// A governor for this configuration.
    pub fn governor(&self, audit: entra_governor::AuditLog) -> Result<Governor, BoxError> {
        let e = &self.entra;
        let cloud = match (e.authority.as_deref(), e.cloud.as_deref()) {
            (Some(authority), _) => Cloud::custom(authority),
            (None, None | Some("global")) => Cloud::global(),
            (None, Some("us_government")) => Cloud::us_government(),
            (None, Some("china")) => Cloud::china(),
            (None, Some(other)) => {
                return Err(format!(
                    "entra.cloud = {other:?}: expected global, us_government or china"
                )
                .into());
            }
        };
        let mut builder = Governor::builder()
            .cloud(cloud.clone())
            .client_id(&e.client_id)
            .audit(audit)
            .groups_claim_emitted(e.groups_claim_emitted)
            .acct_claim_emitted(e.acct_claim_emitted)
            .policy(Policy::from_path(&self.policy)?);
        builder = match (&e.tenant, e.tenants.is_empty()) {
            (Some(tenant), true) => builder.tenant(tenant),
            (None, false) => builder.tenants(e.tenants.iter()),
            _ => return Err("entra: set exactly one of `tenant` or `tenants`".into()),
        };
        for uri in &e.app_id_uris {
            builder = builder.app_id_uri(uri);
        }
        if e.dangerous_allow_http_loopback {
            builder = builder.dangerous_allow_http_loopback();
        }
        if let Some(file) = &self.revocations_file {
            builder = builder.revocations_file(file);
        }
        let fleet = self.fleet()?;
        if let Some(graph) = &self.graph {
            #[cfg(feature = "graph")]
            {
                builder =
                    builder.group_resolver(self.graph_resolver(graph, &cloud, fleet.as_ref())?);
            }
            #[cfg(not(feature = "graph"))]
            {
                let _: &GraphConfig = graph;
                return Err(
                    "the configuration has a [graph] section, but this build has no \
                            Microsoft Graph resolver: build with the `graph` feature (on by \
                            default)"
                        .into(),
                );
            }
        }
        #[cfg(feature = "redis")]
        if let Some(fleet) = fleet {
            builder = builder.fleet(fleet);
        }
        Ok(builder.build()?)
    }

    /// The `[graph]` resolver: the `[entra]` cloud, tenant and client id, the secret from
    /// the environment; shared with the fleet when there is one.
    #[cfg(feature = "graph")]
    fn graph_resolver(
        &self,
        graph: &GraphConfig,
        cloud: &Cloud,
        fleet: Option<&Fleet>,
    ) -> Result<GraphGroupResolver, BoxError> {
        let e = &self.entra;
        // The resolver signs in at the caller's tenant; it needs the API's own tenant id.
        let home = e
            .tenant
            .as_deref()
            .or(e.tenants.first().map(String::as_str));
        let tenant = home.and_then(|t| TenantId::parse(t).ok()).ok_or(
            "graph: the [entra] tenant must be a tenant id (GUID), not a domain, to resolve \
             groups through Microsoft Graph",
        )?;
        let secret = std::env::var(&graph.client_secret_env).map_err(|_| {
            format!(
                "graph.client_secret_env: the environment variable {} is not set",
                graph.client_secret_env
            )
        })?;
        let mut builder = GraphGroupResolver::builder(
            cloud,
            tenant,
            &e.client_id,
            ClientCredential::secret(secret),
        );
        if let Some(secs) = graph.cache_ttl_secs {
            builder = builder.cache_ttl(Duration::from_secs(secs));
        }
        if e.dangerous_allow_http_loopback {
            builder = builder.dangerous_allow_http_loopback();
        }
        #[cfg(feature = "redis")]
        if let Some(fleet) = fleet {
            builder = builder.fleet(fleet);
        }
        #[cfg(not(feature = "redis"))]
        let _: Option<&Fleet> = fleet;
        Ok(builder.build()?)
    }

    /// The `[fleet]` handle, if configured (no network access yet).
    #[cfg(feature = "redis")]
    fn fleet(&self) -> Result<Option<Fleet>, BoxError> {
        let Some(f) = &self.fleet else {
            return Ok(None);
        };
        let key = FleetKey::from_env(&f.key_env)
            .map_err(|e| format!("fleet.key_env ({}): {e}", f.key_env))?;
        let mut builder = Fleet::builder(&f.redis_url, key);
        if let Some(namespace) = &f.namespace {
            builder = builder.namespace(namespace);
        }
        if let Some(id) = &f.replica_id {
            builder = builder.replica_id(id);
        }
        if let Some(secs) = f.strict_max_staleness_secs {
            builder = builder.strict(Duration::from_secs(secs));
        }
        Ok(Some(builder.build()?))
    }

    /// Without the `redis` feature a `[fleet]` section is an error, not silently ignored:
    /// replicas that believe they share revocations must not each keep their own.
    #[cfg(not(feature = "redis"))]
    fn fleet(&self) -> Result<Option<Fleet>, BoxError> {
        match &self.fleet {
            None => Ok(None),
            Some(_) => Err(
                "the configuration has a [fleet] section, but this build has no \
                            fleet mode: build with the `redis` feature (--features redis)"
                    .into(),
            ),
        }
    }
}

/// Stands in for `entra_governor::fleet::Fleet` in a build without fleet mode.
#[cfg(not(feature = "redis"))]
pub enum Fleet {}

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
    let platform = match config_path()? {
        Some(path) => {
            let config = Config::load(&path)?;
            let audit = AuditFile::new(config.audit_log.clone());
            let governor = config.governor(audit.writer()?)?;
            // Fail fast when Entra cannot be reached; the server would answer 503 anyway.
            match governor.prefetch_keys().await {
                Ok(n) => println!("{n} signing keys loaded"),
                Err(e) => println!("warning: {e}; requests get 503 until keys arrive"),
            }
            Platform {
                governor,
                audit,
                listener: bind(config.listen)?,
                idp: None,
            }
        }
        None => {
            let listener = bind(([127, 0, 0, 1], 8080).into())
                .or_else(|_| bind(([127, 0, 0, 1], 0).into()))?;
            demo(listener).await?
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
    // The example policy's claim-value bindings trust this home tenant.
    let idp =
        TestIdp::start_with(Options::default().tenant(TenantId::parse(DEMO_HOME_TENANT)?)).await;
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
    caller: &Principal,
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

/// `POST /v1/admin/revocations` body: the caller to revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// The caller's tenant (`tid`), a GUID.
    pub tenant_id: String,
    /// The caller's object id (`oid`), a GUID.
    pub object_id: String,
}

/// What an admin route answers: the status and, except for 204, a JSON body.
pub struct AdminAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body (`None` for 204).
    pub body: Option<Value>,
}

fn admin_error(status: u16, error: &str, description: String) -> AdminAnswer {
    AdminAnswer {
        status,
        body: Some(json!({ "error": error, "error_description": description })),
    }
}

/// After the route's `Require`: revokes every token of the caller named in `body`
/// issued before now. 204; 400 for a bad body; 507 when the list is full; 503 when the
/// revocation file cannot be written (see the route table above).
pub fn revoke(governor: &Governor, admin: &Principal, body: &[u8]) -> AdminAnswer {
    let request: RevocationRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return admin_error(
                400,
                "invalid_request",
                format!("expected {{\"tenant_id\": \"<guid>\", \"object_id\": \"<guid>\"}}: {e}"),
            );
        }
    };
    let id = match (
        TenantId::parse(&request.tenant_id),
        ObjectId::parse(&request.object_id),
    ) {
        (Ok(tenant), Ok(object)) => PrincipalId::new(tenant, object),
        (Err(e), _) => return admin_error(400, "invalid_request", format!("tenant_id: {e}")),
        (_, Err(e)) => return admin_error(400, "invalid_request", format!("object_id: {e}")),
    };
    match governor.revoke(&id, SystemTime::now()) {
        Ok(()) => {
            println!("revoked {id} (by {})", admin.id());
            AdminAnswer {
                status: 204,
                body: None,
            }
        }
        Err(e @ RevocationError::Full { .. }) => {
            admin_error(507, "revocation_not_recorded", e.to_string())
        }
        Err(e) => admin_error(503, "revocation_not_recorded", e.to_string()),
    }
}

/// After the route's `Require`: this replica's view of the fleet.
pub fn fleet_status(governor: &Governor) -> Value {
    serde_json::to_value(governor.fleet_status())
        .unwrap_or_else(|e| json!({ "error": e.to_string() }))
}
