//! Shared set-up: a local Entra look-alike and a governor pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use entra_governor::testing::TestIdp;
use entra_governor::{Cloud, Governor, GovernorBuilder};

/// A governor builder for the idp's primary tenant, with no periodic refresh.
pub fn builder(idp: &TestIdp) -> GovernorBuilder {
    Governor::builder()
        .cloud(Cloud::custom(idp.authority()))
        .tenant(idp.tenant_id().as_str())
        .client_id(idp.client_id())
        .dangerous_allow_http_loopback()
        .key_refresh_interval(None)
        .http_timeout(Duration::from_secs(2))
}

/// An idp and a governor for it.
pub async fn setup() -> (TestIdp, Governor) {
    let idp = TestIdp::start().await;
    let governor = builder(&idp).build().expect("valid configuration");
    (idp, governor)
}
