//! The adapters' HTTP contract (`tests/http/contract.rs`), row by row, through each way a
//! gateway asks the service: forward-auth (nginx, Traefik), Envoy's HTTP mode, Envoy's
//! gRPC `Check` (a tonic client with the same `envoy-types`), and AuthZEN. Every row pins
//! the status, `WWW-Authenticate`, `Retry-After` and the JSON body, so a gateway in front
//! answers the client exactly as the embedded adapters would.

use std::collections::HashMap;

use base64::Engine as _;
use entra_governor::ObjectId;
use entra_governor::testing::{Mode, TestIdp};
use envoy_types::ext_authz::v3::pb::{CheckRequest, HeaderAppendAction, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use serde_json::{Value, json};

use crate::harness::{self, PEP_SECRET, Service};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const CALLER_OID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

/// What the client must get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// 200 to the gateway: the request goes on, with the upstream headers.
    Allow,
    /// The refusal, header for header.
    Refused {
        status: u16,
        www_authenticate: Option<String>,
        retry_after: Option<String>,
        body: String,
    },
}

impl Expect {
    pub fn refused(status: u16, challenge: Option<&str>, error: &str, description: &str) -> Self {
        Self::Refused {
            status,
            www_authenticate: challenge.map(str::to_owned),
            retry_after: None,
            body: format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
        }
    }

    pub fn forbidden() -> Self {
        Self::refused(
            403,
            Some(r#"Bearer error="insufficient_scope""#),
            "insufficient_scope",
            "the caller may not perform this action on this resource",
        )
    }

    fn invalid_token(description: &str) -> Self {
        Self::refused(
            401,
            Some(&format!(
                r#"Bearer error="invalid_token", error_description="{description}""#
            )),
            "invalid_token",
            description,
        )
    }

    fn status(&self) -> u16 {
        match self {
            Self::Allow => 200,
            Self::Refused { status, .. } => *status,
        }
    }
}

/// One gateway question.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub authorization: Vec<String>,
    pub expect: Expect,
}

fn case(name: &'static str, method: &'static str, path: &str, expect: Expect) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        authorization: Vec::new(),
        expect,
    }
}

impl Case {
    fn bearer(mut self, token: &str) -> Self {
        self.authorization.push(format!("Bearer {token}"));
        self
    }

    fn authorization(mut self, value: &str) -> Self {
        self.authorization.push(value.to_owned());
        self
    }

    /// The bearer token, when the case has exactly one (what AuthZEN can carry).
    fn token(&self) -> Option<&str> {
        match self.authorization.as_slice() {
            [one] => one.strip_prefix("Bearer "),
            _ => None,
        }
    }
}

/// The contract's rows, for `idp`'s tokens and the example policy.
pub fn cases(idp: &TestIdp) -> Vec<Case> {
    let scientist = idp
        .token()
        .oid(ObjectId::parse(CALLER_OID).unwrap())
        .scopes("Inference.Invoke Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let expired = idp
        .token()
        .expires_in(-3600)
        .groups([DATA_SCIENTISTS])
        .sign();
    let forged = idp.token().sign_with_foreign_key().sign();
    let id_token = idp.token().id_token().roles(["Trainer"]).sign();
    let engineer = |cp1: bool, acrs: &[&str]| {
        let token = idp
            .token()
            .scopes("Models.Manage")
            .groups([ML_ENGINEERS])
            .acrs(acrs.iter().copied());
        if cp1 {
            token.client_capabilities(["cp1"])
        } else {
            token
        }
        .sign()
    };
    let claims = base64::engine::general_purpose::STANDARD
        .encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
    let step_up = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"{claims}\"",
        idp.authority()
    );
    let overage = idp.token().scopes("Inference.Invoke").overage().sign();
    let no_groups_claim = idp.token().scopes("Inference.Invoke").sign();
    let guest = idp
        .token()
        .guest(idp.add_tenant())
        .scopes("Inference.Invoke")
        .groups(Vec::<String>::new())
        .sign();
    let missing = Expect::refused(
        401,
        Some("Bearer"),
        "invalid_request",
        "bearer token required",
    );
    let malformed = Expect::refused(
        400,
        Some(r#"Bearer error="invalid_request""#),
        "invalid_request",
        "malformed Authorization header",
    );
    vec![
        case(
            "allow: inference on a research model",
            "POST",
            "/v1/models/exp-42/infer?stream=true",
            Expect::Allow,
        )
        .bearer(&scientist),
        case(
            "missing Authorization header",
            "POST",
            "/v1/models/exp-42/infer",
            missing,
        ),
        case(
            "not a bearer header",
            "POST",
            "/v1/models/exp-42/infer",
            malformed,
        )
        .authorization("Basic dXNlcjpwYXNz"),
        case(
            "expired token",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::invalid_token("token expired"),
        )
        .bearer(&expired),
        case(
            "forged signature",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::invalid_token("invalid signature"),
        )
        .bearer(&forged),
        case(
            "an ID token is not an access token",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::invalid_token("not an access token"),
        )
        .bearer(&id_token),
        case(
            "garbage token",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::invalid_token("malformed token"),
        )
        .bearer("a.b.c"),
        case(
            "deny: inference on a release candidate",
            "POST",
            "/v1/models/staging-1/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "allow: a wildcard resource",
            "GET",
            "/v1/datasets/public/wiki/2024",
            Expect::Allow,
        )
        .bearer(&scientist),
        case(
            "deny: personal data",
            "GET",
            "/v1/datasets/pii/patients",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "step-up: a cp1 client is challenged for auth context c1",
            "GET",
            "/v1/datasets/pii/patients",
            Expect::refused(
                401,
                Some(&step_up),
                "insufficient_claims",
                "a stronger or more recent sign-in is required",
            ),
        )
        .bearer(&engineer(true, &[])),
        case(
            "step-up impossible: no cp1, 403",
            "GET",
            "/v1/datasets/pii/patients",
            Expect::forbidden(),
        )
        .bearer(&engineer(false, &[])),
        case(
            "step-up done: auth context c1",
            "GET",
            "/v1/datasets/pii/patients",
            Expect::Allow,
        )
        .bearer(&engineer(true, &["c1"])),
        case(
            "deny: guest",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&guest),
        case(
            "path: an encoded slash cannot add a segment",
            "POST",
            "/v1/models/exp-1%2F..%2Fprod-1/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "path: a dot-dot segment",
            "GET",
            "/v1/datasets/public/../pii/patients",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "path: an empty segment",
            "GET",
            "/v1/datasets/public//wiki",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "path: an escaped dot-dot",
            "GET",
            "/v1/datasets/public/%2E%2e/pii/patients",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "group overage without a resolver: forbidden",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&overage),
        case(
            "no groups claim without a resolver: forbidden",
            "POST",
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&no_groups_claim),
        case(
            "deny: no route matches the path",
            "POST",
            "/v1/models/exp-42/delete",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "deny: no route matches the method",
            "GET",
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "deny: no route, no token",
            "GET",
            "/internal/debug",
            Expect::forbidden(),
        ),
    ]
}

/// What a transport answered, in HTTP terms.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, Vec<String>>,
    pub body: String,
}

impl Answer {
    fn one(&self, name: &str) -> Option<String> {
        let values = self.headers.get(name)?;
        assert_eq!(values.len(), 1, "{name}: {values:?}");
        values.first().cloned()
    }
}

fn http_answer(response: &reqwest::Response) -> HashMap<String, Vec<String>> {
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in response.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(value.to_str().unwrap().to_owned());
    }
    headers
}

/// Asks `/forward-auth` as nginx does (`X-Original-Method`, `X-Original-URI`).
pub async fn forward_auth(base: &str, case: &Case) -> Answer {
    let mut request = reqwest::Client::new()
        .get(format!("{base}/forward-auth"))
        .header("x-original-method", case.method)
        .header("x-original-uri", &case.path)
        // What a client can add through nginx: never read in the nginx style.
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/v1/datasets/public/wiki")
        .header("x-request-id", request_id(case.name));
    for value in &case.authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("the service answers");
    let headers = http_answer(&response);
    Answer {
        status: response.status().as_u16(),
        headers,
        body: response.text().await.unwrap(),
    }
}

/// Asks as Envoy's HTTP mode does: the original method, `/envoy` + the original path.
async fn envoy_http(base: &str, case: &Case) -> Answer {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, format!("{base}/envoy{}", case.path));
    for value in &case.authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("the service answers");
    let headers = http_answer(&response);
    Answer {
        status: response.status().as_u16(),
        headers,
        body: response.text().await.unwrap(),
    }
}

/// The `CheckRequest` Envoy sends for `case`.
pub fn check_request(case: &Case) -> CheckRequest {
    let mut headers = HashMap::from([
        (":authority".to_owned(), "inference.internal".to_owned()),
        ("x-request-id".to_owned(), request_id(case.name)),
        // A client trying to pass as someone else: the allow must overwrite this.
        ("x-entra-principal".to_owned(), "spoofed".to_owned()),
    ]);
    if !case.authorization.is_empty() {
        headers.insert("authorization".to_owned(), case.authorization.join(","));
    }
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: case.method.to_owned(),
                    path: case.path.clone(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Asks `Check` over gRPC; the gRPC code must name the kind of answer.
/// The same request with the headers in `header_map` as raw values, as Envoy sends them
/// with `encode_raw_headers`.
fn raw_check_request(case: &Case) -> CheckRequest {
    let mut request = check_request(case);
    let attributes = request.attributes.as_mut().unwrap();
    let http = attributes.request.as_mut().unwrap().http.as_mut().unwrap();
    let headers = std::mem::take(&mut http.headers)
        .into_iter()
        .map(
            |(key, value)| envoy_types::pb::envoy::config::core::v3::HeaderValue {
                key,
                value: String::new(),
                raw_value: value.into_bytes(),
            },
        )
        .collect();
    http.header_map = Some(envoy_types::pb::envoy::config::core::v3::HeaderMap { headers });
    request
}

/// Asks `Check` over gRPC; the gRPC code must name the kind of answer.
async fn envoy_grpc(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    case: &Case,
) -> Answer {
    envoy_grpc_with(client, case, check_request(case)).await
}

async fn envoy_grpc_with(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    case: &Case,
    request: CheckRequest,
) -> Answer {
    let response = client
        .check(request)
        .await
        .expect("Check answers")
        .into_inner();
    let code = response.status.as_ref().map(|s| s.code).unwrap_or(-1);
    let expected_code = match case.expect.status() {
        200 => tonic::Code::Ok,
        401 => tonic::Code::Unauthenticated,
        503 => tonic::Code::Unavailable,
        _ => tonic::Code::PermissionDenied,
    };
    assert_eq!(code, expected_code as i32, "{}: gRPC status", case.name);
    let mut headers: HashMap<String, Vec<String>> = HashMap::new();
    let (status, body) = match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            for h in ok.headers {
                assert_eq!(
                    h.append_action,
                    HeaderAppendAction::OverwriteIfExistsOrAdd as i32
                );
                let h = h.header.unwrap();
                headers.entry(h.key).or_default().push(h.value);
            }
            assert_eq!(ok.headers_to_remove, ["authorization"], "{}", case.name);
            (200, String::new())
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            for h in denied.headers {
                let h = h.header.unwrap();
                headers.entry(h.key).or_default().push(h.value);
            }
            (denied.status.map_or(0, |s| s.code as u16), denied.body)
        }
        other => panic!("{}: no HTTP response in {other:?}", case.name),
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn request_id(name: &str) -> String {
    name.replace(' ', "-").replace([':', '%', '/', ','], "")
}

/// Checks an HTTP-shaped answer against the row.
fn assert_answer(transport: &str, case: &Case, answer: &Answer, caller: &str) {
    let name = format!("{transport}: {}", case.name);
    assert_eq!(
        answer.status,
        case.expect.status(),
        "{name}: status ({answer:?})"
    );
    match &case.expect {
        Expect::Allow => {
            assert_eq!(
                answer.one("x-entra-kind").as_deref(),
                Some("user"),
                "{name}"
            );
            let principal = answer.one("x-entra-principal").unwrap();
            if case.name.starts_with("allow: ") {
                assert_eq!(principal, caller, "{name}");
            }
            let grant = answer.one("x-entra-grant").unwrap();
            assert!(
                grant.contains('#') && grant.contains(':'),
                "{name}: grant {grant}"
            );
        }
        Expect::Refused {
            www_authenticate,
            retry_after,
            body,
            ..
        } => {
            assert_eq!(
                &answer.one("www-authenticate"),
                www_authenticate,
                "{name}: WWW-Authenticate"
            );
            assert_eq!(
                &answer.one("retry-after"),
                retry_after,
                "{name}: Retry-After"
            );
            assert_eq!(
                answer.one("content-type").as_deref(),
                Some("application/json"),
                "{name}"
            );
            assert_eq!(&answer.body, body, "{name}: body");
            assert!(
                answer.one("x-entra-principal").is_none(),
                "{name}: a refusal names no caller"
            );
        }
    }
}

/// Asks AuthZEN's `evaluation` for a row with one bearer token: the decision, and the
/// refusal's status and challenge in `context`.
async fn authzen(base: &str, case: &Case) -> Option<Value> {
    let token = case.token()?;
    let path = case.path.split('?').next().unwrap();
    let (kind, id) = path.trim_start_matches("/v1/").split_once('/').unwrap();
    // The routes' resources: models/{model} for /v1/models/{model}/infer, datasets/{*name}.
    let (action, resource_type, resource_id) = match kind {
        "models" => (
            "inference.invoke",
            "models",
            id.split('/').next().unwrap().to_owned(),
        ),
        "datasets" => ("datasets.read", "datasets", id.to_owned()),
        _ => return None,
    };
    if case.name.starts_with("deny: no route") || case.name.starts_with("path: ") {
        return None; // path-level rows: AuthZEN names the resource itself
    }
    let body = json!({
        "subject": { "type": "user", "id": "", "properties": { "token": token } },
        "action": { "name": action },
        "resource": { "type": resource_type, "id": resource_id },
        "context": {},
    });
    let response = reqwest::Client::new()
        .post(format!("{base}/access/v1/evaluation"))
        .bearer_auth(PEP_SECRET)
        .header("x-request-id", request_id(case.name))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", case.name);
    assert_eq!(
        response.headers().get("x-request-id").unwrap(),
        request_id(case.name).as_str(),
        "the PDP echoes X-Request-ID"
    );
    Some(serde_json::from_str(&response.text().await.unwrap()).unwrap())
}

fn assert_authzen(case: &Case, answer: &Value) {
    let name = format!("authzen: {}", case.name);
    match &case.expect {
        Expect::Allow => {
            assert_eq!(answer["decision"], json!(true), "{name}: {answer}");
            assert_eq!(answer["context"]["reason"], json!("allow"), "{name}");
        }
        Expect::Refused {
            status,
            www_authenticate,
            body,
            ..
        } => {
            assert_eq!(answer["decision"], json!(false), "{name}: {answer}");
            let context = &answer["context"];
            assert_eq!(context["status"], json!(status), "{name}");
            let error: Value = serde_json::from_str(body).unwrap();
            assert_eq!(context["reason"], error["error"], "{name}");
            assert_eq!(
                context["www_authenticate"].as_str(),
                www_authenticate.as_deref(),
                "{name}"
            );
            if case.name.starts_with("step-up: ") {
                let claims = base64::engine::general_purpose::STANDARD
                    .encode(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#);
                assert_eq!(context["claims"], json!(claims), "{name}");
            }
        }
    }
}

async fn grpc_client(service: &Service) -> AuthorizationClient<tonic::transport::Channel> {
    AuthorizationClient::connect(service.grpc.clone())
        .await
        .expect("the gRPC listener accepts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_row_answers_alike_through_forward_auth_envoy_and_authzen() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("contract");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let caller = format!("{}/{CALLER_OID}", idp.tenant_id());
    let mut grpc = grpc_client(&service).await;
    let cases = cases(&idp);
    let mut authzen_rows = 0;
    for case in &cases {
        assert_answer(
            "forward-auth",
            case,
            &forward_auth(&service.http, case).await,
            &caller,
        );
        let answer = envoy_http(&service.http, case).await;
        assert_answer("envoy http", case, &answer, &caller);
        if case.expect == Expect::Allow {
            assert_eq!(
                answer.one("x-envoy-auth-headers-to-remove").as_deref(),
                Some("authorization")
            );
        }
        assert_answer(
            "envoy grpc",
            case,
            &envoy_grpc(&mut grpc, case).await,
            &caller,
        );
        let raw = envoy_grpc_with(&mut grpc, case, raw_check_request(case)).await;
        assert_answer("envoy grpc, raw headers", case, &raw, &caller);
        if let Some(answer) = authzen(&service.http, case).await {
            assert_authzen(case, &answer);
            authzen_rows += 1;
        }
    }
    assert_eq!(authzen_rows, 14, "the rows AuthZEN can carry");
    // Every question was recorded; the allow with the request id the gateway sent.
    let exit = service.terminate();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
    let events = harness::audit_events(&dir);
    let allow = events
        .iter()
        .find(|e| {
            e["correlation_id"] == "allow-inference-on-a-research-model" && e["outcome"] == "allow"
        })
        .expect("the allow was recorded with the gateway's request id");
    assert_eq!(allow["resource"], "models/exp-42");
    let no_route = events.iter().filter(|e| e["reason"] == "no_route").count();
    assert_eq!(
        no_route,
        3 * 4,
        "three no-route rows through four gateway transports"
    );
    let noncanonical = events
        .iter()
        .filter(|e| e["reason"] == "noncanonical_path")
        .count();
    // The path rows through forward-auth and both gRPC forms (the path travels in a
    // header or a field, as sent), and two through Envoy's HTTP mode: the URL client
    // resolves `..` and `%2E%2e` before sending, as a conforming HTTP client does.
    assert_eq!(
        noncanonical,
        4 * 3 + 2,
        "the path rows reached the gate as sent"
    );
    let text = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap();
    for case in &cases {
        if let Some(token) = case.token() {
            let signature = token.rsplit('.').next().unwrap();
            assert!(
                signature.len() < 8 || !text.contains(signature),
                "token text in the audit trail"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_every_transport_answers_503_with_retry_after() {
    let idp = crate::example_idp().await;
    idp.set_mode(Mode::Down);
    let dir = harness::temp_dir("no-keys");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let case = case(
        "keys unavailable",
        "POST",
        "/v1/models/exp-42/infer",
        Expect::Refused {
            status: 503,
            www_authenticate: None,
            retry_after: Some("5".into()),
            body: r#"{"error":"temporarily_unavailable","error_description":"signing keys unavailable"}"#.into(),
        },
    )
    .bearer(&token);
    let caller = String::new();
    assert_answer(
        "forward-auth",
        &case,
        &forward_auth(&service.http, &case).await,
        &caller,
    );
    assert_answer(
        "envoy http",
        &case,
        &envoy_http(&service.http, &case).await,
        &caller,
    );
    assert_answer(
        "envoy grpc",
        &case,
        &envoy_grpc(&mut grpc_client(&service).await, &case).await,
        &caller,
    );
    let answer = authzen(&service.http, &case).await.unwrap();
    assert_eq!(answer["decision"], json!(false));
    assert_eq!(answer["context"]["status"], json!(503));
    assert_eq!(answer["context"]["retry_after"], json!(5));
    // Not ready: no keys.
    let ready = reqwest::get(format!("{}/readyz", service.http))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
}
