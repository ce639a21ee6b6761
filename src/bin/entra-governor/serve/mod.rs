//! `entra-governor serve --config <file>`: the decision service.
//!
//! | module | serves |
//! |---|---|
//! | `gateway` | `/forward-auth` (nginx, Traefik) and `/envoy/…` (Envoy's HTTP ext_authz mode) |
//! | `envoy` | `envoy.service.auth.v3.Authorization/Check` over gRPC |
//! | `authzen` | the AuthZEN Authorization API 1.0 and its well-known metadata |
//! | `ops` | `/healthz`, `/readyz`, `/metrics`, the admin routes |
//! | `reload` | the policy file watched and reloaded atomically |

mod authzen;
mod envoy;
mod gateway;
mod ops;
mod reload;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use entra_governor::Governor;
use entra_governor::config::Config;
use entra_governor::http::Gate;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A boxed error with its causes, printed as one line by `main`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct Service {
    /// Decides gateway requests through the routes.
    pub gate: Gate,
    /// How AuthZEN PEPs authenticate.
    pub peps: Arc<authzen::PepAuth>,
    /// The AuthZEN metadata's `policy_decision_point`.
    pub pdp_url: Arc<str>,
    /// Which headers `/forward-auth` reads the original request from.
    pub forward_auth: entra_governor::config::ForwardAuthHeaders,
    /// The policy reloader's counters.
    pub reloads: Arc<reload::ReloadStats>,
    /// True once the service is shutting down: `/readyz` answers 503.
    pub stopping: watch::Receiver<bool>,
    /// Renders `/metrics` from the process's Prometheus recorder.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl Service {
    /// The governor.
    pub fn governor(&self) -> &Governor {
        self.gate.governor()
    }
}

/// Runs the service until SIGTERM or Ctrl-C, then drains requests and flushes the audit
/// trail.
pub fn run(config_path: &Path) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config_path))
}

async fn serve(config_path: &Path) -> Result<(), BoxError> {
    let config = Config::load(config_path)?;
    // Before the governor: its request-path metric handles bind to this recorder.
    let metrics = install_metrics()?;
    let governor = config.governor(config.audit_log()?)?;
    let gate = Gate::new(
        governor.clone(),
        config.route_table()?,
        config.upstream_headers()?,
        config.upstream.remove_authorization,
    );
    let http_addr = config.listen.http;
    let grpc_addr = config.listen.grpc;
    if http_addr.is_none() && grpc_addr.is_none() {
        return Err("listen: set `http`, `grpc` or both".into());
    }
    let http = bind(http_addr).await?;
    let grpc = bind(grpc_addr).await?;
    let (stop, stopping) = watch::channel(false);
    let service = Service {
        pdp_url: authzen::pdp_url(&config, http.as_ref())?.into(),
        peps: Arc::new(authzen::PepAuth::from_config(&config.authzen)?),
        reloads: Arc::new(reload::ReloadStats::default()),
        forward_auth: config.forward_auth.headers,
        gate,
        stopping,
        metrics,
    };
    load_keys(&governor, stop.subscribe()).await;
    spawn_metrics_upkeep(service.metrics.clone(), stop.subscribe());
    if let Some(every) = config.policy_reload_interval() {
        reload::spawn(
            service.clone(),
            config.policy.path.clone(),
            every,
            reload::Slot::Live,
        );
        if let Some(shadow) = &config.policy.shadow {
            reload::spawn(service.clone(), shadow.clone(), every, reload::Slot::Shadow);
        }
    }
    log_summary(&config, &service, http.as_ref(), grpc.as_ref());

    let http_task =
        http.map(|l| tokio::spawn(gateway::serve(l, service.clone(), stop.subscribe())));
    let grpc_task = grpc.map(|l| tokio::spawn(envoy::serve(l, service.clone(), stop.subscribe())));
    shutdown_signal().await;
    tracing::info!("shutting down: draining requests, then flushing the audit trail");
    let _ = stop.send(true);
    for task in [http_task, grpc_task].into_iter().flatten() {
        if let Err(e) = task.await? {
            tracing::error!(error = %e, "a listener failed while draining");
        }
    }
    governor.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often a replica that started without signing keys tries again (the key store's
/// own backoff, 1 s doubling to 60 s, decides whether a try reaches Entra).
const KEY_RETRY_EVERY: Duration = Duration::from_secs(1);

/// Fetches the signing keys; when that fails, keeps trying in the background until they
/// load or the service stops. An unready replica gets no traffic behind a load
/// balancer, so it must not wait for a request to fetch them.
async fn load_keys(governor: &Governor, mut stopping: watch::Receiver<bool>) {
    match governor.prefetch_keys().await {
        Ok(n) => return tracing::info!(keys = n, "signing keys loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "signing keys not loaded yet; requests get 503 until they are")
        }
    }
    let governor = governor.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(KEY_RETRY_EVERY) => {}
                _ = stopping.changed() => return,
            }
            if let Ok(n) = governor.prefetch_keys().await {
                return tracing::info!(keys = n, "signing keys loaded");
            }
        }
    });
}

/// Installs the process's Prometheus recorder (the decision latency as a histogram) and
/// describes every metric.
fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle, BoxError> {
    use entra_governor::observe;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = observe::HISTOGRAM_BUCKETS
        .iter()
        .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
            builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)
        })?
        .install_recorder()?;
    observe::describe();
    Ok(handle)
}

/// How often the recorder drains its histogram samples into buckets (the exporter's own
/// default): without it an unscraped replica's samples would grow without bound.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep until the service stops (`install_recorder` starts none).
fn spawn_metrics_upkeep(
    handle: metrics_exporter_prometheus::PrometheusHandle,
    mut stopping: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(METRICS_UPKEEP_EVERY) => handle.run_upkeep(),
                _ = stopping.changed() => return,
            }
        }
    });
}

async fn bind(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, BoxError> {
    let Some(addr) = addr else { return Ok(None) };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    Ok(Some(listener))
}

/// SIGTERM (Kubernetes, systemd, Compose) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// One line saying what was configured; never a secret (only the names of the
/// environment variables that hold them).
fn log_summary(
    config: &Config,
    service: &Service,
    http: Option<&TcpListener>,
    grpc: Option<&TcpListener>,
) {
    let addr = |l: Option<&TcpListener>| {
        l.and_then(|l| l.local_addr().ok())
            .map_or_else(|| "off".to_owned(), |a| a.to_string())
    };
    let tenants = match (&config.entra.tenant, config.entra.tenants.len()) {
        (Some(t), _) => t.clone(),
        (None, n) => format!("{n} tenants"),
    };
    let audit = match (&config.audit.sink, &config.audit.path) {
        (entra_governor::config::AuditSinkKind::File, Some(p)) => format!("file {}", p.display()),
        (sink, _) => format!("{sink:?}").to_lowercase(),
    };
    tracing::info!(
        http = %addr(http),
        grpc = %addr(grpc),
        tenant = %tenants,
        client_id = %config.entra.client_id,
        policy = %config.policy.path.display(),
        policy_version = %service.governor().policy_version(),
        routes = service.gate.routes().routes().len(),
        graph = config.graph.is_some(),
        fleet = config.fleet.is_some(),
        audit = %audit,
        authzen_peps = service.peps.describe(),
        "entra-governor serving"
    );
}
