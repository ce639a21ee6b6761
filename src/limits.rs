//! Every default the builders apply and every bound they enforce, in one place.
//!
//! Each constant is defined beside the stage it bounds (the token stage's settings, the
//! bounded fetcher, the revocation list, the Graph resolver, the policy compiler, resource
//! paths) and re-exported here, so that one page lists what the crate does when you set
//! nothing, and where it stops. The audit pipeline's defaults are in [`crate::audit`]
//! (`audit::DEFAULT_CAPACITY`, ...), next to the builder that applies them.

// The token stage: `GovernorBuilder`'s token settings.
pub use crate::token::config::{
    DEFAULT_CLOCK_SKEW, DEFAULT_KEY_REFRESH_COOLDOWN, DEFAULT_KEY_REFRESH_INTERVAL,
    DEFAULT_MAX_TOKEN_BYTES, DEFAULT_TOKEN_CACHE_BYTES, KEY_REFRESH_COOLDOWN_RANGE,
    KEY_REFRESH_INTERVAL_RANGE, MAX_METADATA_BYTES,
};
pub use crate::token::validate::MAX_TOKEN_LIFETIME_SECS;

// Every outbound request (discovery, JWKS, Graph, its token endpoint).
pub use crate::fetch::DEFAULT_HTTP_TIMEOUT;

// Revocation.
pub use crate::revocation::{DEFAULT_MAX_REVOCATIONS, MAX_TOKEN_LIFETIME};

// Microsoft Graph.
#[cfg(feature = "graph")]
pub use crate::graph::{
    DEFAULT_GRAPH_CACHE_CAPACITY, DEFAULT_GRAPH_CACHE_TTL, DEFAULT_GRAPH_FAILURE_TTL,
    DEFAULT_GRAPH_MAX_RETRIES, DEFAULT_GRAPH_TIME_BUDGET, MAX_GRAPH_RESPONSE_BYTES,
    MAX_GRAPH_RETRY_AFTER,
};

// Policies and the resources they decide about.
pub use crate::policy::{MAX_ACTIONS, MAX_AUTH_AGE_SECS, MAX_BINDINGS, MAX_ROLES};
pub use crate::resource::{MAX_RESOURCE_LEN, MAX_SEGMENTS};

// The HTTP edge.
pub use crate::http::RETRY_AFTER_SECS;
