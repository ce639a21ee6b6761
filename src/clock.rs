//! Wall-clock helpers in whole seconds since the Unix epoch: the time unit of token claims
//! (`exp`, `nbf`, `iat`), revocations and cached answers. A foundation: it imports no
//! stage, so the token, Graph and governor stages all read the time the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// `t` in seconds since the Unix epoch (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
