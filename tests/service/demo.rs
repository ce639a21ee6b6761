//! `cargo run --example service_demo` as a user runs it: the built example as a process,
//! the decision service started with the configuration and PEP secret it wrote, and every
//! printed command sent with the printed tokens, each getting the printed status.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::example_binary;
use crate::harness::Service;

#[allow(dead_code, unused_imports)] // its `main` and printing are the example's, not used here
#[path = "../../examples/service_demo.rs"]
mod service_demo;

use service_demo::{Ask, PEP_ENV, PEP_FILE, TRIES, Try};

/// The running example and what it printed.
struct Demo {
    child: Child,
    /// The configuration it wrote.
    config: PathBuf,
    /// The address its printed commands ask (`http://127.0.0.1:<port>`).
    base: String,
    /// `export VAR=token` lines.
    tokens: HashMap<String, String>,
    /// The status printed above each command, in order.
    printed: Vec<u16>,
}

impl Demo {
    fn start() -> Self {
        let mut child = Command::new(example_binary("service_demo"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the demo did not finish printing: {lines:#?}"));
            let done = line.starts_with("# Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        Self::parse(child, &lines)
    }

    fn parse(child: Child, lines: &[String]) -> Self {
        let after = |prefix: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` line in {lines:#?}"))
                .to_owned()
        };
        let config = PathBuf::from(after("Decision service configuration: "));
        let tokens = lines
            .iter()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(var, token)| (var.to_owned(), token.to_owned()))
            .collect();
        let asked: Vec<&String> = lines
            .iter()
            .skip_while(|l| *l != "# Ask it:")
            .skip(1)
            .collect();
        let printed = asked
            .iter()
            .filter(|l| l.starts_with("# ") && !l.starts_with("# Ctrl-C"))
            .map(|l| l.rsplit(": ").next().unwrap().parse().expect("a status"))
            .collect();
        let first_command = asked.iter().find(|l| l.starts_with("curl ")).unwrap();
        let base = first_command
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .and_then(|url| url.strip_suffix("/forward-auth"))
            .expect("the first command asks /forward-auth")
            .to_owned();
        Demo {
            child,
            config,
            base,
            tokens,
            printed,
        }
    }

    fn token(&self, t: &Try) -> Option<&str> {
        t.persona.map(|var| {
            self.tokens
                .get(var)
                .unwrap_or_else(|| panic!("no printed token for {var}"))
                .as_str()
        })
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `t` to the service at `base` the way its printed command does: the status, the
/// `x-entra-principal` header and the body.
async fn send(
    client: &reqwest::Client,
    base: &str,
    t: &Try,
    token: Option<&str>,
    pep_secret: &str,
) -> (u16, Option<String>, String) {
    let request = match &t.ask {
        Ask::ForwardAuth { method, uri } => client
            .get(format!("{base}/forward-auth"))
            .header("x-original-method", *method)
            .header("x-original-uri", *uri),
        Ask::Envoy { method, path } => client.request(
            method.parse().expect("a method"),
            format!("{base}/envoy{path}"),
        ),
        Ask::AuthZen {
            body,
            with_pep_secret,
        } => {
            let body = body.replace("$TOKEN", token.expect("AuthZEN tries name a persona"));
            let request = client
                .post(format!("{base}/access/v1/evaluation"))
                .header("content-type", "application/json")
                .body(body);
            return answer(match with_pep_secret {
                true => request.bearer_auth(pep_secret),
                false => request,
            })
            .await;
        }
    };
    answer(match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    })
    .await
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let response = request.send().await.expect("the service answers");
    let status = response.status().as_u16();
    let principal = response
        .headers()
        .get("x-entra-principal")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, principal, response.text().await.unwrap())
}

// Multi-threaded: the service fetches its keys from the example's look-alike meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printed_command_gets_the_printed_status_from_the_service() {
    let demo = Demo::start();
    let dir = demo.config.parent().unwrap().to_owned();
    assert_eq!(
        demo.printed,
        TRIES.iter().map(|t| t.status).collect::<Vec<_>>(),
        "one printed status per try, in order"
    );
    let secret = std::fs::read_to_string(dir.join(PEP_FILE)).unwrap();
    let service = Service::start_with_env(&demo.config, &[(PEP_ENV, secret.trim())]);
    assert_eq!(
        service.http, demo.base,
        "the commands ask the configured address"
    );
    let client = reqwest::Client::new();
    for t in TRIES {
        let (status, principal, body) =
            send(&client, &demo.base, t, demo.token(t), secret.trim()).await;
        assert_eq!(status, t.status, "{}: {body}", t.what);
        if let Some(piece) = t.body_contains {
            assert!(body.contains(piece), "{}: {body}", t.what);
        }
        let allowed_for_a_gateway = status == 200 && !matches!(t.ask, Ask::AuthZen { .. });
        assert_eq!(
            principal.is_some(),
            allowed_for_a_gateway,
            "{}: x-entra-principal {principal:?}",
            t.what
        );
    }
    assert!(service.terminate().success());
    // Every question asked on a caller's behalf is in the trail (the unauthenticated
    // PEP's is refused before any caller is considered), and no token is.
    let trail = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap();
    let asked_for_a_caller = TRIES
        .iter()
        .filter(|t| {
            !matches!(
                t.ask,
                Ask::AuthZen {
                    with_pep_secret: false,
                    ..
                }
            )
        })
        .count();
    assert_eq!(trail.lines().count(), asked_for_a_caller, "{trail}");
    for token in demo.tokens.values() {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !trail.contains(signature),
            "a token's signature in the trail"
        );
    }
    assert!(
        !trail.contains(secret.trim()),
        "the PEP secret in the trail"
    );
    assert!(
        trail.contains(r#""reason":"noncanonical_path""#),
        "the `..` path is recorded: {trail}"
    );
    drop(demo);
    std::fs::remove_dir_all(&dir).unwrap();
}
