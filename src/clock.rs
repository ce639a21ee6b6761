//! Wall-clock helpers in whole seconds since the Unix epoch: the time unit of token claims
//! (`exp`, `nbf`, `iat`), revocations and cached answers. A foundation: it imports no
//! stage, so the token, Graph and governor stages all read the time the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest instant the crate represents, 9999-12-31T23:59:59Z: every platform's
/// `SystemTime` holds it, and no Entra token lives that long.
const LATEST_SECS: u64 = 253_402_300_799;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// The instant `secs` seconds after the Unix epoch (at most the year 9999): how the
/// public API shows a claim's time (`exp`, `iat`, `auth_time`) or a revocation instant.
pub(crate) fn from_unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.min(LATEST_SECS))
}

/// `t` in seconds since the Unix epoch (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `t` in whole seconds since the Unix epoch, rounded up (0 before it): a revocation at
/// `t` then refuses every token issued in the same second, before or after `t` (token
/// times have whole seconds only, so they cannot tell).
pub(crate) fn unix_secs_ceil(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| {
        d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
    })
}

/// Milliseconds since the Unix epoch (0 before it): fleet check-ins and Graph holds,
/// which other replicas read.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
