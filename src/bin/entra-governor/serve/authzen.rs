//! The AuthZEN Authorization API 1.0 (OpenID, final): `POST /access/v1/evaluation`,
//! `POST /access/v1/evaluations` and `GET /.well-known/authzen-configuration`.
//!
//! The Entra profile: the subject proves itself with its Entra access token in
//! `subject.properties.token`; `subject.id`, when given, must name the same caller (its
//! `tid/oid`, or its `oid`). `action.name` is the policy's action; the resource is
//! `resource.type` + `/` + `resource.id` (`{"type": "models", "id": "llama-3"}` is
//! `models/llama-3`). A deny is HTTP 200 with `"decision": false`; its `context` says
//! why: `reason` (the refusal's `error`, or `subject_mismatch`), `status` (what the
//! adapters would answer), and for a step-up the `www_authenticate` challenge with its
//! `claims`, for a 503 `retry_after`.
//!
//! PEPs authenticate with a shared bearer secret (`[authzen] pep_token_env`); an
//! unauthenticated PEP gets 401 unless `dangerous_allow_unauthenticated_peps` is set.

use std::net::SocketAddr;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use entra_governor::RequestContext;
use entra_governor::config::{AuthzenConfig, Config};
use entra_governor::http::{self, Refusal, request_context};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use super::gateway::with_request_id;
use super::{BoxError, Service};

/// The shortest PEP secret accepted, in bytes.
const MIN_PEP_SECRET: usize = 32;
/// The most evaluations one `evaluations` request may hold.
const MAX_EVALUATIONS: usize = 256;

/// How PEPs authenticate.
pub struct PepAuth {
    secret: Option<Vec<u8>>,
    open: bool,
}

impl PepAuth {
    /// From `[authzen]`: the secret from the named environment variable.
    pub fn from_config(config: &AuthzenConfig) -> Result<Self, BoxError> {
        let secret = match &config.pep_token_env {
            None => None,
            Some(name) => {
                let value = std::env::var(name).map_err(|_| {
                    format!("authzen.pep_token_env: the environment variable {name} is not set")
                })?;
                if value.trim().len() < MIN_PEP_SECRET {
                    return Err(format!(
                        "authzen.pep_token_env: {name} holds fewer than {MIN_PEP_SECRET} bytes"
                    )
                    .into());
                }
                Some(value.trim().as_bytes().to_vec())
            }
        };
        Ok(Self {
            secret,
            open: config.dangerous_allow_unauthenticated_peps,
        })
    }

    /// For the start-up line: how PEPs authenticate (never the secret).
    pub fn describe(&self) -> &'static str {
        match (&self.secret, self.open) {
            (Some(_), _) => "bearer secret",
            (None, true) => "DANGEROUS: unauthenticated",
            (None, false) => "refused (no pep_token_env)",
        }
    }

    /// True when the request's `Authorization` header carries the PEP secret (compared
    /// in constant time).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = &self.secret else {
            return self.open;
        };
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credentials)| credentials.trim());
        presented.is_some_and(|p| verify_slices_are_equal(p.as_bytes(), secret).is_ok())
    }
}

impl std::fmt::Debug for PepAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PepAuth")
            .field("mode", &self.describe())
            .finish()
    }
}

/// `[authzen] policy_decision_point`, or `http://<listen.http>`.
pub fn pdp_url(config: &Config, http: Option<&TcpListener>) -> Result<String, BoxError> {
    if let Some(url) = &config.authzen.policy_decision_point {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let addr: Option<SocketAddr> = http.and_then(|l| l.local_addr().ok());
    let enabled = config.authzen.pep_token_env.is_some()
        || config.authzen.dangerous_allow_unauthenticated_peps;
    match addr {
        // PEPs compare the metadata's identifier with the URL they asked: 0.0.0.0 is none.
        Some(a) if enabled && a.ip().is_unspecified() => Err(
            "authzen.policy_decision_point: set the URL PEPs reach this service at (listen.http \
             is a wildcard address)"
                .into(),
        ),
        Some(a) => Ok(format!("http://{a}")),
        None => Ok(String::new()),
    }
}

/// The AuthZEN routes.
pub fn routes() -> Router<Service> {
    Router::new()
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/.well-known/authzen-configuration", get(configuration))
}

async fn configuration(State(service): State<Service>) -> Json<Value> {
    let base = &service.pdp_url;
    Json(json!({
        "policy_decision_point": base.as_ref(),
        "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
        "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
    }))
}

/// One evaluation's parts; in `evaluations`, each entry's parts replace the defaults.
/// No `Debug`: the subject carries a bearer token.
#[derive(Default, Clone, Deserialize)]
struct Parts {
    #[serde(default)]
    subject: Option<Subject>,
    #[serde(default)]
    action: Option<Action>,
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default)]
    context: Option<Value>,
}

#[derive(Clone, Deserialize)]
struct Subject {
    #[serde(default, rename = "type")]
    _kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct Action {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Resource {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(flatten)]
    defaults: Parts,
    #[serde(default)]
    evaluations: Vec<Parts>,
    #[serde(default)]
    options: Options,
}

#[derive(Debug, Default, Deserialize)]
struct Options {
    #[serde(default)]
    evaluations_semantic: Semantic,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

impl Parts {
    /// These parts, each missing one taken from `defaults` (a batch entry's rule).
    fn or_defaults(&self, defaults: &Parts) -> Parts {
        Parts {
            subject: self.subject.clone().or_else(|| defaults.subject.clone()),
            action: self.action.clone().or_else(|| defaults.action.clone()),
            resource: self.resource.clone().or_else(|| defaults.resource.clone()),
            context: self.context.clone().or_else(|| defaults.context.clone()),
        }
    }

    /// Why these parts are not one whole evaluation, if they are not.
    fn incomplete(&self) -> Option<&'static str> {
        match (&self.subject, &self.action, &self.resource) {
            (Some(_), Some(_), Some(resource)) => resource.invalid(),
            _ => Some("subject, action and resource are required"),
        }
    }
}

impl Resource {
    /// Why `type/id` cannot name a resource, if it cannot: the type is one segment.
    fn invalid(&self) -> Option<&'static str> {
        let type_ok = !self.kind.is_empty() && !self.kind.contains(['/', '%', '\\']);
        (!type_ok || self.id.is_empty())
            .then_some("resource.type must be one path segment and resource.id non-empty")
    }
}

/// A request error: the status and a plain message, as the specification's examples.
fn error(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

/// 401 for a PEP without the secret, with the challenge RFC 6750 asks for.
fn unauthenticated_pep(headers: &HeaderMap) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "the PEP is not authenticated");
    response.headers_mut().insert(
        "www-authenticate",
        axum::http::HeaderValue::from_static("Bearer"),
    );
    with_request_id(response, headers)
}

/// The body parsed, or the message of the 400 to answer: where the JSON is wrong, never
/// serde's text, which can quote the request (and its token).
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "the request is not an AuthZEN request (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

async fn evaluation(
    State(service): State<Service>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !service.peps.admits(&headers) {
        return unauthenticated_pep(&headers);
    }
    let context = context_of(&headers);
    let response = match parse::<Parts>(&body) {
        Ok(parts) => single(&service, &parts, &context).await,
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    };
    with_request_id(response, &headers)
}

async fn evaluations(
    State(service): State<Service>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !service.peps.admits(&headers) {
        return unauthenticated_pep(&headers);
    }
    let context = context_of(&headers);
    let response = match parse::<Batch>(&body) {
        Ok(batch) if batch.evaluations.len() > MAX_EVALUATIONS => error(
            StatusCode::BAD_REQUEST,
            &format!("at most {MAX_EVALUATIONS} evaluations per request"),
        ),
        // Without evaluations the request is one evaluation, answered as one.
        Ok(batch) if batch.evaluations.is_empty() => {
            single(&service, &batch.defaults, &context).await
        }
        Ok(batch) => Json(evaluate_batch(&service, batch, &context).await).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    };
    with_request_id(response, &headers)
}

/// One whole evaluation answered, or 400 naming what is missing.
async fn single(service: &Service, parts: &Parts, context: &RequestContext) -> Response {
    match parts.incomplete() {
        Some(problem) => error(StatusCode::BAD_REQUEST, problem),
        None => Json(evaluate(service, parts, context).await).into_response(),
    }
}

fn context_of(headers: &HeaderMap) -> RequestContext {
    request_context(headers.get("x-request-id").map(|v| v.as_bytes()))
}

/// Each entry with the top-level parts as defaults, in order, stopping where the
/// semantic says.
async fn evaluate_batch(service: &Service, batch: Batch, context: &RequestContext) -> Value {
    let semantic = batch.options.evaluations_semantic;
    if semantic == Semantic::ExecuteAll {
        let entries: Vec<Parts> = batch
            .evaluations
            .iter()
            .map(|entry| entry.or_defaults(&batch.defaults))
            .collect();
        if let Some(shared) = SharedSubject::of(&entries) {
            return json!({ "evaluations": evaluate_shared(service, &shared, &entries, context).await });
        }
    }
    let mut results = Vec::with_capacity(batch.evaluations.len());
    for entry in &batch.evaluations {
        let parts = entry.or_defaults(&batch.defaults);
        let result = evaluate(service, &parts, context).await;
        let decision = result["decision"].as_bool() == Some(true);
        results.push(result);
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !decision,
            Semantic::PermitOnFirstPermit => decision,
        };
        if stop {
            break;
        }
    }
    json!({ "evaluations": results })
}

/// The subject every entry of a batch names, when they all name the same one (the same
/// token and `id`) and every entry is complete: the batch is then the governor's batch
/// question, asked once per action (the token verified once, the policy read once per
/// action, group membership resolved at most once per action).
struct SharedSubject<'a> {
    token: &'a str,
    id: Option<&'a str>,
}

impl<'a> SharedSubject<'a> {
    fn of(entries: &'a [Parts]) -> Option<Self> {
        let mut shared: Option<SharedSubject<'a>> = None;
        for parts in entries {
            if parts.incomplete().is_some() || parts.action.is_none() || parts.resource.is_none() {
                return None;
            }
            let subject = parts.subject.as_ref()?;
            let token = subject.properties.get("token").and_then(Value::as_str)?;
            let id = subject.id.as_deref().filter(|id| !id.is_empty());
            match &shared {
                None => shared = Some(Self { token, id }),
                Some(s) if s.token == token && s.id == id => {}
                Some(_) => return None,
            }
        }
        shared
    }
}

/// A batch whose entries share one subject, answered through
/// [`Governor::authorize_each`](entra_governor::Governor::authorize_each): the same
/// answers, in order, as one evaluation per entry.
async fn evaluate_shared(
    service: &Service,
    shared: &SharedSubject<'_>,
    entries: &[Parts],
    context: &RequestContext,
) -> Vec<Value> {
    let governor = service.governor();
    let paths: Vec<String> = entries
        .iter()
        .filter_map(|p| p.resource.as_ref())
        .map(|r| format!("{}/{}", r.kind, r.id))
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|p| p.action.as_ref())
        .map(|a| a.name.as_str())
        .collect();
    let authorization = format!("Bearer {}", shared.token);
    let first = paths.first().map_or("", String::as_str);
    let principal = match http::authenticate(
        governor,
        std::iter::once(authorization.as_bytes()),
        first,
        context,
    )
    .await
    {
        Ok(principal) => principal,
        Err(refusal) => return vec![refused(&refusal); entries.len()],
    };
    if let Some(id) = shared.id
        && id != principal.id().to_string()
        && id != principal.object_id().as_str()
    {
        let why = "subject.id does not name the caller the token identifies";
        for (action, path) in actions.iter().zip(&paths) {
            http::record_refusal(
                governor,
                &principal,
                action,
                path,
                "subject_mismatch",
                why,
                context,
            )
            .await;
        }
        return vec![deny_because("subject_mismatch", 403, why); entries.len()];
    }
    let mut results = vec![Value::Null; entries.len()];
    let mut distinct: Vec<&str> = actions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    for action in distinct {
        let indices: Vec<usize> = (0..entries.len())
            .filter(|&i| actions[i] == action)
            .collect();
        let resources: Vec<&str> = indices.iter().map(|&i| paths[i].as_str()).collect();
        let answers = match governor
            .authorize_each(&principal, action, &resources, context)
            .await
        {
            Ok(decisions) => decisions.iter().map(|d| decided(d, governor)).collect(),
            Err(e) => {
                vec![refused(&Refusal::from_authorize_error(&e, governor.cloud())); indices.len()]
            }
        };
        for (i, answer) in indices.into_iter().zip(answers) {
            results[i] = answer;
        }
    }
    results
}

/// A decision as an AuthZEN answer, exactly as [`evaluate`] answers it.
fn decided(decision: &entra_governor::Decision, governor: &entra_governor::Governor) -> Value {
    match Refusal::from_decision(decision, governor.cloud()) {
        None => allowed(decision),
        Some(refusal) => refused(&refusal),
    }
}

fn allowed(decision: &entra_governor::Decision) -> Value {
    json!({
        "decision": true,
        "context": {
            "reason": decision.reason.code(),
            "grant": decision.matched.first().map(|m| m.grant.as_str()),
        },
    })
}

/// One evaluation: `{"decision": bool, "context": {...}}`.
async fn evaluate(service: &Service, parts: &Parts, context: &RequestContext) -> Value {
    let (Some(subject), Some(action), Some(resource), None) = (
        &parts.subject,
        &parts.action,
        &parts.resource,
        parts.incomplete(),
    ) else {
        let problem = parts.incomplete().unwrap_or("incomplete evaluation");
        return deny_because("invalid_request", 400, problem);
    };
    let Some(token) = subject.properties.get("token").and_then(Value::as_str) else {
        return deny_because(
            "invalid_request",
            401,
            "subject.properties.token holds no Entra access token",
        );
    };
    let governor = service.governor();
    let path = format!("{}/{}", resource.kind, resource.id);
    let authorization = format!("Bearer {token}");
    let principal = match http::authenticate(
        governor,
        std::iter::once(authorization.as_bytes()),
        &path,
        context,
    )
    .await
    {
        Ok(principal) => principal,
        Err(refusal) => return refused(&refusal),
    };
    if let Some(id) = subject.id.as_deref().filter(|id| !id.is_empty()) {
        let id_matches = id == principal.id().to_string() || id == principal.object_id().as_str();
        if !id_matches {
            let why = "subject.id does not name the caller the token identifies";
            http::record_refusal(
                governor,
                &principal,
                &action.name,
                &path,
                "subject_mismatch",
                why,
                context,
            )
            .await;
            return deny_because(
                "subject_mismatch",
                403,
                "subject.id does not name the caller the token identifies",
            );
        }
    }
    match http::authorize(governor, &principal, &action.name, &path, context).await {
        Ok(decision) => allowed(&decision),
        Err(refusal) => refused(&refusal),
    }
}

fn deny_because(reason: &str, status: u16, description: &str) -> Value {
    json!({
        "decision": false,
        "context": { "reason": reason, "status": status, "description": description },
    })
}

/// A refusal as an AuthZEN deny: the adapters' status, error and challenge in `context`.
fn refused(refusal: &Refusal) -> Value {
    let mut context = json!({
        "reason": refusal.body.error,
        "status": refusal.status,
        "description": refusal.body.error_description,
    });
    if let Some(challenge) = &refusal.www_authenticate {
        context["www_authenticate"] = json!(challenge);
        if let Some(claims) = claims_of(challenge) {
            context["claims"] = json!(claims);
        }
    }
    if let Some(secs) = refusal.retry_after {
        context["retry_after"] = json!(secs);
    }
    json!({ "decision": false, "context": context })
}

/// The `claims="..."` parameter of a challenge (base64 of the claims request).
fn claims_of(challenge: &str) -> Option<&str> {
    let start = challenge.find("claims=\"")? + "claims=\"".len();
    let end = challenge[start..].find('"')?;
    Some(&challenge[start..start + end])
}
