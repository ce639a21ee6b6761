//! A real nginx (`/usr/sbin/nginx`, the Debian package) in front of an upstream, with
//! `auth_request` to the service's `/forward-auth`: the configuration is
//! `deploy/nginx.conf` as shipped, only its addresses and file paths moved to the test's
//! free loopback ports and temporary directory. The upstream, an axum server in the test
//! process, echoes what reached it as JSON; the client must get every contract row's
//! status, challenge and body as from the service itself.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, Method, Uri};
use entra_governor::testing::Mode;
use serde_json::{Value, json};

use crate::contract::{self, Case, Expect};
use crate::harness::{self, Service};

/// The nginx binary of the Debian package.
const NGINX: &str = "/usr/sbin/nginx";
/// The shipped configuration, read afresh by every test.
const DEPLOY_CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf");
/// The caller of the contract's allow rows.
const CALLER_OID: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";

/// A free loopback port (bound, then released for nginx to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `deploy/nginx.conf` with the service, the upstream and the listener on the test's
/// addresses, and the pid file, logs and temporary files inside `dir`. Every string
/// replaced must be in the shipped file: a changed file fails here, not silently.
fn nginx_conf(dir: &Path, service: &str, upstream: SocketAddr, port: u16) -> String {
    let shipped = std::fs::read_to_string(DEPLOY_CONF).expect("deploy/nginx.conf is readable");
    let dir = dir.display();
    let replacements = [
        ("127.0.0.1:8181", service.to_owned()),
        ("127.0.0.1:8000", upstream.to_string()),
        ("listen 8080;", format!("listen 127.0.0.1:{port};")),
        ("worker_processes auto;", "worker_processes 1;".to_owned()),
        ("/run/nginx.pid", format!("{dir}/nginx.pid")),
        ("/var/log/nginx/", format!("{dir}/")),
        ("/var/lib/nginx/", format!("{dir}/")),
    ];
    let mut conf = shipped;
    for (from, to) in replacements {
        assert!(
            conf.contains(from),
            "deploy/nginx.conf no longer contains {from:?}: update tests/service/nginx.rs"
        );
        conf = conf.replace(from, &to);
    }
    for system in ["/var/", "/run/"] {
        assert!(
            !conf.contains(system),
            "deploy/nginx.conf names a system path under {system} the test does not move"
        );
    }
    conf
}

/// One nginx master process in the foreground; stopped on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    url: String,
}

impl Nginx {
    /// Checks `conf` with `nginx -t`, starts nginx and waits until it accepts
    /// connections on `port`.
    fn start(dir: &Path, conf: &str, port: u16) -> Self {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: these tests run a real nginx; install it with \
             `apt-get install -y nginx` (.ci/run does)"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let args = |command: &mut Command| {
            command
                .arg("-p")
                .arg(dir)
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf_path)
                .args(["-g", "daemon off;"]);
        };
        let mut test = Command::new(NGINX);
        args(&mut test);
        let output = test.arg("-t").output().expect("nginx -t runs");
        assert!(
            output.status.success(),
            "nginx -t refuses the configuration derived from deploy/nginx.conf:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut command = Command::new(NGINX);
        args(&mut command);
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx {
            child,
            dir: dir.to_owned(),
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited ({status}):\n{}", nginx.logs());
            }
            assert!(
                Instant::now() < deadline,
                "nginx does not listen on {port}:\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// nginx's standard error and error log.
    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, then itself (SIGKILL would orphan them).
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The upstream: answers every request with what reached it, as JSON.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(echo);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap) -> Json<Value> {
    let all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    Json(json!({
        "upstream": true,
        "method": method.as_str(),
        "uri": uri.to_string(),
        "x-entra-principal": all("x-entra-principal"),
        "x-entra-kind": all("x-entra-kind"),
        "x-entra-grant": all("x-entra-grant"),
        "authorization": headers.contains_key("authorization"),
        "x-request-id": all("x-request-id"),
    }))
}

/// What nginx answered the client.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    /// Every value of `name`.
    fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The one value of `name`, if any (twice is a failure).
    fn one(&self, name: &str) -> Option<String> {
        let values = self.all(name);
        assert!(
            values.len() <= 1,
            "{name} sent {} times: {values:?}",
            values.len()
        );
        values.into_iter().next()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Sends `case` through nginx as a client would, with spoofed `x-entra-*` headers.
async fn ask(nginx: &Nginx, case: &Case) -> Answer {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{}", nginx.url, case.path))
        .header("x-request-id", request_id(case.name))
        // A client trying to pass as someone else: nginx must replace these.
        .header("x-entra-principal", "spoofed-tenant/spoofed-object")
        .header("x-entra-kind", "application")
        .header("x-entra-grant", "admin#0:spoofed");
    for value in &case.authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("nginx answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

fn request_id(name: &str) -> String {
    name.replace(' ', "-").replace([':', '%', '/', ','], "")
}

/// Checks nginx's answer to `case` against the contract: the upstream's echo for an
/// allow, the service's refusal (status, challenge, body) otherwise.
fn assert_row(case: &Case, answer: &Answer, caller: &str, nginx: &Nginx) {
    let name = format!("nginx: {}", case.name);
    match &case.expect {
        Expect::Allow => {
            assert_eq!(answer.status, 200, "{name}: {answer:?}\n{}", nginx.logs());
            let echo = answer.json();
            assert_eq!(echo["upstream"], json!(true), "{name}: {echo}");
            assert_eq!(echo["method"], json!(case.method), "{name}");
            assert_eq!(echo["uri"], json!(case.path), "{name}: the URI as sent");
            let principal = echo["x-entra-principal"].as_array().unwrap();
            assert_eq!(principal.len(), 1, "{name}: one x-entra-principal: {echo}");
            assert_ne!(
                principal[0], "spoofed-tenant/spoofed-object",
                "{name}: the client's x-entra-principal reached the upstream"
            );
            if case.name.starts_with("allow: ") {
                assert_eq!(principal[0], json!(caller), "{name}");
            }
            assert_eq!(echo["x-entra-kind"], json!(["user"]), "{name}");
            let grant = echo["x-entra-grant"].as_array().unwrap();
            assert_eq!(grant.len(), 1, "{name}: one x-entra-grant: {echo}");
            let grant = grant[0].as_str().unwrap();
            assert!(
                grant.contains('#') && grant.contains(':') && grant != "admin#0:spoofed",
                "{name}: grant {grant}"
            );
            assert_eq!(
                echo["authorization"],
                json!(false),
                "{name}: Authorization reached the upstream"
            );
            assert_eq!(
                echo["x-request-id"],
                json!([request_id(case.name)]),
                "{name}"
            );
        }
        Expect::Refused {
            status,
            www_authenticate,
            retry_after,
            body,
        } => {
            assert_eq!(
                answer.status,
                *status,
                "{name}: {answer:?}\n{}",
                nginx.logs()
            );
            assert_eq!(
                &answer.one("www-authenticate"),
                www_authenticate,
                "{name}: WWW-Authenticate"
            );
            assert_eq!(&answer.one("retry-after"), retry_after, "{name}");
            assert_eq!(
                answer.one("content-type").as_deref(),
                Some("application/json"),
                "{name}"
            );
            let expected: Value = serde_json::from_str(body).unwrap();
            assert_eq!(answer.json(), expected, "{name}: body");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_auth_request_with_the_shipped_config_answers_every_contract_row() {
    let idp = crate::example_idp().await;
    let dir = harness::temp_dir("nginx");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let upstream = start_upstream().await;
    let port = free_port();
    let service_addr = service.http.trim_start_matches("http://");
    let nginx = Nginx::start(&dir, &nginx_conf(&dir, service_addr, upstream, port), port);
    let caller = format!("{}/{CALLER_OID}", idp.tenant_id());

    let cases = contract::cases(&idp);
    let named = |prefix: &str| {
        cases
            .iter()
            .find(|c| c.name.starts_with(prefix))
            .unwrap_or_else(|| panic!("contract::cases has no row {prefix:?}"))
    };

    // The rows the deployment is about, first and explicitly.
    let allow = named("allow: inference on a research model");
    let answer = ask(&nginx, allow).await;
    assert_row(allow, &answer, &caller, &nginx);
    let echo = answer.json();
    assert_eq!(echo["x-entra-principal"], json!([caller]), "{echo}");
    assert_eq!(echo["authorization"], json!(false), "{echo}");

    let deny = named("deny: inference on a release candidate");
    let answer = ask(&nginx, deny).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert_eq!(
        answer.one("www-authenticate").as_deref(),
        Some(r#"Bearer error="insufficient_scope""#)
    );

    let step_up = named("step-up: a cp1 client is challenged for auth context c1");
    let Expect::Refused {
        www_authenticate: Some(challenge),
        ..
    } = &step_up.expect
    else {
        panic!("the step-up row expects a challenge");
    };
    assert!(challenge.contains("claims=\""), "{challenge}");
    let answer = ask(&nginx, step_up).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.one("www-authenticate").as_ref(), Some(challenge));
    assert_eq!(answer.json()["error"], "insufficient_claims");

    let missing = named("missing Authorization header");
    let answer = ask(&nginx, missing).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.one("www-authenticate").as_deref(), Some("Bearer"));

    // Then every row of the contract, header for header and body for body.
    for case in &cases {
        assert_row(case, &ask(&nginx, case).await, &caller, &nginx);
    }
    drop(nginx);
    // The service saw nginx's questions with the client's request id.
    let exit = service.terminate();
    assert!(exit.success(), "{exit:?}");
    let events = harness::audit_events(&dir);
    assert!(
        events.iter().any(|e| {
            e["correlation_id"] == "allow-inference-on-a-research-model" && e["outcome"] == "allow"
        }),
        "the allow was recorded with the client's X-Request-ID"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_turns_the_services_503_and_an_unreachable_service_into_503_with_retry_after() {
    let idp = crate::example_idp().await;
    idp.set_mode(Mode::Down);
    let dir = harness::temp_dir("nginx-no-keys");
    let service = Service::start(&harness::write_config(&dir, &idp, ""));
    let upstream = start_upstream().await;
    let port = free_port();
    let service_addr = service.http.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(&dir, &nginx_conf(&dir, &service_addr, upstream, port), port);
    let allow = contract::cases(&idp)
        .into_iter()
        .find(|c| c.expect == Expect::Allow)
        .unwrap();

    let unavailable = |answer: &Answer, what: &str| {
        assert_eq!(answer.status, 503, "{what}: {answer:?}\n{}", nginx.logs());
        assert_eq!(answer.one("retry-after").as_deref(), Some("5"), "{what}");
        assert_eq!(answer.one("www-authenticate"), None, "{what}");
        assert_eq!(
            answer.one("content-type").as_deref(),
            Some("application/json"),
            "{what}"
        );
        assert_eq!(answer.json()["error"], "temporarily_unavailable", "{what}");
        assert!(answer.json().get("upstream").is_none(), "{what}");
    };
    // No signing keys: the service answers 503 + Retry-After, nginx makes it a 500, the
    // configuration makes it a 503 again.
    unavailable(&ask(&nginx, &allow).await, "no keys");
    assert!(
        std::fs::read_to_string(dir.join("error.log"))
            .unwrap_or_default()
            .contains("auth request unexpected status: 503"),
        "nginx saw the service's 503:\n{}",
        nginx.logs()
    );
    // The service gone: nginx cannot reach it (502), and fails closed with a 503.
    let exit = service.terminate();
    assert!(exit.success(), "{exit:?}");
    unavailable(&ask(&nginx, &allow).await, "service unreachable");
}
