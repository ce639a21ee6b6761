//! The tables of a configuration file, as parsed: `[listen]`, `[entra]`, `[policy]`,
//! `[audit]`, `[revocations]`, `[graph]`, `[fleet]`, `[upstream]`, `[authzen]` and
//! `[[routes]]`. Every table refuses unknown keys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// A whole configuration file; see `examples/service.toml` for every key, annotated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the service (or an example server) listens.
    #[serde(default)]
    pub listen: ListenConfig,
    /// The identity provider and the API's app registration.
    pub entra: EntraConfig,
    /// The authorization policy.
    pub policy: PolicyConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Revocations kept across restarts of a single replica.
    #[serde(default)]
    pub revocations: RevocationsConfig,
    /// Group overage resolved through Microsoft Graph.
    #[serde(default)]
    pub graph: Option<GraphConfig>,
    /// Fleet mode: state shared with every replica through Redis (feature `redis`).
    #[serde(default)]
    pub fleet: Option<FleetConfig>,
    /// What an allowed request carries to the upstream (the decision service).
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// The AuthZEN endpoints' policy enforcement points (the decision service).
    #[serde(default)]
    pub authzen: AuthzenConfig,
    /// Which gateway's headers `/forward-auth` reads (the decision service).
    #[serde(default)]
    pub forward_auth: ForwardAuthConfig,
    /// Method and path templates mapped to an action and a resource (the decision
    /// service); first match wins, an unmatched request is denied.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `[listen]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// The HTTP address: forward-auth, Envoy's HTTP mode, AuthZEN, health, admin.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// The gRPC address: Envoy's `ext_authz` v3 `Check`.
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
}

/// `[entra]`.
#[derive(Debug, Clone, Deserialize)]
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
    /// Accepted token versions, `"1.0"` and/or `"2.0"` (default both).
    #[serde(default)]
    pub token_versions: Vec<crate::TokenVersion>,
    /// Client applications (`azp`/`appid`) allowed to call; empty: any.
    #[serde(default)]
    pub allowed_client_apps: Vec<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    #[serde(default)]
    pub clock_skew_secs: Option<u64>,
    /// Shortest interval between two key fetches for an unknown `kid`, in seconds.
    #[serde(default)]
    pub key_refresh_cooldown_secs: Option<u64>,
    /// Periodic key refresh, in seconds; 0 turns it off.
    #[serde(default)]
    pub key_refresh_interval_secs: Option<u64>,
    /// Timeout of each request to Entra's metadata and keys, in seconds.
    #[serde(default)]
    pub http_timeout_secs: Option<u64>,
    /// The app registration emits group claims: a token without `groups` is in no group.
    #[serde(default)]
    pub groups_claim_emitted: bool,
    /// The app registration emits the `acct` optional claim.
    #[serde(default)]
    pub acct_claim_emitted: bool,
    /// Allow a plain-http authority on a loopback host (local look-alikes only).
    #[serde(default)]
    pub dangerous_allow_http_loopback: bool,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The policy file (TOML); relative to the configuration file.
    pub path: PathBuf,
    /// How often the file is checked for changes, in seconds (default 2; 0: never).
    #[serde(default)]
    pub reload_interval_secs: Option<u64>,
    /// A shadow policy file (TOML), decided beside the live one and never enforced;
    /// relative to the configuration file, reloaded like `path`. Needs an `[audit]`
    /// trail, where its differences are written.
    #[serde(default)]
    pub shadow: Option<PathBuf>,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where events go: `tracing` (default), `file` (JSON Lines at `path`), `stdout`
    /// (JSON Lines) or `otlp` (OTLP log records to `endpoint`, feature `otel`).
    #[serde(default)]
    pub sink: AuditSinkKind,
    /// The `otlp` sink's OTLP/HTTP endpoint: `https://collector:4318` (`/v1/logs` is
    /// appended when there is no path), or `http://` on a loopback host.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The `otlp` sink's `service.name` resource attribute (default `entra-governor`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// The `otlp` sink's headers, each read from the environment variable named here at
    /// start-up (`header_env = { "x-api-key" = "OTLP_API_KEY" }`), so that the file never
    /// holds the secret.
    #[serde(default)]
    pub header_env: std::collections::BTreeMap<String, String>,
    /// The `otlp` sink's decision spans: `off` (default), `sampled_parents` (a span for
    /// each decision whose request carried a sampled `traceparent`) or `parent_based`
    /// (also a root span for each untraced request).
    #[serde(default)]
    pub spans: AuditSpans,
    /// Where the `otlp` sink's decision spans go; by default `endpoint`'s base with
    /// `/v1/traces`.
    #[serde(default)]
    pub traces_endpoint: Option<String>,
    /// The JSON Lines file of the `file` sink; relative to the configuration file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// What a full queue does: `wait` (default, lossless) or `drop`.
    #[serde(default)]
    pub mode: AuditMode,
    /// Strict mode: refuse requests while the sink fails.
    #[serde(default)]
    pub strict: bool,
    /// Record display names (a mutable, personal attribute); off by default.
    #[serde(default)]
    pub display_names: bool,
    /// Which of the caller's groups decision events record: `bound` (default: those the
    /// policy and the shadow policy bind) or `all`.
    #[serde(default)]
    pub groups: crate::audit::AuditGroups,
}

/// `[audit] sink`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSinkKind {
    /// `tracing` events under the audit target.
    #[default]
    Tracing,
    /// A JSON Lines file.
    File,
    /// JSON Lines on standard output.
    Stdout,
    /// OTLP log records over OTLP/HTTP (needs the crate's `otel` feature).
    Otlp,
}

/// `[audit] spans`: which decisions the `otlp` sink also exports as spans
/// (`audit::otlp::DecisionSpans`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSpans {
    /// Log records only.
    #[default]
    Off,
    /// Spans for requests with a sampled `traceparent`, as children of the caller's span.
    SampledParents,
    /// Those, and root spans for requests without a `traceparent`.
    ParentBased,
}

/// `[audit] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditMode {
    /// A full queue makes callers wait: nothing is lost.
    #[default]
    Wait,
    /// A full queue drops events (counted).
    Drop,
}

/// `[revocations]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationsConfig {
    /// A JSON file keeping revocations across restarts (single replica); relative to the
    /// configuration file.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The most revocations held at once.
    #[serde(default)]
    pub max: Option<usize>,
}

/// `[graph]`: resolve group overage through Microsoft Graph as the `[entra]` application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphConfig {
    /// The name of the environment variable holding the client secret (never the
    /// secret itself).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The certificate uploaded to the app registration (PEM or DER); with
    /// `private_key_path`, instead of a secret.
    #[serde(default)]
    pub certificate_path: Option<PathBuf>,
    /// The certificate's RSA private key (PKCS#8, PEM or DER).
    #[serde(default)]
    pub private_key_path: Option<PathBuf>,
    /// A credential without any secret in the configuration or the process:
    /// `"workload_identity"` (AKS: the webhook's `AZURE_FEDERATED_TOKEN_FILE`,
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`) or
    /// `"managed_identity"` (IMDS, or App Service's `IDENTITY_ENDPOINT` and
    /// `IDENTITY_HEADER` when set). Instead of a secret or a certificate.
    #[serde(default)]
    pub credential: Option<GraphCredentialKind>,
    /// With `credential = "managed_identity"`: the client id of the user-assigned identity
    /// to use (default: the system-assigned identity).
    #[serde(default)]
    pub client_id: Option<String>,
    /// How long a membership answer is cached, in seconds (never past the token's expiry).
    #[serde(default)]
    pub cache_ttl_secs: Option<u64>,
    /// How many principals' answers are cached.
    #[serde(default)]
    pub cache_capacity: Option<u64>,
    /// The time budget of one lookup, retries included, in seconds.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// `graph.credential`: a credential that keeps no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphCredentialKind {
    /// Workload identity federation (AKS), from the Azure SDKs' environment variables.
    WorkloadIdentity,
    /// A managed identity (IMDS, or the App Service identity endpoint).
    ManagedIdentity,
}

/// `[fleet]`: share revocations, Graph memberships and the policy version with every
/// replica through Redis.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// `rediss://host:6380` (TLS), or `redis://` to a loopback host.
    pub redis_url: String,
    /// The name of the environment variable holding the fleet key.
    pub key_env: String,
    /// The prefix of every key the fleet writes: one per service.
    #[serde(default)]
    pub namespace: Option<String>,
    /// This replica's id in the fleet status.
    #[serde(default)]
    pub replica_id: Option<String>,
    /// Strict mode: refuse with 503 while the revocation view is older than this.
    #[serde(default)]
    pub strict_max_staleness_secs: Option<u64>,
}

/// `[upstream]`: what an allowed request carries on to the upstream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Header name to the value it carries, e.g. `"x-entra-object-id" = "object_id"`.
    #[serde(default)]
    pub headers: BTreeMap<String, UpstreamValue>,
    /// Remove the `Authorization` header before the request reaches the upstream.
    #[serde(default)]
    pub remove_authorization: bool,
}

/// A value an allowed request can carry to the upstream in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamValue {
    /// The caller's tenant id (`tid`).
    TenantId,
    /// The caller's object id (`oid`).
    ObjectId,
    /// `tid/oid`, the caller's stable key.
    Principal,
    /// `user`, `guest` or `application`.
    Kind,
    /// The client application (`azp`/`appid`).
    ClientAppId,
    /// The grant that allowed the request (`role:binding`).
    Grant,
    /// The action the route asked for.
    Action,
    /// The resource the route named.
    Resource,
    /// The live policy's version.
    PolicyVersion,
}

/// `[forward_auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// Which pair of headers names the original request: `nginx` (default;
    /// `X-Original-Method`, `X-Original-URI`) or `traefik` (`X-Forwarded-Method`,
    /// `X-Forwarded-Uri`). Only that pair is read: a gateway passes the client's other
    /// headers through, so reading both would let a client choose what is decided.
    #[serde(default)]
    pub headers: ForwardAuthHeaders,
}

/// `[forward_auth] headers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardAuthHeaders {
    /// `X-Original-Method` and `X-Original-URI` (nginx `auth_request`).
    #[default]
    Nginx,
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik `forwardAuth`, Caddy).
    Traefik,
}

impl ForwardAuthHeaders {
    /// The (method, URI) header names.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Nginx => ("x-original-method", "x-original-uri"),
            Self::Traefik => ("x-forwarded-method", "x-forwarded-uri"),
        }
    }
}

/// `[authzen]`: how policy enforcement points authenticate to the AuthZEN endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzenConfig {
    /// The name of the environment variable holding the shared bearer secret PEPs send
    /// (`Authorization: Bearer <secret>`); at least 32 bytes.
    #[serde(default)]
    pub pep_token_env: Option<String>,
    /// Serve the AuthZEN endpoints to any caller (a PEP on a private network you trust
    /// entirely). Off: without `pep_token_env` the endpoints answer 401.
    #[serde(default)]
    pub dangerous_allow_unauthenticated_peps: bool,
    /// The `policy_decision_point` the well-known metadata names (the URL PEPs reach
    /// this service at); default `http://<listen.http>`.
    #[serde(default)]
    pub policy_decision_point: Option<String>,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The HTTP method (`GET`, `POST`, ...) or `*` for any.
    pub method: String,
    /// The path template, e.g. `/v1/models/{model}/infer`.
    pub path: String,
    /// The action, e.g. `inference.invoke`.
    pub action: String,
    /// The resource template, e.g. `models/{model}`.
    pub resource: String,
}
