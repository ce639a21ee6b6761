//! Bidirectional streams: every message decided before the service reads it; the
//! first refusal cuts the stream with its status, which the client really sees.

use std::time::SystemTime;

use tonic::Code;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::server::{self, infer, start, with_token};

#[tokio::test]
async fn a_stream_is_cut_at_its_first_forbidden_message() {
    let served = start(server::rules()).await;
    let mut client = served.streaming().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(infer("llama-3-70b", "m1")).await.unwrap();
    let mut responses = client
        .model_stream_infer(with_token(ReceiverStream::new(rx), &served.llm_team()))
        .await
        .expect("the stream opens")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("the first message is answered")
        .expect("an answer");
    assert_eq!(
        (first.model_name.as_str(), first.id.as_str()),
        ("llama-3-70b", "answered m1")
    );
    // The second message names a model the LLM team may not invoke.
    tx.send(infer("gpt-4o", "m2")).await.unwrap();
    let status = responses.message().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        "insufficient_scope: the caller may not perform this action on this resource"
    );
    // Nothing follows the cut, even if the client sends on.
    let _ = tx.send(infer("llama-3-8b", "m3")).await;
    assert!(matches!(responses.message().await, Ok(None) | Err(_)));
    assert_eq!(served.seen(), ["llama-3-70b"]);
    served.audit.wait_for_len(2).await;
    let trail: Vec<_> = server::trail(&served.audit)
        .into_iter()
        .map(|(outcome, _, resource, _)| (outcome, resource))
        .collect();
    assert_eq!(
        trail,
        [
            ("allow".to_owned(), "models/llama-3-70b".to_owned()),
            ("deny".to_owned(), "models/gpt-4o".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_cut_ends_the_call_even_when_the_handler_ignores_it() {
    let models = server::Models {
        swallow_errors: true,
        ..Default::default()
    };
    let served = server::start_with(server::rules(), models).await;
    let mut client = served.streaming().await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(infer("llama-3-70b", "m1")).await.unwrap();
    let mut responses = client
        .model_stream_infer(with_token(ReceiverStream::new(rx), &served.llm_team()))
        .await
        .expect("the stream opens")
        .into_inner();
    responses
        .message()
        .await
        .expect("the first message is answered")
        .expect("an answer");
    tx.send(infer("gpt-4o", "m2")).await.unwrap();
    // The handler never ends its response: the status comes from the layer.
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), responses.message())
        .await
        .expect("the layer ends the call")
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(served.seen(), ["llama-3-70b"]);
}

#[tokio::test]
async fn messages_sent_together_are_each_decided_and_the_forbidden_one_never_reaches_the_service() {
    let served = start(server::rules()).await;
    let mut client = served.streaming().await;
    // Three messages in one go: however the transport packs them, the layer decides
    // each one before the service can read it.
    let messages = tonic::codegen::tokio_stream::iter([
        infer("llama-3-70b", "m1"),
        infer("gpt-4o", "m2"),
        infer("llama-3-8b", "m3"),
    ]);
    let mut responses = client
        .model_stream_infer(with_token(messages, &served.llm_team()))
        .await
        .expect("the stream opens")
        .into_inner();
    let status = loop {
        match responses.message().await {
            Ok(Some(answer)) => assert_eq!(answer.model_name, "llama-3-70b"),
            Ok(None) => panic!("the stream ended without the refusal"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let seen = served.seen();
    assert!(
        seen.len() <= 1 && seen.iter().all(|m| m == "llama-3-70b"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn a_caller_revoked_mid_stream_is_cut_unauthenticated() {
    let served = start(server::rules()).await;
    let mut client = served.streaming().await;
    let token = served.llm_team();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(infer("llama-3-70b", "m1")).await.unwrap();
    let mut responses = client
        .model_stream_infer(with_token(ReceiverStream::new(rx), &token))
        .await
        .expect("the stream opens")
        .into_inner();
    responses
        .message()
        .await
        .expect("the first message is answered")
        .expect("an answer");
    // Every token of the caller issued before a second from now is revoked.
    let caller = served.governor.verify(&token).await.unwrap();
    served
        .governor
        .revoke(
            caller.id(),
            SystemTime::now() + std::time::Duration::from_secs(1),
        )
        .unwrap();
    // An allowed model, but the caller is checked again with every message.
    tx.send(infer("llama-3-70b", "m2")).await.unwrap();
    let status = responses.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(status.message(), "invalid_token: token revoked");
    assert_eq!(served.seen(), ["llama-3-70b"]);
}
