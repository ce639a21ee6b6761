//! The HTML access review in a real headless browser: a trail recorded by a governor is
//! reviewed, rendered with `render::html` and loaded by Chromium, which must build every
//! table and the chart and log nothing (no console errors, no Content Security Policy
//! violations: the page runs no script and fetches nothing).
//!
//! The browser is the Debian package `chromium-headless-shell` (or `chromium`), which
//! `.ci/run` installs when missing; `ENTRA_BROWSER=<path>` names another binary. Without
//! one, the tests fail (they never skip).

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entra_governor::governance::review::{ReviewOptions, render, review_file};
use entra_governor::testing::TestIdp;
use entra_governor::{AuditLog, JsonLinesSink, ObjectId, TenantId};

const DATA_SCIENTISTS: &str = "5d3c9a1e-2f47-4b8a-9c61-0e7f3a2b4c5d";
const EXTERNAL_RESEARCHERS: &str = "9f8e7d6c-5b4a-4938-a2b1-c0d9e8f7a6b5";
const PARTNER_HOME: &str = "11111111-2222-4333-8444-555555555555";
const DS: &str = "00000000-0000-4000-8000-0000000000d5";
const AUDITOR: &str = "00000000-0000-4000-8000-0000000000a7";
const GUEST: &str = "00000000-0000-4000-8000-000000000096";

/// A resource a caller chose: the page must show it as text, never run it.
const SCRIPT_RESOURCE: &str = "models/exp-<script>alert(1)";

/// Where the Debian packages put the browser, in order of preference.
const BROWSERS: [&str; 3] = [
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
];

/// How long the browser may take to load one page.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// The ids of the page's tables.
const TABLE_IDS: [&str; 8] = [
    "summary",
    "unused-roles",
    "unused-grants",
    "unused-bindings",
    "grant-usage",
    "wide-grants",
    "callers",
    "suggestion",
];

/// The browser binary: `ENTRA_BROWSER`, else the first of [`BROWSERS`] present.
fn browser() -> PathBuf {
    if let Some(path) = std::env::var_os("ENTRA_BROWSER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "ENTRA_BROWSER={} is not a file",
            path.display()
        );
        return path;
    }
    BROWSERS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no headless browser for the HTML review test: none of {BROWSERS:?} exists. \
                 Install the Debian package chromium-headless-shell (or chromium): \
                 `apt-get install -y chromium-headless-shell` (.ci/run does this when it is \
                 missing), or set ENTRA_BROWSER to a Chromium binary"
            )
        })
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "entra-governor-browser-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the browser made of a page.
struct Loaded {
    /// The DOM after loading (`--dump-dom`).
    dom: String,
    /// Its log (`--enable-logging=stderr`): console messages appear as `CONSOLE` lines.
    log: String,
    elapsed: Duration,
}

/// Loads `page` in the headless browser, with a fresh profile under `dir`.
fn load(page: &Path, dir: &Path) -> Loaded {
    let browser = browser();
    let url = url::Url::from_file_path(page).expect("an absolute page path");
    let (out_path, err_path) = (dir.join("dom.html"), dir.join("browser.log"));
    let started = Instant::now();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(url.as_str())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", browser.display()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not load {url} within {BROWSER_TIMEOUT:?}; its log:\n{}",
                browser.display(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let elapsed = started.elapsed();
    let dom = std::fs::read_to_string(&out_path).unwrap();
    let log = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        status.success(),
        "{} failed ({status}) on {url}; its log:\n{log}",
        browser.display()
    );
    Loaded { dom, log, elapsed }
}

/// The log lines about the page itself: console messages (errors, uncaught exceptions,
/// CSP violations are all logged as `CONSOLE` lines) and refused loads. A page without
/// scripts has none.
fn page_problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("CONSOLE(")
                || l.contains("Uncaught")
                || l.contains("Refused to")
                || l.contains("Content Security Policy")
        })
        .collect()
}

/// The token of `persona` (the example policy's personas).
fn token(idp: &TestIdp, persona: &str) -> String {
    let t = idp.token().oid(ObjectId::parse(persona).unwrap());
    match persona {
        DS => t.scopes("Training.Manage").groups([DATA_SCIENTISTS]),
        AUDITOR => t
            .scopes("Audit.Read")
            .roles(["Platform.Auditor"])
            .groups(Vec::<&str>::new()),
        _ => t
            .scopes("Training.Manage")
            .groups([EXTERNAL_RESEARCHERS])
            .guest(TenantId::parse(PARTNER_HOME).unwrap()),
    }
    .sign()
}

/// Records a trail of three personas under the example policy and renders its review.
async fn review_page(trail: &Path) -> String {
    let policy = crate::common::example_policy();
    let idp = common::example_idp().await;
    let governor = common::builder(&idp)
        .policy(policy.clone())
        .audit(AuditLog::builder(JsonLinesSink::file(trail).unwrap()).build())
        .build()
        .unwrap();
    let requests = [
        (DS, "training.submit", "models/exp-1", true),
        (DS, "training.submit", SCRIPT_RESOURCE, true),
        (DS, "datasets.read", "datasets/public/weather", true),
        (DS, "models.deploy", "models/prod-1", false),
        (AUDITOR, "audit.read", "audit/2026-11", true),
        (AUDITOR, "training.read", "models/exp-1", true),
        (GUEST, "training.submit", "models/exp-9", true),
        (GUEST, "datasets.read", "datasets/pii/patients", false),
    ];
    for (persona, action, resource, allowed) in requests {
        let decision = governor
            .authorize(&token(&idp, persona), action, resource)
            .await
            .unwrap();
        assert_eq!(
            decision.is_allowed(),
            allowed,
            "{persona} {action} {resource}: {}",
            decision.explain()
        );
    }
    governor.shutdown().await;
    let report = review_file(&policy, trail, ReviewOptions::default()).unwrap();
    assert_eq!(
        (report.totals.decisions, report.totals.callers),
        (8, 3),
        "the review read the trail"
    );
    assert!(!report.daily.is_empty() && !report.wide_grants.is_empty());
    render::html(&report)
}

#[tokio::test]
async fn the_html_review_loads_in_a_browser_with_every_table_and_no_console_errors() {
    let dir = TempDir::new("review");
    let page_path = dir.0.join("review.html");
    let page = review_page(&dir.0.join("trail.jsonl")).await;
    std::fs::write(&page_path, &page).unwrap();

    let loaded = load(&page_path, &dir.0);
    eprintln!("the browser loaded the review in {:?}", loaded.elapsed);
    let dom = &loaded.dom;
    for id in TABLE_IDS {
        assert!(
            dom.contains(&format!("<table id=\"{id}\">")),
            "the browser built no table {id}:\n{dom}"
        );
    }
    assert!(dom.contains("<svg id=\"usage-chart\""), "no chart:\n{dom}");
    assert!(
        dom.contains("<rect class=\"allow\""),
        "no allow bars:\n{dom}"
    );
    assert!(
        dom.contains("<rect class=\"refusal\""),
        "no refusal bars:\n{dom}"
    );
    // The caller-chosen resource is text in the DOM, not an element.
    assert!(dom.contains("models/exp-&lt;script&gt;alert(1)"), "{dom}");
    assert!(
        !dom.contains("<script"),
        "a script element in the DOM:\n{dom}"
    );
    assert!(dom.contains(&format!("<td>{DS}</td>")), "{dom}");
    let problems = page_problems(&loaded.log);
    assert!(
        problems.is_empty(),
        "the page logged console messages or was refused something:\n{}",
        problems.join("\n")
    );
}

/// The console check above is only as good as the browser's log: a page that breaks its
/// own Content Security Policy and logs an error must show up in it.
#[test]
fn the_browser_log_shows_a_page_that_breaks_its_policy() {
    let dir = TempDir::new("canary");
    let page_path = dir.0.join("canary.html");
    std::fs::write(
        &page_path,
        "<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>canary</title></head><body><table id=\"summary\"></table>\
         <script>console.error(\"canary\")</script></body></html>\n",
    )
    .unwrap();
    let loaded = load(&page_path, &dir.0);
    assert!(
        loaded.dom.contains("<table id=\"summary\">"),
        "{}",
        loaded.dom
    );
    assert!(
        !page_problems(&loaded.log).is_empty(),
        "the browser logged no CSP violation for an inline script: its log cannot show \
         console errors, so the review test would prove nothing. Log:\n{}",
        loaded.log
    );
}
