//! [`AuditSink`] and the built-in sinks: [`TracingSink`], [`JsonLinesSink`], [`MemorySink`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::watch;

use super::event::AuditEvent;
use crate::principal::PrincipalKind;

/// The `tracing` target of the events written by [`TracingSink`].
pub const AUDIT_TARGET: &str = "entra_governor::audit";

/// Where audit events go. Implement it to ship events anywhere (a database, a queue, an
/// HTTP collector); the [`AuditLog`](super::AuditLog) pipeline calls it from one
/// background task, never on the request path.
///
/// Delivery is at least once: when `write` fails, the pipeline retries the *same* batch
/// (same events, same order) until it succeeds, so a sink that fails after persisting part
/// of a batch sees those events again. Put no event contents in error messages: the
/// pipeline logs them.
#[async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Writes a batch of events, in order.
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError>;

    /// Makes every event written so far durable (or at least handed off). The pipeline
    /// calls it on [`AuditLog::flush`](super::AuditLog::flush), at shutdown, and when the
    /// last handle is dropped.
    async fn flush(&self) -> Result<(), AuditSinkError> {
        Ok(())
    }
}

#[async_trait]
impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        (**self).write(batch).await
    }
    async fn flush(&self) -> Result<(), AuditSinkError> {
        (**self).flush().await
    }
}

#[async_trait]
impl<S: AuditSink + ?Sized> AuditSink for Box<S> {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        (**self).write(batch).await
    }
    async fn flush(&self) -> Result<(), AuditSinkError> {
        (**self).flush().await
    }
}

/// Why a sink could not write or flush. The pipeline retries and reports it; it never
/// changes a decision.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditSinkError {
    /// Writing to a file or writer failed.
    #[error("audit sink I/O error: {0}")]
    Io(#[from] io::Error),
    /// An event could not be encoded.
    #[error("audit event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    /// Any other failure, from a custom sink.
    #[error("audit sink failed: {0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl AuditSinkError {
    /// Wraps any error (or message) from a custom sink.
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Other(error.into())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind, still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn kind_code(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::Application => "application",
    }
}

/// Emits one `tracing` event per audit event, at `INFO`, with target
/// [`AUDIT_TARGET`] (`entra_governor::audit`) and one structured field per schema field
/// (same names as the JSON Lines schema; absent optional fields are not recorded,
/// `roles` and `bindings` are comma-separated strings, and the v2 objects `inputs` and
/// `shadow` are JSON strings). Strings are recorded as `&str` values, which
/// `tracing-subscriber`'s text formatter quotes and escapes, so a display name cannot
/// forge log lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingSink;

impl TracingSink {
    /// A sink writing to the current `tracing` subscriber.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl AuditSink for TracingSink {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        for e in batch {
            let roles = e.roles.join(",");
            let bindings = (!e.bindings.is_empty()).then(|| e.bindings.join(","));
            let inputs = e
                .inputs
                .as_ref()
                .and_then(|i| serde_json::to_string(i).ok());
            let shadow = e
                .shadow
                .as_ref()
                .and_then(|s| serde_json::to_string(s).ok());
            tracing::info!(
                target: AUDIT_TARGET,
                schema_version = e.schema_version,
                time = e.time.as_str(),
                outcome = e.outcome.as_str(),
                reason = e.reason.as_str(),
                explanation = e.explanation.as_deref(),
                tenant_id = e.tenant_id.as_ref().map(|t| t.as_str()),
                object_id = e.object_id.as_ref().map(|o| o.as_str()),
                principal_kind = e.principal_kind.map(kind_code),
                guest = e.guest,
                client_app_id = e.client_app_id.as_deref(),
                display_name = e.display_name.as_deref(),
                action = e.action.as_str(),
                resource = e.resource.as_str(),
                roles = roles.as_str(),
                grant = e.grant.as_deref(),
                denied_by = e.denied_by.as_deref(),
                trusted_tenant = e.trusted_tenant.as_ref().map(|t| t.as_str()),
                claims_request = e.claims_request.as_deref(),
                token_id = e.token_id.as_deref(),
                correlation_id = e.correlation_id.as_deref(),
                policy_version = e.policy_version.as_deref(),
                latency_us = e.latency_us,
                dropped_events = e.dropped_events,
                bindings = bindings.as_deref(),
                inputs = inputs.as_deref(),
                shadow = shadow.as_deref(),
                "authorization audit event"
            );
        }
        Ok(())
    }
}

/// Writes JSON Lines: one compact JSON object per event, one event per line, in the
/// schema documented in [the module docs](super).
///
/// Writes run on Tokio's blocking pool. Each batch is encoded first and written as one
/// buffer; if a write fails part-way, the sink remembers how much of that buffer reached
/// the output and, when the pipeline retries the same batch, writes only the rest, so a
/// failure neither duplicates nor tears lines. (If a *different* batch follows a partial
/// write, the torn line is ended with a newline first, so every later line parses.)
/// [`flush`](AuditSink::flush) flushes the writer and, for files, `fsync`s the data.
pub struct JsonLinesSink {
    state: Arc<Mutex<LinesState>>,
}

enum Output {
    File(File),
    Writer(Box<dyn Write + Send>),
}

impl Output {
    fn out(&mut self) -> &mut dyn Write {
        match self {
            Self::File(f) => f,
            Self::Writer(w) => w.as_mut(),
        }
    }
}

/// A batch whose write failed part-way.
struct Partial {
    /// What is being written: the encoded batch, after a newline when `prefixed`.
    buf: Vec<u8>,
    /// True when `buf` starts with a newline ending a torn line.
    prefixed: bool,
    /// How many bytes of `buf` reached the output.
    written: usize,
}

struct LinesState {
    out: Output,
    partial: Option<Partial>,
    /// False when the output ends in the middle of a line.
    at_line_start: bool,
}

impl LinesState {
    fn write_batch(&mut self, batch: Vec<u8>) -> io::Result<()> {
        let (buf, prefixed, mut written) = match self.partial.take() {
            Some(p) if p.buf[usize::from(p.prefixed)..] == batch[..] => {
                (p.buf, p.prefixed, p.written)
            }
            _ if !self.at_line_start => {
                let mut buf = Vec::with_capacity(batch.len() + 1);
                buf.push(b'\n');
                buf.extend_from_slice(&batch);
                (buf, true, 0)
            }
            _ => (batch, false, 0),
        };
        let start = written;
        let out = self.out.out();
        let result = loop {
            if written == buf.len() {
                break Ok(());
            }
            match out.write(&buf[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if written > start {
            self.at_line_start = buf[written - 1] == b'\n';
        }
        if result.is_err() {
            self.partial = Some(Partial {
                buf,
                prefixed,
                written,
            });
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Output::File(f) => {
                f.flush()?;
                f.sync_data()
            }
            Output::Writer(w) => w.flush(),
        }
    }
}

impl JsonLinesSink {
    /// Appends to the file at `path`, creating it if needed.
    pub fn file(path: impl AsRef<Path>) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        // A file left by a crash may end in a torn line: the next batch then starts on a
        // new line. (Reads follow the seek; appends always go to the end.)
        let mut last = [b'\n'];
        if file.metadata()?.len() > 0 {
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
        }
        Ok(Self::from_output(Output::File(file), last[0] == b'\n'))
    }

    /// Writes to any writer (standard output, a socket, a buffer). Wrap slow writers in a
    /// [`std::io::BufWriter`]: the pipeline calls [`flush`](AuditSink::flush) at the
    /// points listed there.
    pub fn writer(writer: impl Write + Send + 'static) -> Self {
        Self::from_output(Output::Writer(Box::new(writer)), true)
    }

    fn from_output(out: Output, at_line_start: bool) -> Self {
        Self {
            state: Arc::new(Mutex::new(LinesState {
                out,
                partial: None,
                at_line_start,
            })),
        }
    }

    /// Encodes a batch as JSON Lines.
    fn encode(batch: &[AuditEvent]) -> Result<Vec<u8>, serde_json::Error> {
        let mut buf = Vec::with_capacity(batch.len() * 512);
        for event in batch {
            serde_json::to_writer(&mut buf, event)?;
            buf.push(b'\n');
        }
        Ok(buf)
    }

    async fn blocking<F>(&self, f: F) -> Result<(), AuditSinkError>
    where
        F: FnOnce(&mut LinesState) -> io::Result<()> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        tokio::task::spawn_blocking(move || f(&mut lock(&state)))
            .await
            .map_err(|e| AuditSinkError::other(format!("JSON Lines writer task failed: {e}")))?
            .map_err(AuditSinkError::Io)
    }
}

impl fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.state.try_lock().as_deref() {
            Ok(LinesState {
                out: Output::File(_),
                ..
            }) => "file",
            Ok(_) => "writer",
            Err(_) => "busy",
        };
        f.debug_struct("JsonLinesSink")
            .field("output", &kind)
            .finish()
    }
}

#[async_trait]
impl AuditSink for JsonLinesSink {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let bytes = Self::encode(batch)?;
        self.blocking(move |s| s.write_batch(bytes)).await
    }

    async fn flush(&self) -> Result<(), AuditSinkError> {
        self.blocking(LinesState::flush).await
    }
}

/// Keeps events in memory, for tests. Clones share the same events, so keep one clone
/// to inspect what a pipeline delivered.
///
/// It can be told to fail ([`failing`](Self::failing), [`fail_next`](Self::fail_next),
/// [`set_failing`](Self::set_failing)) to exercise retries, and can be awaited
/// ([`wait_for_len`](Self::wait_for_len), [`wait_for_flushes`](Self::wait_for_flushes))
/// so tests need no sleeps.
#[derive(Clone)]
pub struct MemorySink {
    inner: Arc<MemoryState>,
}

struct MemoryState {
    events: Mutex<Vec<AuditEvent>>,
    fail_next: AtomicU64,
    failing: AtomicBool,
    attempts: AtomicU64,
    flushes: AtomicU64,
    /// (events held, flushes done), for waiters.
    progress: watch::Sender<(usize, u64)>,
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySink {
    /// An empty sink that accepts every write.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(MemoryState {
                events: Mutex::new(Vec::new()),
                fail_next: AtomicU64::new(0),
                failing: AtomicBool::new(false),
                attempts: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
                progress: watch::Sender::new((0, 0)),
            }),
        }
    }

    /// An empty sink whose first `n` writes fail.
    pub fn failing(n: u64) -> Self {
        let sink = Self::new();
        sink.fail_next(n);
        sink
    }

    /// Makes the next `n` writes fail (replacing any count left).
    pub fn fail_next(&self, n: u64) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// Makes every write (and flush) fail until called again with `false`.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// A copy of the events written so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        lock(&self.inner.events).clone()
    }

    /// How many events were written.
    pub fn len(&self) -> usize {
        lock(&self.inner.events).len()
    }

    /// True when no event was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times `write` was called, failed calls included.
    pub fn write_attempts(&self) -> u64 {
        self.inner.attempts.load(Ordering::SeqCst)
    }

    /// How many times `flush` succeeded.
    pub fn flushes(&self) -> u64 {
        self.inner.flushes.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` events were written.
    pub async fn wait_for_len(&self, n: usize) {
        let mut rx = self.inner.progress.subscribe();
        // The sender lives in `self.inner`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|(len, _)| *len >= n).await;
    }

    /// Waits until `flush` succeeded at least `n` times.
    pub async fn wait_for_flushes(&self, n: u64) {
        let mut rx = self.inner.progress.subscribe();
        let _ = rx.wait_for(|(_, flushes)| *flushes >= n).await;
    }

    fn injected_failure(&self) -> bool {
        self.inner.failing.load(Ordering::SeqCst)
            || self
                .inner
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink")
            .field("len", &self.len())
            .field("write_attempts", &self.write_attempts())
            .field("flushes", &self.flushes())
            .finish()
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn write(&self, batch: &[AuditEvent]) -> Result<(), AuditSinkError> {
        self.inner.attempts.fetch_add(1, Ordering::SeqCst);
        if self.injected_failure() {
            return Err(AuditSinkError::other("memory sink: injected failure"));
        }
        let len = {
            let mut events = lock(&self.inner.events);
            events.extend_from_slice(batch);
            events.len()
        };
        self.inner.progress.send_modify(|p| p.0 = len);
        Ok(())
    }

    async fn flush(&self) -> Result<(), AuditSinkError> {
        if self.inner.failing.load(Ordering::SeqCst) {
            return Err(AuditSinkError::other("memory sink: injected failure"));
        }
        let n = self.inner.flushes.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.progress.send_modify(|p| p.1 = n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditOutcome;

    /// A writer that accepts `budget` bytes, then fails until given more.
    #[derive(Clone, Default)]
    struct Flaky {
        data: Arc<Mutex<Vec<u8>>>,
        budget: Arc<Mutex<usize>>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut budget = lock(&self.budget);
            if *budget == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(*budget);
            *budget -= n;
            lock(&self.data).extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn event(i: usize) -> AuditEvent {
        AuditEvent::new(
            AuditOutcome::Allow,
            "Inference.Invoke",
            format!("models/m{i}"),
        )
    }

    fn lines(data: &[u8]) -> Vec<String> {
        String::from_utf8(data.to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn a_retried_batch_resumes_where_the_partial_write_stopped() {
        let w = Flaky::default();
        *lock(&w.budget) = 10;
        let sink = JsonLinesSink::writer(w.clone());
        let batch = [event(1), event(2)];
        sink.write(&batch).await.unwrap_err();
        assert_eq!(lock(&w.data).len(), 10);
        *lock(&w.budget) = usize::MAX;
        sink.write(&batch).await.unwrap();
        let lines = lines(&lock(&w.data));
        assert_eq!(lines.len(), 2);
        for (line, e) in lines.iter().zip(&batch) {
            assert_eq!(&serde_json::from_str::<AuditEvent>(line).unwrap(), e);
        }
    }

    #[tokio::test]
    async fn a_different_batch_after_a_torn_line_starts_on_a_new_line() {
        let w = Flaky::default();
        *lock(&w.budget) = 10;
        let sink = JsonLinesSink::writer(w.clone());
        sink.write(&[event(1)]).await.unwrap_err();
        *lock(&w.budget) = usize::MAX;
        // One event value, so its timestamp cannot differ from the one compared below.
        let second = event(2);
        sink.write(std::slice::from_ref(&second)).await.unwrap();
        let lines = lines(&lock(&w.data));
        assert_eq!(lines.len(), 2);
        assert!(serde_json::from_str::<AuditEvent>(&lines[0]).is_err());
        assert_eq!(
            serde_json::from_str::<AuditEvent>(&lines[1]).unwrap(),
            second
        );
    }

    #[tokio::test]
    async fn memory_sink_fails_exactly_as_told() {
        let sink = MemorySink::failing(2);
        assert!(sink.write(&[event(1)]).await.is_err());
        assert!(sink.write(&[event(1)]).await.is_err());
        sink.write(&[event(1)]).await.unwrap();
        sink.set_failing(true);
        assert!(sink.write(&[event(2)]).await.is_err());
        assert!(sink.flush().await.is_err());
        sink.set_failing(false);
        sink.flush().await.unwrap();
        assert_eq!(sink.len(), 1);
        assert_eq!(sink.write_attempts(), 4);
        assert_eq!(sink.flushes(), 1);
    }
}
