//! [`AuditLog`]: the bounded queue and background worker between decisions and a sink.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::decided::{DecidedEvent, refuse_allow};
use super::event::{AUTHENTICATE_ACTION, AuditEvent, AuditOutcome};
use super::sink::AuditSink;

/// Default queue capacity, in events.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Default largest batch handed to the sink.
pub const DEFAULT_MAX_BATCH: usize = 256;
/// Default capacity of the side queue of refusals before authentication, in events.
pub const DEFAULT_UNAUTHENTICATED_CAPACITY: usize = 1024;
/// Default shortest interval between two summaries of dropped refusals while refusals
/// keep being dropped (a summary is also written whenever the worker has caught up, and
/// on flush and shutdown).
pub const DEFAULT_DROP_SUMMARY_INTERVAL: Duration = Duration::from_secs(5);
/// The reason code of a [`Dropped`](AuditOutcome::Dropped) summary.
pub const DROPPED_UNAUTHENTICATED_REASON: &str = "unauthenticated_refusals_dropped";

/// Default first delay before retrying a failed sink call.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(10);
/// Default longest delay between retries of a failed sink call.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The `tracing` target of the pipeline's own health reports (sink failures, recovery).
/// It does not start with [`AUDIT_TARGET`](super::AUDIT_TARGET), so a filter on that
/// target selects exactly the audit events.
pub const AUDIT_HEALTH_TARGET: &str = "entra_governor::health::audit";

/// The reason code of an `allow` that strict mode refused; see [`AuditError::SinkUnhealthy`].
pub const AUDIT_UNAVAILABLE_REASON: &str = "audit_unavailable";

/// What [`AuditLog::record`] does when the queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnFull {
    /// Wait for room: nothing is lost, and a stalled sink slows callers down (the
    /// default).
    #[default]
    Wait,
    /// Drop the event at once and count it in [`AuditLog::dropped`]: callers never wait,
    /// and the audit trail has gaps while the sink is slower than the traffic.
    Drop,
}

/// Why [`AuditLog::record`] returned an error. In strict mode every error means "refuse
/// the request"; outside strict mode only [`Closed`](Self::Closed) is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Strict mode: the sink's last write failed. The event was still queued and will be
    /// written when the sink recovers; an `allow` event was queued with outcome
    /// `unavailable` and reason [`AUDIT_UNAVAILABLE_REASON`] instead, because the caller
    /// must refuse the request (and need not record it again).
    #[error(
        "audit trail unavailable: the audit sink failed {consecutive_failures} time(s) in a row (event queued)"
    )]
    SinkUnhealthy {
        /// Failed sink calls since the last success.
        consecutive_failures: u64,
    },
    /// Strict mode with [`OnFull::Drop`]: the queue was full and the event was dropped
    /// (and counted).
    #[error("audit trail unavailable: the audit queue is full ({capacity} events); event dropped")]
    QueueFull {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The log was shut down; the event was not recorded (it is counted as dropped).
    #[error("audit trail closed: the audit log was shut down; event not recorded")]
    Closed,
}

#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is an event; boxing would add an allocation per event"
)]
enum Msg {
    /// An event built by its caller (boxed: decisions are the common message).
    Event(Box<AuditEvent>),
    /// A decision whose event the worker builds.
    Decided(DecidedEvent),
    Flush(oneshot::Sender<()>),
    Shutdown,
}

/// Looks at every event the worker takes off the main queue, before the sink sees it:
/// the governor's shadow policy, which decides each event again and notes a difference
/// on the event itself. Runs on the worker task, off the request path.
pub(crate) trait EventHook: Send + Sync {
    /// Inspects (and may annotate) one event.
    fn inspect(&self, event: &mut AuditEvent);
}

struct Shared {
    /// Set at most once, by the governor that owns a shadow policy.
    hook: std::sync::OnceLock<Arc<dyn EventHook>>,
    capacity: usize,
    on_full: OnFull,
    strict: bool,
    unauthenticated_capacity: usize,
    recorded: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    /// Refusals before authentication dropped because the side queue was full.
    dropped_unauthenticated: AtomicU64,
    /// Of those, the ones no summary has reported yet.
    unreported_drops: AtomicU64,
    sink_failures: AtomicU64,
    /// Failed sink calls since the last success: 0 means healthy.
    consecutive_failures: AtomicU64,
    /// The worker has stopped taking events.
    closed: AtomicBool,
    /// Becomes true when the worker has finished (or its task was dropped).
    stopped: watch::Sender<bool>,
}

/// Sets `closed` and `stopped` when the worker ends, however it ends (returned, or its
/// task dropped by a runtime shutting down).
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::SeqCst);
        self.0.stopped.send_replace(true);
    }
}

/// Counts an event as dropped unless disarmed (set to `None`) once it is queued.
struct Unsent<'a>(Option<&'a AtomicU64>);

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if let Some(dropped) = self.0 {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The audit trail: a bounded queue in front of an [`AuditSink`], drained by one
/// background task. Cheap to clone; all clones share the queue and the counters.
///
/// See [the module docs](super) for the delivery guarantees of each mode.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    /// The side queue of refusals before authentication: never waited on.
    side: mpsc::Sender<AuditEvent>,
    shared: Arc<Shared>,
}

/// Configures an [`AuditLog`]; see [`AuditLog::builder`].
#[must_use]
pub struct AuditLogBuilder {
    sink: Arc<dyn AuditSink>,
    capacity: usize,
    unauthenticated_capacity: usize,
    drop_summary_interval: Duration,
    max_batch: usize,
    on_full: OnFull,
    strict: bool,
    initial_backoff: Duration,
    max_backoff: Duration,
    runtime: Option<tokio::runtime::Handle>,
}

impl AuditLog {
    /// Starts configuring a log that delivers to `sink`. Defaults: capacity
    /// [`DEFAULT_CAPACITY`], [`OnFull::Wait`], not strict, batches of up to
    /// [`DEFAULT_MAX_BATCH`], retry backoff from [`DEFAULT_INITIAL_BACKOFF`] doubling to
    /// [`DEFAULT_MAX_BACKOFF`].
    pub fn builder(sink: impl AuditSink) -> AuditLogBuilder {
        AuditLogBuilder {
            sink: Arc::new(sink),
            capacity: DEFAULT_CAPACITY,
            unauthenticated_capacity: DEFAULT_UNAUTHENTICATED_CAPACITY,
            drop_summary_interval: DEFAULT_DROP_SUMMARY_INTERVAL,
            max_batch: DEFAULT_MAX_BATCH,
            on_full: OnFull::Wait,
            strict: false,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            runtime: None,
        }
    }

    /// Queues an event for the sink.
    ///
    /// - [`OnFull::Wait`] waits for room in the queue; [`OnFull::Drop`] never waits and
    ///   drops (and counts) the event when the queue is full.
    /// - Outside strict mode this returns `Ok` whenever the log is running, even when the
    ///   event was dropped or the sink is failing (see the counters).
    /// - In strict mode it returns [`AuditError::SinkUnhealthy`] while the sink is failing
    ///   (the event is still queued, an `allow` rewritten as a refusal) and
    ///   [`AuditError::QueueFull`] when [`OnFull::Drop`] dropped it: refuse the request.
    /// - After [`shutdown`](Self::shutdown) it returns [`AuditError::Closed`].
    ///
    /// If the returned future is dropped while it waits for room (the request was
    /// cancelled), the event is not recorded and is counted in [`dropped`](Self::dropped).
    ///
    /// An error here never turns a refusal into an allow: the only thing a caller may do
    /// with it is refuse.
    pub async fn record(&self, mut event: AuditEvent) -> Result<(), AuditError> {
        self.enqueue(|refuse| {
            if refuse && event.outcome == AuditOutcome::Allow {
                refuse_allow(&mut event);
            }
            Msg::Event(Box::new(event))
        })
        .await
    }

    /// [`record`](Self::record) for a decision whose event the worker builds.
    pub(crate) async fn record_decided(&self, mut event: DecidedEvent) -> Result<(), AuditError> {
        self.enqueue(|refuse| {
            event.refused = refuse && AuditOutcome::of(&event.decision) == AuditOutcome::Allow;
            Msg::Decided(event)
        })
        .await
    }

    /// Queues the message `message(refuse)` makes, where `refuse` says that strict mode
    /// refuses the request (the sink is failing): see [`record`](Self::record).
    async fn enqueue(&self, message: impl FnOnce(bool) -> Msg) -> Result<(), AuditError> {
        let shared = &*self.shared;
        shared.recorded.fetch_add(1, Ordering::Relaxed);
        let failures = shared.consecutive_failures.load(Ordering::SeqCst);
        let refuse = shared.strict && failures > 0;
        let message = message(refuse);
        // If this future is dropped while waiting for room, the event is lost: count it.
        let mut unsent = Unsent(Some(&shared.dropped));
        let sent = match shared.on_full {
            OnFull::Wait => self.tx.send(message).await.map_err(|_| AuditError::Closed),
            OnFull::Drop => self.tx.try_send(message).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AuditError::QueueFull {
                    capacity: shared.capacity,
                },
                mpsc::error::TrySendError::Closed(_) => AuditError::Closed,
            }),
        };
        if sent.is_ok() {
            unsent.0 = None;
        }
        drop(unsent);
        match sent {
            Ok(()) if refuse => Err(AuditError::SinkUnhealthy {
                consecutive_failures: failures,
            }),
            Ok(()) => Ok(()),
            Err(AuditError::QueueFull { .. }) if !shared.strict => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Queues a refusal made before any caller was authenticated (a rejected token, a
    /// missing or malformed `Authorization` header) on the side queue, which is never
    /// waited on: when it is full the event is dropped and counted in
    /// [`dropped_unauthenticated`](Self::dropped_unauthenticated) (and
    /// [`dropped`](Self::dropped)), and a [`Dropped`](AuditOutcome::Dropped) summary
    /// later says how many were lost. So a flood of garbage tokens against a slow sink
    /// never holds up the decisions queued by [`record`](Self::record).
    ///
    /// # Errors
    /// In strict mode [`AuditError::SinkUnhealthy`] while the sink is failing (the event
    /// is still queued if there is room); [`AuditError::Closed`] after
    /// [`shutdown`](Self::shutdown). A full side queue is never an error: the request is
    /// refused anyway.
    pub fn record_unauthenticated(&self, event: AuditEvent) -> Result<(), AuditError> {
        let shared = &*self.shared;
        shared.recorded.fetch_add(1, Ordering::Relaxed);
        let failures = shared.consecutive_failures.load(Ordering::SeqCst);
        match self.side.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                shared
                    .dropped_unauthenticated
                    .fetch_add(1, Ordering::Relaxed);
                shared.unreported_drops.fetch_add(1, Ordering::SeqCst);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Err(AuditError::Closed);
            }
        }
        if shared.strict && failures > 0 {
            return Err(AuditError::SinkUnhealthy {
                consecutive_failures: failures,
            });
        }
        Ok(())
    }

    /// Installs the hook every event passes before the sink; `false` when another one is
    /// already installed (an audit log shared by two governors with shadow policies).
    pub(crate) fn attach_hook(&self, hook: Arc<dyn EventHook>) -> bool {
        self.shared.hook.set(hook).is_ok()
    }

    /// Waits until every event recorded before this call has been written and the sink
    /// flushed. Waits as long as the sink keeps failing; bound it with
    /// `tokio::time::timeout` if needed.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() && wait.await.is_ok() {
            return;
        }
        // Shut down meanwhile: the worker writes everything queued before it stops.
        self.stopped().await;
    }

    /// Writes and flushes everything queued, then stops the worker; afterwards `record`
    /// returns [`AuditError::Closed`] on every clone. Waits as long as the sink keeps
    /// failing (bound it with `tokio::time::timeout`: the worker then keeps retrying in
    /// the background until the runtime stops).
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown).await;
        self.stopped().await;
    }

    async fn stopped(&self) {
        let mut rx = self.shared.stopped.subscribe();
        // `shared` owns the sender, so the channel cannot close while we wait.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    /// True while the log runs and the sink's last call succeeded.
    pub fn is_healthy(&self) -> bool {
        !self.shared.closed.load(Ordering::SeqCst)
            && self.shared.consecutive_failures.load(Ordering::SeqCst) == 0
    }

    /// True once the log has stopped taking events (shut down, or its worker ended).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Failed sink calls since the last success: 0 while the sink works.
    pub(crate) fn consecutive_failures(&self) -> u64 {
        self.shared.consecutive_failures.load(Ordering::SeqCst)
    }

    /// True when this log refuses (returns errors) while the sink is failing.
    pub fn is_strict(&self) -> bool {
        self.shared.strict
    }

    /// Events passed to [`record`](Self::record), dropped ones included. Once the log is
    /// flushed, `recorded() == written() + dropped()`.
    pub fn recorded(&self) -> u64 {
        self.shared.recorded.load(Ordering::Relaxed)
    }

    /// Events the sink has accepted.
    pub fn written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Events lost: dropped because the queue was full ([`OnFull::Drop`]), refusals
    /// before authentication that found the side queue full
    /// ([`dropped_unauthenticated`](Self::dropped_unauthenticated)), recorded after
    /// shutdown, or abandoned by a cancelled `record` call.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Refusals before authentication (passed to
    /// [`record_unauthenticated`](Self::record_unauthenticated)) dropped because the side
    /// queue was full. Included in [`dropped`](Self::dropped).
    pub fn dropped_unauthenticated(&self) -> u64 {
        self.shared.dropped_unauthenticated.load(Ordering::Relaxed)
    }

    /// Failed sink calls (writes and flushes) since the log started.
    pub fn sink_failures(&self) -> u64 {
        self.shared.sink_failures.load(Ordering::Relaxed)
    }

    /// Events recorded but neither written nor dropped yet (queued, or being retried).
    pub fn pending(&self) -> u64 {
        // Read `written` and `dropped` first: `recorded` only grows, so this never wraps.
        let done = self.written() + self.dropped();
        self.recorded().saturating_sub(done)
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("capacity", &self.shared.capacity)
            .field(
                "unauthenticated_capacity",
                &self.shared.unauthenticated_capacity,
            )
            .field("on_full", &self.shared.on_full)
            .field("strict", &self.shared.strict)
            .field("healthy", &self.is_healthy())
            .field("recorded", &self.recorded())
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .field("dropped_unauthenticated", &self.dropped_unauthenticated())
            .field("sink_failures", &self.sink_failures())
            .finish()
    }
}

impl AuditLogBuilder {
    /// Sets the queue capacity in events (at least 1).
    pub fn capacity(mut self, events: usize) -> Self {
        self.capacity = events.max(1);
        self
    }

    /// Sets the capacity of the side queue of refusals before authentication, in events
    /// (at least 1); see [`AuditLog::record_unauthenticated`].
    pub fn unauthenticated_capacity(mut self, events: usize) -> Self {
        self.unauthenticated_capacity = events.max(1);
        self
    }

    /// Sets the shortest interval between two summaries of dropped refusals while they
    /// keep being dropped (default [`DEFAULT_DROP_SUMMARY_INTERVAL`]).
    pub fn drop_summary_interval(mut self, interval: Duration) -> Self {
        self.drop_summary_interval = interval;
        self
    }

    /// Sets the largest batch handed to the sink in one call (at least 1).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events.max(1);
        self
    }

    /// Sets what happens when the queue is full.
    pub fn on_full(mut self, on_full: OnFull) -> Self {
        self.on_full = on_full;
        self
    }

    /// Strict mode (for regulated deployments): [`AuditLog::record`] returns an error,
    /// meaning "refuse the request", whenever the event could not be handed to a healthy
    /// sink.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the retry backoff: `initial` (at least 1 ms) doubling up to `max`.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial.max(Duration::from_millis(1));
        self.max_backoff = max.max(self.initial_backoff);
        self
    }

    /// Runs the worker on this runtime instead of the current one.
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Starts the worker task and returns the log.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime, unless [`runtime`](Self::runtime) was given.
    pub fn build(self) -> AuditLog {
        let (tx, rx) = mpsc::channel(self.capacity);
        let (side, side_rx) = mpsc::channel(self.unauthenticated_capacity);
        let shared = Arc::new(Shared {
            hook: std::sync::OnceLock::new(),
            capacity: self.capacity,
            unauthenticated_capacity: self.unauthenticated_capacity,
            on_full: self.on_full,
            strict: self.strict,
            recorded: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            dropped_unauthenticated: AtomicU64::new(0),
            unreported_drops: AtomicU64::new(0),
            sink_failures: AtomicU64::new(0),
            consecutive_failures: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            stopped: watch::Sender::new(false),
        });
        let worker = Worker {
            rx,
            side_rx,
            side_open: true,
            summary_interval: self.drop_summary_interval,
            last_summary: Instant::now(),
            sink: self.sink,
            shared: Arc::clone(&shared),
            max_batch: self.max_batch,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
        };
        let runtime = self.runtime.unwrap_or_else(tokio::runtime::Handle::current);
        runtime.spawn(worker.run());
        AuditLog { tx, side, shared }
    }
}

impl fmt::Debug for AuditLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLogBuilder")
            .field("capacity", &self.capacity)
            .field("unauthenticated_capacity", &self.unauthenticated_capacity)
            .field("drop_summary_interval", &self.drop_summary_interval)
            .field("max_batch", &self.max_batch)
            .field("on_full", &self.on_full)
            .field("strict", &self.strict)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// The background task: the only reader of the queues and the only caller of the sink.
struct Worker {
    rx: mpsc::Receiver<Msg>,
    /// Refusals before authentication; read only when the main queue is empty.
    side_rx: mpsc::Receiver<AuditEvent>,
    /// False once `side_rx` is closed and drained.
    side_open: bool,
    summary_interval: Duration,
    last_summary: Instant,
    sink: Arc<dyn AuditSink>,
    shared: Arc<Shared>,
    max_batch: usize,
    initial_backoff: Duration,
    max_backoff: Duration,
}

#[derive(Clone, Copy)]
enum Call {
    Write,
    Flush,
}

impl Worker {
    async fn run(mut self) {
        let _stopped = StopGuard(Arc::clone(&self.shared));
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut yielded = false;
        loop {
            // Gather whatever is queued, up to one batch, without waiting; wait only when
            // there is nothing to write. Once the queue looks empty, let the runtime run
            // its other tasks once before writing: under load they queue more events, so
            // batches grow and the sink is called (a file write, an export) less often;
            // idle, the write is late by one turn of the scheduler.
            let msg = if batch.is_empty() {
                self.report_drops(true).await;
                self.next().await
            } else {
                match self.try_next() {
                    Some(msg) => Some(msg),
                    None if !yielded => {
                        yielded = true;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    None => {
                        yielded = false;
                        self.write(&mut batch).await;
                        continue;
                    }
                }
            };
            match msg {
                Some(Msg::Event(event)) => self.add(&mut batch, *event).await,
                Some(Msg::Decided(decided)) => self.add(&mut batch, decided.into_event()).await,
                Some(Msg::Flush(done)) => {
                    self.write_side_queue(&mut batch).await;
                    self.report_drops(true).await;
                    self.call(Call::Flush, Arc::from([])).await;
                    let _ = done.send(());
                }
                Some(Msg::Shutdown) => {
                    // Refuse new events, then drain what is already queued.
                    self.shared.closed.store(true, Ordering::SeqCst);
                    self.rx.close();
                    self.side_rx.close();
                }
                None => {
                    // Every handle is gone (or shutdown drained the queue): write the
                    // rest and flush. Nothing queued is lost.
                    self.side_rx.close();
                    self.write_side_queue(&mut batch).await;
                    self.report_drops(true).await;
                    self.call(Call::Flush, Arc::from([])).await;
                    return;
                }
            }
        }
    }

    /// Adds `event` to `batch`, writing the batch once it is full.
    async fn add(&mut self, batch: &mut Vec<AuditEvent>, event: AuditEvent) {
        batch.push(event);
        if batch.len() >= self.max_batch {
            self.write(batch).await;
            self.report_drops(false).await;
        }
    }

    /// The next message, waiting for one; decisions come before refusals before
    /// authentication. `None` once the main queue is closed and drained.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            let side_open = self.side_open;
            let side = tokio::select! {
                biased;
                msg = self.rx.recv() => return msg,
                event = self.side_rx.recv(), if side_open => event,
            };
            match side {
                Some(event) => return Some(Msg::Event(Box::new(event))),
                None => self.side_open = false,
            }
        }
    }

    /// The next queued message without waiting, decisions first.
    fn try_next(&mut self) -> Option<Msg> {
        if let Ok(msg) = self.rx.try_recv() {
            return Some(msg);
        }
        self.side_rx
            .try_recv()
            .ok()
            .map(|event| Msg::Event(Box::new(event)))
    }

    /// Writes `batch` and everything on the side queue now.
    async fn write_side_queue(&mut self, batch: &mut Vec<AuditEvent>) {
        while let Ok(event) = self.side_rx.try_recv() {
            batch.push(event);
            if batch.len() >= self.max_batch {
                self.write(batch).await;
            }
        }
        self.write(batch).await;
    }

    /// Writes a [`Dropped`](AuditOutcome::Dropped) summary of the refusals dropped since
    /// the last one, if any: always when `now`, otherwise once the summary interval has
    /// passed. Summaries are not counted in `recorded`/`written`.
    async fn report_drops(&mut self, now: bool) {
        let pending = self.shared.unreported_drops.load(Ordering::SeqCst);
        if pending == 0 || (!now && self.last_summary.elapsed() < self.summary_interval) {
            return;
        }
        let count = self.shared.unreported_drops.swap(0, Ordering::SeqCst);
        self.last_summary = Instant::now();
        let mut summary = AuditEvent::new(AuditOutcome::Dropped, AUTHENTICATE_ACTION, "")
            .with_reason(DROPPED_UNAUTHENTICATED_REASON)
            .with_explanation(format!(
                "{count} refusal(s) before authentication were not recorded: their queue was full"
            ));
        summary.dropped_events = Some(count);
        self.call(Call::Write, Arc::from([summary])).await;
    }

    async fn write(&self, batch: &mut Vec<AuditEvent>) {
        if batch.is_empty() {
            return;
        }
        if let Some(hook) = self.shared.hook.get() {
            batch.iter_mut().for_each(|event| hook.inspect(event));
        }
        let events: Arc<[AuditEvent]> = batch.drain(..).collect();
        let n = events.len() as u64;
        self.call(Call::Write, events).await;
        self.shared.written.fetch_add(n, Ordering::Relaxed);
    }

    /// Calls the sink until it succeeds, with exponential backoff. Each call runs in its
    /// own task, so a panicking sink is a failure to retry, not a dead worker.
    async fn call(&self, call: Call, events: Arc<[AuditEvent]>) {
        let mut backoff = self.initial_backoff;
        loop {
            let sink = Arc::clone(&self.sink);
            let batch = Arc::clone(&events);
            let result = tokio::spawn(async move {
                match call {
                    Call::Write => sink.write(&batch).await,
                    Call::Flush => sink.flush().await,
                }
            })
            .await;
            let error = match result {
                Ok(Ok(())) => {
                    let failures = self.shared.consecutive_failures.swap(0, Ordering::SeqCst);
                    if failures > 0 {
                        tracing::info!(target: AUDIT_HEALTH_TARGET, failures, "audit sink recovered");
                    }
                    return;
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) if e.is_panic() => "the audit sink panicked".to_owned(),
                Err(e) => e.to_string(),
            };
            let consecutive = self
                .shared
                .consecutive_failures
                .fetch_add(1, Ordering::SeqCst)
                + 1;
            self.shared.sink_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: AUDIT_HEALTH_TARGET,
                operation = match call {
                    Call::Write => "write",
                    Call::Flush => "flush",
                },
                events = events.len(),
                consecutive_failures = consecutive,
                retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "audit sink failed; retrying the same batch"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}
