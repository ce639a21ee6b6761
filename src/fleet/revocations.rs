//! Shared revocations: every replica follows the fleet's revocation stream into its
//! local mirror, re-reads the whole set at start, after every failure and every resync
//! interval, and delivers its own revocations (and any Redis lost) with one atomic
//! script that keeps the later instant and appends to the stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{Script, Value};
use tokio::sync::watch;

use super::config::REVOCATION_BLOCK;
use super::shared::{Attachment, Shared, describe, stopped};
use crate::clock::unix_now;
use crate::revocation::{MAX_TOKEN_LIFETIME_SECS, Subject};

/// Entries the stream keeps (approximately); older ones are in the hash.
const STREAM_LENGTH: usize = 100_000;
/// Entries read from the stream at once.
const STREAM_BATCH: usize = 1_000;
/// Revocations delivered per round.
const DELIVERY_BATCH: usize = 500;
/// Waits after a failure, doubled up to the cap.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Raises a field to ARGV[2] unless it holds a later instant, and if so appends the
/// revocation to the stream: atomic, so a reader of the hash then the stream misses none.
const RAISE: &str = r"
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
local before = tonumber(ARGV[2])
if before > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'f', ARGV[1], 'b', ARGV[2])
  return 1
end
return 0
";

/// Follows the stream until the governor is gone, catching up after every failure.
pub(crate) async fn follow(
    fleet: Arc<Shared>,
    attachment: Arc<Attachment>,
    stream: Option<ConnectionManager>,
    mut stop: watch::Receiver<()>,
) {
    let Some(mut stream) = stream else {
        return;
    };
    let stream_timeout = REVOCATION_BLOCK + fleet.settings.timeout;
    let mut wait = RETRY_MIN;
    loop {
        let Some(mut commands) = fleet.commands() else {
            return;
        };
        let round = async {
            let last = catch_up(&fleet, &attachment, &mut commands).await?;
            follow_stream(&fleet, &attachment, &mut stream, last).await
        };
        let result = tokio::select! {
            () = stopped(&mut stop) => return,
            result = round => result,
        };
        match result {
            Ok(()) => wait = RETRY_MIN, // the resync interval is up: catch up again
            Err(e) => {
                fleet.set_connected(false);
                tracing::debug!(error = %describe(&e), "fleet: revocation stream interrupted");
                // Fresh connections for the next round (see `Shared::renew`).
                fleet.renew();
                if let Some(fresh) = fleet.connection(stream_timeout) {
                    stream = fresh;
                }
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Reads the stream's last id, then the whole set: merges it into the mirror, queues
/// back what the mirror holds and Redis lacks, and returns the id to follow from.
async fn catch_up(
    fleet: &Shared,
    attachment: &Attachment,
    con: &mut ConnectionManager,
) -> redis::RedisResult<String> {
    let names = &fleet.settings.names;
    let started = Instant::now();
    let tail: Value = redis::cmd("XREVRANGE")
        .arg(names.revocation_log())
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(con)
        .await?;
    let last = last_stream_id(&tail).unwrap_or_else(|| "0-0".into());
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg(names.revocations())
        .query_async(con)
        .await?;
    let now = unix_now();
    let horizon = now.saturating_sub(MAX_TOKEN_LIFETIME_SECS);
    let mut fleet_entries = Vec::with_capacity(all.len());
    let mut expired = Vec::new();
    for (field, value) in &all {
        match (Subject::parse_field(field), value.parse::<u64>()) {
            (Some(_), Ok(before)) if before <= horizon => expired.push(field.clone()),
            (Some(subject), Ok(before)) => fleet_entries.push((subject, before)),
            _ => fleet.reject("revocation", field),
        }
    }
    merge(fleet, attachment, &fleet_entries, now);
    let known: HashMap<&Subject, u64> = fleet_entries.iter().map(|(s, b)| (s, *b)).collect();
    for (subject, before) in attachment.revocations.entries() {
        if before > horizon && known.get(&subject).is_none_or(|b| *b < before) {
            fleet.enqueue(subject, before); // Redis lost it, or never had it
        }
    }
    if !expired.is_empty() {
        redis::cmd("HDEL")
            .arg(names.revocations())
            .arg(&expired)
            .query_async::<()>(con)
            .await?;
    }
    fleet.set_connected(true);
    fleet.mark_current(started);
    Ok(last)
}

/// Reads the stream from `last` into the mirror until the resync interval is up.
async fn follow_stream(
    fleet: &Shared,
    attachment: &Attachment,
    con: &mut ConnectionManager,
    mut last: String,
) -> redis::RedisResult<()> {
    let until = Instant::now() + fleet.settings.resync;
    let log = fleet.settings.names.revocation_log();
    while Instant::now() < until {
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(STREAM_BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(REVOCATION_BLOCK.as_millis()).unwrap_or(1000))
            .arg("STREAMS")
            .arg(&log)
            .arg(&last)
            .query_async(con)
            .await?;
        let entries = stream_entries(&reply);
        let mut learnt = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            match revocation_of(&fields) {
                Some(entry) => learnt.push(entry),
                None => fleet.reject("revocation stream entry", &log),
            }
            last = id;
        }
        merge(fleet, attachment, &learnt, unix_now());
        fleet.set_connected(true);
        // Redis answers a blocked read as soon as an entry arrives, so the view is
        // complete as of its answer (less the network's one-way delay): with a 1 s block
        // it is never older than about 1 s while Redis answers.
        fleet.mark_current(Instant::now());
    }
    Ok(())
}

fn merge(fleet: &Shared, attachment: &Attachment, entries: &[(Subject, u64)], now: u64) {
    if entries.is_empty() {
        return;
    }
    if let Err(e) = attachment.revocations.merge(entries, now) {
        // Enforced in memory regardless; only the file could not be written.
        tracing::error!(error = %e, replica = %fleet.settings.replica_id, "fleet: revocation file not written");
    }
}

/// Delivers queued revocations until the governor is gone; a failure keeps them queued.
pub(crate) async fn deliver(fleet: Arc<Shared>, mut stop: watch::Receiver<()>) {
    let script = Script::new(RAISE);
    let mut wait = RETRY_MIN;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => return,
            () = fleet.outbox_ready.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        loop {
            let batch: Vec<(Subject, u64)> = {
                let outbox = fleet.outbox.lock().unwrap_or_else(|p| p.into_inner());
                outbox
                    .iter()
                    .take(DELIVERY_BATCH)
                    .map(|(s, b)| (s.clone(), *b))
                    .collect()
            };
            if batch.is_empty() {
                break;
            }
            let Some(mut con) = fleet.commands() else {
                return;
            };
            if let Err(e) = deliver_batch(&fleet, &script, &mut con, &batch).await {
                fleet.set_connected(false);
                fleet.renew();
                tracing::debug!(error = %describe(&e), "fleet: revocations not delivered yet");
                tokio::select! {
                    () = stopped(&mut stop) => return,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
            wait = RETRY_MIN;
        }
    }
}

async fn deliver_batch(
    fleet: &Shared,
    script: &Script,
    con: &mut ConnectionManager,
    batch: &[(Subject, u64)],
) -> redis::RedisResult<()> {
    let names = &fleet.settings.names;
    let (hash, log) = (names.revocations(), names.revocation_log());
    for (subject, before) in batch {
        script
            .key(&hash)
            .key(&log)
            .arg(subject.field())
            .arg(*before)
            .arg(STREAM_LENGTH)
            .invoke_async::<i64>(con)
            .await?;
        let mut outbox = fleet.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.get(subject).is_some_and(|b| b <= before) {
            outbox.remove(subject);
        }
    }
    fleet.set_connected(true);
    Ok(())
}

/// The id of the one entry of an `XREVRANGE … COUNT 1` reply.
fn last_stream_id(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(entries) => entries
            .first()
            .and_then(|e| entry_parts(e).map(|(id, _)| id)),
        _ => None,
    }
}

/// The entries of an `XREAD` reply on one stream (nil when the block timed out). RESP2
/// answers an array of `[key, entries]`, RESP3 a map of key to entries.
fn stream_entries(reply: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let streams: Vec<&Value> = match reply {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) if pair.len() == 2 => Some(&pair[1]),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for entries in streams {
        if let Value::Array(entries) = entries {
            out.extend(entries.iter().filter_map(entry_parts));
        }
    }
    out
}

/// `[id, [field, value, …]]`.
fn entry_parts(entry: &Value) -> Option<(String, Vec<(String, String)>)> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let id = text(parts.first()?)?;
    let Some(Value::Array(flat)) = parts.get(1) else {
        return Some((id, Vec::new()));
    };
    let fields = flat
        .chunks(2)
        .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
        .collect();
    Some((id, fields))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The revocation a stream entry carries (`f` the field, `b` the instant).
fn revocation_of(fields: &[(String, String)]) -> Option<(Subject, u64)> {
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let subject = Subject::parse_field(get("f")?)?;
    let before = get("b")?.parse().ok()?;
    Some((subject, before))
}
