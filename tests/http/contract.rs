//! The HTTP contract both adapters must meet, run over loopback with a real client against
//! an axum server (`tests/http/axum.rs`) and an actix-web server (`tests/http/actix.rs`).
//! Both test files serve the same routes:
//!
//! | route | protection | handler answers |
//! |---|---|---|
//! | `GET /v1/me` | authenticate | the caller's id |
//! | `POST /v1/models/{model}/infer` | + `inference.invoke` on `models/{model}` | `"{action} {resource}"` of the decision |
//! | `GET /v1/datasets/{*name}` | + `datasets.read` on `datasets/{*name}` | `"{action} {resource}"` |
//! | `POST /v1/training/jobs` | authenticate; the handler decides on the JSON body | `"training {base_model}"` |
//! | `GET /v1/broken/{x}` | `Require` with the template `models/{model}` (no such parameter) | — (500) |
//! | `GET /v1/undecided` | authenticate; the handler wants `Authorized` without `Require` | — (500) |
//! | `POST /alone/models/{model}/infer` | `Require` only, no authentication middleware | `"{action} {resource}"` |
//!
//! Every expectation pins status, `WWW-Authenticate`, `Retry-After`, `Content-Type` and
//! body, so two frameworks passing the same table answer identically.
#![allow(dead_code)]

use base64::Engine as _;
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, AuditOutcome, MemorySink, ObjectId};
use reqwest::Method;

pub const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
/// The ML engineers group of `examples/policy.toml`.
pub const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
pub const CALLER_OID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

/// The example policy (`examples/policy.toml`).
pub fn example_policy() -> entra_governor::Policy {
    crate::common::example_policy()
}

/// What a response must be, header for header.
#[derive(Debug)]
struct Expect {
    status: u16,
    www_authenticate: Option<String>,
    retry_after: Option<&'static str>,
    /// `Some` for refusals (`application/json`); handlers' answers are not pinned.
    json: bool,
    body: String,
}

impl Expect {
    fn ok(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            www_authenticate: None,
            retry_after: None,
            json: false,
            body: body.into(),
        }
    }

    fn refused(status: u16, challenge: Option<&str>, error: &str, description: &str) -> Self {
        Self {
            status,
            www_authenticate: challenge.map(str::to_owned),
            retry_after: None,
            json: true,
            body: format!(r#"{{"error":"{error}","error_description":"{description}"}}"#),
        }
    }

    fn forbidden() -> Self {
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

    fn unavailable(description: &str) -> Self {
        let mut e = Self::refused(503, None, "temporarily_unavailable", description);
        e.retry_after = Some("5");
        e
    }

    fn server_error() -> Self {
        Self::refused(
            500,
            None,
            "server_error",
            "authorization is misconfigured for this route",
        )
    }
}

/// One request: method, path, `Authorization` header values, JSON body.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    authorization: Vec<String>,
    body: Option<&'static str>,
    expect: Expect,
    /// Audit events this request must add (one per authorization, or per refusal).
    audited: usize,
}

fn case(name: &'static str, method: Method, path: &str, expect: Expect) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        authorization: Vec::new(),
        body: None,
        expect,
        audited: 1,
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

    fn json(mut self, body: &'static str) -> Self {
        self.body = Some(body);
        self
    }

    fn audited(mut self, events: usize) -> Self {
        self.audited = events;
        self
    }
}

/// The governor's audit trail, as the contract checks it.
pub struct Trail {
    /// The log the governor records to.
    pub log: AuditLog,
    /// Where it delivers.
    pub sink: MemorySink,
}

impl Trail {
    /// A lossless log into a memory sink.
    pub fn new() -> Self {
        let sink = MemorySink::new();
        Self {
            log: AuditLog::builder(sink.clone()).build(),
            sink,
        }
    }
}

async fn check(client: &reqwest::Client, base: &str, trail: &Trail, case: Case) {
    trail.log.flush().await;
    let before = trail.sink.len();
    let mut request = client.request(case.method.clone(), format!("{base}{}", case.path));
    request = request.header(
        "x-request-id",
        case.name.replace(' ', "-").replace([':', '%', '/'], ""),
    );
    for value in &case.authorization {
        // `header` appends: several values make several header lines.
        request = request.header("authorization", value);
    }
    if let Some(body) = case.body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("the server answers");
    let name = case.name;
    let expect = case.expect;
    let headers = response.headers().clone();
    let all = |h: &str| {
        headers
            .get_all(h)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(response.status().as_u16(), expect.status, "{name}: status");
    assert_eq!(
        all("www-authenticate"),
        expect.www_authenticate.into_iter().collect::<Vec<_>>(),
        "{name}: WWW-Authenticate"
    );
    assert_eq!(
        all("retry-after"),
        expect
            .retry_after
            .map(str::to_owned)
            .into_iter()
            .collect::<Vec<_>>(),
        "{name}: Retry-After"
    );
    if expect.json {
        assert_eq!(
            all("content-type"),
            vec!["application/json".to_owned()],
            "{name}: Content-Type"
        );
    }
    let body = response.text().await.expect("a body");
    assert_eq!(body, expect.body, "{name}: body");
    trail.log.flush().await;
    assert_eq!(
        trail.sink.len() - before,
        case.audited,
        "{name}: audit events"
    );
}

/// The contract, against a server whose governor trusts `idp` and uses the example
/// policy.
pub async fn check_contract(base: &str, idp: &TestIdp, trail: &Trail) {
    let oid = ObjectId::parse(CALLER_OID).unwrap();
    let caller_id = format!("{}/{CALLER_OID}", idp.tenant_id());
    let scientist = idp
        .token()
        .oid(oid)
        .scopes("Inference.Invoke Training.Manage")
        .groups([DATA_SCIENTISTS])
        .sign();
    let expired = idp
        .token()
        .expires_in(-3600)
        .groups([DATA_SCIENTISTS])
        .sign();
    let forged = idp.token().sign_with_foreign_key().sign();
    // An ID token of the API's own app registration, with the user's app roles.
    let id_token = idp.token().id_token().roles(["Trainer"]).sign();
    // Reading personal data needs authentication context c1 (`pii-needs-c1`).
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
    let step_up_challenge = format!(
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

    use Method as M;
    let cases = vec![
        // Authentication.
        case(
            "allow: authenticated",
            M::GET,
            "/v1/me",
            Expect::ok(&caller_id),
        )
        .bearer(&scientist)
        .audited(0),
        case(
            "missing Authorization header",
            M::GET,
            "/v1/me",
            Expect::refused(
                401,
                Some("Bearer"),
                "invalid_request",
                "bearer token required",
            ),
        ),
        case(
            "two Authorization headers",
            M::GET,
            "/v1/me",
            Expect::refused(
                400,
                Some(r#"Bearer error="invalid_request""#),
                "invalid_request",
                "malformed Authorization header",
            ),
        )
        .bearer(&scientist)
        .bearer(&scientist),
        case(
            "not a bearer header",
            M::GET,
            "/v1/me",
            Expect::refused(
                400,
                Some(r#"Bearer error="invalid_request""#),
                "invalid_request",
                "malformed Authorization header",
            ),
        )
        .authorization("Basic dXNlcjpwYXNz"),
        case(
            "expired token",
            M::GET,
            "/v1/me",
            Expect::invalid_token("token expired"),
        )
        .bearer(&expired),
        case(
            "forged signature",
            M::GET,
            "/v1/me",
            Expect::invalid_token("invalid signature"),
        )
        .bearer(&forged),
        case(
            "an ID token of our own app is not an access token",
            M::GET,
            "/v1/me",
            Expect::invalid_token("not an access token"),
        )
        .bearer(&id_token),
        case(
            "garbage token",
            M::GET,
            "/v1/me",
            Expect::invalid_token("malformed token"),
        )
        .bearer("a.b.c"),
        // Route-level authorization.
        case(
            "allow: inference on a research model",
            M::POST,
            "/v1/models/exp-42/infer",
            Expect::ok("inference.invoke models/exp-42"),
        )
        .bearer(&scientist),
        case(
            "deny: inference on a release candidate",
            M::POST,
            "/v1/models/staging-1/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "invalid token before authorization",
            M::POST,
            "/v1/models/exp-42/infer",
            Expect::invalid_token("token expired"),
        )
        .bearer(&expired),
        case(
            "allow: a wildcard resource",
            M::GET,
            "/v1/datasets/public/wiki/2024",
            Expect::ok("datasets.read datasets/public/wiki/2024"),
        )
        .bearer(&scientist),
        case(
            "deny: personal data",
            M::GET,
            "/v1/datasets/pii/patients",
            Expect::forbidden(),
        )
        .bearer(&scientist),
        case(
            "step-up: a cp1 client is challenged for auth context c1",
            M::GET,
            "/v1/datasets/pii/patients",
            Expect::refused(
                401,
                Some(&step_up_challenge),
                "insufficient_claims",
                "a stronger or more recent sign-in is required",
            ),
        )
        .bearer(&engineer(true, &[])),
        case(
            "step-up impossible: a client without cp1 gets 403",
            M::GET,
            "/v1/datasets/pii/patients",
            Expect::forbidden(),
        )
        .bearer(&engineer(false, &[])),
        case(
            "step-up done: auth context c1 satisfied",
            M::GET,
            "/v1/datasets/pii/patients",
            Expect::ok("datasets.read datasets/pii/patients"),
        )
        .bearer(&engineer(true, &["c1"])),
        case(
            "deny: guest",
            M::POST,
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&guest),
        case(
            "deny: an encoded slash cannot add a segment",
            M::POST,
            "/v1/models/exp-1%2F..%2Fprod-1/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist)
        .audited(1),
        // Nobody resolves the overage (no resolver): permanent, so a 403, never a 503 that
        // clients would retry.
        case(
            "group overage without a resolver: forbidden",
            M::POST,
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&overage)
        .audited(1),
        case(
            "no groups claim without a resolver: forbidden",
            M::POST,
            "/v1/models/exp-42/infer",
            Expect::forbidden(),
        )
        .bearer(&no_groups_claim)
        .audited(1),
        // Decisions on resources named in the body, made by the handler.
        case(
            "allow: a training job",
            M::POST,
            "/v1/training/jobs",
            Expect::ok("training exp-7"),
        )
        .bearer(&scientist)
        .json(r#"{"dataset":"curated/chat-v2","base_model":"exp-7"}"#)
        .audited(2),
        case(
            "deny: a training job on a production model",
            M::POST,
            "/v1/training/jobs",
            Expect::forbidden(),
        )
        .bearer(&scientist)
        .json(r#"{"dataset":"curated/chat-v2","base_model":"prod-chat"}"#),
        case(
            "deny: a training job on personal data",
            M::POST,
            "/v1/training/jobs",
            Expect::forbidden(),
        )
        .bearer(&scientist)
        .json(r#"{"dataset":"pii/patients","base_model":"exp-7"}"#)
        .audited(2),
        // Server bugs are 500, never an allow.
        case(
            "template names a parameter the route lacks",
            M::GET,
            "/v1/broken/x",
            Expect::server_error(),
        )
        .bearer(&scientist)
        .audited(0),
        case(
            "Authorized without Require",
            M::GET,
            "/v1/undecided",
            Expect::server_error(),
        )
        .bearer(&scientist)
        .audited(0),
        // Require works without the authentication middleware.
        case(
            "Require alone: allow",
            M::POST,
            "/alone/models/exp-42/infer",
            Expect::ok("inference.invoke models/exp-42"),
        )
        .bearer(&scientist),
        case(
            "Require alone: missing header",
            M::POST,
            "/alone/models/exp-42/infer",
            Expect::refused(
                401,
                Some("Bearer"),
                "invalid_request",
                "bearer token required",
            ),
        ),
        case(
            "Require alone: deny",
            M::POST,
            "/alone/models/staging-1/infer",
            Expect::forbidden(),
        )
        .bearer(&scientist),
    ];

    let client = reqwest::Client::new();
    for c in cases {
        check(&client, base, trail, c).await;
    }
    let events = trail.sink.events();
    let allow = events
        .iter()
        .find(|e| e.correlation_id.as_deref() == Some("allow-inference-on-a-research-model"))
        .expect("the allow was recorded with the request id");
    assert_eq!(allow.outcome, AuditOutcome::Allow);
    assert_eq!(allow.resource, "models/exp-42");
    assert_eq!(allow.action, "inference.invoke");
    assert_eq!(
        allow.object_id.as_ref().map(|o| o.as_str()),
        Some(CALLER_OID)
    );
    let refused = events
        .iter()
        .find(|e| e.correlation_id.as_deref() == Some("expired-token"))
        .expect("the 401 was recorded");
    assert_eq!(
        (refused.outcome, refused.reason.as_str()),
        (AuditOutcome::InvalidToken, "expired")
    );
    assert_eq!(
        (refused.action.as_str(), refused.resource.as_str()),
        ("authenticate", "/v1/me")
    );
    let tokens = [scientist.as_str(), expired.as_str(), forged.as_str()];
    for e in &events {
        let line = serde_json::to_string(e).unwrap();
        for t in tokens {
            assert!(
                !line.contains(t.rsplit('.').next().unwrap()),
                "token text in the audit trail"
            );
        }
    }
}

/// With the identity provider down and no keys held yet: 503 with `Retry-After`, never
/// 401 (the token may be fine) and never an allow.
pub async fn check_idp_down(base: &str, idp: &TestIdp, trail: &Trail) {
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let client = reqwest::Client::new();
    for c in [
        case(
            "IdP down: authentication",
            Method::GET,
            "/v1/me",
            Expect::unavailable("signing keys unavailable"),
        )
        .bearer(&token),
        case(
            "IdP down: Require alone",
            Method::POST,
            "/alone/models/exp-42/infer",
            Expect::unavailable("signing keys unavailable"),
        )
        .bearer(&token),
    ] {
        check(&client, base, trail, c).await;
    }
}

/// The Global Administrator directory role template id: the same GUID in every tenant.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// A policy for a multi-tenant API whose three claim-value bindings (an app role, an
/// app permission, a directory role) trust the `home` tenant's administrators only.
pub fn cross_tenant_policy(home: &str) -> entra_governor::Policy {
    entra_governor::Policy::from_toml_str(&format!(
        r#"
version = 1
[roles.deployer]
grants = [{{ actions = ["inference.invoke"], resources = ["models/**"] }}]
[[bindings]]
app_role = "Models.Deploy"
tenants = ["{home}"]
roles = ["deployer"]
[[bindings]]
app_permission = "Models.Invoke"
tenants = ["{home}"]
roles = ["deployer"]
[[bindings]]
directory_role = "{GLOBAL_ADMINISTRATOR}"
tenants = ["{home}"]
roles = ["deployer"]
[scopes]
"Inference.Invoke" = ["inference.*"]
"#
    ))
    .expect("the cross-tenant policy loads")
}

/// A partner tenant's administrators control the app roles, app permissions and
/// directory roles in their own tokens: against a governor that accepts `home` and
/// `partner` (allow-list or any tenant) and uses [`cross_tenant_policy`], every claim
/// kind is honoured from `home` and worth nothing from `partner`.
pub async fn check_cross_tenant(base: &str, idp: &TestIdp, partner: &str, trail: &Trail) {
    let home = idp.tenant_id();
    let partner = entra_governor::TenantId::parse(partner).unwrap();
    let app_role = |t: &entra_governor::TenantId| {
        idp.token()
            .tenant(t.clone())
            .scopes("Inference.Invoke")
            .roles(["Models.Deploy"])
            .sign()
    };
    let app_permission = |t: &entra_governor::TenantId| {
        idp.token()
            .tenant(t.clone())
            .app_only()
            .roles(["Models.Invoke"])
            .sign()
    };
    let global_admin = |t: &entra_governor::TenantId| {
        idp.token()
            .tenant(t.clone())
            .scopes("Inference.Invoke")
            .claim("wids", serde_json::json!([GLOBAL_ADMINISTRATOR]))
            .sign()
    };
    let path = "/v1/models/llama-3/infer";
    let allowed = || Expect::ok("inference.invoke models/llama-3");
    let cases = vec![
        case("home app role: allowed", Method::POST, path, allowed()).bearer(&app_role(&home)),
        case(
            "partner app role: forbidden",
            Method::POST,
            path,
            Expect::forbidden(),
        )
        .bearer(&app_role(&partner)),
        case(
            "home app permission: allowed",
            Method::POST,
            path,
            allowed(),
        )
        .bearer(&app_permission(&home)),
        case(
            "partner app permission: forbidden",
            Method::POST,
            path,
            Expect::forbidden(),
        )
        .bearer(&app_permission(&partner)),
        case("home global admin: allowed", Method::POST, path, allowed())
            .bearer(&global_admin(&home)),
        case(
            "partner global admin: forbidden",
            Method::POST,
            path,
            Expect::forbidden(),
        )
        .bearer(&global_admin(&partner)),
    ];
    let client = reqwest::Client::new();
    for c in cases {
        check(&client, base, trail, c).await;
    }
    // The trail says whose administrators were trusted, and refuses the partner's.
    trail.log.flush().await;
    let events = trail.sink.events();
    assert_eq!(events.len(), 6);
    for (i, e) in events.iter().enumerate() {
        let from_home = i % 2 == 0;
        assert_eq!(
            e.tenant_id.as_ref(),
            Some(if from_home { &home } else { &partner })
        );
        if from_home {
            assert_eq!(e.outcome, AuditOutcome::Allow, "{e:?}");
            assert_eq!(e.trusted_tenant.as_ref(), Some(&home), "{e:?}");
            let explanation = e.explanation.as_deref().unwrap();
            assert!(
                explanation.ends_with(&format!("trusted for tenant {home})")),
                "{explanation}"
            );
        } else {
            assert_eq!(e.outcome, AuditOutcome::Deny, "{e:?}");
            assert_eq!(e.reason, "no_role_grants", "{e:?}");
            assert_eq!(e.trusted_tenant, None);
        }
    }
}

/// The client id of governor C in [`check_two_governors`]: not the audience of the
/// idp's tokens.
pub const OTHER_CLIENT_ID: &str = "3b9f2c1d-7e6a-4d5c-9b8a-1f2e3d4c5b6a";

/// The two-governor contract. The app (`serve_two_governors` in each test file) has
/// every route behind the authentication middleware of governor A:
///
/// | route | `Require` of |
/// |---|---|
/// | `POST /v1/models/{model}/infer` | A (the same governor) |
/// | `POST /v1/b/models/{model}/infer` | `b`: same audience, its own revocation list |
/// | `POST /v1/c/models/{model}/infer` | C: audience [`OTHER_CLIENT_ID`] |
///
/// A caller in the extensions is trusted only by the governor that verified it: B (where
/// the caller gets revoked) and C verify the bearer token themselves.
pub async fn check_two_governors(
    base: &str,
    idp: &TestIdp,
    trail: &Trail,
    b: &entra_governor::Governor,
) {
    let token = idp
        .token()
        .issued_at(-60)
        .scopes("Inference.Invoke")
        .groups([DATA_SCIENTISTS])
        .sign();
    let caller = b.verify(&token).await.expect("B accepts the token");
    b.revoke(caller.id(), std::time::SystemTime::now()).unwrap();
    let client = reqwest::Client::new();
    for c in [
        case(
            "two governors: authenticate and require of the same governor",
            Method::POST,
            "/v1/models/exp-42/infer",
            Expect::ok("inference.invoke models/exp-42"),
        )
        .bearer(&token),
        case(
            "two governors: require of a governor where the caller is revoked",
            Method::POST,
            "/v1/b/models/exp-42/infer",
            Expect::invalid_token("token revoked"),
        )
        .bearer(&token),
        case(
            "two governors: require of a governor of another audience",
            Method::POST,
            "/v1/c/models/exp-42/infer",
            Expect::invalid_token("invalid audience"),
        )
        .bearer(&token),
    ] {
        check(&client, base, trail, c).await;
    }
    let events = trail.sink.events();
    let revoked = events
        .iter()
        .find(|e| {
            e.correlation_id.as_deref()
                == Some("two-governors-require-of-a-governor-where-the-caller-is-revoked")
        })
        .expect("B's refusal was recorded");
    assert_eq!(
        (revoked.outcome, revoked.reason.as_str()),
        (AuditOutcome::InvalidToken, "revoked")
    );
}
