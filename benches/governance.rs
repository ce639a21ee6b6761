//! Replay and review throughput over a 1,000,000-event trail, beside the floor of reading
//! the same trail (parsing every event and nothing else), measured in the same run.
//!
//! Run by hand: `cargo bench --bench governance` (writes a trail of about 1 GB to the
//! temporary directory, and removes it).
//!
//! The trail is real: 1,000 callers (four personas of the example policy) ask five
//! requests each through a governor with a JSON Lines audit log; those 5,000 v2 events
//! are repeated, one millisecond apart, to 1,000,000 lines. Memory is the process's peak
//! resident set (`VmHWM`) after each phase: replay and review stream the file, so it
//! does not grow with the trail.

mod common;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use entra_governor::governance::replay::Replay;
use entra_governor::governance::review::{ReviewOptions, review_file};
use entra_governor::governance::trail::{TrailReader, open};
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, JsonLinesSink, ObjectId, Policy};

const EVENTS: usize = 1_000_000;
const CALLERS: usize = 1_000;

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const ML_ENGINEERS: &str = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const AUDITORS: &str = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b";

const REQUESTS: &[(&str, &str)] = &[
    ("training.submit", "models/exp-1"),
    ("inference.invoke", "models/exp-2"),
    ("datasets.read", "datasets/public/weather"),
    ("models.deploy", "models/prod-1"),
    ("audit.read", "audit/2026-11"),
];

fn main() {
    let dir = std::env::temp_dir().join(format!("entra-governor-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let seed = dir.join("seed.jsonl");
    let trail = dir.join("trail.jsonl");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(record_seed(&seed));
    let bytes = repeat(&seed, &trail);
    println!(
        "trail: {EVENTS} events, {:.0} MB, {CALLERS} callers; peak RSS {} MB",
        bytes as f64 / 1e6,
        peak_rss_mb()
    );

    let policy = common::example_policy();
    let candidate = without_auditor();
    let floor = timed("read (parse every event)", || read_only(&trail));
    let replayed = timed("replay (candidate without auditor)", || {
        let mut replay = Replay::new(&candidate);
        replay.learn_trail(open(&trail).unwrap()).unwrap();
        replay.read_trail(open(&trail).unwrap()).unwrap();
        let totals = replay.finish().totals;
        assert_eq!(totals.decisions, EVENTS as u64);
        totals.changed
    });
    let reviewed = timed("review (with the suggestion replayed)", || {
        let report = review_file(&policy, &trail, ReviewOptions::default()).unwrap();
        assert_eq!(report.totals.decisions, EVENTS as u64);
        report.totals.callers
    });
    println!(
        "ratios to the read floor: replay {:.2} (two passes), review {:.2} (two passes)",
        replayed.as_secs_f64() / floor.as_secs_f64(),
        reviewed.as_secs_f64() / floor.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Runs `f` once, prints its throughput and the peak RSS so far.
fn timed<T: std::fmt::Debug>(name: &str, f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    println!(
        "{name}: {:.2} s, {:.0} events/s (result {out:?}); peak RSS {} MB",
        took.as_secs_f64(),
        EVENTS as f64 / took.as_secs_f64(),
        peak_rss_mb()
    );
    took
}

fn read_only(trail: &Path) -> u64 {
    let mut reader = TrailReader::new(open(trail).unwrap());
    let mut n = 0;
    while reader.next_event().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, EVENTS as u64);
    n
}

fn without_auditor() -> Policy {
    let mut doc = common::example_policy().document().clone();
    doc.roles.remove("auditor");
    doc.bindings
        .retain(|b| !b.roles.iter().any(|r| r == "auditor"));
    Policy::from_document(doc).expect("candidate")
}

/// 1,000 callers × 5 requests through a governor writing a JSON Lines trail.
async fn record_seed(path: &PathBuf) {
    let idp = TestIdp::start().await;
    let log = AuditLog::builder(JsonLinesSink::file(path).expect("trail")).build();
    let governor = common::builder(&idp).audit(log).build().expect("governor");
    for n in 0..CALLERS {
        let oid = format!("00000000-0000-4000-8000-{n:012x}");
        let group = [DATA_SCIENTISTS, ML_ENGINEERS, AUDITORS][n % 3];
        let token = idp
            .token()
            .oid(ObjectId::parse(&oid).unwrap())
            .scopes("Training.Manage Inference.Invoke Audit.Read")
            .groups([group])
            .sign();
        for (action, resource) in REQUESTS {
            governor
                .authorize(&token, action, resource)
                .await
                .expect("valid");
        }
    }
    governor.shutdown().await;
}

/// Repeats the seed's lines to [`EVENTS`] lines, one millisecond apart; the file's size.
fn repeat(seed: &Path, trail: &Path) -> u64 {
    let lines: Vec<serde_json::Value> = BufReader::new(std::fs::File::open(seed).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(lines.len(), CALLERS * REQUESTS.len());
    let mut out = BufWriter::new(std::fs::File::create(trail).unwrap());
    let start = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    for i in 0..EVENTS {
        let mut event = lines[i % lines.len()].clone();
        let at = start + Duration::from_millis(i as u64);
        event["time"] = serde_json::Value::String(rfc3339(at));
        serde_json::to_writer(&mut out, &event).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::metadata(trail).unwrap().len()
}

/// RFC 3339 UTC with milliseconds, as the trail writes it.
fn rfc3339(t: std::time::SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let (secs, ms) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days (H. Hinnant).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The process's peak resident set, in MB (`VmHWM` in /proc/self/status).
fn peak_rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
