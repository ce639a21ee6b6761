//! `examples/kserve_grpc.rs` as a process: its demo's tokens and its `--config` mode,
//! called by the generated client.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use entra_governor::tonic::kserve::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::Code;

use crate::common::example_binary;
use crate::server::{LLM_TEAM, infer, with_token};

/// The example server process; killed on drop.
struct Example {
    child: Child,
    addr: String,
    /// `export VAR=<token>` lines of the demo.
    tokens: HashMap<String, String>,
}

impl Example {
    fn start(args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(example_binary("kserve_grpc"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example runs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // Drained for the process's whole life: a full pipe would block it.
        std::thread::spawn(move || {
            let mut tokens = HashMap::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((var, token)) = line
                    .strip_prefix("export ")
                    .and_then(|rest| rest.split_once('='))
                {
                    tokens.insert(var.to_owned(), token.to_owned());
                }
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send((addr.to_owned(), std::mem::take(&mut tokens)));
                }
            }
        });
        let (addr, tokens) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the example starts");
        Example {
            child,
            addr,
            tokens,
        }
    }

    async fn client(&self) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
        GrpcInferenceServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("the example accepts connections")
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text the stub model answered.
fn answer(response: &entra_governor::tonic::kserve::ModelInferResponse) -> String {
    let contents = response.outputs[0].contents.as_ref().expect("contents");
    String::from_utf8(contents.bytes_contents[0].to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_personas_as_it_prints() {
    let example = Example::start(&[]);
    for var in ["LLM_TEAM", "FRONTIER", "FRONTIER_C1", "NO_GROUP"] {
        assert!(example.tokens.contains_key(var), "{var} not printed");
    }
    let mut client = example.client().await;
    let mut request = infer("llama-3-70b", "req-1");
    request.raw_input_contents = vec![b"hello".to_vec().into()];
    let response = client
        .model_infer(with_token(request, &example.tokens["LLM_TEAM"]))
        .await
        .expect("the LLM team invokes Llama")
        .into_inner();
    assert_eq!(answer(&response), "[llama-3-70b] olleh");
    let status = client
        .model_infer(with_token(
            infer("gpt-4o", "req-2"),
            &example.tokens["LLM_TEAM"],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = client
        .model_infer(with_token(
            infer("gpt-4o", "req-3"),
            &example.tokens["FRONTIER"],
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status
            .metadata()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_claims\"")
    );
    let response = client
        .model_infer(with_token(
            infer("gpt-4o", "req-4"),
            &example.tokens["FRONTIER_C1"],
        ))
        .await
        .expect("with c1")
        .into_inner();
    assert_eq!(response.model_name, "gpt-4o");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_configuration_file_it_trusts_that_identity_provider() {
    let idp = crate::common::example_idp().await;
    let dir = crate::common::TempDir::new("grpc-example");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
grpc = "127.0.0.1:0"
[policy]
path = "{}/examples/ai_gateway_policy.toml"
[audit]
sink = "file"
path = "decisions.jsonl"
[entra]
authority = "{}"
dangerous_allow_http_loopback = true
tenant = "{}"
client_id = "{}"
"#,
            env!("CARGO_MANIFEST_DIR"),
            idp.authority(),
            idp.tenant_id(),
            idp.client_id()
        ),
    )
    .unwrap();
    let example = Example::start(&["--config".as_ref(), config.as_os_str()]);
    let mut client = example.client().await;
    let token = idp
        .token()
        .scopes("Inference.Invoke")
        .groups([LLM_TEAM])
        .sign();
    let response = client
        .model_infer(with_token(infer("llama-3-8b", "req-1"), &token))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(answer(&response), "[llama-3-8b] \u{3}\u{2}\u{1}");
    let status = client
        .model_infer(with_token(infer("mistral-large", "req-2"), &token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Both decisions reach the file the configuration names (written in the background).
    let mut trail = String::new();
    for _ in 0..100 {
        trail = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap_or_default();
        if trail.contains("models/mistral-large") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(example);
    assert!(trail.contains("models/llama-3-8b"), "{trail}");
    assert!(trail.contains("models/mistral-large"), "{trail}");
}
