//! `cargo run --example openai_gateway --features axum`: every command the demo prints
//! gets the status (and the listing) it promises; the binary with `--config` trusts the
//! identity provider its configuration names.

#[allow(dead_code)] // `main` and the printing are the binary's
#[path = "../../examples/openai_gateway.rs"]
mod example;

use example::{TRIES, persona_tokens};
use serde_json::Value;

use crate::example_servers::Served;

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printed_command_gets_the_printed_answer() {
    let (idp, governor) = example::demo().await.unwrap();
    let upstream = serve(example::model_server()).await;
    let base = serve(example::app(governor, upstream).unwrap()).await;
    let tokens = persona_tokens(&idp);
    let client = reqwest::Client::new();
    let mut broken = Vec::new();
    assert!(
        TRIES.len() >= 12,
        "the demo prints {} commands",
        TRIES.len()
    );
    for t in TRIES {
        let url = format!("{base}{}", t.path);
        let mut request = match t.body {
            Some(body) => client
                .post(url)
                .header("content-type", "application/json")
                .body(body),
            None => client.get(url),
        };
        if let Some(var) = t.persona {
            let (_, token) = tokens.iter().find(|(p, _)| p.var == var).unwrap();
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
        if status != t.status {
            broken.push(format!(
                "{}: promised {}, got {status}: {body}",
                t.what, t.status
            ));
            continue;
        }
        if let Some(models) = t.lists {
            let ids: Vec<&str> = body["data"]
                .as_array()
                .map(|d| d.iter().filter_map(|m| m["id"].as_str()).collect())
                .unwrap_or_default();
            if ids != models {
                broken.push(format!("{}: promised {models:?}, listed {ids:?}", t.what));
            }
        }
        if status == 200 && t.path == "/v1/chat/completions" {
            // The model server saw the caller the gateway added as `user`.
            let content = body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or("");
            if !content.starts_with("(stub ") || content.ends_with(", ") {
                broken.push(format!("{}: the model server answered {body}", t.what));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "the demo breaks its promises: {broken:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_binary_trusts_the_identity_provider_of_its_configuration() {
    let idp = crate::common::example_idp().await;
    let dir = crate::common::TempDir::new("openai-gateway");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
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
    let served = Served::start("openai_gateway", &config);
    let team = idp
        .token()
        .scopes("Inference.Invoke")
        .groups(["0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b"])
        .sign();
    let client = reqwest::Client::new();
    let chat = |model: &str| {
        client
            .post(format!("{}/v1/chat/completions", served.base))
            .header("authorization", format!("Bearer {team}"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"model":"{model}","messages":[]}}"#))
    };
    let allowed = chat("llama-3-70b").send().await.unwrap();
    assert_eq!(allowed.status().as_u16(), 200);
    let answer: Value = serde_json::from_str(&allowed.text().await.unwrap()).unwrap();
    assert_eq!(answer["model"], "llama-3-70b");
    let denied = chat("gpt-4o").send().await.unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    let error: Value = serde_json::from_str(&denied.text().await.unwrap()).unwrap();
    assert_eq!(error["error"]["type"], "permission_error");
    // The configuration's audit trail holds both decisions (written by the audit
    // worker: read until both are there).
    let mut outcomes = Vec::new();
    for _ in 0..100 {
        let trail = std::fs::read_to_string(dir.join("decisions.jsonl")).unwrap_or_default();
        outcomes = trail
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["action"] == "inference.invoke")
            .map(|e| {
                (
                    e["resource"].as_str().unwrap_or_default().to_owned(),
                    e["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect::<Vec<_>>();
        if outcomes.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(served);
    assert_eq!(
        outcomes,
        [
            ("models/llama-3-70b".to_owned(), "allow".to_owned()),
            ("models/gpt-4o".to_owned(), "deny".to_owned())
        ]
    );
}
