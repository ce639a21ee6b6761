//! The server under test: KServe v2 and the streaming test service, behind the layer,
//! on a loopback socket; handlers that count their calls; personas' tokens.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use entra_governor::testing::{TestIdp, TokenBuilder};
use entra_governor::tonic::kserve::grpc_inference_service_client::GrpcInferenceServiceClient;
use entra_governor::tonic::kserve::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use entra_governor::tonic::kserve::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ServerLiveRequest, ServerLiveResponse,
};
use entra_governor::tonic::{AuthorizeLayer, MethodRules};
use entra_governor::{AuditLog, Governor, MemorySink, Policy};
use tonic::codegen::BoxStream;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::streaming::streaming_inference_service_client::StreamingInferenceServiceClient;
use crate::streaming::streaming_inference_service_server::{
    StreamingInferenceService, StreamingInferenceServiceServer,
};

pub const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/ai_gateway_policy.toml"
);
pub const LLM_TEAM: &str = "0b6f2c1e-7d3a-4e59-8a41-6c2d9e0f1a3b";
pub const FRONTIER_USERS: &str = "4e8d1a2b-9c7f-4b36-a5e0-3f2a1b0c9d8e";
pub const STREAM_INFER: &str = "/streaming.StreamingInferenceService/ModelStreamInfer";

/// Handlers that count the messages they were handed.
#[derive(Clone, Default)]
pub struct Models {
    pub calls: Arc<AtomicUsize>,
    /// The models of the `ModelInfer` messages handed to the handlers, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// A careless stream handler: it ignores an error of the inbound stream and keeps
    /// its response open, so only the layer can end the call.
    pub swallow_errors: bool,
}

impl Models {
    fn answer(&self, request: &ModelInferRequest) -> ModelInferResponse {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(request.model_name.clone());
        ModelInferResponse {
            model_name: request.model_name.clone(),
            id: format!("answered {}", request.id),
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Models {
    async fn server_live(
        &self,
        _request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(ModelMetadataResponse {
            name: request.into_inner().name,
            ..Default::default()
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        Ok(Response::new(self.answer(request.get_ref())))
    }
}

#[tonic::async_trait]
impl StreamingInferenceService for Models {
    /// One answer per message; an error of the inbound stream (the layer's cut) is
    /// passed on and ends the stream.
    async fn model_stream_infer(
        &self,
        request: Request<Streaming<ModelInferRequest>>,
    ) -> Result<Response<BoxStream<ModelInferResponse>>, Status> {
        let mut inbound = request.into_inner();
        let models = self.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                let item = match inbound.message().await {
                    Ok(Some(message)) => Ok(models.answer(&message)),
                    Ok(None) => break,
                    Err(_) if models.swallow_errors => {
                        // Holds the response open; the test's runtime ends this task.
                        tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                        break;
                    }
                    Err(status) => Err(status),
                };
                let last = item.is_err();
                if tx.send(item).await.is_err() || last {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// The server under test, its look-alike Entra, its audit trail and its call count.
pub struct Served {
    pub idp: TestIdp,
    pub governor: Governor,
    pub addr: SocketAddr,
    pub audit: MemorySink,
    pub models: Models,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// The KServe rules plus the streaming method, as the application would write them.
pub fn rules() -> MethodRules {
    MethodRules::kserve_v2().invoke::<ModelInferRequest>(STREAM_INFER)
}

/// Both services behind the layer with `rules`, on 127.0.0.1 (a free port).
pub async fn start(rules: MethodRules) -> Served {
    start_with(rules, Models::default()).await
}

/// [`start`] with these handlers.
pub async fn start_with(rules: MethodRules, models: Models) -> Served {
    let idp = crate::common::example_idp().await;
    let audit = MemorySink::new();
    let governor = crate::common::builder(&idp)
        .audit(AuditLog::builder(audit.clone()).build())
        .policy(Policy::from_path(POLICY).expect("the example policy loads"))
        .build()
        .expect("valid configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .layer(AuthorizeLayer::new(governor.clone(), rules))
        .add_service(GrpcInferenceServiceServer::new(models.clone()))
        .add_service(StreamingInferenceServiceServer::new(models.clone()))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
            let _ = stopped.await;
        });
    tokio::spawn(server);
    Served {
        idp,
        governor: governor.clone(),
        addr,
        audit,
        models,
        _shutdown: shutdown,
    }
}

impl Served {
    pub fn calls(&self) -> usize {
        self.models.calls.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<String> {
        self.models.seen.lock().unwrap().clone()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("the server accepts connections")
    }

    pub async fn kserve(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel().await)
    }

    pub async fn streaming(&self) -> StreamingInferenceServiceClient<Channel> {
        StreamingInferenceServiceClient::new(self.channel().await)
    }

    /// A member of the LLM team: may invoke `models/llama-*`.
    pub fn llm_team(&self) -> String {
        self.persona(|idp| idp.token().groups([LLM_TEAM]))
    }

    /// A frontier user in a client that answers claims challenges, signed in without c1.
    pub fn frontier_without_c1(&self) -> String {
        self.persona(|idp| {
            idp.token()
                .groups([FRONTIER_USERS])
                .client_capabilities(["cp1"])
        })
    }

    /// The same frontier user after the step-up: signed in with auth context c1.
    pub fn frontier_with_c1(&self) -> String {
        self.persona(|idp| {
            idp.token()
                .groups([FRONTIER_USERS])
                .client_capabilities(["cp1"])
                .acrs(["c1"])
        })
    }

    /// A user in no group.
    pub fn no_group(&self) -> String {
        self.persona(|idp| idp.token().groups(Vec::<String>::new()))
    }

    fn persona(&self, mint: impl FnOnce(&TestIdp) -> TokenBuilder) -> String {
        mint(&self.idp).scopes("Inference.Invoke").sign()
    }
}

/// A request carrying `token` as its bearer token.
pub fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ASCII"),
    );
    request
}

/// A `ModelInfer` request for `model`.
pub fn infer(model: &str, id: &str) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_owned(),
        id: id.to_owned(),
        raw_input_contents: vec![vec![1u8, 2, 3].into()],
        ..Default::default()
    }
}

/// Every event's (outcome, action, resource, reason), in order.
pub fn trail(audit: &MemorySink) -> Vec<(String, String, String, String)> {
    audit
        .events()
        .into_iter()
        .map(|e| {
            (
                e.outcome.as_str().to_owned(),
                e.action,
                e.resource,
                e.reason,
            )
        })
        .collect()
}

/// A gRPC frame: the compressed flag, the big-endian length, the payload.
pub fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flag];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A hand-made call on the real client transport (tonic's `Channel`): `body` sent as
/// the request body unchanged, `headers` added; the call's status, from the response
/// headers (trailers-only) or trailers.
pub async fn raw_call(
    served: &Served,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Status {
    use tonic::codegen::Service as _;
    let mut channel = served.channel().await;
    let mut request = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{path}", served.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(tonic::body::Body::new(http_body_util::Full::new(
            tonic::codegen::Bytes::from(body),
        )))
        .unwrap();
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .unwrap();
    let response = channel.call(request).await.expect("an HTTP/2 response");
    assert_eq!(response.status(), 200);
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let collected = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("the response body");
    Status::from_header_map(collected.trailers().expect("trailers")).expect("grpc-status")
}

/// `authorization: Bearer <token>`, for [`raw_call`].
pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}
