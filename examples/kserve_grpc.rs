//! A KServe v2 (Open Inference Protocol) gRPC model server on tonic, behind the
//! governor's layer: who may invoke which model, decided per request message.
//!
//! ```sh
//! cargo run --example kserve_grpc --features tonic                 # local demo, grpcurl
//! cargo run --example kserve_grpc --features tonic -- --config my-service.toml
//! ```
//!
//! Without `--config` it starts a local Entra look-alike, loads
//! `examples/ai_gateway_policy.toml` and prints tokens for four personas with
//! ready-to-paste `grpcurl` commands and the status each gets. With `--config` (the
//! shared configuration format, `examples/service.toml`) it trusts the identity provider
//! the file names and listens on `listen.grpc` (or `listen.http`).
//!
//! The models are stubs: `ModelInfer` echoes the first input, reversed, tagged with the
//! model's name.

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use entra_governor::config::Config;
use entra_governor::testing::{Options, TestIdp, TokenBuilder};
use entra_governor::tonic::MethodRules;
use entra_governor::tonic::kserve::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use entra_governor::tonic::kserve::model_infer_response::InferOutputTensor;
use entra_governor::tonic::kserve::{
    InferTensorContents, ModelInferRequest, ModelInferResponse, ModelMetadataRequest,
    ModelMetadataResponse, ModelReadyRequest, ModelReadyResponse, ServerLiveRequest,
    ServerLiveResponse, ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest,
    ServerReadyResponse,
};
use entra_governor::{AuditLog, Cloud, Governor, JsonLinesSink, Policy, TenantId};
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

type BoxError = Box<dyn Error + Send + Sync>;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/ai_gateway_policy.toml"
);
const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/kserve");
/// The home tenant named by the policy's app role binding.
const DEMO_TENANT: &str = "8e6b3a1d-4f2c-4b7a-9d5e-0c1f2a3b4c5d";
const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";
const FRONTIER_USERS: &str = "4e8d1a2b-9c7f-4b36-a5e0-3f2a1b0c9d8e";

/// The models this server serves.
const MODELS: &[&str] = &["llama-3-70b", "llama-3-8b", "gpt-4o", "mistral-large"];

// ----------------------------------------------------------------------- the models

/// Stub models. Every method is reached only through the layer: `ModelInfer` by
/// callers allowed `inference.invoke` on the model, the metadata calls by callers
/// allowed `models.read` (which `examples/ai_gateway_policy.toml` grants nobody: with it
/// they are refused `PERMISSION_DENIED`), the server-level calls by any valid token.
struct Models;

#[tonic::async_trait]
impl GrpcInferenceService for Models {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn server_metadata(
        &self,
        _request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "entra-governor-kserve-example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: Vec::new(),
        }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let ready = MODELS.contains(&request.get_ref().name.as_str());
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let name = served(&request.into_inner().name)?;
        Ok(Response::new(ModelMetadataResponse {
            name: name.into(),
            versions: vec!["1".into()],
            platform: "echo".into(),
            ..Default::default()
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let request = request.into_inner();
        let model = served(&request.model_name)?;
        // The first input: a BYTES tensor's first element, or the first raw input.
        let input = request
            .inputs
            .first()
            .and_then(|t| t.contents.as_ref())
            .and_then(|c| c.bytes_contents.first())
            .or(request.raw_input_contents.first())
            .map(|b| String::from_utf8_lossy(b).chars().rev().collect::<String>())
            .unwrap_or_default();
        let text = format!("[{model}] {input}");
        Ok(Response::new(ModelInferResponse {
            model_name: model.into(),
            model_version: "1".into(),
            id: request.id,
            outputs: vec![InferOutputTensor {
                name: "text".into(),
                datatype: "BYTES".into(),
                shape: vec![1],
                contents: Some(InferTensorContents {
                    bytes_contents: vec![text.into()],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }
}

/// The served model of this name, or `NOT_FOUND` (asked only once the caller was
/// allowed to name it).
fn served(name: &str) -> Result<&'static str, Status> {
    MODELS
        .iter()
        .copied()
        .find(|m| *m == name)
        .ok_or_else(|| Status::not_found("no such model"))
}

// -------------------------------------------------------------------- the personas

/// A demo caller: the shell variable holding its token, who it is, its token.
struct Persona {
    var: &'static str,
    who: &'static str,
    mint: fn(&TestIdp) -> TokenBuilder,
}

const PERSONAS: &[Persona] = &[
    Persona {
        var: "LLM_TEAM",
        who: "a member of the LLM team (group llm-team): may invoke the Llama models",
        mint: |idp| idp.token().scopes("Inference.Invoke").groups([LLM_TEAM]),
    },
    Persona {
        var: "FRONTIER",
        who: "a frontier user (group frontier-users) in a client that handles claims \
              challenges (xms_cc cp1), signed in without auth context c1",
        mint: |idp| frontier(idp),
    },
    Persona {
        var: "FRONTIER_C1",
        who: "the same frontier user after the step-up: signed in with auth context c1",
        mint: |idp| frontier(idp).acrs(["c1"]),
    },
    Persona {
        var: "NO_GROUP",
        who: "someone in no group",
        mint: |idp| {
            idp.token()
                .scopes("Inference.Invoke")
                .groups(Vec::<String>::new())
        },
    },
];

fn frontier(idp: &TestIdp) -> TokenBuilder {
    idp.token()
        .scopes("Inference.Invoke")
        .groups([FRONTIER_USERS])
        .client_capabilities(["cp1"])
}

/// One call the demo prints as a `grpcurl` command, and the status it gets.
struct Try {
    what: &'static str,
    persona: Option<&'static str>,
    method: &'static str,
    body: String,
    /// The status as grpcurl names it.
    expect: &'static str,
}

fn infer_body(model: &str) -> String {
    // "hello" as the prompt tensor (BYTES elements are base64 in protobuf JSON).
    format!(
        r#"{{"model_name":"{model}","id":"req-1","inputs":[{{"name":"prompt","datatype":"BYTES","shape":[1],"contents":{{"bytes_contents":["aGVsbG8="]}}}}]}}"#
    )
}

fn tries() -> Vec<Try> {
    let infer = |what, persona, model: &str, expect| Try {
        what,
        persona: Some(persona),
        method: "ModelInfer",
        body: infer_body(model),
        expect,
    };
    vec![
        infer(
            "the LLM team invokes a Llama model",
            "LLM_TEAM",
            "llama-3-70b",
            "OK",
        ),
        infer(
            "... but not the frontier model (no role grants it)",
            "LLM_TEAM",
            "gpt-4o",
            "PermissionDenied",
        ),
        infer(
            "a frontier user without c1: a claims challenge (www-authenticate metadata, \
             error=\"insufficient_claims\") her client answers by signing in again",
            "FRONTIER",
            "gpt-4o",
            "Unauthenticated",
        ),
        infer(
            "... and with a c1 token she invokes it",
            "FRONTIER_C1",
            "gpt-4o",
            "OK",
        ),
        infer(
            "someone in no group invokes nothing",
            "NO_GROUP",
            "llama-3-70b",
            "PermissionDenied",
        ),
        Try {
            what: "no token",
            persona: None,
            method: "ModelInfer",
            body: infer_body("llama-3-70b"),
            expect: "Unauthenticated",
        },
        Try {
            what: "a health check needs a valid token, nothing more",
            persona: Some("NO_GROUP"),
            method: "ServerLive",
            body: "{}".into(),
            expect: "OK",
        },
    ]
}

impl Try {
    fn grpcurl(&self, addr: SocketAddr) -> String {
        let mut command =
            format!("grpcurl -plaintext -import-path {PROTO_DIR} -proto grpc_predict_v2.proto");
        if let Some(var) = self.persona {
            command.push_str(&format!(" -H \"authorization: Bearer ${var}\""));
        }
        format!(
            "{command} -d '{}' {addr} inference.GRPCInferenceService/{}",
            self.body, self.method
        )
    }
}

// ------------------------------------------------------------------------ start-up

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The error and each of its causes, as one line.
            let mut line = format!("error: {e}");
            let mut cause = e.source();
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            eprintln!("{line}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `--config <file>`, or nothing for the demo.
fn config_path() -> Result<Option<PathBuf>, BoxError> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (None, _, _) => Ok(None),
        (Some("--config"), Some(path), None) => Ok(Some(path.into())),
        _ => Err("usage: [--config <file>]  (without --config: a local demo with personas)".into()),
    }
}

async fn run() -> Result<(), BoxError> {
    // Held for as long as the server runs: the demo's look-alike Entra serves its keys.
    let mut _idp = None;
    let (governor, listener) = match config_path()? {
        Some(path) => {
            let config = Config::load(&path)?;
            let listen = config
                .listen
                .grpc
                .or(config.listen.http)
                .ok_or("listen.grpc (or listen.http): the address the example listens on")?;
            let governor = config.governor(config.audit_log()?)?;
            // Fail fast when Entra cannot be reached; calls would get UNAVAILABLE anyway.
            match governor.prefetch_keys().await {
                Ok(n) => println!("{n} signing keys loaded"),
                Err(e) => println!("warning: {e}; calls get UNAVAILABLE until keys arrive"),
            }
            (governor, bind(listen).await?)
        }
        None => {
            let listener = match bind(([127, 0, 0, 1], 8001).into()).await {
                Ok(listener) => listener,
                Err(_) => bind(([127, 0, 0, 1], 0).into()).await?,
            };
            let idp =
                TestIdp::start_with(Options::default().tenant(TenantId::parse(DEMO_TENANT)?)).await;
            let audit = std::env::temp_dir().join(format!(
                "entra-governor-kserve-grpc-{}-{}.jsonl",
                std::process::id(),
                listener.local_addr()?.port()
            ));
            let governor = demo_governor(&idp, &audit)?;
            print_demo(&idp, listener.local_addr()?, &audit);
            _idp = Some(idp);
            (governor, listener)
        }
    };
    println!("listening on {}", listener.local_addr()?);
    tonic::transport::Server::builder()
        .layer(entra_governor::tonic::AuthorizeLayer::new(
            governor,
            MethodRules::kserve_v2(),
        ))
        .add_service(GrpcInferenceServiceServer::new(Models))
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, BoxError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}").into())
}

/// The demo's governor: the look-alike's tenant and client id, the gateway policy, and
/// an audit trail (JSON Lines) in the temporary directory.
fn demo_governor(idp: &TestIdp, audit: &Path) -> Result<Governor, BoxError> {
    let sink = JsonLinesSink::file(audit)?;
    Ok(Governor::builder()
        .audit(AuditLog::builder(sink).build())
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
        .policy(Policy::from_path(POLICY)?)
        .build()?)
}

/// Prints the personas' tokens and ready-to-paste `grpcurl` commands.
fn print_demo(idp: &TestIdp, addr: SocketAddr, audit: &Path) {
    println!("KServe v2 gRPC demo on {addr}");
    println!(
        "Local Entra look-alike at {} (tenant {}, API client id {})",
        idp.authority(),
        idp.tenant_id(),
        idp.client_id()
    );
    println!("Policy: {POLICY}");
    println!("Audit trail (JSON Lines): {}", audit.display());
    println!("\n# Tokens (valid for one hour; restart for new ones). Paste into a shell:");
    for persona in PERSONAS {
        let token = (persona.mint)(idp).sign();
        println!("# {}\nexport {}={token}", persona.who, persona.var);
    }
    println!("\n# Try (grpcurl prints the status of a refused call as `Code: ...`):");
    for t in tries() {
        println!("# {}: {}\n{}", t.what, t.expect, t.grpcurl(addr));
    }
    println!();
}
