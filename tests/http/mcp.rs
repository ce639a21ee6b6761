//! MCP tools behind the governor (`entra_governor::axum::mcp`): a real axum MCP endpoint
//! on loopback, a real HTTP client, tokens from the local Entra look-alike, the policy of
//! `examples/ai_gateway_policy.toml`; and the `mcp_server` example run as a process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use entra_governor::ai::mcp::ProtectedResourceMetadata;
use entra_governor::audit::AuditOutcome;
use entra_governor::axum::mcp::{McpLayer, metadata_router};
use entra_governor::testing::GraphMode;
use entra_governor::testing::TestIdp;
use entra_governor::{AuditEvent, AuditLog, Cloud, GroupId, MemorySink, ObjectId, Policy};
use serde_json::{Value, json};

use crate::common;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/ai_gateway_policy.toml"
);
const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";
const JSON_FIRST: &str = "application/json, text/event-stream";
const SSE_FIRST: &str = "text/event-stream, application/json";
/// The request body limit of the test server (small, so that the 413 test sends little).
const MAX_BODY: usize = 4096;

/// Every message the MCP server received, in order.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Value>>>);

impl Received {
    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn tools() -> Value {
    json!([
        { "name": "search_docs", "inputSchema": { "type": "object", "properties": { "query": { "type": "string" } } } },
        { "name": "deploy_model", "inputSchema": { "type": "object" }, "annotations": { "destructiveHint": true } },
        { "name": "bad/name", "inputSchema": { "type": "object" } },
        { "title": "no name" }
    ])
}

const PRIMING: &str = "id: 0\ndata:\n\n";
const LOG: &str = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"listing\"}}\n\n";
const AFTER: &str = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"after\"}}\n\n";

/// The MCP server behind the layer: records what reaches it; `tools/list` in JSON or as
/// SSE (when `Accept` lists it first), and broken answers for the cursors `broken-*`.
async fn mcp(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> Response {
    if body.is_empty() {
        received.0.lock().unwrap().push(json!("no body"));
        return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let message: Value = serde_json::from_slice(&body).expect("the layer forwards JSON");
    received.0.lock().unwrap().push(message.clone());
    let id = message["id"].clone();
    let json = |v: String| ([(header::CONTENT_TYPE, "application/json")], v).into_response();
    let sse = |v: String| ([(header::CONTENT_TYPE, "text/event-stream")], v).into_response();
    match message["method"].as_str() {
        Some("tools/list") => {
            let response = json!({"jsonrpc": "2.0", "id": id, "result": {
                "tools": tools(), "nextCursor": "page-2", "ttlMs": 60000, "cacheScope": "public"
            }});
            match message["params"]["cursor"].as_str() {
                Some("broken-json") => json(format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"tools":[]}},"result":{{"tools":{}}}}}"#,
                    tools()
                )),
                Some("broken-sse") => sse(format!("{LOG}data: {{not json\n\n")),
                Some("other-id") => json(
                    json!({"jsonrpc": "2.0", "id": 999, "result": {"tools": tools()}}).to_string(),
                ),
                Some("gzip") => {
                    let mut r = json(response.to_string());
                    r.headers_mut()
                        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
                    r
                }
                _ if headers[header::ACCEPT]
                    .to_str()
                    .unwrap()
                    .starts_with("text/event-stream") =>
                {
                    sse(format!(
                        "{PRIMING}{LOG}event: message\ndata: {response}\n\n{AFTER}"
                    ))
                }
                _ => json(response.to_string()),
            }
        }
        Some("tools/call") => json(
            json!({"jsonrpc": "2.0", "id": id, "result": {
                "content": [{"type": "text", "text": format!("ran {}", message["params"]["name"])}]
            }})
            .to_string(),
        ),
        _ => json(json!({"jsonrpc": "2.0", "id": id, "result": {}}).to_string()),
    }
}

struct Server {
    idp: TestIdp,
    base: String,
    metadata_url: String,
    received: Received,
    sink: MemorySink,
    /// The governor's audit log: flushed before the sink is read.
    log: AuditLog,
    client: reqwest::Client,
}

impl Server {
    /// Every event recorded so far, once the audit worker has written them.
    async fn events(&self) -> Vec<AuditEvent> {
        self.log.flush().await;
        self.sink.events()
    }
}

async fn serve() -> Server {
    serve_with(false).await
}

/// The test server; with `graph`, group overage is resolved through the look-alike's
/// Graph (a failure remembered for 50 ms only, so that a test sees Graph come back).
async fn serve_with(graph: bool) -> Server {
    let idp = common::example_idp().await;
    let sink = MemorySink::new();
    let log = AuditLog::builder(sink.clone()).build();
    let mut governor = common::builder(&idp)
        .audit(log.clone())
        .policy(Policy::from_path(POLICY).unwrap());
    if graph {
        let resolver = crate::common::graph_resolver(&idp)
            .max_retries(0)
            .failure_ttl(Duration::from_millis(50))
            .build()
            .unwrap();
        governor = governor.group_resolver(resolver);
    }
    let governor = governor.build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Tokens come from the look-alike; the document names Entra's global cloud, as a
    // deployment's would.
    let metadata = ProtectedResourceMetadata::dangerous_http_loopback(&format!("{base}/mcp"))
        .unwrap()
        .entra(&Cloud::global(), &idp.tenant_id(), &idp.client_id())
        .resource_name("test MCP server");
    let received = Received::default();
    let app = Router::new()
        .route(
            "/mcp",
            // A lenient server that reads a message from any method.
            any(mcp).layer(McpLayer::new(governor, &metadata).max_body_bytes(MAX_BODY)),
        )
        .with_state(received.clone())
        .merge(metadata_router(&metadata));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        idp,
        base,
        metadata_url: metadata.well_known_url(),
        received,
        sink,
        log,
        client: reqwest::Client::new(),
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }
}

impl Server {
    fn llm_user(&self) -> String {
        self.idp
            .token()
            .scopes("Tools.Call")
            .groups([LLM_TEAM])
            .sign()
    }

    fn operator(&self) -> String {
        self.idp
            .token()
            .scopes("Tools.Call")
            .roles(["Models.Operator"])
            .sign()
    }

    fn nobody(&self) -> String {
        self.idp.token().scopes("Tools.Call").sign()
    }

    async fn post(
        &self,
        token: Option<&str>,
        accept: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        self.post_with(token, accept, body, &[]).await
    }

    async fn post_with(
        &self,
        token: Option<&str>,
        accept: &str,
        body: impl Into<reqwest::Body>,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/mcp", self.base))
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.unwrap(),
        }
    }

    fn client_id(&self) -> String {
        self.idp.client_id()
    }

    /// `Bearer error="insufficient_scope", scope="…", resource_metadata="…"`.
    fn forbidden_challenge(&self) -> String {
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"api://{}/Tools.Call\", resource_metadata=\"{}\"",
            self.client_id(),
            self.metadata_url
        )
    }
}

fn list(id: u32, cursor: Option<&str>) -> String {
    match cursor {
        Some(c) => {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {"cursor": c}})
        }
        None => json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}),
    }
    .to_string()
}

fn call(id: u32, tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
}

fn names(result: &Value) -> Vec<&str> {
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

/// The original entry of `name` in the server's listing.
fn original(name: &str) -> Value {
    tools()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn tools_list_shows_each_caller_the_tools_it_may_call_in_json_and_in_sse() {
    let server = serve().await;
    let personas = [
        (server.llm_user(), vec!["search_docs"]),
        (server.operator(), vec!["search_docs", "deploy_model"]),
        (server.nobody(), vec![]),
    ];
    for (n, (token, expected)) in personas.iter().enumerate() {
        let id = n as u32 + 10;
        // application/json
        let answer = server.post(Some(token), JSON_FIRST, list(id, None)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.header("content-type"), "application/json");
        let message = answer.json();
        assert_eq!(message["id"], id);
        let result = &message["result"];
        assert_eq!(names(result), *expected);
        // Every other field kept; the listing is this caller's, not for shared caches.
        assert_eq!(result["nextCursor"], "page-2");
        assert_eq!(result["ttlMs"], 60000);
        assert_eq!(result["cacheScope"], "private");
        for tool in result["tools"].as_array().unwrap() {
            assert_eq!(*tool, original(tool["name"].as_str().unwrap()));
        }

        // text/event-stream: the events before the response unchanged, the response
        // filtered, the stream ended with it.
        let answer = server.post(Some(token), SSE_FIRST, list(id, None)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.header("content-type"), "text/event-stream");
        let (before, response) = answer
            .text
            .split_once("event: message\ndata: ")
            .unwrap_or_else(|| panic!("no response event in {:?}", answer.text));
        assert_eq!(before, format!("{PRIMING}{LOG}"));
        let response = response
            .strip_suffix("\n\n")
            .unwrap_or_else(|| panic!("the stream goes on after the response: {response:?}"));
        let message: Value = serde_json::from_str(response).unwrap();
        assert_eq!(message["id"], id);
        assert_eq!(names(&message["result"]), *expected);
        assert_eq!(message["result"]["nextCursor"], "page-2");
        assert_eq!(message["result"]["cacheScope"], "private");
    }
    // Each listing decided each named tool once (the entry without a name and the one
    // whose name is not a resource segment are left out undecided).
    let decisions: Vec<_> = server
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "tools.call")
        .map(|e| (e.resource, e.outcome))
        .collect();
    assert_eq!(decisions.len(), 3 * 2 * 2, "{decisions:?}");
    assert!(
        decisions
            .iter()
            .all(|(r, _)| r == "tools/search_docs" || r == "tools/deploy_model")
    );
}

#[tokio::test]
async fn a_forbidden_tool_call_is_refused_before_the_tool_runs() {
    let server = serve().await;
    let llm = server.llm_user();
    let answer = server
        .post(Some(&llm), JSON_FIRST, call(5, "deploy_model"))
        .await;
    assert_eq!(answer.status, 403, "{}", answer.text);
    assert_eq!(
        answer.header("www-authenticate"),
        server.forbidden_challenge()
    );
    assert_eq!(
        answer.json(),
        json!({"jsonrpc": "2.0", "id": 5, "error": {
            "code": -32001,
            "message": "the caller may not perform this action on this resource",
            "data": {"error": "insufficient_scope"}
        }})
    );
    assert_eq!(server.received.take(), Vec::<Value>::new(), "the tool ran");

    let answer = server
        .post(Some(&llm), JSON_FIRST, call(6, "search_docs"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.json()["result"]["content"][0]["text"],
        "ran \"search_docs\""
    );
    let received = server.received.take();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["params"]["name"], "search_docs");

    let answer = server
        .post(
            Some(&server.operator()),
            JSON_FIRST,
            call(7, "deploy_model"),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(server.received.take().len(), 1);

    let decisions: Vec<_> = server
        .events()
        .await
        .into_iter()
        .filter(|e| e.action == "tools.call")
        .map(|e| (e.resource, e.outcome))
        .collect();
    assert_eq!(
        decisions,
        [
            ("tools/deploy_model".to_owned(), AuditOutcome::Deny),
            ("tools/search_docs".to_owned(), AuditOutcome::Allow),
            ("tools/deploy_model".to_owned(), AuditOutcome::Allow),
        ]
    );
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_told_where_the_metadata_is() {
    let server = serve().await;
    let answer = server.post(None, JSON_FIRST, list(1, None)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        format!(
            "Bearer scope=\"api://{}/Tools.Call\", resource_metadata=\"{}\"",
            server.client_id(),
            server.metadata_url
        )
    );
    assert_eq!(
        server.metadata_url,
        format!("{}/.well-known/oauth-protected-resource/mcp", server.base)
    );
    let expired = server
        .idp
        .token()
        .scopes("Tools.Call")
        .expires_in(-3600)
        .sign();
    let answer = server.post(Some(&expired), JSON_FIRST, list(1, None)).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.header("www-authenticate"),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"token expired\", scope=\"api://{}/Tools.Call\", resource_metadata=\"{}\"",
            server.client_id(),
            server.metadata_url
        )
    );
    assert!(server.received.take().is_empty());
}

/// The fields RFC 9728 §2 defines (and §2.1's signed form).
const RFC9728_FIELDS: &[&str] = &[
    "resource",
    "authorization_servers",
    "jwks_uri",
    "scopes_supported",
    "bearer_methods_supported",
    "resource_signing_alg_values_supported",
    "resource_name",
    "resource_documentation",
    "resource_policy_uri",
    "resource_tos_uri",
    "tls_client_certificate_bound_access_tokens",
    "authorization_details_types_supported",
    "dpop_signing_alg_values_supported",
    "dpop_bound_access_tokens_required",
    "signed_metadata",
];

#[tokio::test]
async fn the_protected_resource_metadata_is_served_at_its_well_known_url() {
    let server = serve().await;
    // Unauthenticated, at the exact URL the challenges name.
    let response = server
        .client
        .get(&server.metadata_url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let fields = document.as_object().unwrap();
    for key in fields.keys() {
        assert!(
            RFC9728_FIELDS.contains(&key.as_str()),
            "{key} is not an RFC 9728 field"
        );
    }
    // REQUIRED: the resource identifier, the URL the client calls.
    assert_eq!(document["resource"], format!("{}/mcp", server.base));
    // MCP requires at least one authorization server; Entra's v2.0 issuer, https.
    let servers = document["authorization_servers"].as_array().unwrap();
    assert_eq!(
        *servers,
        [json!(format!(
            "https://login.microsoftonline.com/{}/v2.0",
            server.idp.tenant_id()
        ))]
    );
    for s in servers {
        let url = url::Url::parse(s.as_str().unwrap()).unwrap();
        assert_eq!(url.scheme(), "https");
        assert!(url.fragment().is_none() && url.query().is_none());
    }
    assert_eq!(
        document["scopes_supported"],
        json!([format!("api://{}/Tools.Call", server.client_id())])
    );
    assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    assert_eq!(document["resource_name"], "test MCP server");
    // Only the path RFC 9728 §3.1 computes, and only GET.
    let root = format!("{}/.well-known/oauth-protected-resource", server.base);
    assert_eq!(server.client.get(root).send().await.unwrap().status(), 404);
    let post = server
        .client
        .post(&server.metadata_url)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

/// What is sent, with which extra headers; the status, JSON-RPC code and audit reason.
type BodyCase<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u16, i64, &'a str);

#[tokio::test]
async fn bodies_that_cannot_be_decided_with_certainty_never_reach_the_server() {
    let server = serve().await;
    let llm = server.llm_user();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"search_docs","arguments":{{"q":"{}"}}}}}}"#,
        "x".repeat(MAX_BODY)
    );
    let forbidden = server.forbidden_challenge();
    let cases: Vec<BodyCase> = vec![
        (
            "duplicate name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_docs","name":"deploy_model"}}"#.into(),
            &[],
            400,
            -32600,
            "duplicate_key",
        ),
        (
            "non-string name",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["deploy_model"]}}"#.into(),
            &[],
            400,
            -32602,
            "invalid_tool_name",
        ),
        ("invalid segment", call(1, "search_docs/../deploy_model"), &[], 403, -32001, "invalid_resource"),
        ("batch", format!("[{}]", call(1, "search_docs")), &[], 400, -32600, "jsonrpc_batch"),
        ("oversize", big, &[], 413, -32600, "body_too_large"),
        (
            "Mcp-Name mismatch",
            call(1, "search_docs"),
            &[("mcp-name", "deploy_model")],
            400,
            -32020,
            "header_mismatch",
        ),
        ("Tools/Call", r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"deploy_model"}}"#.into(), &[], 400, -32600, "invalid_jsonrpc"),
    ];
    for (what, body, headers, status, code, reason) in cases {
        let answer = server
            .post_with(Some(&llm), JSON_FIRST, body, headers)
            .await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        let message = answer.json();
        assert_eq!(message["error"]["code"], code, "{what}: {message}");
        assert_eq!(message["jsonrpc"], "2.0", "{what}");
        // The request's id once the body parsed, null before.
        let parsed = status == 403 || what == "Mcp-Name mismatch";
        let id = if parsed { json!(1) } else { Value::Null };
        assert_eq!(message["id"], id, "{what}");
        if status == 403 {
            assert_eq!(answer.header("www-authenticate"), forbidden, "{what}");
        } else {
            assert_eq!(answer.header("www-authenticate"), "", "{what}");
        }
        assert!(
            server.received.take().is_empty(),
            "{what} reached the MCP server"
        );
        let last = server.events().await.pop().unwrap();
        assert_eq!(
            (last.outcome, last.reason.as_str()),
            (AuditOutcome::Deny, reason),
            "{what}"
        );
        assert_eq!(last.resource, "/mcp", "{what}");
    }
    // Only a POST carries a message: another method reaches the server without its body.
    let put = server
        .client
        .put(format!("{}/mcp", server.base))
        .bearer_auth(&llm)
        .header("content-type", "application/json")
        .body(call(1, "deploy_model"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(server.received.take(), [json!("no body")]);
    // The body is refused for its own sake: the same tool called plainly goes through.
    let answer = server
        .post(Some(&llm), JSON_FIRST, call(1, "search_docs"))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(server.received.take().len(), 1);
}

#[tokio::test]
async fn a_listing_is_refused_503_not_shortened_while_group_membership_is_unavailable() {
    let server = serve_with(true).await;
    // An LLM-team member in 300 groups: the token names none (overage).
    let oid = ObjectId::parse("0b6f0000-0000-4000-8000-000000000300").unwrap();
    let mut groups: Vec<GroupId> = (0..299)
        .map(|i| GroupId::parse(&format!("0b6f0000-0000-4000-8000-{i:012x}")).unwrap())
        .collect();
    groups.push(LLM_TEAM.parse().unwrap());
    server.idp.set_memberships(&oid, groups);
    let token = server
        .idp
        .token()
        .oid(oid)
        .scopes("Tools.Call")
        .overage()
        .sign();
    server.idp.set_graph_mode(GraphMode::Status(500));
    let answer = server.post(Some(&token), JSON_FIRST, list(4, None)).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(answer.header("retry-after"), "5");
    assert!(!answer.text.contains("search_docs"), "{}", answer.text);
    // Graph back (and the failure forgotten): the same caller sees its tool.
    server.idp.set_graph_mode(GraphMode::Normal);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = server.post(Some(&token), JSON_FIRST, list(5, None)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(names(&answer.json()["result"]), ["search_docs"]);
}

#[tokio::test]
async fn a_tools_list_answer_that_cannot_be_filtered_is_refused() {
    let server = serve().await;
    let operator = server.operator();
    for cursor in ["broken-json", "broken-sse", "other-id", "gzip"] {
        let answer = server
            .post(Some(&operator), JSON_FIRST, list(3, Some(cursor)))
            .await;
        assert_eq!(answer.status, 502, "{cursor}: {}", answer.text);
        assert_eq!(
            answer.json(),
            json!({"jsonrpc": "2.0", "id": 3, "error": {
                "code": -32603,
                "message": "the MCP server's tools/list answer could not be filtered",
                "data": {"error": "server_error"}
            }}),
            "{cursor}"
        );
        assert!(!answer.text.contains("deploy_model"), "{cursor}");
    }
}

// ------------------------------------------------------------------ the example, run

/// The `mcp_server` example serving `config`; killed on drop.
struct Example {
    child: Child,
    base: String,
}

impl Example {
    fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(common::example_binary("mcp_server"))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example runs");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the example did not start");
        Self { child, base }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Multi-threaded: the look-alike serves the example's key fetches meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_allows_search_and_refuses_deployment_to_the_llm_team() {
    let idp = common::example_idp().await;
    let dir = common::TempDir::new("mcp-example");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"[listen]
http = "127.0.0.1:0"
[policy]
path = "{POLICY}"
[audit]
sink = "file"
path = "decisions.jsonl"
[entra]
authority = "{}"
dangerous_allow_http_loopback = true
tenant = "{}"
client_id = "{}"
"#,
            idp.authority(),
            idp.tenant_id(),
            idp.client_id()
        ),
    )
    .unwrap();
    let example = Example::start(&config);
    let token = idp.token().scopes("Tools.Call").groups([LLM_TEAM]).sign();
    let client = reqwest::Client::new();
    let post = |body: String| {
        client
            .post(format!("{}/mcp", example.base))
            .header("accept", JSON_FIRST)
            .header("content-type", "application/json")
            .bearer_auth(&token)
            .body(body)
            .send()
    };
    let allowed = post(call(1, "search_docs")).await.unwrap();
    assert_eq!(allowed.status(), 200);
    let text = allowed.text().await.unwrap();
    assert!(text.contains("3 documents match"), "{text}");

    let refused = post(call(2, "deploy_model")).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["www-authenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"api://{}/Tools.Call\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            idp.client_id(),
            example.base
        )
    );
    // The trail is written behind the answers: wait for the refusal's decision.
    let trail = dir.join("decisions.jsonl");
    let recorded = |text: &str| text.contains("\"resource\":\"tools/deploy_model\"");
    for _ in 0..400 {
        if std::fs::read_to_string(&trail).is_ok_and(|t| recorded(&t)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(&trail).unwrap_or_default();
    assert!(recorded(&text), "{text}");
    drop(example);
}
