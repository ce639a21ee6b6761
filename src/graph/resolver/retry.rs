//! Retries and holds: the bounded retry loop with its backoff and clamped `Retry-After`,
//! failures remembered per principal, and 429s that hold back a whole tenant.

use super::*;

/// A remembered failure: what lookups are answered until `until`, without a call.
pub(super) struct Held {
    /// The error to answer; `None` for a 429, answered as `Throttled` for the time left.
    pub(super) error: Option<GroupResolutionError>,
    pub(super) until: std::time::Instant,
}

impl Held {
    /// The error for a lookup at `now`, or `None` once the hold is over.
    pub(super) fn answer(&self, now: std::time::Instant) -> Option<GroupResolutionError> {
        let left = self.until.saturating_duration_since(now);
        if left.is_zero() {
            return None;
        }
        Some(self.error.clone().unwrap_or_else(|| throttled_for(left)))
    }
}

/// Throttled for `left`, in whole seconds rounded up: never "retry after 0 s" while
/// still held.
pub(super) fn throttled_for(left: Duration) -> GroupResolutionError {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    GroupResolutionError::Throttled {
        retry_after_secs: secs,
    }
}

impl Inner {
    /// The error a lookup of `principal` gets without a call, while its tenant or the
    /// principal itself is held back.
    pub(super) async fn held_back(&self, principal: &Principal) -> Option<GroupResolutionError> {
        if let Some(error) = self
            .tenant_holds
            .get(principal.tenant())
            .await
            .and_then(|h| h.answer(std::time::Instant::now()))
        {
            return Some(error);
        }
        self.failures
            .get(principal.id())
            .await
            .and_then(|h| h.answer(std::time::Instant::now()))
    }

    /// Holds back every lookup of `tenant` for `time`: with `error`, or (`None`) as
    /// throttled for the time left.
    pub(super) async fn hold_tenant(
        &self,
        tenant: &TenantId,
        error: Option<GroupResolutionError>,
        time: Duration,
    ) {
        let held = Arc::new(Held {
            error,
            until: valid_for(time),
        });
        // A shorter hold never cuts a longer one (a 429's) short.
        self.tenant_holds
            .entry(tenant.clone())
            .and_compute_with(|current| async move {
                match current {
                    Some(entry) if entry.value().until >= held.until => Op::Nop,
                    _ => Op::Put(held),
                }
            })
            .await;
    }

    /// Sends a request (made afresh per attempt) and returns the first answer that is
    /// neither a 429 nor a 5xx. 429s wait for `Retry-After`, 5xx and transport failures
    /// back off; both stop after `max_retries` retries or when the wait would not fit in
    /// the budget. A 429 holds back the tenant for its wait at once; a 5xx or transport
    /// failure that ends the retries holds it back for `failure_ttl`.
    pub(super) async fn send(
        &self,
        tenant: &TenantId,
        service: &'static str,
        counter: &AtomicU64,
        make: impl Fn() -> Result<reqwest::RequestBuilder, GroupResolutionError>,
        url: &Url,
        deadline: Instant,
    ) -> Result<Answer, GroupResolutionError> {
        let mut retries = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(GroupResolutionError::BudgetExceeded {
                    budget: self.time_budget,
                });
            }
            let request = make()?;
            counter.fetch_add(1, Ordering::SeqCst);
            let timeout = remaining.min(self.fetcher.timeout);
            let attempts = || match retries {
                0 => "1 attempt".to_owned(),
                n => format!("{} attempts", n + 1),
            };
            let (wait, failure, asked) = match self.fetcher.exchange(request, url, timeout).await {
                Ok(answer)
                    if answer.status == 429 || matches!(answer.status, 500 | 502 | 503 | 504) =>
                {
                    let asked = answer.retry_after.is_some();
                    let wait = answer.retry_after.map_or_else(
                        || backoff(retries),
                        |secs| Duration::from_secs(secs).min(MAX_GRAPH_RETRY_AFTER),
                    );
                    let failure = if answer.status == 429 {
                        crate::observe::graph_throttled();
                        // Every lookup of the tenant waits for it, not only this one, on
                        // every replica of the fleet.
                        self.hold_tenant(tenant, None, wait).await;
                        #[cfg(feature = "redis")]
                        if let Some(share) = &self.share {
                            share.hold(tenant, wait).await;
                        }
                        GroupResolutionError::Throttled {
                            retry_after_secs: wait.as_secs(),
                        }
                    } else {
                        GroupResolutionError::Unavailable {
                            reason: format!(
                                "{service} answered HTTP {} ({})",
                                answer.status,
                                attempts()
                            ),
                        }
                    };
                    (wait, failure, asked)
                }
                Ok(answer) => return Ok(answer),
                Err(FetchError::Transport { .. }) if Instant::now() >= deadline => {
                    // The request was cut off because the budget ran out.
                    return Err(GroupResolutionError::BudgetExceeded {
                        budget: self.time_budget,
                    });
                }
                Err(error @ FetchError::Transport { .. }) => {
                    let failure = GroupResolutionError::Unavailable {
                        reason: format!("{error} ({})", attempts()),
                    };
                    (backoff(retries), failure, false)
                }
                Err(error) => {
                    return Err(GroupResolutionError::Unavailable {
                        reason: error.to_string(),
                    });
                }
            };
            if retries >= self.max_retries
                || wait > deadline.saturating_duration_since(Instant::now())
            {
                if !matches!(failure, GroupResolutionError::Throttled { .. }) {
                    // The service is failing for everyone in the tenant, not this one.
                    self.hold_tenant(tenant, Some(failure.clone()), self.failure_ttl)
                        .await;
                }
                return Err(failure);
            }
            tracing::debug!(
                service,
                retry = retries + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "group resolution: retrying"
            );
            retries += 1;
            if asked {
                crate::observe::graph_retry_after_wait(wait);
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// The deadline `budget` from now (now itself if that is past the clock's range).
pub(super) fn deadline_in(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget).unwrap_or(now)
}

/// `BACKOFF_BASE * 2^retries`, capped at `BACKOFF_CAP`, jittered down to half.
pub(super) fn backoff(retries: u32) -> Duration {
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << retries.min(16))
        .min(BACKOFF_CAP);
    let mut byte = [0u8; 1];
    // Without randomness the wait is simply not jittered.
    let jitter = match aws_lc_rs::rand::fill(&mut byte) {
        Ok(()) => u32::from(byte[0]),
        Err(_) => 255,
    };
    full / 2 + full / 2 * jitter / 255
}

/// A printable error code: letters, digits, `_`, `.`, `-`, at most 64 of them.
pub(super) fn clean_code(code: &str) -> Option<String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    ok.then(|| code.to_owned())
}

/// Graph's error: `error.code`, e.g. `Authorization_RequestDenied`. Never the message.
pub(super) fn graph_error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .as_ref()
        .and_then(|v| v.pointer("/error/code"))
        .and_then(Value::as_str)
        .and_then(clean_code)
        .unwrap_or_else(|| "unknown".into())
}
