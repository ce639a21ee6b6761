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
