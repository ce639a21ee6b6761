//! The decision service as a user runs it: the built `entra-governor` binary, started as
//! a process with `serve --config <file>` against the local Entra look-alike, on free
//! loopback ports (port 0; the start-up line says which).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use entra_governor::testing::TestIdp;

/// The environment variable the tests' configurations name for the AuthZEN PEP secret.
pub const PEP_ENV: &str = "EG_TEST_PEP_TOKEN";
/// The PEP secret (test only).
pub const PEP_SECRET: &str = "pep-secret-for-tests-0123456789abcdef";

/// The routes every test service has: those of `examples/service.toml`.
pub const ROUTES: &str = r#"
[[routes]]
method = "POST"
path = "/v1/models/{model}/infer"
action = "inference.invoke"
resource = "models/{model}"

[[routes]]
method = "GET"
path = "/v1/datasets/{*name}"
action = "datasets.read"
resource = "datasets/{*name}"
"#;

/// A fresh directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eg-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `dir/service.toml` for `idp`, with the example policy copied to
/// `dir/policy.toml` (so a test may rewrite it) and `extra` appended.
pub fn write_config(dir: &Path, idp: &TestIdp, extra: &str) -> PathBuf {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
    std::fs::copy(policy, dir.join("policy.toml")).unwrap();
    let config = dir.join("service.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
grpc = "127.0.0.1:0"

[entra]
authority = "{authority}"
dangerous_allow_http_loopback = true
tenant = "{tenant}"
client_id = "{client_id}"

[policy]
path = "policy.toml"
reload_interval_secs = 1

[audit]
sink = "file"
path = "decisions.jsonl"

[upstream]
headers = {{ "x-entra-principal" = "principal", "x-entra-kind" = "kind", "x-entra-grant" = "grant" }}
remove_authorization = true

[authzen]
pep_token_env = "{PEP_ENV}"
{ROUTES}
{extra}
"#,
            authority = idp.authority(),
            tenant = idp.tenant_id(),
            client_id = idp.client_id(),
        ),
    )
    .unwrap();
    config
}

/// The built binary: `target/<profile>/entra-governor`.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_entra-governor"))
}

/// One running service; killed on drop.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub http: String,
    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub grpc: String,
    /// Everything the process wrote to standard error so far.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Starts `entra-governor serve --config <config>` and waits for its start-up line.
    pub fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[(PEP_ENV, PEP_SECRET)])
    }

    /// [`start`](Self::start) with these environment variables instead of the tests' PEP
    /// secret.
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the entra-governor binary starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        // Drained for the process's whole life: a full pipe would block it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Kept before the start-up line is announced: a test that saw it reads it.
                sink.lock().unwrap().push(line.clone());
                if line.contains("entra-governor serving") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the service did not start: {:?}", logs.lock().unwrap()));
        let field = |name: &str| {
            let start =
                line.find(&format!("{name}=")).expect("the field is logged") + name.len() + 1;
            let value = line[start..].split_whitespace().next().unwrap();
            format!("http://{value}")
        };
        Service {
            http: field("http"),
            grpc: field("grpc"),
            child,
            logs,
        }
    }

    /// The log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Waits (up to 20 s) until a log line contains `needle`: lines reach the test through
    /// a pipe and a reader thread, after what they report has happened.
    pub async fn wait_for_log(&self, needle: &str) {
        for _ in 0..400 {
            if self.log_text().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no log line contains {needle:?}: {}", self.log_text());
    }

    /// Sends SIGTERM and waits for the process to exit: its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The audit trail the service wrote (JSON Lines), parsed.
pub fn audit_events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("decisions.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each audit line is JSON"))
        .collect()
}

/// `GET url`, its body parsed as JSON.
pub async fn get_json(url: String) -> serde_json::Value {
    let text = reqwest::get(url)
        .await
        .expect("the service answers")
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
