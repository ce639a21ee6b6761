//! Quickstart: a local Entra look-alike, a `Governor` pointed at it, and a table of
//! tokens tried with their outcomes.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use entra_governor::testing::TestIdp;
use entra_governor::{Cloud, Governor, Principal, TokenError};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idp = TestIdp::start().await;
    let governor = Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback() // the look-alike speaks plain http on 127.0.0.1
        .build()?;

    println!("Local Entra look-alike at {}", idp.authority());
    println!(
        "API client id {}, tenant {}\n",
        idp.client_id(),
        idp.tenant_id()
    );

    let other_tenant = idp.add_tenant();
    let cases: Vec<(&str, String)> = vec![
        (
            "valid v2 user token",
            idp.token().scopes("Inference.Invoke").sign(),
        ),
        ("valid v1 user token", idp.token().v1().sign()),
        (
            "valid app-only token",
            idp.token().app_only().roles(["Training.Pipeline"]).sign(),
        ),
        ("guest user", idp.token().guest(other_tenant.clone()).sign()),
        ("expired an hour ago", idp.token().expires_in(-3600).sign()),
        (
            "wrong audience",
            idp.token().audience("api://someone-else").sign(),
        ),
        (
            "Microsoft Graph token",
            idp.token()
                .audience("00000003-0000-0000-c000-000000000000")
                .sign(),
        ),
        (
            "another tenant",
            idp.token().tenant(other_tenant.clone()).sign(),
        ),
        (
            "iss tenant != tid",
            idp.token()
                .claim("tid", json!(other_tenant.as_str()))
                .sign(),
        ),
        (
            "forged signature",
            idp.token().sign_with_foreign_key().sign(),
        ),
        ("alg: none", idp.token().header("alg", json!("none")).sign()),
        (
            "roles as a string",
            idp.token().claim("roles", json!("Admin")).sign(),
        ),
        ("no scp and no roles", idp.token().app_only().sign()),
    ];

    let tried = cases.len();
    println!("{:<24} {:<8} outcome", "token", "status");
    println!("{}", "-".repeat(100));
    for (label, token) in cases {
        let (status, outcome) = match governor.verify(&token).await {
            Ok(p) => ("200".to_owned(), describe(&p)),
            Err(e) => (e.http_status().to_string(), rejection(&e)),
        };
        println!("{label:<24} {status:<8} {outcome}");
    }
    println!(
        "\nKeys fetched: {} discovery request(s), {} JWKS request(s) for {} tokens.",
        idp.discovery_requests(),
        idp.jwks_requests(),
        tried
    );
    Ok(())
}

fn describe(p: &Principal) -> String {
    format!(
        "accepted: {:?} {} (guest: {}), scopes {:?}, roles {:?}",
        p.kind(),
        p.id(),
        p.is_guest(),
        p.scopes(),
        p.roles()
    )
}

fn rejection(e: &TokenError) -> String {
    format!("rejected: {e}")
}
