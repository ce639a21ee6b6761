//! [`JwksHold`]: holds back the answer to one JWKS request, so tests can order a slow
//! refresh against other events without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::lock;

/// The server's side of one hold: tell the test the request arrived, then wait.
struct Slot {
    arrived: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// Holds registered by the test, by JWKS request number (1-based).
#[derive(Default)]
pub(crate) struct Holds(Mutex<HashMap<usize, Slot>>);

impl Holds {
    /// Registers a hold for request number `n`, replacing any earlier one.
    pub(crate) fn add(&self, n: usize) -> JwksHold {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        let slot = Slot {
            arrived: arrived_tx,
            release: release_rx,
        };
        lock(&self.0).insert(n, slot);
        JwksHold {
            arrived: Some(arrived_rx),
            release: Some(release_tx),
        }
    }

    /// For request number `n`, once its key set has been read: reports the arrival and
    /// waits for the release (or for the hold to be dropped). No hold: returns at once.
    pub(crate) async fn wait(&self, n: usize) {
        let Some(slot) = lock(&self.0).remove(&n) else {
            return;
        };
        // The test may have dropped its side already: then nothing waits for either.
        let _ = slot.arrived.send(());
        let _ = slot.release.await;
    }
}

/// The answer to one JWKS request, held back; from
/// [`TestIdp::hold_jwks_request`](super::TestIdp::hold_jwks_request).
///
/// The held request has read the key set as it was when the request arrived; its answer
/// leaves when [`release`](Self::release) is called or the hold is dropped.
#[derive(Debug)]
pub struct JwksHold {
    arrived: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
}

impl JwksHold {
    /// Waits until the held request has arrived and read the key set. Returns at once
    /// when called again, or when the server stopped before the request came.
    pub async fn arrived(&mut self) {
        if let Some(arrived) = self.arrived.take() {
            let _ = arrived.await;
        }
    }

    /// Lets the held answer go (dropping the hold does the same).
    pub fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
    }
}
