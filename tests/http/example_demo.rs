//! Sends every request the platform demo prints (`examples/platform/mod.rs`, `TRIES`) to
//! the demo server over a real socket and checks the status the demo promises.

use reqwest::Method;

/// One printed command, with the token its shell variable holds.
pub struct Sent {
    /// What the demo says it shows.
    pub what: &'static str,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path and query.
    pub path: &'static str,
    /// A JSON body.
    pub body: Option<&'static str>,
    /// The bearer token, if the command sends one.
    pub token: Option<String>,
    /// The status the demo prints.
    pub status: u16,
}

/// Sends each request to `base`; collects every broken promise, then fails naming them.
pub async fn check_every_printed_command(base: &str, sent: Vec<Sent>) {
    assert!(sent.len() >= 16, "the demo prints {} commands", sent.len());
    let client = reqwest::Client::new();
    let mut broken = Vec::new();
    for s in sent {
        let method = Method::from_bytes(s.method.as_bytes()).expect("a method");
        let mut request = client.request(method, format!("{base}{}", s.path));
        if let Some(token) = &s.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = s.body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the demo answers");
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if status != s.status {
            broken.push(format!("{}: promised {}, got {status}", s.what, s.status));
        } else if status == 401 && s.token.is_some() && !challenge.contains("insufficient_claims") {
            broken.push(format!("{}: a 401 without a claims challenge", s.what));
        }
    }
    assert!(
        broken.is_empty(),
        "the demo breaks its promises: {broken:#?}"
    );
}
