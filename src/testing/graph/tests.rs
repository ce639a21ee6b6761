//! The loopback token endpoint and Microsoft Graph, exercised over HTTP.

use super::*;

#[cfg(feature = "graph")]
use crate::graph::ClientCredential;

async fn post(
    url: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: String,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header(header::CONTENT_TYPE, content_type)
        .body(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request succeeds");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn token_request(idp: &TestIdp, tenant: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", idp.authority());
    let (status, _, body) =
        post(&url, None, "application/x-www-form-urlencoded", form(pairs)).await;
    (status, body)
}

fn good_form(idp: &TestIdp) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", idp.client_id()),
        ("scope", format!("{}/.default", idp.authority())),
        ("client_secret", idp.graph_client_secret()),
    ]
}

fn with(
    base: &[(&'static str, String)],
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut pairs: Vec<_> = base.iter().filter(|(k, _)| *k != name).cloned().collect();
    pairs.push((name, value.to_owned()));
    pairs
}

fn refs<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn issue(idp: &TestIdp) -> String {
    let pairs = good_form(idp);
    let (status, body) = token_request(idp, idp.tenant_id().as_str(), &refs(&pairs)).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn token_endpoint_issues_tokens_and_answers_entra_errors() {
    let idp = TestIdp::start().await;
    let tenant = idp.tenant_id();
    let good = good_form(&idp);
    let (status, body) = token_request(&idp, tenant.as_str(), &refs(&good)).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(
        idp.issued_graph_tokens(),
        vec![body["access_token"].as_str().unwrap().to_owned()]
    );

    let cases = [
        (
            with(&good, "client_secret", "wrong"),
            401,
            "invalid_client",
            7000215,
        ),
        (
            with(&good, "client_id", "00000000-0000-0000-0000-000000000001"),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            with(&good, "scope", "https://graph.microsoft.com/.default"),
            400,
            "invalid_scope",
            70011,
        ),
        (
            with(&good, "grant_type", "password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            good.iter()
                .filter(|(k, _)| *k != "client_secret")
                .cloned()
                .collect(),
            401,
            "invalid_client",
            7000218,
        ),
    ];
    for (pairs, status, error, code) in cases {
        let (got, body) = token_request(&idp, tenant.as_str(), &refs(&pairs)).await;
        assert_eq!(
            (got, &body["error"], &body["error_codes"][0]),
            (status, &json!(error), &json!(code)),
            "{body}"
        );
    }
    let (status, body) =
        token_request(&idp, "00000000-0000-0000-0000-000000000001", &refs(&good)).await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_tenant")));
    assert_eq!(idp.graph_token_requests(), 7);
    assert_eq!(idp.issued_graph_tokens().len(), 1);
}

#[cfg(feature = "graph")]
#[tokio::test]
async fn client_assertions_are_checked_and_never_replayed() {
    let idp = TestIdp::start().await;
    let (key, cert) = idp.graph_client_certificate();
    let credential = ClientCredential::certificate(&key, &cert).unwrap();
    let endpoint = format!("{}/{}/oauth2/v2.0/token", idp.authority(), idp.tenant_id());
    let scope = format!("{}/.default", idp.authority());
    let body = credential
        .token_request_form(&idp.client_id(), &endpoint, &scope)
        .unwrap();
    let send = |body: String| {
        let endpoint = endpoint.clone();
        async move { post(&endpoint, None, "application/x-www-form-urlencoded", body).await }
    };
    assert_eq!(send(body.clone()).await.0, 200);
    let (status, _, replay) = send(body).await;
    assert_eq!((status, &replay["error_codes"][0]), (401, &json!(700023)));

    // Signed for another audience (the token endpoint of another tenant).
    let other = format!("{}/{}/oauth2/v2.0/token", idp.authority(), idp.add_tenant());
    let body = credential
        .token_request_form(&idp.client_id(), &other, &scope)
        .unwrap();
    let (status, _, wrong_audience) = send(body).await;
    assert_eq!(
        (status, &wrong_audience["error_codes"][0]),
        (401, &json!(700021))
    );
}

#[tokio::test]
async fn graph_endpoints_need_an_issued_token_and_well_formed_requests() {
    let idp = TestIdp::start().await;
    let a = idp.authority();
    let oid = ObjectId::parse("0bec7000-0000-4000-8000-000000000001").unwrap();
    let groups: Vec<GroupId> = (0..30)
        .map(|i| GroupId::parse(&format!("9a0b0c0d-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    idp.set_memberships(&oid, groups[..3].to_vec());
    let check = format!("{a}/v1.0/users/{oid}/checkMemberGroups");
    let ids = |n: usize| json!({ "groupIds": groups[..n] }).to_string();

    let (status, _, body) = post(&check, None, "application/json", ids(2)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("InvalidAuthenticationToken"))
    );
    let (status, _, _) = post(&check, Some("made-up"), "application/json", ids(2)).await;
    assert_eq!(status, 401);

    let token = issue(&idp).await;
    let (status, _, body) = post(&check, Some(&token), "application/json", ids(5)).await;
    assert_eq!((status, body), (200, json!({ "value": groups[..3] })));
    let (status, _, body) = post(&check, Some(&token), "application/json", ids(21)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("Request_BadRequest"))
    );
    let unknown = format!("{a}/v1.0/servicePrincipals/{}/checkMemberGroups", groups[0]);
    let (status, _, body) = post(&unknown, Some(&token), "application/json", ids(1)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("Request_ResourceNotFound"))
    );
    let objects = format!("{a}/v1.0/users/{oid}/getMemberObjects");
    let (status, _, _) = post(&objects, Some(&token), "application/json", "{}".into()).await;
    assert_eq!(status, 400);
    let (status, _, body) = post(
        &objects,
        Some(&token),
        "application/json",
        json!({"securityEnabledOnly": true}).to_string(),
    )
    .await;
    assert_eq!(
        (status, &body["value"], body.get("@odata.nextLink")),
        (200, &json!(groups[..3]), None)
    );

    assert_eq!(idp.check_member_groups_requests(), 5);
    assert_eq!(idp.get_member_objects_requests(), 2);
    assert_eq!(idp.graph_paths().len(), 7);
    idp.reset_counters();
    assert_eq!(
        (
            idp.check_member_groups_requests(),
            idp.get_member_objects_requests(),
            idp.graph_token_requests()
        ),
        (0, 0, 0)
    );
    assert!(idp.graph_paths().is_empty());

    idp.revoke_graph_tokens();
    let (status, _, _) = post(&check, Some(&token), "application/json", ids(1)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn graph_modes_answer_as_documented() {
    let idp = TestIdp::start().await;
    let oid = ObjectId::parse("0bec7000-0000-4000-8000-000000000002").unwrap();
    idp.set_memberships(&oid, Vec::new());
    let check = format!("{}/v1.0/users/{oid}/checkMemberGroups", idp.authority());
    let token = issue(&idp).await;
    let body = || json!({ "groupIds": [] }).to_string();

    idp.set_graph_mode(GraphMode::TooManyRequests {
        retry_after_secs: 7,
        times: 2,
    });
    for _ in 0..2 {
        let (status, retry_after, body) =
            post(&check, Some(&token), "application/json", body()).await;
        assert_eq!(
            (status, retry_after.as_deref(), &body["error"]["code"]),
            (429, Some("7"), &json!("TooManyRequests"))
        );
    }
    assert_eq!(
        post(&check, Some(&token), "application/json", body())
            .await
            .0,
        200
    );

    idp.set_graph_mode(GraphMode::Status(502));
    assert_eq!(
        post(&check, Some(&token), "application/json", body())
            .await
            .0,
        502
    );
    idp.set_graph_mode(GraphMode::Status(5));
    assert_eq!(
        post(&check, Some(&token), "application/json", body())
            .await
            .0,
        500
    );
    idp.set_graph_mode(GraphMode::Slow(Duration::from_millis(10)));
    assert_eq!(
        post(&check, Some(&token), "application/json", body())
            .await
            .0,
        200
    );
    // The token endpoint is not affected by Graph modes.
    idp.set_graph_mode(GraphMode::Status(503));
    issue(&idp).await;
    assert_eq!(idp.check_member_groups_requests(), 6);
}

#[tokio::test]
async fn token_modes_answer_as_documented() {
    let idp = TestIdp::start().await;
    let url = format!("{}/{}/oauth2/v2.0/token", idp.authority(), idp.tenant_id());
    let good = good_form(&idp);
    let send = || {
        let (url, body) = (url.clone(), form(&refs(&good)));
        async move { post(&url, None, "application/x-www-form-urlencoded", body).await }
    };

    idp.set_graph_token_mode(GraphTokenMode::TooManyRequests {
        retry_after_secs: u64::MAX,
        times: 2,
    });
    for _ in 0..2 {
        let (status, retry_after, _) = send().await;
        assert_eq!(
            (status, retry_after.as_deref()),
            (429, Some("18446744073709551615"))
        );
    }
    assert_eq!(send().await.0, 200);

    idp.set_graph_token_mode(GraphTokenMode::Status(503));
    let (status, _, body) = send().await;
    assert_eq!(
        (status, &body["error"]),
        (503, &json!("temporarily_unavailable"))
    );
    idp.set_graph_token_mode(GraphTokenMode::ExpiresIn(u64::MAX));
    let (status, _, body) = send().await;
    assert_eq!((status, &body["expires_in"]), (200, &json!(u64::MAX)));
    idp.set_graph_token_mode(GraphTokenMode::Normal);
    assert_eq!(send().await.2["expires_in"], 3599);
    assert_eq!(idp.graph_token_requests(), 6);
    assert_eq!(idp.issued_graph_tokens().len(), 3);
}
