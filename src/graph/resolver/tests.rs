//! Builder checks, redaction, error-code extraction, holds and backoff.

use super::app_token::entra_error_code;
use super::retry::backoff;
use super::*;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
const SECRET: &str = "Xy7Q~super.secret-value_1234567890abcdef";

fn builder(cloud: &Cloud) -> GraphGroupResolverBuilder {
    GraphGroupResolver::builder(
        cloud,
        TenantId::parse(TENANT).unwrap(),
        CLIENT,
        ClientCredential::secret(SECRET),
    )
}

#[test]
fn resolver_is_send_sync_and_a_trait_object() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<GraphGroupResolver>();
    let resolver = builder(&Cloud::global()).build().unwrap();
    let _: Arc<dyn GroupResolver> = Arc::new(resolver);
}

#[test]
fn debug_never_shows_the_secret() {
    let b = builder(&Cloud::us_government());
    let shown = format!("{b:?} {b:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    let resolver = b.build().unwrap();
    let shown = format!("{resolver:?} {resolver:#?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("https://graph.microsoft.us"), "{shown}");
    let token = GraphToken {
        access_token: "eyJ0eXAiOiJKV1Qi.secret.token".into(),
        valid_until: std::time::Instant::now(),
    };
    assert_eq!(format!("{token:?}"), "GraphToken(<redacted>)");
}

#[test]
fn graph_base_follows_the_cloud() {
    for (cloud, graph) in [
        (Cloud::global(), "https://graph.microsoft.com"),
        (Cloud::us_government(), "https://graph.microsoft.us"),
        (Cloud::china(), "https://microsoftgraph.chinacloudapi.cn"),
    ] {
        let resolver = builder(&cloud).build().unwrap();
        assert_eq!(resolver.inner.graph_base, graph);
        assert_eq!(resolver.inner.authority, cloud.authority());
    }
}

#[test]
fn inconsistent_configurations_are_refused() {
    let cloud = Cloud::global();
    let cases: Vec<(GraphGroupResolverBuilder, ConfigError)> = vec![
        (
            GraphGroupResolver::builder(
                &cloud,
                TenantId::parse(TENANT).unwrap(),
                "api://x",
                ClientCredential::secret(SECRET),
            ),
            ConfigError::InvalidClientId {
                found: "api://x".into(),
            },
        ),
        (
            GraphGroupResolver::builder(
                &cloud,
                TenantId::parse(TENANT).unwrap(),
                CLIENT,
                ClientCredential::secret(""),
            ),
            ConfigError::InvalidCredential {
                reason: "the client secret is empty",
            },
        ),
        (
            builder(&cloud).cache_ttl(Duration::ZERO),
            ConfigError::OutOfRange {
                setting: "cache_ttl",
                reason: "above zero, at most 24 h",
            },
        ),
        (
            builder(&cloud).failure_ttl(Duration::ZERO),
            ConfigError::OutOfRange {
                setting: "failure_ttl",
                reason: "above zero, at most 60 s",
            },
        ),
        (
            builder(&cloud).failure_ttl(Duration::from_secs(61)),
            ConfigError::OutOfRange {
                setting: "failure_ttl",
                reason: "above zero, at most 60 s",
            },
        ),
        (
            builder(&cloud).time_budget(Duration::from_secs(600)),
            ConfigError::OutOfRange {
                setting: "time_budget",
                reason: "above zero, at most 120 s",
            },
        ),
        (
            builder(&cloud).max_retries(11),
            ConfigError::OutOfRange {
                setting: "max_retries",
                reason: "at most 10",
            },
        ),
        (
            builder(&Cloud::custom("http://127.0.0.1:9")),
            ConfigError::InvalidAuthority {
                found: "http://127.0.0.1:9".into(),
                reason: "plain http: use https, or dangerous_allow_http_loopback() for a loopback test server",
            },
        ),
        (
            builder(&Cloud::custom("http://10.0.0.1:9")).dangerous_allow_http_loopback(),
            ConfigError::InvalidAuthority {
                found: "http://10.0.0.1:9".into(),
                reason: "plain http is allowed only for loopback hosts",
            },
        ),
        (
            builder(&Cloud::global().with_graph_base("http://graph.example")),
            ConfigError::InvalidGraphBase {
                found: "http://graph.example".into(),
                reason: "plain http: use https, or dangerous_allow_http_loopback() for a loopback test server",
            },
        ),
    ];
    for (builder, expected) in cases {
        assert_eq!(builder.build().unwrap_err(), expected);
    }
    assert!(
        builder(&Cloud::custom("http://127.0.0.1:9"))
            .dangerous_allow_http_loopback()
            .build()
            .is_ok()
    );
}

#[test]
fn error_codes_are_extracted_without_descriptions() {
    let entra = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
    assert_eq!(entra_error_code(entra), "invalid_client (AADSTS7000215)");
    assert_eq!(entra_error_code(b"<html>"), "unknown");
    assert_eq!(
        entra_error_code(br#"{"error":"bad code\n with spaces"}"#),
        "unknown"
    );
    let graph = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#;
    assert_eq!(graph_error_code(graph), "Authorization_RequestDenied");
    assert_eq!(graph_error_code(b"{}"), "unknown");
}

#[test]
fn a_throttled_hold_answers_the_time_left_rounded_up_then_nothing() {
    let now = std::time::Instant::now();
    let held = Held {
        error: None,
        until: now + Duration::from_millis(1500),
    };
    assert_eq!(
        held.answer(now),
        Some(GroupResolutionError::Throttled {
            retry_after_secs: 2
        })
    );
    let failed = GroupResolutionError::Unavailable { reason: "x".into() };
    let held = Held {
        error: Some(failed.clone()),
        until: now + Duration::from_secs(60),
    };
    assert_eq!(held.answer(now), Some(failed));
    assert_eq!(held.answer(now + Duration::from_secs(60)), None);
    let over = Held {
        error: None,
        until: now,
    };
    assert_eq!(over.answer(now), None);
}

#[test]
fn backoff_doubles_is_capped_and_jittered_down_to_half() {
    // 100 ms doubling per retry, capped at 2 s; each wait in [full / 2, full].
    let ms = Duration::from_millis;
    let expected = [100, 200, 400, 800, 1600, 2000, 2000, 2000];
    for retries in 0..20u32 {
        let full = ms(expected[(retries as usize).min(expected.len() - 1)]);
        let wait = backoff(retries);
        assert!(wait >= full / 2 && wait <= full, "{retries}: {wait:?}");
    }
}
