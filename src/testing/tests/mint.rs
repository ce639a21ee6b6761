//! Minted tokens: their shapes, claims, headers and signatures, checked with an
//! independent decoder against the published keys.

use super::*;

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
