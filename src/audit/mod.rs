//! The audit trail: one [`AuditEvent`] per authorization decision, delivered off the
//! request path to an [`AuditSink`] through a bounded queue ([`AuditLog`]).
//!
//! ```
//! use std::time::Duration;
//! use entra_governor::audit::{AuditEvent, AuditLog, AuditOutcome, MemorySink, OnFull};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), entra_governor::audit::AuditError> {
//! let sink = MemorySink::new(); // in production: JsonLinesSink::file(..) or TracingSink
//! let log = AuditLog::builder(sink.clone())
//!     .capacity(10_000)
//!     .on_full(OnFull::Wait) // the default: nothing is lost
//!     .build();
//!
//! let event = AuditEvent::new(AuditOutcome::Deny, "Training.Submit", "models/exp-1")
//!     .with_reason("no_role_grants")
//!     .with_correlation_id("req-42")
//!     .with_policy_version("3f1c9a…")
//!     .with_latency(Duration::from_micros(35));
//! log.record(event).await?;
//!
//! log.shutdown().await; // writes and flushes everything queued
//! assert_eq!(sink.len(), 1);
//! assert_eq!((log.recorded(), log.written(), log.dropped()), (1, 1, 0));
//! # Ok(()) }
//! ```
//!
//! # What is recorded, and what never is
//!
//! Every call to the governor's `authorize()` — allow, deny, step-up, invalid token, or
//! refused because a dependency was unavailable — produces one event (refusals before
//! authentication may be dropped under a flood, and are then counted and summarised: see
//! [below](#refusals-before-authentication-a-separate-lossy-path)). It names the caller
//! by `(tid, oid)` and the token by its `uti`, never by the token itself: no field of
//! [`AuditEvent`] can hold a bearer token, a signature or a secret, and nothing in this
//! module formats one. Display names are personal, mutable data and are recorded only
//! when the operator opts in.
//!
//! # Delivery
//!
//! [`AuditLog::record`] puts the event on a bounded queue; one background task takes
//! events off in batches (up to 256 by default) and calls the sink. When the sink fails,
//! the worker reports it with `tracing::warn!` (target `entra_governor::health::audit`;
//! counts and the error, never event contents), marks the log unhealthy ([`AuditLog::is_healthy`]), and retries the *same*
//! batch with exponential backoff (10 ms doubling up to 1 s by default) until it
//! succeeds. A failing — even panicking — sink never loses queued events and never
//! changes a decision.
//!
//! | mode | queue full | sink failing | may lose events |
//! |---|---|---|---|
//! | [`OnFull::Wait`] (default) | `record` waits for room | `Ok`; events wait in the queue | no |
//! | [`OnFull::Drop`] | event dropped, counted in [`AuditLog::dropped`], `Ok` | `Ok` | yes, and counts each one |
//! | `strict(true)` + `Wait` | `record` waits for room | `Err(SinkUnhealthy)`: refuse; event still queued | no |
//! | `strict(true)` + `Drop` | `Err(QueueFull)`: refuse; event dropped and counted | `Err(SinkUnhealthy)`: refuse; event still queued | only events of refused requests |
//!
//! In strict mode an `allow` event recorded while the sink is failing is queued with
//! outcome `unavailable` and reason `audit_unavailable` (its explanation keeps the
//! original reason), because the caller is going to refuse the request: the trail never
//! says "allowed" for a request that was refused.
//!
//! ## Refusals before authentication: a separate, lossy path
//!
//! Refusals made before any caller was authenticated — a rejected token (outcome
//! `invalid_token`, or `unavailable` when keys could not be fetched) and a missing,
//! repeated or malformed `Authorization` header — do not go through that queue. Anyone on
//! the network can send them at any rate, so sharing the lossless queue would let a flood
//! of garbage tokens against a slow sink hold up every real decision (in
//! [`OnFull::Wait`] each `authorize()` would wait behind the flood). The governor records
//! them with [`AuditLog::record_unauthenticated`] on a bounded side queue
//! ([`unauthenticated_capacity`](AuditLogBuilder::unauthenticated_capacity), default
//! [`DEFAULT_UNAUTHENTICATED_CAPACITY`]) that is never waited on:
//!
//! - **Lossless, as above**: every decision about a verified caller — allow, deny,
//!   step-up, group membership unavailable, invalid resource, and a verified principal
//!   refused because its token expired or its caller was revoked since.
//! - **Lossy**: refusals before authentication. When the side queue is full the event is
//!   dropped and counted in [`AuditLog::dropped_unauthenticated`] (and
//!   [`AuditLog::dropped`]); the worker then writes a summary event, outcome `dropped`,
//!   reason [`DROPPED_UNAUTHENTICATED_REASON`], with `dropped_events` saying how many were
//!   lost since the last summary, so the trail itself says that refusals are missing. A
//!   summary is written whenever the worker has caught up, on flush and shutdown, and
//!   while drops go on at most once per
//!   [`drop_summary_interval`](AuditLogBuilder::drop_summary_interval) (default
//!   [`DEFAULT_DROP_SUMMARY_INTERVAL`]). Summaries are not counted in
//!   [`recorded`](AuditLog::recorded) or [`written`](AuditLog::written).
//!
//! The worker takes decisions before side-queue events, so the two queues' events may be
//! interleaved out of time order in the sink (each carries its `time`). Strict mode
//! applies to both: while the sink is failing, `record_unauthenticated` returns
//! [`AuditError::SinkUnhealthy`] too (the request is refused anyway); a full side queue is
//! never an error.
//!
//! [`AuditLog::flush`] returns once every event recorded before it (on either queue) is
//! written and the sink flushed. [`AuditLog::shutdown`] drains the queue, flushes and stops the worker.
//! Dropping the last [`AuditLog`] handle closes the queue; the worker still writes
//! everything queued and flushes the sink before it ends. Both need the Tokio runtime to
//! keep running: call `shutdown()` before the runtime stops. The counters satisfy
//! `recorded() == written() + dropped() + pending()`.
//!
//! # JSON Lines schema (version 2)
//!
//! [`JsonLinesSink`] writes one compact JSON object per line, UTF-8, `\n`-terminated, with
//! these members (optional ones are left out when absent; readers must ignore members they
//! do not know, which later versions may add). Version 2 adds `bindings`, `inputs` and
//! `shadow`; a version 1 line is a version 2 line without them, so v1 readers keep
//! working and `schema_version` says which a line is.
//!
//! | field | JSON type | present | meaning |
//! |---|---|---|---|
//! | `schema_version` | integer | always | `2` (`1` for lines written before v2) |
//! | `time` | string | always | decision time, RFC 3339 UTC with milliseconds: `2026-11-23T22:15:01.123Z` |
//! | `outcome` | string | always | `allow`, `deny`, `step_up`, `invalid_token`, `unavailable`, or `dropped` (a summary of lost refusals, see above) |
//! | `reason` | string | always | stable snake_case reason code: `no_role_grants`, `expired`, `audit_unavailable`, … |
//! | `explanation` | string | optional | one line of human-readable text |
//! | `tenant_id` | string | when a token was verified | the caller's tenant (`tid`), a lower-case GUID |
//! | `object_id` | string | when a token was verified | the caller's object id (`oid`), a lower-case GUID |
//! | `principal_kind` | string | when a token was verified | `user` or `application` |
//! | `guest` | boolean | when a token was verified | true for guest (B2B) accounts |
//! | `client_app_id` | string | when the token names one | calling client application (`azp` / `appid`) |
//! | `display_name` | string | operator opt-in only | the caller's display name |
//! | `action` | string | always | the action requested, e.g. `Training.Submit` |
//! | `resource` | string | always | the resource, e.g. `models/exp-1` |
//! | `roles` | array of strings | always (may be empty) | policy roles the decision was evaluated with |
//! | `grant` | string | optional | the grant that allowed the request |
//! | `denied_by` | string | optional | the rule that refused it |
//! | `trusted_tenant` | GUID string | optional | the `tenants` qualifier of the app role, app permission or directory role binding that allowed it: the tenant whose administrators assigned that value |
//! | `claims_request` | string | optional | a step-up only: the claims request (JSON) the client must satisfy, e.g. `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`; the requirement that asked for it is `denied_by` |
//! | `token_id` | string | when the token has one | the token's `uti`: joins to Entra sign-in logs |
//! | `correlation_id` | string | when the caller gave one | request / correlation id |
//! | `policy_version` | string | optional | hash of the loaded policy |
//! | `latency_us` | integer | always | decision latency in microseconds |
//! | `dropped_events` | integer | `dropped` summaries only | how many refusals before authentication were lost since the last summary |
//! | `bindings` | array of strings | v2, allows | labels of the bindings that conferred the roles (`group:ml-engineers`, …) |
//! | `inputs` | object | v2, policy decisions | what the decision read besides the caller's ids, so it can be decided again (below) |
//! | `shadow` | object | v2, when a shadow policy decided otherwise | `policy_version`, `outcome`, `reason`, optional `grant` / `denied_by`: what the shadow would have done (never enforced) |
//!
//! `inputs` ([`DecisionInputs`]) holds no secret and nothing mutable: `token_version`
//! (`"1.0"` / `"2.0"`), `client_auth` (`public`, `secret`, `certificate`, `unknown`),
//! `home_tenant` (a guest's home tenant), `guest_unknown`, `scopes`, `app_roles` (the
//! `roles` claim), `directory_roles` (`wids`), `acrs`, `amr`, `auth_time` (Unix
//! seconds), `xms_cc`, and `groups`: `claim` (`listed`, `overage`, `not_emitted`),
//! `resolution` (`resolved` or `unavailable` when a resolver was asked), `ids`, and
//! `recorded`: `bound` (the default and the least data: only groups the policy, and the
//! shadow policy named by `shadow_policy`, binds) or `all`
//! ([`AuditGroups`], [`inputs`] explains the choice).
//!
//! ```json
//! {"schema_version":2,"time":"2026-11-23T22:15:01.123Z","outcome":"deny","reason":"no_role_grants","tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","object_id":"0f5e3b8a-8c1d-4c53-9a6b-2d6c6c0c9e11","principal_kind":"user","guest":false,"client_app_id":"6e74172b-be56-4843-9ff4-e66a39bb12e3","action":"Training.Submit","resource":"models/exp-1","roles":[],"token_id":"AbCdEf0123456789xyzABC","correlation_id":"req-42","policy_version":"3f1c9a","latency_us":35,"inputs":{"token_version":"2.0","client_auth":"public","scopes":["Inference.Invoke"],"groups":{"claim":"listed","ids":["5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d"],"recorded":"bound"}}}
//! ```
//!
//! The same names are the structured fields of the `tracing` events written by
//! [`TracingSink`] (target `entra_governor::audit`, level `INFO`).
//!
//! # Shipping the file
//!
//! The sink appends and never rotates; let the log shipper or `logrotate` (with
//! `copytruncate`) handle rotation. Any tail-and-parse-JSON collector works:
//!
//! - **Fluent Bit**: an `[INPUT]` with `Name tail`, `Path /var/log/entra-governor/audit.jsonl`,
//!   `Parser json`, then any output.
//! - **Vector**: a `file` source on the same path and a `remap` transform
//!   `. = parse_json!(.message)`.
//! - **Azure Monitor Logs**: create a custom table (say `EntraGovernorAudit_CL`) with
//!   these columns plus `TimeGenerated`, and a data collection rule whose Azure Monitor
//!   Agent JSON-file data source feeds the stream `Custom-EntraGovernorAudit_CL`, with the
//!   transformation `source | extend TimeGenerated = todatetime(time)`.
//!
//! # Exporting to OpenTelemetry
//!
//! With the `otel` feature, `OtlpLogSink` (module `audit::otlp`) sends the trail to an
//! OpenTelemetry Collector (or any OTLP backend) as OTLP log records over OTLP/HTTP
//! protobuf, with the same delivery guarantees as the other sinks; a request's W3C
//! `traceparent` ([`TraceParent`], in [`RequestContext`](crate::RequestContext)) puts
//! its record in the caller's trace, and `decision_spans` on its builder also exports each
//! decision as a span in that trace. The field mapping, versioned, is documented in that
//! module.
//!
//! # Joining to Entra sign-in logs
//!
//! `token_id` is the token's `uti` claim, which Entra also records for the sign-in that
//! issued the token: `uniqueTokenIdentifier` in the Microsoft Graph `signIn` resource, and
//! the `UniqueTokenIdentifier` column of the `SigninLogs` (interactive) and
//! `AADNonInteractiveUserSignInLogs` tables (app-only tokens are issued in service
//! principal sign-ins, `AADServicePrincipalSignInLogs`). The value is case-sensitive.
//! With both in one Log Analytics workspace:
//!
//! ```kusto
//! EntraGovernorAudit_CL
//! | where outcome == "allow" and action startswith "Training."
//! | join kind=leftouter (
//!     union SigninLogs, AADNonInteractiveUserSignInLogs, AADServicePrincipalSignInLogs
//!     | project UniqueTokenIdentifier, IPAddress, ConditionalAccessStatus, AppDisplayName
//!   ) on $left.token_id == $right.UniqueTokenIdentifier
//! ```

mod decided;
mod event;
pub mod inputs;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub mod otlp;
mod pipeline;
mod sink;
mod span;
mod trace_parent;

pub(crate) use decided::{DecidedEvent, DecisionFacts, Membership, decision_event};
pub use event::{AUTHENTICATE_ACTION, AuditEvent, AuditOutcome, ShadowOutcome};
pub(crate) use event::{parse_rfc3339_millis, rfc3339_millis as rfc3339};
pub use inputs::{AuditGroups, DecisionInputs};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use otlp::OtlpLogSink;
pub(crate) use pipeline::EventHook;
pub use pipeline::{
    AUDIT_HEALTH_TARGET, AUDIT_UNAVAILABLE_REASON, AuditError, AuditLog, AuditLogBuilder,
    DEFAULT_CAPACITY, DEFAULT_DROP_SUMMARY_INTERVAL, DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_BACKOFF,
    DEFAULT_MAX_BATCH, DEFAULT_UNAUTHENTICATED_CAPACITY, DROPPED_UNAUTHENTICATED_REASON, OnFull,
};
pub use sink::{AUDIT_TARGET, AuditSink, AuditSinkError, JsonLinesSink, MemorySink, TracingSink};
pub use span::{DECIDE_SPAN, DECIDE_SPAN_TARGET};
pub(crate) use span::{DecidedFields, decide_span, record_decided};
pub use trace_parent::{TraceParent, TraceParentError};
