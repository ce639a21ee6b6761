//! The example servers' admin routes (`POST /v1/admin/revocations`, `GET /v1/admin/fleet`),
//! checked against the running demo of either framework (`demo_axum.rs`, `demo_actix.rs`).

use entra_governor::testing::TestIdp;
use serde_json::{Value, json};

/// `group:platform-admins` in `examples/policy.toml`.
const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";
/// `group:data-scientists` in `examples/policy.toml`.
const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";

/// A platform admin signed in with MFA (auth context c2, the policy's `mfa_auth_context`).
pub fn admin_token(idp: &TestIdp) -> String {
    idp.token()
        .scopes("Platform.Admin")
        .groups([PLATFORM_ADMINS])
        .acrs(["c2"])
        .sign()
}

/// A data scientist's token, issued a second ago (a revocation refuses tokens issued
/// before the second it is made in), and the body that revokes its caller.
pub fn scientist(idp: &TestIdp) -> (String, Value) {
    let builder = idp
        .token()
        .scopes("Inference.Invoke Training.Manage")
        .groups([DATA_SCIENTISTS])
        .issued_at(-1);
    let claims = builder.claims();
    let body = json!({ "tenant_id": claims["tid"], "object_id": claims["oid"] });
    (builder.sign(), body)
}

async fn send(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("authorization", format!("Bearer {token}"));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, challenge, response.text().await.unwrap_or_default())
}

/// `POST {base}/v1/admin/revocations` with `body`.
pub async fn revoke(base: &str, token: &str, body: &str) -> (u16, String, String) {
    let url = format!("{base}/v1/admin/revocations");
    send(reqwest::Method::POST, url, token, Some(body)).await
}

/// `GET {base}{path}`.
pub async fn get(base: &str, path: &str, token: &str) -> (u16, String, String) {
    send(reqwest::Method::GET, format!("{base}{path}"), token, None).await
}

/// Every promise of the admin routes, against the demo server at `base`.
pub async fn check_admin_routes(base: &str, idp: &TestIdp) {
    let admin = admin_token(idp);
    let (scientist, victim) = scientist(idp);

    // The fleet's state: a standalone demo is one replica.
    let (status, _, text) = get(base, "/v1/admin/fleet", &admin).await;
    assert_eq!(status, 200, "{text}");
    let fleet: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fleet["mode"], "standalone", "{fleet}");
    assert_eq!(
        fleet["replicas"].as_array().map(Vec::len),
        Some(1),
        "{fleet}"
    );
    assert!(fleet["policy_version"].is_string(), "{fleet}");

    // Only platform admins, and only after MFA.
    let (status, _, _) = get(base, "/v1/admin/fleet", &scientist).await;
    assert_eq!(status, 403);
    let (status, _, _) = revoke(base, &scientist, &victim.to_string()).await;
    assert_eq!(status, 403, "a data scientist may not revoke");
    let admin_without_mfa = idp
        .token()
        .scopes("Platform.Admin")
        .groups([PLATFORM_ADMINS])
        .sign();
    let (status, _, _) = revoke(base, &admin_without_mfa, &victim.to_string()).await;
    assert_eq!(status, 403, "an admin without MFA may not revoke");
    let (status, _, _) = get(base, "/v1/me", &scientist).await;
    assert_eq!(status, 200, "refused revocations revoked nobody");

    // Bad bodies: 400 with a JSON error naming what is wrong.
    for (body, names) in [
        ("not json", "expected {\"tenant_id\""),
        (
            r#"{"tenant_id":"8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"}"#,
            "object_id",
        ),
        (
            r#"{"tenant_id":"contoso.com","object_id":"3f1e2d4c-6b5a-4978-8e1f-2a3b4c5d6e7f"}"#,
            "tenant_id: malformed tenant id",
        ),
        (
            r#"{"tenant_id":"8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d","object_id":"alice"}"#,
            "object_id: malformed object id",
        ),
        (
            r#"{"tenant_id":"8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d","object_id":"3f1e2d4c-6b5a-4978-8e1f-2a3b4c5d6e7f","upn":"x"}"#,
            "unknown field `upn`",
        ),
    ] {
        let (status, _, text) = revoke(base, &admin, body).await;
        assert_eq!(status, 400, "{body}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(error["error"], "invalid_request", "{text}");
        let description = error["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(names), "{body}: {description}");
    }

    // The revocation: 204, then the caller's token is refused on every route.
    let (status, _, text) = revoke(base, &admin, &victim.to_string()).await;
    assert_eq!((status, text.as_str()), (204, ""));
    for path in ["/v1/me", "/v1/datasets/curated/chat-v2"] {
        let (status, challenge, _) = get(base, path, &scientist).await;
        assert_eq!(status, 401, "{path}");
        assert!(
            challenge.contains(r#"error="invalid_token""#) && challenge.contains("token revoked"),
            "{path}: {challenge}"
        );
    }
    // Nobody else: the admin and a new token of another caller still pass.
    let (status, _, _) = get(base, "/v1/admin/fleet", &admin).await;
    assert_eq!(status, 200);
    let (other, _) = self::scientist(idp);
    let (status, _, _) = get(base, "/v1/me", &other).await;
    assert_eq!(status, 200);
}
