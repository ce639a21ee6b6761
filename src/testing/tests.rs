//! TestIdp against real HTTP requests (reqwest) and an independent JWT decoder (jsonwebtoken).

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::ids::ObjectId;
use crate::principal::ClientAuth;

mod mint;

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .send()
        .await
        .expect("request succeeds")
}

async fn get_json(url: &str) -> Value {
    let response = get(url).await;
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON body")
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Verifies `token` with jsonwebtoken against the idp's published v2 JWKS.
async fn verify(idp: &TestIdp, token: &str, issuer: &str) -> jsonwebtoken::errors::Result<Value> {
    let header = jsonwebtoken::decode_header(token)?;
    let jwks = get_json(&idp.jwks_url()).await;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
        .expect("the token's kid is published")
        .clone();
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[idp.client_id()]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
}

#[tokio::test]
async fn discovery_for_a_tenant_guid_mirrors_entra_v2_and_v1() {
    let idp = TestIdp::start().await;
    let (a, t) = (idp.authority(), idp.tenant_id());
    assert!(a.starts_with("http://127.0.0.1:") && !a.ends_with('/'));

    let v2 = get_json(&format!("{a}/{t}/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(
        v2,
        json!({
            "issuer": format!("{a}/{t}/v2.0"),
            "jwks_uri": format!("{a}/{t}/discovery/v2.0/keys"),
            "token_endpoint": format!("{a}/{t}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{a}/{t}/oauth2/v2.0/authorize"),
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "WW",
        })
    );
    assert_eq!(
        idp.discovery_url(),
        format!("{a}/{t}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(idp.issuer(), format!("{a}/{t}/v2.0"));

    let v1 = get_json(&format!("{a}/{t}/.well-known/openid-configuration")).await;
    assert_eq!(v1["issuer"], format!("{a}/{t}/"));
    assert_eq!(v1["jwks_uri"], format!("{a}/{t}/discovery/keys"));
    assert_eq!(v1["token_endpoint"], format!("{a}/{t}/oauth2/token"));

    // Upper-case GUIDs name the same tenant; URLs come back in Entra's lower case.
    let upper = t.as_str().to_ascii_uppercase();
    let v2 = get_json(&format!(
        "{a}/{upper}/v2.0/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(v2["issuer"], format!("{a}/{t}/v2.0"));

    // ?appid= is carried over to the jwks_uri, as Entra does for custom signing keys.
    let client = idp.client_id();
    let v2 = get_json(&format!(
        "{a}/{t}/v2.0/.well-known/openid-configuration?appid={client}"
    ))
    .await;
    assert_eq!(
        v2["jwks_uri"],
        format!("{a}/{t}/discovery/v2.0/keys?appid={client}")
    );
    let v1 = get_json(&format!(
        "{a}/{t}/.well-known/openid-configuration?x=1&appid={client}"
    ))
    .await;
    assert_eq!(
        v1["jwks_uri"],
        format!("{a}/{t}/discovery/keys?appid={client}")
    );
    assert_eq!(idp.discovery_requests(), 5);
}

#[tokio::test]
async fn discovery_and_keys_for_common_and_organizations_use_the_template() {
    let idp = TestIdp::start().await;
    let a = idp.authority();

    let v2 = get_json(&format!("{a}/common/v2.0/.well-known/openid-configuration")).await;
    assert_eq!(v2["issuer"], format!("{a}/{{tenantid}}/v2.0"));
    assert_eq!(v2["jwks_uri"], format!("{a}/common/discovery/v2.0/keys"));
    let v1 = get_json(&format!(
        "{a}/organizations/.well-known/openid-configuration"
    ))
    .await;
    assert_eq!(v1["issuer"], format!("{a}/{{tenantid}}/"));
    assert_eq!(v1["jwks_uri"], format!("{a}/organizations/discovery/keys"));

    let keys = get_json(&format!("{a}/common/discovery/v2.0/keys")).await;
    assert_eq!(keys["keys"][0]["issuer"], format!("{a}/{{tenantid}}/v2.0"));
    let keys = get_json(&format!("{a}/organizations/discovery/keys")).await;
    assert_eq!(keys["keys"][0]["issuer"], format!("{a}/{{tenantid}}/"));
}

#[tokio::test]
async fn jwks_entries_have_entra_shape_and_per_version_issuers() {
    let idp = TestIdp::start().await;
    let (a, t) = (idp.authority(), idp.tenant_id());
    let kid = idp.signing_kid();
    assert_eq!(kid.len(), 27);

    let v2 = get_json(&format!("{a}/{t}/discovery/v2.0/keys")).await;
    let keys = v2["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], kid.as_str());
    assert_eq!(key["x5t"], kid.as_str());
    assert_eq!(key["e"], "AQAB");
    assert_eq!(key["x5c"], json!([]));
    assert_eq!(key["issuer"], format!("{a}/{t}/v2.0"));
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 256);
    assert!(
        n[0] & 0x80 != 0,
        "a 2048-bit modulus without a leading zero byte"
    );

    let v1 = get_json(&format!("{a}/{t}/discovery/keys")).await;
    assert_eq!(v1["keys"][0]["issuer"], format!("{a}/{t}/"));
    assert_eq!(v1["keys"][0]["n"], key["n"]);

    // A second tenant is served with its own issuer, the same keys.
    let other = idp.add_tenant();
    assert_ne!(other, t);
    assert_eq!(idp.tenants(), vec![t.clone(), other.clone()]);
    let v2 = get_json(&format!("{a}/{other}/discovery/v2.0/keys")).await;
    assert_eq!(v2["keys"][0]["issuer"], format!("{a}/{other}/v2.0"));
    assert_eq!(v2["keys"][0]["kid"], kid.as_str());
    assert_eq!(idp.jwks_requests(), 3);
}

#[tokio::test]
async fn unknown_tenants_get_an_entra_error_and_other_paths_404() {
    let idp = TestIdp::start().await;
    let a = idp.authority();
    let stranger = "00000000-0000-0000-0000-000000000001";

    for path in [
        format!("{stranger}/discovery/v2.0/keys"),
        format!("{stranger}/v2.0/.well-known/openid-configuration"),
        "consumers/discovery/keys".to_owned(),
        "contoso.onmicrosoft.com/.well-known/openid-configuration".to_owned(),
    ] {
        let response = get(&format!("{a}/{path}")).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["error"], "invalid_tenant");
        assert_eq!(body["error_codes"], json!([90002]));
        let tenant = path.split('/').next().unwrap();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS90002: Tenant '{tenant}' not found.")),
            "{body}"
        );
    }

    let t = idp.tenant_id();
    for path in [
        String::new(),
        "/".to_owned(),
        format!("/{t}"),
        format!("/{t}/discovery/v2.0/keys/"),
        "//discovery/keys".to_owned(),
        format!("/{t}/v2.0/.well-known/openid-configuration/x"),
        format!("/{t}/oauth2/v2.0/token"),
    ] {
        assert_eq!(get(&format!("{a}{path}")).await.status(), 404, "{path:?}");
    }
    let post = reqwest::Client::new()
        .post(idp.jwks_url())
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    assert_eq!(idp.jwks_requests(), 2);
    assert_eq!(idp.discovery_requests(), 2);
}

#[tokio::test]
async fn key_rotation_changes_the_published_set() {
    let idp = TestIdp::start().await;
    let first = idp.signing_kid();
    assert_eq!(kids(&get_json(&idp.jwks_url()).await), vec![first.clone()]);

    let second = idp.rotate();
    assert_ne!(second, first);
    assert_eq!(idp.signing_kid(), second);
    assert_eq!(kids(&get_json(&idp.jwks_url()).await), vec![second.clone()]);
    let token = idp.token().sign();
    verify(&idp, &token, &idp.issuer())
        .await
        .expect("signed by the new key");

    // Held but unpublished: still usable for signing (and for sign_raw).
    assert!(idp.sign_raw(&first, b"x").is_some());
    let stale = idp.token().kid(first.clone()).sign();
    assert_eq!(
        jsonwebtoken::decode_header(&stale).unwrap().kid.as_deref(),
        Some(first.as_str())
    );

    let third = idp.add_key();
    assert_eq!(
        kids(&get_json(&idp.jwks_url()).await),
        vec![second.clone(), third.clone()]
    );
    assert_eq!(
        idp.signing_kid(),
        second,
        "add_key does not switch the signing key"
    );
    idp.use_key(&third);
    assert_eq!(idp.signing_kid(), third);
    idp.remove_key(&second);
    idp.remove_key("never-existed");
    assert_eq!(kids(&get_json(&idp.jwks_url()).await), vec![third.clone()]);

    let raw =
        json!({"kty": "EC", "use": "sig", "kid": "ec-key", "crv": "P-256", "x": "AA", "y": "AA"});
    idp.publish_raw_jwk(raw.clone());
    let jwks = get_json(&idp.jwks_url()).await;
    assert_eq!(kids(&jwks), vec![third.clone(), "ec-key".to_owned()]);
    assert_eq!(jwks["keys"][1], raw);
    idp.remove_key("ec-key");
    assert_eq!(kids(&get_json(&idp.jwks_url()).await), vec![third]);
    assert_eq!(idp.jwks_requests(), 7, "six listings and one verify");
}

#[tokio::test]
async fn counters_count_every_request_and_reset() {
    let idp = TestIdp::start().await;
    let a = idp.authority();
    get(&idp.discovery_url()).await;
    get(&format!("{a}/common/.well-known/openid-configuration")).await;
    get(&format!(
        "{a}/00000000-0000-0000-0000-000000000001/v2.0/.well-known/openid-configuration"
    ))
    .await;
    get(&idp.jwks_url()).await;
    get(&format!("{a}/nothing-here")).await;
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (3, 1));
    idp.reset_counters();
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (0, 0));
    idp.set_mode(Mode::Status(500));
    get(&idp.jwks_url()).await;
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (0, 1));
}

#[tokio::test]
async fn each_mode_answers_as_documented() {
    let idp = TestIdp::start().await;
    let (a, t) = (idp.authority(), idp.tenant_id());
    let discovery = idp.discovery_url();
    let jwks = idp.jwks_url();

    idp.set_mode(Mode::Down);
    assert!(reqwest::Client::new().get(&discovery).send().await.is_err());
    assert!(reqwest::Client::new().get(&jwks).send().await.is_err());
    assert_eq!((idp.discovery_requests(), idp.jwks_requests()), (1, 1));
    // Only discovery and JWKS are down.
    assert_eq!(get(&format!("{a}/elsewhere")).await.status(), 404);

    idp.set_mode(Mode::Status(500));
    let response = get(&jwks).await;
    assert_eq!(response.status(), 500);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    idp.set_mode(Mode::Status(42));
    assert_eq!(get(&discovery).await.status(), 500);

    idp.set_mode(Mode::Garbage);
    let response = get(&discovery).await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(!body.is_empty());
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    idp.set_mode(Mode::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    let keys = get_json(&jwks).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(kids(&keys), vec![idp.signing_kid()]);

    idp.set_mode(Mode::HugeBody(100_000));
    let body = get(&jwks).await.bytes().await.unwrap();
    assert_eq!(body.len(), 100_000);
    let padded: Value = serde_json::from_slice(&body).expect("padding keeps the JSON valid");
    assert_eq!(kids(&padded), vec![idp.signing_kid()]);
    idp.set_mode(Mode::HugeBody(10));
    assert_eq!(&get(&jwks).await.bytes().await.unwrap()[..], b"{        }");

    idp.set_mode(Mode::RedirectTo("https://evil.example/keys".into()));
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects.get(&jwks).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://evil.example/keys");
    idp.set_mode(Mode::RedirectTo("bad\nvalue".into()));
    assert_eq!(no_redirects.get(&jwks).send().await.unwrap().status(), 500);

    idp.set_mode(Mode::WrongIssuer);
    let doc = get_json(&discovery).await;
    let issuer = doc["issuer"].as_str().unwrap();
    assert_ne!(issuer, idp.issuer());
    let stranger = issuer
        .strip_prefix(&format!("{a}/"))
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .unwrap();
    assert!(crate::ids::is_guid(stranger) && !idp.tenants().iter().any(|t| t.as_str() == stranger));
    assert_eq!(doc["jwks_uri"], jwks);
    assert_eq!(kids(&get_json(&jwks).await), vec![idp.signing_kid()]);

    idp.set_mode(Mode::ForeignJwksUri);
    let doc = get_json(&discovery).await;
    assert_eq!(doc["issuer"], idp.issuer());
    assert_eq!(
        doc["jwks_uri"],
        format!("http://127.0.0.2:1/{t}/discovery/v2.0/keys")
    );

    idp.set_mode(Mode::Normal);
    assert_eq!(get_json(&discovery).await["jwks_uri"], jwks);
}

#[tokio::test]
async fn odd_requests_do_not_break_the_server() {
    let idp = TestIdp::start().await;
    let address = idp.authority().trim_start_matches("http://").to_owned();
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /%ff%00/discovery/keys HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(junk).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        // Any answer (or none) is fine; the server must survive.
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    }
    let response = get(&format!("{}/%ff%00/discovery/keys", idp.authority())).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        get_json(&idp.jwks_url()).await["keys"][0]["kid"],
        idp.signing_kid()
    );
}

#[tokio::test]
async fn shutdown_and_last_drop_stop_the_server() {
    let idp = TestIdp::start().await;
    let clone = idp.clone();
    let url = idp.jwks_url();
    assert_eq!(get(&url).await.status(), 200);
    clone.shutdown().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
    // Minting still works after shutdown.
    assert_eq!(idp.token().sign().split('.').count(), 3);

    let idp = TestIdp::start().await;
    let url = idp.jwks_url();
    assert_eq!(get(&url).await.status(), 200);
    drop(idp);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let client = reqwest::Client::new();
        if client.get(&url).send().await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server outlived its last TestIdp"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TestIdp>();
    assert_send_sync::<TokenBuilder>();
    assert_send_sync::<Mode>();
}
