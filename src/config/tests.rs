use super::*;

const MINIMAL: &str = r#"
[entra]
tenant = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d"
client_id = "0d6f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

[policy]
path = "policy.toml"
"#;

fn parse(text: &str) -> Result<Config, (String, String)> {
    Config::from_toml_str(text)
}

#[test]
fn a_minimal_file_parses_with_the_defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.audit.sink, AuditSinkKind::Tracing);
    assert_eq!(config.audit.mode, AuditMode::Wait);
    assert!(config.routes.is_empty() && config.graph.is_none() && config.fleet.is_none());
    assert_eq!(
        config.policy_reload_interval(),
        Some(std::time::Duration::from_secs(2))
    );
    assert!(!config.upstream.remove_authorization);
}

#[test]
fn an_unknown_key_is_refused_with_its_path() {
    let text = MINIMAL.replace("client_id", "tenant_id = \"x\"\nclient_id");
    let (key, message) = parse(&text).unwrap_err();
    assert_eq!(key, "entra.tenant_id");
    assert!(message.contains("unknown field `tenant_id`"), "{message}");

    let text = format!(
        "{MINIMAL}\n[[routes]]\nmethod = \"GET\"\npath = \"/\"\naction = \"a\"\nresource = \"r\"\nresorce = \"x\"\n"
    );
    let (key, _) = parse(&text).unwrap_err();
    assert_eq!(key, "routes[0].resorce");

    let (key, message) = parse(&format!(
        "{MINIMAL}\n[upstream.headers]\nx-a = \"password\"\n"
    ))
    .unwrap_err();
    assert_eq!(key, "upstream.headers.x-a");
    assert!(message.contains("unknown variant `password`"), "{message}");
}

#[test]
fn a_bad_route_is_named_by_its_index() {
    let dir = std::env::temp_dir().join(format!("entra-governor-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("service.toml");
    std::fs::write(
        &file,
        format!("{MINIMAL}\n[[routes]]\nmethod = \"GET\"\npath = \"/v1/{{model}}\"\naction = \"a\"\nresource = \"models/{{name}}\"\n"),
    )
    .unwrap();
    let error = Config::load(&file).unwrap_err().to_string();
    assert!(error.starts_with("routes[0]: resource template"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let mut config = parse(MINIMAL).unwrap();
    config.resolve_paths(Path::new("/etc/entra-governor"));
    assert_eq!(
        config.policy.path,
        Path::new("/etc/entra-governor/policy.toml")
    );
}

#[test]
fn a_file_that_is_not_toml_names_the_line() {
    let (key, message) = parse("[entra\n").unwrap_err();
    assert_eq!(key, ".");
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn the_shipped_example_configurations_load() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let service = Config::load(examples.join("service.toml")).unwrap();
    assert_eq!(service.route_table().unwrap().routes().len(), 4);
    assert_eq!(
        service.authzen.pep_token_env.as_deref(),
        Some("ENTRA_GOVERNOR_PEP_TOKEN")
    );
    assert!(service.upstream.remove_authorization);
    assert_eq!(service.policy.path, examples.join("policy.toml"));
    let platform = Config::load(examples.join("ai_platform.toml")).unwrap();
    assert!(platform.routes.is_empty());
    assert_eq!(platform.audit.sink, AuditSinkKind::File);
}

/// Every key the configuration accepts appears in `examples/service.toml`, the one
/// annotated reference (set, or commented out with its default).
#[test]
fn every_key_is_documented_in_the_annotated_example() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/service.toml"),
    )
    .unwrap();
    let keys = [
        "[listen]",
        "http =",
        "grpc =",
        "[entra]",
        "cloud =",
        "authority =",
        "tenant =",
        "tenants =",
        "client_id =",
        "app_id_uris =",
        "token_versions =",
        "allowed_client_apps =",
        "clock_skew_secs =",
        "key_refresh_cooldown_secs =",
        "key_refresh_interval_secs =",
        "http_timeout_secs =",
        "groups_claim_emitted =",
        "acct_claim_emitted =",
        "dangerous_allow_http_loopback =",
        "[policy]",
        "path =",
        "reload_interval_secs =",
        "shadow =",
        "[audit]",
        "sink =",
        "mode =",
        "strict =",
        "display_names =",
        "groups =",
        "[revocations]",
        "file =",
        "max =",
        "[graph]",
        "client_secret_env =",
        "certificate_path =",
        "private_key_path =",
        "credential =",
        "cache_ttl_secs =",
        "cache_capacity =",
        "timeout_secs =",
        "[fleet]",
        "redis_url =",
        "key_env =",
        "namespace =",
        "replica_id =",
        "strict_max_staleness_secs =",
        "[upstream]",
        "headers =",
        "remove_authorization =",
        "[authzen]",
        "pep_token_env =",
        "policy_decision_point =",
        "dangerous_allow_unauthenticated_peps =",
        "[[routes]]",
        "method =",
        "action =",
        "resource =",
    ];
    for key in keys {
        assert!(
            text.contains(key),
            "examples/service.toml does not document {key}"
        );
    }
}

#[test]
fn the_shadow_policy_and_the_recorded_groups_are_read_and_checked() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.audit.groups, crate::audit::AuditGroups::Bound);
    assert_eq!(config.policy.shadow, None);

    let text = MINIMAL.replace(
        "path = \"policy.toml\"",
        "path = \"policy.toml\"\nshadow = \"candidate.toml\"\n\n[audit]\ngroups = \"all\"",
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.audit.groups, crate::audit::AuditGroups::All);
    assert_eq!(
        config.policy.shadow.as_deref(),
        Some(std::path::Path::new("candidate.toml"))
    );

    let (key, message) = parse(&format!("{MINIMAL}\n[audit]\ngroups = \"some\"\n")).unwrap_err();
    assert_eq!(key, "audit.groups");
    assert!(message.contains("unknown variant `some`"), "{message}");
}

#[test]
fn a_shadow_file_that_does_not_load_is_named_by_its_key() {
    let dir = std::env::temp_dir().join(format!("entra-governor-shadow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml"),
        dir.join("policy.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("candidate.toml"),
        "version = 1\n[roles.x]\ngrants = 3\n",
    )
    .unwrap();
    let file = dir.join("service.toml");
    let text = MINIMAL.replace(
        "path = \"policy.toml\"",
        "path = \"policy.toml\"\nshadow = \"candidate.toml\"",
    );
    std::fs::write(&file, format!("{text}\n[audit]\nsink = \"stdout\"\n")).unwrap();
    let config = Config::load(&file).unwrap();
    let log = crate::AuditLog::builder(crate::MemorySink::new())
        .runtime(tokio::runtime::Runtime::new().unwrap().handle().clone())
        .build();
    let error = config.governor_builder(log).unwrap_err().to_string();
    assert!(error.starts_with("policy.shadow ("), "{error}");
    assert!(error.contains("candidate.toml"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `[graph] credential`: the secretless kinds, and every mistake named by its key.
#[cfg(feature = "graph")]
#[test]
fn a_secretless_graph_credential_is_chosen_and_checked_by_key() {
    let graph = |body: &str| {
        let config = parse(&format!("{MINIMAL}\n[graph]\n{body}\n"))?;
        Ok::<_, (String, String)>(config.graph.unwrap())
    };
    let (key, message) = graph("credential = \"kubernetes\"").unwrap_err();
    assert_eq!(key, "graph.credential");
    assert!(
        message.contains("unknown variant `kubernetes`"),
        "{message}"
    );

    let refused = |body: &str| match build::graph_credential(&graph(body).unwrap()) {
        Err(ConfigFileError::Invalid { key, message }) => (key, message),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        refused("credential = \"managed_identity\"\nclient_id = \"my-identity\""),
        (
            "graph.client_id".into(),
            "not a GUID: the client id of a user-assigned managed identity".into()
        )
    );
    assert_eq!(
        refused("credential = \"workload_identity\"\nclient_id = \"3f2a1b0c-0000-4000-8000-000000000001\"").0,
        "graph.client_id"
    );
    assert_eq!(
        refused("credential = \"managed_identity\"\nclient_secret_env = \"S\"").0,
        "graph.credential"
    );
    assert_eq!(
        refused("client_id = \"3f2a1b0c-0000-4000-8000-000000000001\"\nclient_secret_env = \"S\""),
        (
            "graph.client_id".into(),
            "only with credential = \"managed_identity\"".into()
        )
    );

    let user_assigned = graph(
        "credential = \"managed_identity\"\nclient_id = \"3f2a1b0c-0000-4000-8000-000000000001\"",
    )
    .unwrap();
    assert_eq!(
        user_assigned.credential,
        Some(GraphCredentialKind::ManagedIdentity)
    );
    if std::env::var_os("IDENTITY_ENDPOINT").is_none() {
        let credential = build::graph_credential(&user_assigned).unwrap();
        let shown = format!("{credential:?}");
        assert!(
            shown.contains("imds") && shown.contains("3f2a1b0c-0000-4000-8000-000000000001"),
            "{shown}"
        );
    }
}

#[cfg(feature = "otel")]
#[tokio::test]
async fn an_otlp_sink_is_configured_in_the_audit_section() {
    let otlp = |extra: &str| {
        let text = format!("{MINIMAL}\n[audit]\nsink = \"otlp\"\n{extra}");
        parse(&text).unwrap().audit_log().map(|_| ())
    };
    let config = parse(&format!(
        "{MINIMAL}\n[audit]\nsink = \"otlp\"\nendpoint = \"http://127.0.0.1:4318\"\nservice_name = \"gw\"\n"
    ))
    .unwrap();
    assert_eq!(config.audit.sink, AuditSinkKind::Otlp);
    assert_eq!(config.audit.service_name.as_deref(), Some("gw"));
    config.audit_log().unwrap().shutdown().await;
    let err = |r: Result<(), ConfigFileError>| r.unwrap_err().to_string();
    let e = err(otlp(""));
    assert!(
        e.contains("audit.endpoint") && e.contains("needs an endpoint"),
        "{e}"
    );
    let e = err(otlp("endpoint = \"http://collector:4318\"\n"));
    assert!(
        e.contains("audit.endpoint") && e.contains("plain http"),
        "{e}"
    );
    let e = err(otlp(
        "endpoint = \"https://collector\"\nheader_env = { \"x-api-key\" = \"ENTRA_GOVERNOR_TEST_UNSET_OTLP_KEY\" }\n",
    ));
    assert!(
        e.contains("audit.header_env.x-api-key")
            && e.contains("ENTRA_GOVERNOR_TEST_UNSET_OTLP_KEY"),
        "{e}"
    );
    // Decision spans: beside the logs endpoint, or where `traces_endpoint` says.
    otlp("endpoint = \"http://127.0.0.1:4318\"\nspans = \"parent_based\"\n").unwrap();
    otlp(
        "endpoint = \"http://127.0.0.1:4318/custom\"\nspans = \"sampled_parents\"\n\
         traces_endpoint = \"http://127.0.0.1:4318/t\"\n",
    )
    .unwrap();
    let e = err(otlp(
        "endpoint = \"http://127.0.0.1:4318/custom\"\nspans = \"sampled_parents\"\n",
    ));
    assert!(e.contains("traces_endpoint"), "{e}");
    let e = err(otlp(
        "endpoint = \"http://127.0.0.1:4318\"\nspans = \"parent_based\"\n\
         traces_endpoint = \"http://tempo:4318\"\n",
    ));
    assert!(e.contains("plain http"), "{e}");
    let (key, e) = parse(&format!(
        "{MINIMAL}\n[audit]\nsink = \"otlp\"\nspans = \"always\"\n"
    ))
    .unwrap_err();
    assert_eq!(key, "audit.spans", "{e}");
    let e = parse(&format!("{MINIMAL}\n[audit]\nspans = \"parent_based\"\n"))
        .unwrap()
        .audit_log()
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("audit.spans") && e.contains("`otlp` sink only"),
        "{e}"
    );
}
