//! `cargo run --example actix_platform --features actix` prints `curl` commands with the
//! status each gets: this starts that demo (the example's own `server` and demo set-up) on a
//! loopback port and sends every printed command.

#[allow(dead_code)] // only `server` and the platform module are used here
#[path = "../../examples/actix_platform.rs"]
mod actix_platform;
use crate::example_demo;

use actix_platform::platform::{self, TRIES};
use example_demo::Sent;

#[actix_web::test]
async fn every_printed_command_gets_the_printed_status() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let server = actix_platform::server(demo.governor, demo.audit, demo.listener).unwrap();
    actix_web::rt::spawn(server);
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

#[actix_web::test]
async fn the_admin_routes_revoke_and_report_and_refuse_everyone_else() {
    let listener = platform::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let demo = platform::demo(listener).await.unwrap();
    let idp = demo.idp.expect("the demo's look-alike");
    let base = format!("http://{}", demo.listener.local_addr().unwrap());
    let server = actix_platform::server(demo.governor, demo.audit, demo.listener).unwrap();
    actix_web::rt::spawn(server);
    crate::admin::check_admin_routes(&base, &idp).await;
}
