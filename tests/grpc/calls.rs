//! Unary calls: every outcome's precise gRPC status, and the handler never reached by a
//! refused call.

use entra_governor::Cloud;
use entra_governor::http::challenge;
use entra_governor::tonic::MethodRules;
use entra_governor::tonic::kserve::{ModelInferRequest, ModelMetadataRequest, ServerLiveRequest};
use prost::Message as _;
use tonic::{Code, Request, Status};

use crate::server::{self, STREAM_INFER, bearer, frame, infer, raw_call, start, with_token};

fn www_authenticate(status: &Status) -> &str {
    status
        .metadata()
        .get("www-authenticate")
        .expect("a www-authenticate challenge")
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn an_allowed_call_reaches_the_handler() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let response = client
        .model_infer(with_token(infer("llama-3-70b", "r1"), &served.llm_team()))
        .await
        .expect("allowed")
        .into_inner();
    assert_eq!(response.model_name, "llama-3-70b");
    assert_eq!(response.id, "answered r1");
    assert_eq!(served.seen(), ["llama-3-70b"]);
}

#[tokio::test]
async fn a_forbidden_model_is_permission_denied_and_the_handler_is_never_called() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    for (token, model) in [
        (served.llm_team(), "gpt-4o"),
        (served.llm_team(), "mistral-large"),
        (served.no_group(), "llama-3-70b"),
    ] {
        let status = client
            .model_infer(with_token(infer(model, "r1"), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{model}: {status:?}");
        assert_eq!(
            status.message(),
            "insufficient_scope: the caller may not perform this action on this resource"
        );
        assert_eq!(
            www_authenticate(&status),
            "Bearer error=\"insufficient_scope\""
        );
    }
    assert_eq!(served.calls(), 0);
}

#[tokio::test]
async fn missing_or_malformed_authorization_metadata_is_unauthenticated() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let status = client
        .model_infer(Request::new(infer("llama-3-70b", "r1")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "invalid_request: bearer token required");
    assert_eq!(www_authenticate(&status), "Bearer");

    let mut request = Request::new(infer("llama-3-70b", "r1"));
    request
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    let status = client.model_infer(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "invalid_request: malformed Authorization header"
    );
    assert_eq!(served.calls(), 0);
}

#[tokio::test]
async fn an_invalid_token_is_unauthenticated_and_never_echoed() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let foreign = served
        .idp
        .token()
        .scopes("Inference.Invoke")
        .groups([server::LLM_TEAM])
        .sign_with_foreign_key()
        .sign();
    for (token, description) in [
        (foreign.as_str(), "invalid signature"),
        ("not-a-jwt", "malformed token"),
    ] {
        let status = client
            .model_infer(with_token(infer("llama-3-70b", "r1"), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), format!("invalid_token: {description}"));
        assert_eq!(
            www_authenticate(&status),
            format!("Bearer error=\"invalid_token\", error_description=\"{description}\"")
        );
        for (_, value) in status.metadata().clone().into_headers() {
            assert!(!value.to_str().unwrap().contains(token));
        }
    }
    assert_eq!(served.calls(), 0);
}

#[tokio::test]
async fn a_step_up_is_unauthenticated_with_the_claims_challenge() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let status = client
        .model_infer(with_token(
            infer("gpt-4o", "r1"),
            &served.frontier_without_c1(),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "insufficient_claims: a stronger or more recent sign-in is required"
    );
    let cloud = Cloud::custom(served.idp.authority());
    let expected =
        challenge::insufficient_claims(cloud.authority(), &challenge::auth_context_claims("c1"));
    assert_eq!(www_authenticate(&status), expected);
    assert!(expected.contains("error=\"insufficient_claims\""));
    assert_eq!(served.calls(), 0);

    // After the step-up, the same call goes through.
    let response = client
        .model_infer(with_token(
            infer("gpt-4o", "r2"),
            &served.frontier_with_c1(),
        ))
        .await
        .expect("allowed with c1")
        .into_inner();
    assert_eq!(response.model_name, "gpt-4o");
    assert_eq!(served.seen(), ["gpt-4o"]);
}

#[tokio::test]
async fn a_method_without_a_rule_is_permission_denied() {
    // The streaming service is served, but these rules do not name its method.
    let served = start(MethodRules::kserve_v2()).await;
    let mut client = served.streaming().await;
    let messages = tonic::codegen::tokio_stream::iter([infer("llama-3-70b", "r1")]);
    let status = client
        .model_stream_infer(with_token(messages, &served.llm_team()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(served.calls(), 0);
    served.audit.wait_for_len(1).await;
    let trail = server::trail(&served.audit);
    assert_eq!(
        trail,
        [(
            "deny".to_owned(),
            "route".to_owned(),
            STREAM_INFER.to_owned(),
            "no_route".to_owned()
        )]
    );
}

#[tokio::test]
async fn authentication_only_methods_need_a_valid_token_and_nothing_else() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let live = client
        .server_live(with_token(ServerLiveRequest {}, &served.no_group()))
        .await
        .expect("a valid token is enough")
        .into_inner();
    assert!(live.live);
    let status = client
        .server_live(Request::new(ServerLiveRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(served.calls(), 1);
}

#[tokio::test]
async fn a_compressed_message_is_unimplemented() {
    let served = start(server::rules()).await;
    let payload = infer("llama-3-70b", "r1").encode_to_vec();
    let token = served.llm_team();
    // The compressed flag set (the payload does not matter: it is never decompressed).
    let status = raw_call(
        &served,
        "/inference.GRPCInferenceService/ModelInfer",
        &[bearer(&token)],
        frame(1, &payload),
    )
    .await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "compressed request messages are not accepted"
    );
    // A `grpc-encoding` other than identity is refused before any message is read.
    let status = raw_call(
        &served,
        "/inference.GRPCInferenceService/ModelInfer",
        &[bearer(&token), ("grpc-encoding", "gzip".to_owned())],
        frame(0, &payload),
    )
    .await;
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    // The same message uncompressed goes through: the raw call itself is sound.
    let status = raw_call(
        &served,
        "/inference.GRPCInferenceService/ModelInfer",
        &[bearer(&token)],
        frame(0, &payload),
    )
    .await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(served.seen(), ["llama-3-70b"]);
}

#[tokio::test]
async fn oversized_undecodable_and_truncated_messages_are_refused() {
    let served = start(server::rules().max_message_bytes(1024)).await;
    let token = served.llm_team();
    let path = "/inference.GRPCInferenceService/ModelInfer";
    let mut big = infer("llama-3-70b", "r1");
    big.raw_input_contents = vec![vec![0u8; 2048].into()];
    let status = raw_call(
        &served,
        path,
        &[bearer(&token)],
        frame(0, &big.encode_to_vec()),
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        "a request message is longer than 1024 bytes"
    );
    // Only the prefix of a 4 GiB message: refused without waiting for the rest.
    let status = raw_call(
        &served,
        path,
        &[bearer(&token)],
        vec![0, 0xff, 0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Field 1 as a varint: not a ModelInferRequest.
    let status = raw_call(&served, path, &[bearer(&token)], frame(0, &[0x08, 0x96])).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "the request message does not decode");

    let mut truncated = frame(0, &infer("llama-3-70b", "r1").encode_to_vec());
    truncated.truncate(truncated.len() - 1);
    let status = raw_call(&served, path, &[bearer(&token)], truncated).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "the request ended inside a message");

    // An empty model name names no resource.
    let status = raw_call(
        &served,
        path,
        &[bearer(&token)],
        frame(0, &infer("", "r1").encode_to_vec()),
    )
    .await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(served.calls(), 0);
}

#[tokio::test]
async fn the_audit_trail_holds_every_decision() {
    let served = start(server::rules()).await;
    let mut client = served.kserve().await;
    let llm = served.llm_team();
    client
        .model_infer(with_token(infer("llama-3-8b", "r1"), &llm))
        .await
        .expect("allowed");
    client
        .model_infer(with_token(infer("gpt-4o", "r2"), &llm))
        .await
        .unwrap_err();
    // `models.read`: the example policy grants it to nobody.
    client
        .model_metadata(with_token(
            ModelMetadataRequest {
                name: "llama-3-8b".into(),
                version: String::new(),
            },
            &llm,
        ))
        .await
        .unwrap_err();
    client
        .model_infer(with_token(
            infer("gpt-4o", "r3"),
            &served.frontier_without_c1(),
        ))
        .await
        .unwrap_err();
    client
        .model_infer(Request::new(ModelInferRequest::default()))
        .await
        .unwrap_err();
    served.audit.wait_for_len(5).await;
    let mut trail: Vec<_> = server::trail(&served.audit)
        .into_iter()
        .map(|(outcome, action, resource, _)| (outcome, action, resource))
        .collect();
    trail.sort();
    let row = |o: &str, a: &str, r: &str| (o.to_owned(), a.to_owned(), r.to_owned());
    let mut expected = vec![
        row("allow", "inference.invoke", "models/llama-3-8b"),
        row("deny", "inference.invoke", "models/gpt-4o"),
        row("deny", "models.read", "models/llama-3-8b"),
        row("step_up", "inference.invoke", "models/gpt-4o"),
        row(
            "invalid_token",
            "authenticate",
            "/inference.GRPCInferenceService/ModelInfer",
        ),
    ];
    expected.sort();
    assert_eq!(trail, expected);
    assert_eq!(served.seen(), ["llama-3-8b"]);
}

/// The README's rules: KServe's, a streaming method, a template with two placeholders,
/// a health check.
#[test]
fn rules_for_more_methods_build() {
    use entra_governor::tonic::kserve::{self, ModelMetadataRequest};
    let rules = MethodRules::kserve_v2()
        .invoke::<ModelInferRequest>("/inference.GRPCInferenceService/ModelStreamInfer")
        .require::<ModelMetadataRequest>(
            "/inference.Extra/Describe",
            "models.read",
            "models/{model}/versions/{version}",
        )
        .authentication_only("/grpc.health.v1.Health/Check")
        .max_message_bytes(16 * 1024 * 1024);
    assert_eq!(rules.methods().len(), 9);
    assert!(rules.methods().contains(&kserve::MODEL_INFER));
    let e = MethodRules::new()
        .try_require::<ModelInferRequest>(kserve::MODEL_INFER, "inference.invoke", "/models/{m}")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid resource template \"/models/{m}\": a resource does not start with '/'"
    );
}

#[tokio::test]
async fn a_template_is_filled_from_every_parameter_the_message_names() {
    let rules = MethodRules::new().require::<ModelInferRequest>(
        "/inference.GRPCInferenceService/ModelInfer",
        "inference.invoke",
        "models/{model}/versions/{version}",
    );
    let served = start(rules).await;
    let mut client = served.kserve().await;
    let mut request = infer("llama-3-70b", "r1");
    request.model_version = "2".into();
    let status = client
        .model_infer(with_token(request, &served.llm_team()))
        .await
        .unwrap_err();
    // The example policy grants `models/llama-*`, not versions below it.
    assert_eq!(status.code(), Code::PermissionDenied);
    // No version: the template cannot be filled, so no resource is named.
    let status = client
        .model_infer(with_token(infer("llama-3-70b", "r2"), &served.llm_team()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    served.audit.wait_for_len(2).await;
    let trail: Vec<_> = server::trail(&served.audit)
        .into_iter()
        .map(|(outcome, _, resource, reason)| (outcome, resource, reason))
        .collect();
    assert_eq!(trail.len(), 2, "{trail:?}");
    assert!(
        trail
            .iter()
            .any(|(o, r, _)| o == "deny" && r == "models/llama-3-70b/versions/2"),
        "{trail:?}"
    );
    assert!(
        trail
            .iter()
            .any(|(o, _, reason)| o == "deny" && reason == "invalid_resource"),
        "{trail:?}"
    );
    assert_eq!(served.calls(), 0);
}
