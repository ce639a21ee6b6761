//! The policy file, watched: every interval its content is compared with the last one
//! tried; a change is parsed and validated whole, then swapped in atomically (requests
//! see the old policy or the new one, never a mix). A file that does not load leaves the
//! live policy in place, and so does a file that changes while it is read. Each attempt
//! is logged and counted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use entra_governor::Policy;

use super::Service;

/// How long a changed file must stay the same before it is loaded.
const SETTLE: Duration = Duration::from_millis(100);

/// How policy reloads went, for `/readyz`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ReloadStats {
    /// Reloads that replaced the live policy.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Reloads refused (the live policy stayed).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Which policy a watched file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The enforced policy (`[policy] path`).
    Live,
    /// The shadow policy (`[policy] shadow`): decided, never enforced.
    Shadow,
}

impl Slot {
    fn name(self) -> &'static str {
        match self {
            Self::Live => "policy",
            Self::Shadow => "shadow policy",
        }
    }

    /// The version the slot holds now.
    fn version(self, service: &Service) -> Option<String> {
        match self {
            Self::Live => Some(service.governor().policy_version()),
            Self::Shadow => service.governor().shadow_report().policy_version,
        }
    }
}

/// Watches `path`, the file of `slot`, every `every` for as long as the process runs.
pub fn spawn(service: Service, path: PathBuf, every: Duration, slot: Slot) {
    tokio::spawn(async move {
        // The content last tried; a file that changed between the start-up load and
        // this read holds another policy version, and is loaded on the first tick.
        let mut last = None;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(content) = tokio::fs::read(&path).await else {
                continue; // a moment without the file (an editor's rename) changes nothing
            };
            if last.as_deref() == Some(content.as_slice()) {
                continue;
            }
            // A file still being written reads differently a moment later: wait for it
            // to settle (an atomic rename never needs this).
            tokio::time::sleep(SETTLE).await;
            if tokio::fs::read(&path).await.ok().as_deref() != Some(content.as_slice()) {
                continue;
            }
            try_reload(&service, slot, &path, &content);
            last = Some(content);
        }
    });
}

fn try_reload(service: &Service, slot: Slot, path: &std::path::Path, content: &[u8]) {
    let parsed = std::str::from_utf8(content)
        .map_err(|_| "the file is not UTF-8".to_owned())
        .and_then(|text| Policy::from_toml_str(text).map_err(|e| e.to_string()));
    let policy = match parsed {
        Ok(policy) => policy,
        Err(error) => return refused(service, slot, path, &error),
    };
    if Some(policy.version_hash()) == slot.version(service).as_deref() {
        return; // in place already (the start-up load, or a touch)
    }
    let swapped = match slot {
        Slot::Live => service.governor().reload_policy(policy),
        Slot::Shadow => service.governor().reload_shadow_policy(Some(policy)),
    };
    match swapped {
        Ok(()) => {
            service.reloads.ok.fetch_add(1, Ordering::Relaxed);
            entra_governor::observe::policy_reloaded(true);
            tracing::info!(
                path = %path.display(),
                policy_version = %slot.version(service).unwrap_or_default(),
                "{} reloaded", slot.name()
            );
        }
        Err(error) => refused(service, slot, path, &error.to_string()),
    }
}

fn refused(service: &Service, slot: Slot, path: &std::path::Path, error: &str) {
    service.reloads.failed.fetch_add(1, Ordering::Relaxed);
    entra_governor::observe::policy_reloaded(false);
    tracing::error!(
        path = %path.display(),
        error = %error,
        policy_version = %slot.version(service).unwrap_or_default(),
        "{}", match slot {
            Slot::Live => "policy file refused; the live policy stays",
            Slot::Shadow => "shadow policy file refused; the shadow policy in place stays",
        }
    );
}
