//! One policy for the fleet: a policy is validated, sealed with the fleet key and
//! published; every replica, at its next heartbeat, verifies the seal, validates the
//! document again and swaps it in atomically. A document that fails either check never
//! replaces a good one: the replica keeps its policy and reports why.

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use super::shared::{Attachment, Shared, describe};
use crate::clock::unix_millis_now;
use crate::error::excerpt;

/// Largest policy document published or read: 1 MiB.
pub(crate) const MAX_POLICY_BYTES: usize = 1024 * 1024;

/// Why a policy could not be published to the fleet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The governor is standalone (no [`Fleet`](super::Fleet) configured).
    #[error("this governor is not in fleet mode")]
    NotInFleetMode,
    /// The policy does not parse or validate, or this governor would refuse it (its
    /// claim-value bindings do not name the tenants they trust); nothing was published.
    #[error("the policy was not published: {reason}")]
    InvalidPolicy {
        /// What is wrong, as a reload would say.
        reason: String,
    },
    /// Redis did not take it; nothing was published.
    #[error("Redis did not take the policy: {reason}")]
    Redis {
        /// The kind of failure (never a password or the key).
        reason: String,
    },
}

/// The published document, the body of the sealed entry.
#[derive(Serialize, Deserialize)]
struct Published {
    version: String,
    source: String,
    published_ms: u64,
    published_by: String,
}

/// Validates `source`, publishes it sealed, and applies it here; returns its version.
pub(crate) async fn publish(
    fleet: &Shared,
    attachment: &Attachment,
    source: &str,
) -> Result<String, FleetError> {
    if source.len() > MAX_POLICY_BYTES {
        return Err(FleetError::InvalidPolicy {
            reason: "larger than 1 MiB".into(),
        });
    }
    let compiled = (attachment.accept_policy)(source)
        .map_err(|reason| FleetError::InvalidPolicy { reason })?;
    let version = compiled.version_hash().to_owned();
    let body = serde_json::to_string(&Published {
        version: version.clone(),
        source: source.to_owned(),
        published_ms: unix_millis_now(),
        published_by: fleet.settings.replica_id.clone(),
    })
    .map_err(|e| FleetError::InvalidPolicy {
        reason: e.to_string(),
    })?;
    let names = &fleet.settings.names;
    let sealed = fleet.key.seal(&names.policy(), &body);
    let mut con = fleet.commands().ok_or_else(|| FleetError::Redis {
        reason: "no connection".into(),
    })?;
    // One MSET: both keys change together.
    redis::cmd("MSET")
        .arg(names.policy())
        .arg(&sealed)
        .arg(names.policy_hint())
        .arg(&version)
        .query_async::<()>(&mut con)
        .await
        .map_err(|e| FleetError::Redis {
            reason: describe(&e),
        })?;
    attachment.policy.store(compiled);
    let mut follow = fleet
        .policy_follow
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    follow.last_seen = Some(sealed);
    follow.version = Some(version.clone());
    follow.rejected = None;
    Ok(version)
}

/// Looks for a newly published policy and applies it if it verifies and validates.
pub(crate) async fn follow(
    fleet: &Shared,
    attachment: &Attachment,
    con: &mut ConnectionManager,
) -> redis::RedisResult<()> {
    let names = &fleet.settings.names;
    let hint: Option<String> = redis::cmd("GET")
        .arg(names.policy_hint())
        .query_async(con)
        .await?;
    let Some(hint) = hint else {
        return Ok(()); // nothing published
    };
    {
        let follow = fleet
            .policy_follow
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let current = attachment.policy.load();
        if follow.version.as_deref() == Some(&hint) && current.version_hash() == hint {
            return Ok(()); // applied already
        }
    }
    let sealed: Option<String> = redis::cmd("GET")
        .arg(names.policy())
        .query_async(con)
        .await?;
    let Some(sealed) = sealed else {
        return Ok(());
    };
    let mut follow = fleet
        .policy_follow
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if follow.last_seen.as_deref() == Some(&sealed) {
        return Ok(()); // looked at already (applied, then replaced locally, or rejected)
    }
    follow.last_seen = Some(sealed.clone());
    match open(fleet, attachment, &names.policy(), &sealed) {
        Ok((version, compiled)) => {
            if attachment.policy.load().version_hash() != version {
                tracing::info!(version = %version, "fleet: applying the published policy");
                attachment.policy.store(compiled);
            }
            follow.version = Some(version);
            follow.rejected = None;
        }
        Err(reason) => {
            tracing::warn!(reason = %reason, "fleet: the published policy was not applied; the current policy keeps serving");
            follow.rejected = Some(reason);
        }
    }
    Ok(())
}

/// The version and compiled policy of a sealed document, or why it is refused.
fn open(
    fleet: &Shared,
    attachment: &Attachment,
    redis_key: &str,
    sealed: &str,
) -> Result<(String, std::sync::Arc<crate::policy::CompiledPolicy>), String> {
    let Some(body) = fleet.key.open(redis_key, sealed) else {
        fleet.reject("published policy", redis_key);
        return Err("it does not verify with the fleet key".into());
    };
    let published: Published = serde_json::from_str(body).map_err(|e| {
        fleet.reject("published policy", redis_key);
        format!("it does not parse: {}", excerpt(&e.to_string()))
    })?;
    let compiled = (attachment.accept_policy)(&published.source)?;
    if compiled.version_hash() != published.version {
        return Err("its version does not match its source".into());
    }
    Ok((published.version, compiled))
}
