//! `cargo run --example ai_platform --features axum` prints `curl` commands with the
//! status each gets: this starts that demo (the example's own `app` and demo set-up) on a
//! loopback port and sends every printed command.

#[allow(dead_code)] // only `app` and the platform module are used here
#[path = "../../examples/ai_platform.rs"]
mod ai_platform;
use crate::example_demo;

use ai_platform::platform::{self, TRIES};
use example_demo::Sent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printed_command_gets_the_printed_status() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(demo.listener).unwrap();
    let app = ai_platform::app(demo.governor, demo.audit);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let tokens = platform::persona_tokens(&idp);
    let sent = TRIES
        .iter()
        .map(|t| Sent {
            what: t.what,
            method: t.method,
            path: t.path,
            body: t.body,
            token: t.persona.map(|var| {
                let (_, token) = tokens
                    .iter()
                    .find(|(p, _)| p.var == var)
                    .expect("a persona");
                token.clone()
            }),
            status: t.status,
        })
        .collect();
    example_demo::check_every_printed_command(&base, sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_routes_revoke_and_report_and_refuse_everyone_else() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let listener = tokio::net::TcpListener::from_std(demo.listener).unwrap();
    let app = ai_platform::app(demo.governor, demo.audit);
    tokio::spawn(async move { axum::serve(listener, app).await });
    crate::admin::check_admin_routes(&base, &idp).await;
}
