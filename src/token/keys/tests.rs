//! Key parsing, issuer binding, refresh and jitter tests.

use super::*;
use aws_lc_rs::signature::KeyPair as _;

/// A key set holding one fresh key under kid "k", and that key.
pub(crate) fn set_with_one_key() -> (KeySet, Arc<SigningKey>) {
    let mut set = KeySet::default();
    set.insert(key("iss"));
    let k = set.get("k").unwrap().clone();
    (set, k)
}

fn key(issuer: &str) -> SigningKey {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pk = pair.public_key();
    let (n, e) = (
        pk.modulus().big_endian_without_leading_zero(),
        pk.exponent().big_endian_without_leading_zero(),
    );
    SigningKey {
        kid: "k".into(),
        key: RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .unwrap(),
        material: (n.into(), e.into()),
        issuer: issuer.into(),
    }
}

#[test]
fn key_issuer_binding_substitutes_only_the_tenant() {
    let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let k = key("https://login.microsoftonline.com/{tenantid}/v2.0");
    assert!(k.binds(t, &format!("https://login.microsoftonline.com/{t}/v2.0")));
    assert!(!k.binds(t, "https://login.microsoftonline.com/other/v2.0"));
    assert!(!k.binds(t, &format!("https://evil.example/{t}/v2.0")));
    let fixed = key(&format!("https://login.microsoftonline.com/{t}/v2.0"));
    assert!(fixed.binds(t, &format!("https://login.microsoftonline.com/{t}/v2.0")));
    assert!(!fixed.binds(
        "11111111-1111-1111-1111-111111111111",
        "https://login.microsoftonline.com/11111111-1111-1111-1111-111111111111/v2.0"
    ));
}

#[test]
fn unusable_jwks_entries_are_skipped() {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pk = pair.public_key();
    let n = URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero());
    let short_n = URL_SAFE_NO_PAD.encode(&pk.modulus().big_endian_without_leading_zero()[..128]);
    let body = serde_json::json!({"keys": [
        {"kty":"RSA","use":"sig","kid":"good","n":n,"e":"AQAB"},
        {"kty":"RSA","use":"enc","kid":"enc","n":n,"e":"AQAB"},
        {"kty":"EC","use":"sig","kid":"ec","crv":"P-256","x":"AA","y":"AA"},
        {"kty":"RSA","use":"sig","kid":"short","n":short_n,"e":"AQAB"},
        {"kty":"RSA","use":"sig","kid":"e1","n":n,"e":"AQ"},
        {"kty":"RSA","use":"sig","kid":"even","n":n,"e":"AAI"},
        {"kty":"RSA","use":"sig","kid":"hs","alg":"HS256","n":n,"e":"AQAB"},
        {"kty":"RSA","kid":"junk","n":"!!","e":"AQAB"},
        "not an object"
    ]});
    let set = parse_jwks(body.to_string().as_bytes(), "iss").unwrap();
    assert_eq!(set.kids().collect::<Vec<_>>(), vec!["good"]);
    assert_eq!(set.get("good").unwrap().issuer, "iss");
    assert!(parse_jwks(b"not json", "iss").is_none());
}

#[test]
fn a_refresh_keeps_unchanged_keys_and_their_cached_tokens() {
    let jwk = |kid: &str, pair: &aws_lc_rs::rsa::KeyPair| {
        let n = pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        serde_json::json!({"kty":"RSA","use":"sig","kid":kid,"n":URL_SAFE_NO_PAD.encode(n),"e":"AQAB"})
    };
    let generate = || aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let (a, b, c) = (generate(), generate(), generate());
    let jwks = |keys: serde_json::Value| parse_jwks(keys.to_string().as_bytes(), "iss").unwrap();
    let before = jwks(serde_json::json!({"keys": [jwk("a", &a), jwk("b", &b)]}));
    // "a" is unchanged, "b" now carries another key, "c" is new.
    let after = jwks(serde_json::json!({"keys": [jwk("a", &a), jwk("b", &c), jwk("c", &c)]}))
        .keeping_unchanged(&before);
    assert!(Arc::ptr_eq(
        after.get("a").unwrap(),
        before.get("a").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        after.get("b").unwrap(),
        before.get("b").unwrap()
    ));
    // Another issuer for the same material is another key.
    let other_issuer = parse_jwks(
        serde_json::json!({"keys": [jwk("a", &a)]})
            .to_string()
            .as_bytes(),
        "other",
    )
    .unwrap()
    .keeping_unchanged(&before);
    assert!(!Arc::ptr_eq(
        other_issuer.get("a").unwrap(),
        before.get("a").unwrap()
    ));
    // A token cached under "a" is still served after the refresh; one under "b" is not.
    let cache = crate::token::cache::VerifiedTokens::new(1 << 20);
    let principal = |n: u8| {
        Arc::new(
            crate::principal::Principal::builder(
                TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap(),
                crate::ids::ObjectId::parse(&format!("00000000-0000-0000-0000-0000000000{n:02x}"))
                    .unwrap(),
            )
            .expires_at(crate::clock::from_unix_secs(2_000))
            .build(),
        )
    };
    cache.insert(
        "under-a",
        principal(1),
        before.get("a").unwrap().clone(),
        1_000,
    );
    cache.insert(
        "under-b",
        principal(2),
        before.get("b").unwrap().clone(),
        1_000,
    );
    assert!(cache.get("under-a", &after, 1_000).is_some());
    assert!(cache.get("under-b", &after, 1_000).is_none());
}

#[test]
fn discovery_issuer_rules() {
    let t = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let exact = ExpectedIssuer::Exact(format!("https://l/{t}/v2.0"));
    assert_eq!(
        check_issuer(&exact, &format!("https://l/{t}/v2.0"))
            .unwrap()
            .unwrap()
            .as_str(),
        t
    );
    assert!(check_issuer(&exact, "https://l/x/v2.0").is_err());
    let any = ExpectedIssuer::AnyGuid {
        prefix: "https://l/".into(),
        suffix: "/v2.0".into(),
    };
    assert_eq!(
        check_issuer(&any, &format!("https://l/{t}/v2.0"))
            .unwrap()
            .unwrap()
            .as_str(),
        t
    );
    assert!(check_issuer(&any, "https://l/contoso.com/v2.0").is_err());
    assert!(check_issuer(&any, &format!("https://evil/{t}/v2.0")).is_err());
}

#[test]
fn jitter_adds_up_to_a_tenth_and_never_overflows() {
    let hour = Duration::from_secs(3600);
    assert_eq!(with_jitter(hour, 0.0), hour);
    assert_eq!(with_jitter(hour, 1.0), Duration::from_secs(3960));
    assert_eq!(with_jitter(Duration::MAX, 1.0), Duration::MAX);
    assert_eq!(with_jitter(hour, f64::NAN), hour);
    let _ = jittered(Duration::MAX);
}

#[test]
fn bootstrap_backoff_doubles_and_caps() {
    assert_eq!(bootstrap_backoff(1), Duration::from_secs(1));
    assert_eq!(bootstrap_backoff(2), Duration::from_secs(2));
    assert_eq!(bootstrap_backoff(4), Duration::from_secs(8));
    assert_eq!(bootstrap_backoff(30), Duration::from_secs(60));
}
