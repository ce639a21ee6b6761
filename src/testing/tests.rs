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
async fn default_token_verifies_with_jsonwebtoken_against_the_published_keys() {
    let idp = TestIdp::start().await;
    let builder = idp.token();
    let expected = builder.claims();
    let token = builder.sign();

    let header = decode_part(token.split('.').next().unwrap());
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "RS256", "kid": idp.signing_kid()})
    );

    let claims = verify(&idp, &token, &idp.issuer())
        .await
        .expect("token verifies");
    assert_eq!(claims, expected);
    let t = idp.tenant_id();
    assert_eq!(claims["aud"], idp.client_id());
    assert_eq!(claims["iss"], format!("{}/{t}/v2.0", idp.authority()));
    assert_eq!(claims["tid"], t.as_str());
    assert_eq!(claims["azp"], idp.client_app_id());
    assert_eq!(claims["azpacr"], "0");
    assert_eq!(claims["scp"], "access_as_user");
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["name"], "Test User");
    assert_eq!(claims["preferred_username"], "test.user@contoso.example");
    assert!(ObjectId::parse(claims["oid"].as_str().unwrap()).is_ok());
    assert_ne!(claims["sub"], claims["oid"]);
    assert_eq!(claims["uti"].as_str().unwrap().len(), 22);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["nbf"].as_i64().unwrap(), iat);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 3600);
    for absent in [
        "appid",
        "roles",
        "groups",
        "idtyp",
        "amr",
        "acct",
        "unique_name",
    ] {
        assert!(claims.get(absent).is_none(), "{absent}");
    }

    // The wrong issuer or audience is refused by the independent decoder too.
    assert!(
        verify(&idp, &token, &format!("{}/{t}/", idp.authority()))
            .await
            .is_err()
    );
    let other_aud = idp.token().audience("api://someone-else").sign();
    assert!(verify(&idp, &other_aud, &idp.issuer()).await.is_err());
}

#[tokio::test]
async fn v1_and_app_only_tokens_have_their_shapes() {
    let idp = TestIdp::start().await;
    let (a, t) = (idp.authority(), idp.tenant_id());
    let kid = idp.signing_kid();

    let token = idp.token().v1().sign();
    let header = decode_part(token.split('.').next().unwrap());
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid})
    );
    let claims = verify(&idp, &token, &format!("{a}/{t}/"))
        .await
        .expect("v1 verifies");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["appid"], idp.client_app_id());
    assert_eq!(claims["appidacr"], "0");
    assert_eq!(claims["unique_name"], "test.user@contoso.example");
    assert_eq!(claims["upn"], "test.user@contoso.example");
    assert_eq!(claims["amr"], json!(["pwd"]));
    for absent in ["azp", "azpacr", "preferred_username"] {
        assert!(claims.get(absent).is_none(), "{absent}");
    }

    let oid = ObjectId::parse("690222be-ff1a-4d56-abd1-7e4f7d38e474").unwrap();
    let app = idp.token().app_only().oid(oid.clone()).claims();
    assert_eq!(app["sub"], oid.as_str());
    assert_eq!(app["oid"], oid.as_str());
    assert_eq!(app["idtyp"], "app");
    assert_eq!(app["azpacr"], "1");
    for absent in ["scp", "roles", "name", "preferred_username", "amr"] {
        assert!(app.get(absent).is_none(), "{absent}");
    }
    let app = idp.token().v1().app_only().roles(["Model.Serve"]).claims();
    assert_eq!(app["appidacr"], "1");
    assert_eq!(app["roles"], json!(["Model.Serve"]));
    assert!(app.get("amr").is_none() && app.get("upn").is_none());
    let c = idp.token().client_auth(ClientAuth::Certificate).claims();
    assert_eq!(c["azpacr"], "2");
    let c = idp
        .token()
        .v1()
        .app_only()
        .client_auth(ClientAuth::Unknown)
        .claims();
    assert!(c.get("appidacr").is_none() && c.get("azpacr").is_none());
    // Setter order does not matter.
    assert_eq!(
        idp.token().app_only().v1().oid(oid.clone()).claims()["iss"],
        idp.token().v1().app_only().oid(oid).claims()["iss"]
    );
}

#[tokio::test]
async fn id_tokens_name_no_client_app_and_carry_a_nonce() {
    let idp = TestIdp::start().await;
    let v2 = idp.token().id_token().roles(["Trainer"]).claims();
    assert_eq!(v2["aud"], idp.client_id());
    assert_eq!(v2["ver"], "2.0");
    assert_eq!(v2["roles"], json!(["Trainer"]));
    assert_eq!(v2["nonce"].as_str().unwrap().len(), 22);
    let v1 = idp.token().v1().id_token().claims();
    assert_eq!(v1["ver"], "1.0");
    assert!(v1["nonce"].is_string());
    for absent in ["azp", "azpacr", "appid", "appidacr", "scp"] {
        assert!(v2.get(absent).is_none(), "v2 {absent}");
        assert!(v1.get(absent).is_none(), "v1 {absent}");
    }
}

#[tokio::test]
async fn builder_setters_shape_the_claims() {
    let idp = TestIdp::start().await;
    let a = idp.authority();
    let home = idp.add_tenant();
    let other = idp.add_tenant();
    let oid = ObjectId::parse("02223b6b-aa1d-42d4-9ec0-1b2bb9194438").unwrap();

    let c = idp
        .token()
        .tenant(other.clone())
        .v1()
        .guest(home.clone())
        .oid(oid.clone())
        .subject("pairwise-sub")
        .scopes("Model.Train Model.Infer")
        .roles(["Trainer", "Reader"])
        .groups(["8c5e0f3a-6d0b-4b8e-9a31-0d3c6b2f1e7a"])
        .wids(["62e90394-69f5-4237-9190-012177145e10"])
        .acrs(["c1"])
        .amr(["pwd", "mfa"])
        .auth_time(1_700_000_000)
        .client_capabilities(["cp1"])
        .client_app("75dbe77f-10a3-4e59-85fd-8c127544f17c")
        .has_groups()
        .claims();
    assert_eq!(c["tid"], other.as_str());
    assert_eq!(c["iss"], format!("{a}/{other}/"));
    assert_eq!(c["acct"], 1);
    assert_eq!(c["idp"], format!("https://sts.windows.net/{home}/"));
    assert_eq!(c["oid"], oid.as_str());
    assert_eq!(c["sub"], "pairwise-sub");
    assert_eq!(c["scp"], "Model.Train Model.Infer");
    assert_eq!(c["roles"], json!(["Trainer", "Reader"]));
    assert_eq!(c["groups"], json!(["8c5e0f3a-6d0b-4b8e-9a31-0d3c6b2f1e7a"]));
    assert_eq!(c["wids"], json!(["62e90394-69f5-4237-9190-012177145e10"]));
    assert_eq!(c["acrs"], json!(["c1"]));
    assert_eq!(c["amr"], json!(["pwd", "mfa"]));
    assert_eq!(c["auth_time"], 1_700_000_000);
    assert_eq!(c["xms_cc"], json!(["cp1"]));
    assert_eq!(c["appid"], "75dbe77f-10a3-4e59-85fd-8c127544f17c");
    assert_eq!(c["hasgroups"], true);

    let c = idp.token().groups(["g"]).overage().claims();
    assert!(c.get("groups").is_none());
    assert_eq!(c["_claim_names"], json!({"groups": "src1"}));
    let endpoint = c["_claim_sources"]["src1"]["endpoint"].as_str().unwrap();
    assert_eq!(
        endpoint,
        format!(
            "https://graph.windows.net/{}/users/{}/getMemberObjects",
            idp.tenant_id(),
            c["oid"].as_str().unwrap()
        )
    );

    let c = idp
        .token()
        .audiences(["a", "b"])
        .expires_in(-60)
        .not_before(30)
        .issued_at(-10)
        .claim("tid", json!("not-a-guid"))
        .claim("extra", json!({"x": 1}))
        .without("uti")
        .without("scp")
        .claims();
    let nbf = c["nbf"].as_i64().unwrap();
    assert_eq!(c["aud"], json!(["a", "b"]));
    assert_eq!(c["exp"].as_i64().unwrap(), nbf - 90);
    assert_eq!(c["iat"].as_i64().unwrap(), nbf - 40);
    assert_eq!(c["tid"], "not-a-guid");
    assert_eq!(c["extra"], json!({"x": 1}));
    assert!(c.get("uti").is_none() && c.get("scp").is_none());
    // Edits replay in call order.
    let c = idp.token().without("scp").claim("scp", json!("x")).claims();
    assert_eq!(c["scp"], "x");
}

#[tokio::test]
async fn custom_headers_raw_parts_and_foreign_keys() {
    let idp = TestIdp::start().await;
    let kid = idp.signing_kid();

    // A custom header member: raw-signed by aws-lc-rs, still verifies with jsonwebtoken.
    let token = idp.token().header("nonce", json!("abc")).sign();
    let header = decode_part(token.split('.').next().unwrap());
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "RS256", "kid": kid, "nonce": "abc"})
    );
    verify(&idp, &token, &idp.issuer())
        .await
        .expect("raw-signed token verifies");

    let token = idp
        .token()
        .without_header("typ")
        .header("alg", json!("none"))
        .sign();
    assert_eq!(
        decode_part(token.split('.').next().unwrap()),
        json!({"alg": "none", "kid": kid})
    );

    // Exact bytes, exactly signed.
    let token = idp
        .token()
        .raw_header(r#"{"alg":"RS256","kid":"x","kid":"y"}"#)
        .raw_payload(b"not json".to_vec())
        .sign();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
        br#"{"alg":"RS256","kid":"x","kid":"y"}"#
    );
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), b"not json");
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        idp.sign_raw(&kid, signing_input.as_bytes()).unwrap(),
        "RS256 (PKCS#1 v1.5) is deterministic"
    );
    assert_eq!(idp.sign_raw("no-such-kid", b"x"), None);

    // An unknown kid in the header: still signed by the current key.
    let token = idp.token().kid("unknown-kid").sign();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("unknown-kid"));
    let parts: Vec<&str> = token.split('.').collect();
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        idp.sign_raw(&kid, signing_input.as_bytes()).unwrap()
    );

    // A foreign key under the published kid does not verify.
    let token = idp.token().sign_with_foreign_key().sign();
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
        Some(kid.as_str())
    );
    let error = verify(&idp, &token, &idp.issuer()).await.unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
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
