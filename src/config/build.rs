//! From a parsed [`Config`] to the things it describes: the governor, its audit trail,
//! the route table.

use std::time::Duration;

use super::{AuditMode, AuditSinkKind, Config, ConfigFileError};
use crate::http::{Route, RouteTable};
use crate::{AuditLog, Cloud, Governor, GovernorBuilder, Policy};

impl Config {
    /// The [`Governor`] this configuration describes, writing to `audit`; no network
    /// access yet (see [`Governor::prefetch_keys`]).
    ///
    /// # Errors
    /// A [`ConfigFileError`] naming the key at fault, or the governor's own refusal.
    pub fn governor(&self, audit: AuditLog) -> Result<Governor, ConfigFileError> {
        Ok(self.governor_builder(audit)?.build()?)
    }

    /// The [`GovernorBuilder`] of [`governor`](Self::governor), for callers that add
    /// what a file cannot say (a custom group resolver, an HTTP client).
    ///
    /// # Errors
    /// As [`governor`](Self::governor).
    pub fn governor_builder(&self, audit: AuditLog) -> Result<GovernorBuilder, ConfigFileError> {
        let cloud = self.cloud()?;
        let policy = load_policy("policy.path", &self.policy.path)?;
        let mut builder = self
            .entra_builder(Governor::builder().cloud(cloud.clone()))?
            .audit(audit)
            .audit_display_names(self.audit.display_names)
            .audit_groups(self.audit.groups)
            .policy(policy);
        if let Some(shadow) = &self.policy.shadow {
            builder = builder.shadow_policy(load_policy("policy.shadow", shadow)?);
        }
        if let Some(file) = &self.revocations.file {
            builder = builder.revocations_file(file);
        }
        if let Some(max) = self.revocations.max {
            builder = builder.max_revocations(max);
        }
        let fleet = self.fleet()?;
        if let Some(graph) = &self.graph {
            #[cfg(feature = "graph")]
            {
                builder =
                    builder.group_resolver(self.graph_resolver(graph, &cloud, fleet.as_ref())?);
            }
            // Without the feature a [graph] section is an error, not silently ignored.
            #[cfg(not(feature = "graph"))]
            {
                let _ = (graph, &fleet);
                return Err(ConfigFileError::invalid(
                    "graph",
                    "this build has no Microsoft Graph resolver: build with the `graph` feature",
                ));
            }
        }
        #[cfg(feature = "redis")]
        if let Some(fleet) = fleet {
            builder = builder.fleet(fleet);
        }
        Ok(builder)
    }

    /// The `[entra]` cloud: `authority` if set, else the named `cloud`.
    pub(super) fn cloud(&self) -> Result<Cloud, ConfigFileError> {
        let e = &self.entra;
        Ok(match (e.authority.as_deref(), e.cloud.as_deref()) {
            (Some(authority), _) => Cloud::custom(authority),
            (None, None | Some("global")) => Cloud::global(),
            (None, Some("us_government")) => Cloud::us_government(),
            (None, Some("china")) => Cloud::china(),
            (None, Some(other)) => {
                return Err(ConfigFileError::invalid(
                    "entra.cloud",
                    format!("{other:?}: expected global, us_government or china"),
                ));
            }
        })
    }

    fn entra_builder(
        &self,
        mut builder: GovernorBuilder,
    ) -> Result<GovernorBuilder, ConfigFileError> {
        let e = &self.entra;
        builder = match (&e.tenant, e.tenants.is_empty()) {
            (Some(tenant), true) => builder.tenant(tenant),
            (None, false) => builder.tenants(e.tenants.iter()),
            _ => {
                return Err(ConfigFileError::invalid(
                    "entra",
                    "set exactly one of `tenant` or `tenants`",
                ));
            }
        };
        builder = builder
            .client_id(&e.client_id)
            .groups_claim_emitted(e.groups_claim_emitted)
            .acct_claim_emitted(e.acct_claim_emitted);
        for uri in &e.app_id_uris {
            builder = builder.app_id_uri(uri);
        }
        if !e.token_versions.is_empty() {
            builder = builder.accept_token_versions(&e.token_versions);
        }
        if !e.allowed_client_apps.is_empty() {
            builder = builder.allowed_client_apps(e.allowed_client_apps.iter());
        }
        if let Some(secs) = e.clock_skew_secs {
            builder = builder.clock_skew(Duration::from_secs(secs));
        }
        if let Some(secs) = e.key_refresh_cooldown_secs {
            builder = builder.key_refresh_cooldown(Duration::from_secs(secs));
        }
        if let Some(secs) = e.key_refresh_interval_secs {
            builder = builder.key_refresh_interval((secs > 0).then(|| Duration::from_secs(secs)));
        }
        if let Some(secs) = e.http_timeout_secs {
            builder = builder.http_timeout(Duration::from_secs(secs));
        }
        if e.dangerous_allow_http_loopback {
            builder = builder.dangerous_allow_http_loopback();
        }
        Ok(builder)
    }

    /// The audit trail `[audit]` describes.
    ///
    /// # Errors
    /// [`ConfigFileError::Invalid`] for a `file` sink without a `path`, or a file that
    /// cannot be opened for appending; for an `otlp` sink without the `otel` feature, an
    /// `endpoint`, or a `header_env` variable, or with an endpoint the sink refuses;
    /// for `spans` or `traces_endpoint` with another sink.
    pub fn audit_log(&self) -> Result<AuditLog, ConfigFileError> {
        let a = &self.audit;
        let otlp_only = a.spans != super::AuditSpans::Off || a.traces_endpoint.is_some();
        if otlp_only && a.sink != AuditSinkKind::Otlp {
            return Err(ConfigFileError::invalid(
                "audit.spans",
                "decision spans are exported by the `otlp` sink only",
            ));
        }
        let builder = match a.sink {
            AuditSinkKind::Tracing => AuditLog::builder(crate::TracingSink::new()),
            AuditSinkKind::Stdout => {
                AuditLog::builder(crate::JsonLinesSink::writer(std::io::stdout()))
            }
            AuditSinkKind::File => {
                let path = a.path.as_ref().ok_or_else(|| {
                    ConfigFileError::invalid("audit.path", "the `file` sink needs a path")
                })?;
                let sink = crate::JsonLinesSink::file(path).map_err(|e| {
                    ConfigFileError::invalid("audit.path", format!("{}: {e}", path.display()))
                })?;
                AuditLog::builder(sink)
            }
            AuditSinkKind::Otlp => AuditLog::builder(otlp_sink(a)?),
        };
        let on_full = match a.mode {
            AuditMode::Wait => crate::audit::OnFull::Wait,
            AuditMode::Drop => crate::audit::OnFull::Drop,
        };
        Ok(builder.on_full(on_full).strict(a.strict).build())
    }

    /// The `[[routes]]`, in order.
    ///
    /// # Errors
    /// [`ConfigFileError::Invalid`] naming the route (`routes[2]`) and what is wrong.
    pub fn route_table(&self) -> Result<RouteTable, ConfigFileError> {
        let routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Route::new(&r.method, &r.path, &r.action, &r.resource)
                    .map_err(|e| ConfigFileError::invalid(format!("routes[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteTable::new(routes))
    }

    /// The `[upstream] headers`, checked: HTTP header names (lowercased), none of them
    /// `authorization`, `host` or a hop-by-hop or framing header.
    ///
    /// # Errors
    /// [`ConfigFileError::Invalid`] naming the header.
    pub fn upstream_headers(&self) -> Result<Vec<(String, super::UpstreamValue)>, ConfigFileError> {
        const RESERVED: &[&str] = &[
            "authorization",
            "connection",
            "content-length",
            "host",
            "keep-alive",
            "proxy-authorization",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ];
        self.upstream
            .headers
            .iter()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let token = !lower.is_empty()
                    && lower
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token || RESERVED.contains(&lower.as_str()) {
                    return Err(ConfigFileError::invalid(
                        format!("upstream.headers.{name}"),
                        "not a header name an allow may set",
                    ));
                }
                Ok((lower, *value))
            })
            .collect()
    }

    /// How often the policy file is checked for changes; `None`: never.
    pub fn policy_reload_interval(&self) -> Option<Duration> {
        match self.policy.reload_interval_secs {
            None => Some(Duration::from_secs(2)),
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs)),
        }
    }
}

#[cfg(feature = "redis")]
use crate::fleet::Fleet;
/// Stands in for [`crate::fleet::Fleet`] in a build without fleet mode.
#[cfg(not(feature = "redis"))]
enum Fleet {}

impl Config {
    /// The `[graph]` resolver: the `[entra]` cloud, tenant and client id; the credential
    /// from the environment or from files; shared with the fleet when there is one.
    #[cfg(feature = "graph")]
    fn graph_resolver(
        &self,
        graph: &super::GraphConfig,
        cloud: &Cloud,
        fleet: Option<&Fleet>,
    ) -> Result<crate::GraphGroupResolver, ConfigFileError> {
        let e = &self.entra;
        let home = e
            .tenant
            .as_deref()
            .or(e.tenants.first().map(String::as_str));
        let tenant = home
            .and_then(|t| crate::TenantId::parse(t).ok())
            .ok_or_else(|| {
                ConfigFileError::invalid(
                    "graph",
                    "the [entra] tenant must be a tenant id (GUID), not a domain, to resolve \
                 groups through Microsoft Graph",
                )
            })?;
        let credential = graph_credential(graph)?;
        let mut builder =
            crate::GraphGroupResolver::builder(cloud, tenant, &e.client_id, credential);
        if let Some(secs) = graph.cache_ttl_secs {
            builder = builder.cache_ttl(Duration::from_secs(secs));
        }
        if let Some(capacity) = graph.cache_capacity {
            builder = builder.cache_capacity(capacity);
        }
        if let Some(secs) = graph.timeout_secs {
            builder = builder.time_budget(Duration::from_secs(secs));
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
        builder.build().map_err(|e| match e {
            // A workload identity's tenant or cloud, a managed identity's endpoint.
            crate::error::ConfigError::InvalidCredential { .. } if graph.credential.is_some() => {
                ConfigFileError::invalid("graph.credential", e.to_string())
            }
            e => e.into(),
        })
    }

    /// The `[fleet]` handle, if configured (no network access yet).
    #[cfg(feature = "redis")]
    fn fleet(&self) -> Result<Option<Fleet>, ConfigFileError> {
        let Some(f) = &self.fleet else {
            return Ok(None);
        };
        let key = crate::fleet::FleetKey::from_env(&f.key_env).map_err(|e| {
            ConfigFileError::invalid("fleet.key_env", format!("{}: {e}", f.key_env))
        })?;
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
    fn fleet(&self) -> Result<Option<Fleet>, ConfigFileError> {
        match &self.fleet {
            None => Ok(None),
            Some(_) => Err(ConfigFileError::invalid(
                "fleet",
                "this build has no fleet mode: build with the `redis` feature",
            )),
        }
    }
}

/// The `[graph]` credential: a secret from the named environment variable, a
/// certificate and its key from files (PEM or DER), or (`credential`) a workload or
/// managed identity, which keep no secret.
#[cfg(feature = "graph")]
pub(super) fn graph_credential(
    graph: &super::GraphConfig,
) -> Result<crate::ClientCredential, ConfigFileError> {
    use super::GraphCredentialKind;
    use crate::graph::ManagedIdentityId;
    if let Some(kind) = graph.credential {
        if graph.client_secret_env.is_some()
            || graph.certificate_path.is_some()
            || graph.private_key_path.is_some()
        {
            return Err(ConfigFileError::invalid(
                "graph.credential",
                "a workload or managed identity takes no client_secret_env, certificate_path \
                 or private_key_path",
            ));
        }
        let from_env = |e: crate::error::ConfigError| {
            ConfigFileError::invalid("graph.credential", e.to_string())
        };
        return match kind {
            GraphCredentialKind::WorkloadIdentity => {
                if graph.client_id.is_some() {
                    return Err(ConfigFileError::invalid(
                        "graph.client_id",
                        "only with credential = \"managed_identity\": a workload identity's \
                         client id is AZURE_CLIENT_ID",
                    ));
                }
                crate::ClientCredential::workload_identity_from_env().map_err(from_env)
            }
            GraphCredentialKind::ManagedIdentity => {
                let id = match &graph.client_id {
                    Some(id) if crate::ids::is_guid(id) => ManagedIdentityId::ClientId(id.clone()),
                    Some(_) => {
                        return Err(ConfigFileError::invalid(
                            "graph.client_id",
                            "not a GUID: the client id of a user-assigned managed identity",
                        ));
                    }
                    None => ManagedIdentityId::SystemAssigned,
                };
                crate::ClientCredential::managed_identity_from_env(id).map_err(from_env)
            }
        };
    }
    if graph.client_id.is_some() {
        return Err(ConfigFileError::invalid(
            "graph.client_id",
            "only with credential = \"managed_identity\"",
        ));
    }
    match (
        &graph.client_secret_env,
        &graph.certificate_path,
        &graph.private_key_path,
    ) {
        (Some(name), None, None) => {
            let secret = std::env::var(name).map_err(|_| {
                ConfigFileError::invalid(
                    "graph.client_secret_env",
                    format!("the environment variable {name} is not set"),
                )
            })?;
            Ok(crate::ClientCredential::secret(secret))
        }
        (None, Some(certificate), Some(key)) => {
            let certificate = der_file("graph.certificate_path", certificate)?;
            let key = der_file("graph.private_key_path", key)?;
            Ok(crate::ClientCredential::certificate(&key, &certificate)?)
        }
        _ => Err(ConfigFileError::invalid(
            "graph",
            "set either client_secret_env, or certificate_path and private_key_path, or \
             credential = \"workload_identity\" or \"managed_identity\"",
        )),
    }
}

/// A DER file, or the first PEM block of a PEM file, decoded.
#[cfg(feature = "graph")]
fn der_file(key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigFileError> {
    use base64::Engine as _;
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigFileError::invalid(key, format!("{}: {e}", path.display())))?;
    let Some(text) = std::str::from_utf8(&bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN "))
    else {
        return Ok(bytes);
    };
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| ConfigFileError::invalid(key, format!("{}: not valid PEM", path.display())))
}

/// Loads the policy file `path`, named by configuration key `key` in errors.
fn load_policy(key: &'static str, path: &std::path::Path) -> Result<Policy, ConfigFileError> {
    Policy::from_path(path).map_err(|source| ConfigFileError::Policy {
        key,
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// The `otlp` sink `[audit]` describes: endpoint, `service.name`, headers from the
/// environment (a missing variable is named, a value never shown).
#[cfg(feature = "otel")]
fn otlp_sink(a: &super::AuditConfig) -> Result<crate::audit::OtlpLogSink, ConfigFileError> {
    let endpoint = a.endpoint.as_deref().ok_or_else(|| {
        ConfigFileError::invalid("audit.endpoint", "the `otlp` sink needs an endpoint")
    })?;
    use crate::audit::otlp::DecisionSpans;
    let mut builder = crate::audit::OtlpLogSink::builder(endpoint).decision_spans(match a.spans {
        super::AuditSpans::Off => DecisionSpans::Off,
        super::AuditSpans::SampledParents => DecisionSpans::SampledParents,
        super::AuditSpans::ParentBased => DecisionSpans::ParentBased,
    });
    if let Some(url) = &a.traces_endpoint {
        builder = builder.traces_endpoint(url.clone());
    }
    if let Some(name) = &a.service_name {
        builder = builder.service_name(name.clone());
    }
    for (header, variable) in &a.header_env {
        let value = std::env::var(variable).map_err(|_| {
            ConfigFileError::invalid(
                format!("audit.header_env.{header}"),
                format!("environment variable {variable} is not set (or not UTF-8)"),
            )
        })?;
        builder = builder.header(header.clone(), value);
    }
    builder.build().map_err(|e| {
        let key = match e {
            crate::audit::otlp::OtlpConfigError::InvalidHeader { .. } => "audit.header_env",
            _ => "audit.endpoint",
        };
        ConfigFileError::invalid(key, e.to_string())
    })
}

/// Without the `otel` feature an `otlp` sink cannot be built.
#[cfg(not(feature = "otel"))]
fn otlp_sink(_: &super::AuditConfig) -> Result<crate::MemorySink, ConfigFileError> {
    Err(ConfigFileError::invalid(
        "audit.sink",
        "the `otlp` sink needs entra-governor's `otel` feature",
    ))
}
