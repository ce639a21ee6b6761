//! The example servers as replicas of one fleet: the built example binaries, run as
//! processes with a `--config` file (as `tests/http/example_servers.rs` runs them), the
//! test's `TestIdp` as Entra and Microsoft Graph, one `redis-server` for all of them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entra_governor::testing::TestIdp;
use serde_json::Value;

use crate::common::TempDir;
use crate::common::redis::RedisServer;

/// The fleet key every replica reads from [`KEY_ENV`] (fixed: the tests are deterministic).
pub const FLEET_KEY: &str = "fleet-tests-key-0123456789abcdefghijklmnopqrstuvwxyz";
/// The environment variable holding the fleet key.
pub const KEY_ENV: &str = "EG_TEST_FLEET_KEY";
/// The environment variable holding the Graph client secret.
pub const SECRET_ENV: &str = "EG_TEST_GRAPH_SECRET";
/// The fleet namespace of the tests.
pub const NAMESPACE: &str = "eg-fleet-test";

/// `group:data-scientists` in `examples/policy.toml`.
pub const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
/// `group:ml-engineers` in `examples/policy.toml`.
pub const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// `group:platform-admins` in `examples/policy.toml`.
pub const PLATFORM_ADMINS: &str = "7c2d9e4f-1a3b-4c5d-9e6f-a0b1c2d3e4f5";

/// The fleet tests start several processes each and assert propagation bounds: one at
/// a time on a 2-core machine.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub use crate::common::example_binary;

/// How soon a revocation reaches the other replicas through the fleet's stream: a bound
/// with room for a loaded CI machine (measured propagation is under 2 ms), and far below
/// the 30 s resync interval, so that only the stream can meet it.
pub const STREAMED: Duration = Duration::from_secs(5);

/// A fresh directory for one test's configuration files.
pub fn temp_dir(name: &str) -> TempDir {
    TempDir::new(&format!("fleet-{name}"))
}

/// The replicas' Redis user: exactly the permissions the README lists for the fleet
/// ("Running more than one replica"), on the tests' namespace.
const USER: &str = "eg-replica";
const PASSWORD: &str = "replica-password";

fn acl_rules() -> Vec<String> {
    format!(
        "on >{PASSWORD} resetkeys ~{NAMESPACE}:* resetchannels -@all \
         +ping +get +set +mset +del +hget +hset +hgetall +hdel \
         +xadd +xread +xrevrange +evalsha +script|load"
    )
    .split_whitespace()
    .map(str::to_owned)
    .collect()
}

/// Creates the replicas' user on `redis` (`ACL SETUSER`) and returns the URL the
/// replicas connect with: the example servers run as a platform team would run them.
pub fn least_privilege_url(redis: &RedisServer) -> String {
    let rules = acl_rules();
    let mut args = vec!["ACL", "SETUSER", USER];
    args.extend(rules.iter().map(String::as_str));
    assert_eq!(
        redis.command(&args),
        Ok(crate::common::redis::Reply::Status("OK".into()))
    );
    format!("redis://{USER}:{PASSWORD}@127.0.0.1:{}", redis.port())
}

/// Restarts `redis` empty, with the replicas' user configured before it accepts a
/// connection (as a replacement Redis would be).
pub fn restart_with_user(redis: &mut RedisServer) {
    let mut args = vec!["--user".to_owned(), USER.to_owned()];
    args.extend(acl_rules());
    redis.restart_with(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// A configuration for one replica: the example policy, Graph for overage, the fleet
/// (`fleet_extra`: more lines of the `[fleet]` table).
pub fn write_config(
    dir: &Path,
    idp: &TestIdp,
    redis: &RedisServer,
    replica: &str,
    fleet_extra: &str,
) -> PathBuf {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy.toml");
    let config = dir.join(format!("{replica}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
[policy]
path = "{policy}"
[audit]
sink = "file"
path = "{replica}-decisions.jsonl"
[entra]
authority = "{authority}"
dangerous_allow_http_loopback = true
tenant = "{tenant}"
client_id = "{client_id}"
[graph]
client_secret_env = "{SECRET_ENV}"
[fleet]
redis_url = "{url}"
key_env = "{KEY_ENV}"
namespace = "{NAMESPACE}"
replica_id = "{replica}"
{fleet_extra}
"#,
            authority = idp.authority(),
            tenant = idp.tenant_id(),
            client_id = idp.client_id(),
            url = least_privilege_url(redis),
        ),
    )
    .unwrap();
    config
}

/// One example server process; killed on drop.
pub struct Replica {
    /// Its id in the fleet (`replica_id`), also the configuration's name.
    pub id: String,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Child,
}

impl Replica {
    /// Starts `example` (`ai_platform` or `actix_platform`) as replica `id`, and waits
    /// until it listens.
    pub fn start(example: &str, id: &str, dir: &Path, idp: &TestIdp, redis: &RedisServer) -> Self {
        Self::start_with(example, id, dir, idp, redis, "")
    }

    /// As [`start`](Self::start), with more lines for the `[fleet]` table.
    pub fn start_with(
        example: &str,
        id: &str,
        dir: &Path,
        idp: &TestIdp,
        redis: &RedisServer,
        fleet_extra: &str,
    ) -> Self {
        let config = write_config(dir, idp, redis, id, fleet_extra);
        let mut child = Command::new(example_binary(example))
            .arg("--config")
            .arg(&config)
            .env(KEY_ENV, FLEET_KEY)
            .env(SECRET_ENV, idp.graph_client_secret())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{example} did not run: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        // Both pipes are drained for the process's whole life (a full pipe would block it).
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(base) => Replica {
                id: id.to_owned(),
                base,
                child,
            },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                let stderr: Vec<String> = err_rx.try_iter().collect();
                panic!(
                    "{example} {id} did not start ({status:?}):\n{}",
                    stderr.join("\n")
                )
            }
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The idp, Redis, and three replicas (axum, actix, axum) sharing it.
pub struct Fleet {
    /// Entra and Microsoft Graph.
    pub idp: TestIdp,
    /// The fleet's Redis.
    pub redis: RedisServer,
    /// The replicas, in start order.
    pub replicas: Vec<Replica>,
    /// The replicas' configurations, removed after the replicas stopped.
    _dir: TempDir,
}

impl Fleet {
    /// Starts everything, and waits until every replica sees all three checked in and
    /// has caught up with the fleet's revocations.
    pub async fn start(name: &str) -> Self {
        let idp = crate::common::example_idp().await;
        let redis = RedisServer::start();
        let dir = temp_dir(name);
        let replicas = [
            ("ai_platform", "r0-axum"),
            ("actix_platform", "r1-actix"),
            ("ai_platform", "r2-axum"),
        ]
        .into_iter()
        .map(|(example, id)| Replica::start(example, id, &dir, &idp, &redis))
        .collect();
        let fleet = Fleet {
            idp,
            redis,
            replicas,
            _dir: dir,
        };
        fleet.wait_until_current().await;
        fleet
    }

    /// Every replica connected, caught up, and listing all three replicas.
    pub async fn wait_until_current(&self) {
        let admin = admin_token(&self.idp);
        for r in &self.replicas {
            wait_for(
                Duration::from_secs(20),
                &format!("{} current", r.id),
                || async {
                    let status = fleet_status(&r.base, &admin).await;
                    status["connected"] == true
                        && status["view_age_ms"].is_u64()
                        && status["replicas"].as_array().map(Vec::len) == Some(3)
                },
            )
            .await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.replicas.clear();
    }
}

/// A platform admin signed in with MFA.
pub fn admin_token(idp: &TestIdp) -> String {
    idp.token()
        .scopes("Platform.Admin")
        .groups([PLATFORM_ADMINS])
        .acrs(["c2"])
        .sign()
}

/// `GET {base}/v1/admin/fleet` as JSON (`Null` when the replica does not answer 200).
pub async fn fleet_status(base: &str, admin: &str) -> Value {
    let response = client()
        .get(format!("{base}/v1/admin/fleet"))
        .bearer_auth(admin)
        .send()
        .await;
    match response {
        Ok(r) if r.status() == 200 => {
            let text = r.text().await.unwrap_or_default();
            serde_json::from_str(&text).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

/// An HTTP client with a short timeout (a stuck replica fails the test, not hangs it).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The status and `Retry-After` of `GET {base}{path}` with `token`.
pub async fn get(base: &str, path: &str, token: &str) -> (u16, Option<String>) {
    let response = client()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry_after)
}

/// `POST {base}/v1/admin/revocations` revoking `(tenant, object)`; the status.
pub async fn revoke(base: &str, admin: &str, tenant: &str, object: &str) -> u16 {
    client()
        .post(format!("{base}/v1/admin/revocations"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "tenant_id": tenant, "object_id": object }).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {base}/v1/admin/revocations: {e}"))
        .status()
        .as_u16()
}

/// Polls `check` every 10 ms until it holds; fails naming `what` after `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A caller's token, issued two seconds ago (a revocation refuses the tokens issued
/// before the second it is made in), and its tenant and object ids.
pub fn caller(builder: entra_governor::testing::TokenBuilder) -> Caller {
    let builder = builder.issued_at(-2);
    let claims = builder.claims();
    Caller {
        tenant: claims["tid"].as_str().unwrap().to_owned(),
        object: claims["oid"].as_str().unwrap().to_owned(),
        token: builder.sign(),
    }
}

/// A signed token and whom it names.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The bearer token.
    pub token: String,
    /// `tid`.
    pub tenant: String,
    /// `oid`.
    pub object: String,
}
