//! The decision service, tried locally: a local Entra look-alike, a configuration for
//! `entra-governor serve` that trusts it, tokens, and ready-to-paste `curl` commands for
//! each way a gateway asks (nginx `auth_request`, Envoy's HTTP `ext_authz`, AuthZEN).
//!
//! ```sh
//! cargo run --example service_demo     # terminal 1: prints the service's command line
//! # terminal 2: that command, then the printed curl commands
//! ```
//!
//! The look-alike serves the signing keys the service fetches: keep this running while
//! the service runs. The configuration is `examples/service.toml`'s routes with the
//! look-alike as the authority and the example policy (`examples/policy.toml`).

#[allow(dead_code, unused_imports)]
// the personas and their tokens are used here, not the server parts
mod platform;

use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

use entra_governor::testing::TestIdp;

use platform::BoxError;

/// The environment variable the configuration names for the AuthZEN PEPs' secret.
pub const PEP_ENV: &str = "ENTRA_GOVERNOR_PEP_TOKEN";
/// The file in the demo's directory that holds that secret (never printed).
pub const PEP_FILE: &str = "pep-token";

const EXAMPLE_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
const SERVICE_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/service.toml");

/// Writes `dir/service.toml` for `idp` (listening on `http` and `grpc`, audit trail in
/// `dir/decisions.jsonl`) with `examples/service.toml`'s routes, and a fresh AuthZEN PEP
/// secret in `dir/pep-token`: the configuration's path.
pub fn write_config(
    dir: &Path,
    idp: &TestIdp,
    http: &str,
    grpc: &str,
) -> Result<PathBuf, BoxError> {
    let example = std::fs::read_to_string(SERVICE_EXAMPLE)?;
    let routes = example
        .find("[[routes]]")
        .map(|at| &example[at..])
        .ok_or("examples/service.toml has no [[routes]]")?;
    let config = format!(
        r#"# Written by `cargo run --example service_demo` for its local Entra look-alike.
# Every key is documented in examples/service.toml.
[listen]
http = "{http}"
grpc = "{grpc}"

[entra]
authority = "{authority}"
# The look-alike speaks plain http on 127.0.0.1.
dangerous_allow_http_loopback = true
tenant = "{tenant}"
client_id = "{client_id}"

[policy]
path = "{policy}"

[audit]
sink = "file"
path = "decisions.jsonl"

[upstream]
headers = {{ "x-entra-principal" = "principal", "x-entra-kind" = "kind", "x-entra-grant" = "grant" }}
remove_authorization = true

[authzen]
pep_token_env = "{PEP_ENV}"

{routes}"#,
        authority = idp.authority(),
        tenant = idp.tenant_id(),
        client_id = idp.client_id(),
        policy = EXAMPLE_POLICY,
    );
    let path = dir.join("service.toml");
    std::fs::write(&path, config)?;
    std::fs::write(dir.join(PEP_FILE), pep_secret())?;
    Ok(path)
}

/// 64 hex digits from the operating system's randomness (through `RandomState`'s keys).
fn pep_secret() -> String {
    (0..4)
        .map(|i: u64| format!("{:016x}", RandomState::new().hash_one(i)))
        .collect()
}

/// How a try reaches the service.
pub enum Ask {
    /// nginx `auth_request`: `GET /forward-auth` with the original method and URI.
    ForwardAuth {
        /// The original request's method.
        method: &'static str,
        /// The original request's URI.
        uri: &'static str,
    },
    /// Envoy's HTTP `ext_authz`: the original method on `/envoy` + the original path.
    Envoy {
        /// The original request's method.
        method: &'static str,
        /// The original request's path.
        path: &'static str,
    },
    /// An AuthZEN PEP: `POST /access/v1/evaluation`; `$TOKEN` in the body is the
    /// persona's token. `with_pep_secret: false` leaves out the PEP's own credential.
    AuthZen {
        /// The evaluation request.
        body: &'static str,
        /// Whether the PEP authenticates with the secret in `pep-token`.
        with_pep_secret: bool,
    },
}

/// One request the demo prints as a `curl` command, with what it gets.
pub struct Try {
    /// What it shows.
    pub what: &'static str,
    /// The persona whose token it carries (`platform::PERSONAS`' `var`); `None`: none.
    pub persona: Option<&'static str>,
    /// The request.
    pub ask: Ask,
    /// The status it gets.
    pub status: u16,
    /// A piece of the answer's body that shows the outcome (AuthZEN's decision).
    pub body_contains: Option<&'static str>,
}

const fn nginx(
    what: &'static str,
    persona: Option<&'static str>,
    method: &'static str,
    uri: &'static str,
    status: u16,
) -> Try {
    Try {
        what,
        persona,
        ask: Ask::ForwardAuth { method, uri },
        status,
        body_contains: None,
    }
}

const PII: &str = "/v1/datasets/pii/patients";
const INFER: &str = "/v1/models/exp-42/infer";
const DEPLOY: &str = "/v1/models/staging-7/deploy";

/// The printed commands.
pub const TRIES: &[Try] = &[
    nginx(
        "nginx asks for a data scientist calling a research model: allowed, with the \
         x-entra-* headers for the upstream",
        Some("DATA_SCIENTIST"),
        "POST",
        INFER,
        200,
    ),
    nginx(
        "... and for her reading personal data (no role grants it)",
        Some("DATA_SCIENTIST"),
        "GET",
        PII,
        403,
    ),
    nginx(
        "an ML engineer reading personal data without auth context c1: a claims challenge \
         (WWW-Authenticate: insufficient_claims)",
        Some("ML_ENGINEER"),
        "GET",
        PII,
        401,
    ),
    nginx(
        "... and with her c1 token",
        Some("ML_ENGINEER_C1"),
        "GET",
        PII,
        200,
    ),
    nginx(
        "a release manager signed in with MFA deploys a release candidate",
        Some("RELEASE_MANAGER"),
        "POST",
        DEPLOY,
        200,
    ),
    nginx(
        "... which the ML engineer may not (no role grants it)",
        Some("ML_ENGINEER"),
        "POST",
        DEPLOY,
        403,
    ),
    nginx("no token", None, "POST", INFER, 401),
    nginx(
        "a path the upstream could resolve to another one (`..`) is refused before any route \
         (audited as noncanonical_path)",
        Some("RELEASE_MANAGER"),
        "POST",
        "/v1/models/exp-42/../staging-7/deploy",
        403,
    ),
    nginx(
        "a request no route names is denied",
        Some("DATA_SCIENTIST"),
        "GET",
        "/v1/secrets",
        403,
    ),
    Try {
        what: "Envoy's HTTP ext_authz asks for the data scientist's inference call",
        persona: Some("DATA_SCIENTIST"),
        ask: Ask::Envoy {
            method: "POST",
            path: INFER,
        },
        status: 200,
        body_contains: None,
    },
    Try {
        what: "an AuthZEN PEP asks the same question (the caller's token in the subject)",
        persona: Some("DATA_SCIENTIST"),
        ask: Ask::AuthZen {
            body: r#"{"subject":{"type":"user","id":"","properties":{"token":"$TOKEN"}},"action":{"name":"inference.invoke"},"resource":{"type":"models","id":"exp-42"}}"#,
            with_pep_secret: true,
        },
        status: 200,
        body_contains: Some(r#""decision":true"#),
    },
    Try {
        what: "... and for the guest reading personal data: a deny is HTTP 200 with \
               \"decision\": false (deny rule no-guests-on-pii)",
        persona: Some("GUEST"),
        ask: Ask::AuthZen {
            body: r#"{"subject":{"type":"user","id":"","properties":{"token":"$TOKEN"}},"action":{"name":"datasets.read"},"resource":{"type":"datasets","id":"pii/patients"}}"#,
            with_pep_secret: true,
        },
        status: 200,
        body_contains: Some(r#""decision":false"#),
    },
    Try {
        what: "a PEP without the service's secret is refused",
        persona: Some("DATA_SCIENTIST"),
        ask: Ask::AuthZen {
            body: r#"{"subject":{"type":"user","id":"","properties":{"token":"$TOKEN"}},"action":{"name":"inference.invoke"},"resource":{"type":"models","id":"exp-42"}}"#,
            with_pep_secret: false,
        },
        status: 401,
        body_contains: None,
    },
];

impl Try {
    /// The `curl` command against the service at `base`, its PEP secret read from
    /// `pep_file`.
    pub fn curl(&self, base: &str, pep_file: &Path) -> String {
        let bearer = |var: &str| format!(" -H \"authorization: Bearer ${var}\"");
        let persona = self.persona.map(bearer).unwrap_or_default();
        match &self.ask {
            Ask::ForwardAuth { method, uri } => format!(
                "curl -si {base}/forward-auth -H 'x-original-method: {method}' \
                 -H 'x-original-uri: {uri}'{persona}"
            ),
            Ask::Envoy { method, path } => {
                format!("curl -si -X {method} {base}/envoy{path}{persona}")
            }
            Ask::AuthZen {
                body,
                with_pep_secret,
            } => {
                let var = self.persona.unwrap_or("TOKEN");
                let body = body.replace("$TOKEN", &format!("'\"${var}\"'"));
                let pep = if *with_pep_secret {
                    format!(
                        " -H \"authorization: Bearer $(cat {})\"",
                        pep_file.display()
                    )
                } else {
                    String::new()
                };
                format!(
                    "curl -si {base}/access/v1/evaluation{pep} \
                     -H 'content-type: application/json' -d '{body}'"
                )
            }
        }
    }
}

/// Two distinct loopback addresses that were free a moment ago (both held while picked).
fn free_addresses() -> Result<[String; 2], BoxError> {
    let listeners = [
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?,
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?,
    ];
    Ok([
        listeners[0].local_addr()?.to_string(),
        listeners[1].local_addr()?.to_string(),
    ])
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit_code(run().await)
}

async fn run() -> Result<(), BoxError> {
    let idp = platform::look_alike().await?;
    let dir = std::env::temp_dir().join(format!(
        "entra-governor-service-demo-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let [http, grpc] = free_addresses()?;
    let config = write_config(&dir, &idp, &http, &grpc)?;
    let pep_file = dir.join(PEP_FILE);
    println!(
        "Local Entra look-alike at {} (tenant {}, API client id {})",
        idp.authority(),
        idp.tenant_id(),
        idp.client_id()
    );
    println!("Decision service configuration: {}", config.display());
    println!(
        "Audit trail (JSON Lines): {}",
        dir.join("decisions.jsonl").display()
    );
    println!("\n# Start the decision service in another terminal (keep this one running):");
    println!(
        "{PEP_ENV}=$(cat {}) cargo run --features service --bin entra-governor -- serve --config {}",
        pep_file.display(),
        config.display()
    );
    println!("\n# Tokens (valid for one hour; restart for new ones). Paste into that shell:");
    for (persona, token) in platform::persona_tokens(&idp) {
        println!("# {}\nexport {}={token}", persona.who, persona.var);
    }
    println!("\n# Ask it:");
    let base = format!("http://{http}");
    for t in TRIES {
        println!("# {}: {}\n{}", t.what, t.status, t.curl(&base, &pep_file));
    }
    println!("\n# Ctrl-C stops the look-alike (the service then answers 503 for new keys).");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
