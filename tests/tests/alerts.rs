//! Alert delivery to local HTTP servers started by the tests: the exact requests per
//! destination kind, retries on 5xx, no retry on 4xx, timeouts, refused connections, and runs
//! whose deliveries fail still writing their reports with the data's exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use vigil_tests::http::{Reply, Server as LoopServer};
use vigil_tests::{json_report, puffy_copy, repo_root, vigil_run};

/// What the server answers to one request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Hang(Duration),
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// A local HTTP server answering one connection per scripted answer.
struct Server {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(answers: Vec<Answer>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let thread = std::thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end().to_string();
                    if line.is_empty() {
                        break;
                    }
                    let (k, v) = line.split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(Received {
                    request_line: request_line.trim_end().to_string(),
                    headers,
                    body: serde_json::from_slice(&body).unwrap(),
                });
                let mut stream = reader.into_inner();
                match answer {
                    Answer::Status(code) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    }
                    Answer::Hang(time) => std::thread::sleep(time),
                }
            }
        });
        Server {
            addr,
            received,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The requests received, once the scripted answers are all given.
    fn finish(mut self) -> Vec<Received> {
        self.thread.take().unwrap().join().unwrap();
        self.received.lock().unwrap().clone()
    }
}

/// An address nothing listens on.
fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// Runs vigil on a Puffy copy for 03-09 (two late-partition ERRORs) with `destinations`,
/// the URLs or keys given through environment variables named after `tag`.
fn run(dir: &Path, destinations: &str, routing: &str, extra: &[&str]) -> (i32, Value, String) {
    let config = dir.join("vigil.yml");
    std::fs::write(
        &config,
        format!(
            "rules:\n  freshness: {{}}\nalert_routing:\n  {routing}\n  timeout_seconds: 0.5\n  retry_backoff_seconds: 0.01\n  destinations:\n{destinations}"
        ),
    )
    .unwrap();
    let out = dir.join("reports");
    let result = vigil_run(&dir.join("warehouse"), &config, &out, "2025-03-09", extra);
    let report = json_report(&out);
    (result.code, report, result.stdout)
}

/// The tests of this file run one at a time: they set environment variables, which must not
/// change while another thread (a resolver in the HTTP client) may read the environment.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn set_env(name: &str, value: &str) {
    std::env::set_var(name, value);
}

#[test]
fn slack_gets_one_message_with_the_routed_findings() {
    let _serial = serial();
    let server = Server::start(vec![Answer::Status(200)]);
    set_env("VIGIL_TEST_SLACK_1", &server.url());
    let copy = puffy_copy();
    let (code, report, _) = run(
        copy.path(),
        "    team-slack: {kind: slack, webhook_url_env: VIGIL_TEST_SLACK_1}\n",
        "error_channels: [team-slack, \"pagerduty://plan-only\"]",
        &[],
    );
    assert_eq!(code, 0);
    let addr = server.addr;
    let received = server.finish();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.request_line, "POST /hook HTTP/1.1");
    assert!(
        r.headers
            .contains(&("content-type".into(), "application/json".into())),
        "{:?}",
        r.headers
    );
    assert_eq!(
        r.body["text"],
        "vigil: FAIL for partition 2025-03-09 (2 ERROR, 0 WARN, 0 INFO)\n\
         *New* (2)\n\
         • *ERROR* freshness:orders_partition (2025-03-09): Latest `orders` partition is 2025-03-08 but 2025-03-09 is expected: 1 day(s) behind\n\
         • *ERROR* freshness:sessions_partition (2025-03-09): Latest `sessions` partition is 2025-03-08 but 2025-03-09 is expected: 1 day(s) behind"
    );
    let delivery = &report["routing"]["deliveries"][0];
    assert_eq!(
        (
            delivery["destination"].as_str(),
            delivery["status"].as_str(),
            delivery["attempts"].as_u64()
        ),
        (Some("team-slack"), Some("sent"), Some(1))
    );
    // The plan-only channel is still in the routing plan, and the secret is nowhere.
    assert_eq!(
        report["routing"]["routing_plan"]["ERROR"][1],
        "pagerduty://plan-only"
    );
    assert!(!report.to_string().contains(&addr.to_string()));
}

#[test]
fn pagerduty_gets_one_trigger_per_finding_with_a_dedup_key() {
    let _serial = serial();
    let server = Server::start(vec![Answer::Status(202), Answer::Status(202)]);
    set_env("VIGIL_TEST_PD_KEY", "R0UT1NGKEY");
    let copy = puffy_copy();
    let destinations = format!(
        "    pd: {{kind: pagerduty, routing_key_env: VIGIL_TEST_PD_KEY, events_url: \"{}\"}}\n",
        server.url()
    );
    let (_, report, _) = run(copy.path(), &destinations, "error_channels: [pd]", &[]);
    let received = server.finish();
    let keys: Vec<&str> = received
        .iter()
        .map(|r| r.body["dedup_key"].as_str().unwrap())
        .collect();
    // One incident per fingerprint (rule, check, subject), keyed by warehouse, never by date.
    let warehouse = report["state"]["warehouse_id"].as_str().unwrap();
    assert_eq!(
        keys,
        [
            format!("vigil:{warehouse}:freshness/freshness:orders_partition"),
            format!("vigil:{warehouse}:freshness/freshness:sessions_partition")
        ]
    );
    let event = &received[0].body;
    assert_eq!(event["routing_key"], "R0UT1NGKEY");
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["payload"]["severity"], "error");
    assert_eq!(event["payload"]["source"], "vigil");
    assert_eq!(
        event["payload"]["custom_details"]["check"],
        "freshness:orders_partition"
    );
    assert_eq!(report["routing"]["deliveries"][0]["requests"], 2);
    assert!(!report.to_string().contains("R0UT1NGKEY"));
}

#[test]
fn the_webhook_gets_the_documented_payload() {
    let _serial = serial();
    let server = Server::start(vec![Answer::Status(204)]);
    set_env("VIGIL_TEST_HOOK_1", &server.url());
    let copy = puffy_copy();
    let (_, report, _) = run(
        copy.path(),
        "    ops: {kind: webhook, url_env: VIGIL_TEST_HOOK_1}\n",
        "error_channels: [ops]",
        &[],
    );
    let body = &server.finish()[0].body;
    assert_eq!(body["run_id"], report["run_id"]);
    assert_eq!(body["verdict"], "FAIL");
    assert_eq!(body["expected_partition_date"], "2025-03-09");
    assert_eq!(
        body["counts"],
        serde_json::json!({"ERROR": 2, "WARN": 0, "INFO": 0})
    );
    assert_eq!(body["findings"][0]["check"], "freshness:orders_partition");
    assert!(body["reports"][0]
        .as_str()
        .unwrap()
        .ends_with("monitoring_report.json"));
}

#[test]
fn a_server_error_is_retried_and_a_client_error_is_not() {
    let _serial = serial();
    let flaky = Server::start(vec![Answer::Status(500), Answer::Status(200)]);
    let strict = Server::start(vec![Answer::Status(400)]);
    set_env("VIGIL_TEST_HOOK_FLAKY", &flaky.url());
    set_env("VIGIL_TEST_HOOK_STRICT", &strict.url());
    let copy = puffy_copy();
    let (_, report, stdout) = run(
        copy.path(),
        "    flaky: {kind: webhook, url_env: VIGIL_TEST_HOOK_FLAKY}\n    strict: {kind: webhook, url_env: VIGIL_TEST_HOOK_STRICT}\n",
        "error_channels: [flaky, strict]",
        &[],
    );
    assert_eq!(flaky.finish().len(), 2);
    assert_eq!(strict.finish().len(), 1);
    let deliveries = report["routing"]["deliveries"].as_array().unwrap();
    assert_eq!(
        (
            deliveries[0]["status"].as_str(),
            deliveries[0]["attempts"].as_u64()
        ),
        (Some("sent"), Some(2))
    );
    assert_eq!(
        (
            deliveries[1]["status"].as_str(),
            deliveries[1]["attempts"].as_u64(),
            deliveries[1]["error"].as_str()
        ),
        (
            Some("failed"),
            Some(1),
            Some("HTTP 400 (not retried), body: ok")
        )
    );
    assert!(
        stdout.contains(
            "vigil: alert to strict (webhook) FAILED after 1 attempt(s): HTTP 400 (not retried), body: ok"
        ),
        "{stdout}"
    );
}

#[test]
fn a_hanging_server_times_out_and_a_closed_port_is_retried_then_reported() {
    let _serial = serial();
    let hanging = Server::start(vec![
        Answer::Hang(Duration::from_secs(2)),
        Answer::Hang(Duration::from_secs(2)),
    ]);
    set_env("VIGIL_TEST_HOOK_HANG", &hanging.url());
    set_env("VIGIL_TEST_HOOK_REFUSED", &refused_url());
    let copy = puffy_copy();
    let (code, report, _) = run(
        copy.path(),
        "    hang: {kind: webhook, url_env: VIGIL_TEST_HOOK_HANG}\n    refused: {kind: webhook, url_env: VIGIL_TEST_HOOK_REFUSED}\n",
        "error_channels: [hang, refused]\n  retries: 1",
        &["--fail_on_error"],
    );
    // Failed deliveries never change the verdict: the data's ERRORs exit 1.
    assert_eq!(code, 1);
    assert_eq!(hanging.finish().len(), 2);
    let deliveries = report["routing"]["deliveries"].as_array().unwrap();
    assert_eq!(
        (
            deliveries[0]["destination"].as_str(),
            deliveries[0]["attempts"].as_u64(),
            deliveries[0]["error"].as_str()
        ),
        (Some("hang"), Some(2), Some("timed out"))
    );
    assert_eq!(
        (
            deliveries[1]["status"].as_str(),
            deliveries[1]["attempts"].as_u64()
        ),
        (Some("failed"), Some(2))
    );
    assert!(
        deliveries[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("connection failed"),
        "{}",
        deliveries[1]
    );
    assert_eq!(report["verdict"], "FAIL");
}

#[test]
fn a_missing_secret_and_a_dry_run_send_nothing() {
    let _serial = serial();
    let copy = puffy_copy();
    let (code, report, stdout) = run(
        copy.path(),
        "    ops: {kind: webhook, url_env: VIGIL_TEST_NEVER_SET}\n    pd: {kind: pagerduty, routing_key_env: VIGIL_TEST_PD_DRY}\n",
        "error_channels: [ops, pd]",
        &["--no-alerts"],
    );
    assert_eq!(code, 0);
    let deliveries = report["routing"]["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries[0]["error"],
        "environment variable VIGIL_TEST_NEVER_SET is not set"
    );
    assert_eq!(deliveries[1]["status"], "failed");
    set_env("VIGIL_TEST_PD_DRY", "DRYKEY");
    let (_, report, stdout_dry) = run(
        copy.path(),
        "    pd: {kind: pagerduty, routing_key_env: VIGIL_TEST_PD_DRY}\n",
        "error_channels: [pd]",
        &["--no-alerts"],
    );
    assert_eq!(report["routing"]["deliveries"][0]["status"], "dry_run");
    assert!(
        stdout_dry.contains("vigil: would send to pd (pagerduty): {"),
        "{stdout_dry}"
    );
    // The routing key is a secret: the dry run shows where it goes, never its value.
    assert!(!stdout_dry.contains("DRYKEY"), "{stdout_dry}");
    assert!(
        stdout_dry.contains("\"routing_key\":\"***\""),
        "{stdout_dry}"
    );
    assert!(!stdout.contains("would send"), "{stdout}");
}

/// Runs vigil as [`run`] does, and also returns the Markdown report and how long it took.
fn timed_run(dir: &Path, destinations: &str, routing: &str) -> (Value, String, String, Duration) {
    let start = std::time::Instant::now();
    let (_, report, stdout) = run(dir, destinations, routing, &[]);
    let elapsed = start.elapsed();
    let md = std::fs::read_to_string(dir.join("reports/monitoring_report.md")).unwrap();
    (report, md, stdout, elapsed)
}

#[test]
fn reports_are_written_before_alerts_and_a_deadline_bounds_the_delivery() {
    let _serial = serial();
    let copy = puffy_copy();
    let json = copy.path().join("reports/monitoring_report.json");
    // PagerDuty never answers in time; the webhook answers at once.
    let pd = LoopServer::start(Some(json.clone()), |_| {
        Reply::status(202, "").after(Duration::from_secs(3))
    });
    let hook = LoopServer::start(Some(json.clone()), |_| Reply::status(200, ""));
    set_env("VIGIL_TEST_PD_DEADLINE", "K3Y");
    set_env("VIGIL_TEST_HOOK_DEADLINE", &hook.url());
    let destinations = format!(
        "    pd: {{kind: pagerduty, routing_key_env: VIGIL_TEST_PD_DEADLINE, events_url: \"{}\"}}\n    hook: {{kind: webhook, url_env: VIGIL_TEST_HOOK_DEADLINE}}\n",
        pd.url()
    );
    let (report, md, stdout, elapsed) = timed_run(
        copy.path(),
        &destinations,
        "error_channels: [pd, hook]\n  retries: 5\n  deadline_seconds: 1.2",
    );
    // Without the deadline: 2 events x 6 attempts x 0.5 s.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    let pd_hits = pd.stop();
    let hook_hits = hook.stop();
    assert!(!pd_hits.is_empty() && hook_hits.len() == 1);
    // Every alert went out once the reports were there.
    assert!(
        pd_hits.iter().chain(&hook_hits).all(|h| h.watched_existed),
        "an alert went out before the reports were written"
    );
    // The webhook's report paths exist.
    assert!(std::path::Path::new(hook_hits[0].body["reports"][0].as_str().unwrap()).exists());
    let deliveries = report["routing"]["deliveries"].as_array().unwrap();
    let (hook_d, pd_d) = (&deliveries[0], &deliveries[1]);
    assert_eq!(
        (hook_d["destination"].as_str(), hook_d["status"].as_str()),
        (Some("hook"), Some("sent"))
    );
    assert_eq!(
        (
            pd_d["status"].as_str(),
            pd_d["requests"].as_u64(),
            pd_d["not_attempted"].as_u64()
        ),
        (Some("failed"), Some(2), Some(1)),
        "{pd_d}"
    );
    let outcomes = pd_d["outcomes"].as_array().unwrap();
    assert_eq!(outcomes[0]["status"], "failed");
    assert!(outcomes[0]["attempts"].as_u64().unwrap() >= 2, "{pd_d}");
    assert!(
        outcomes[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("timed out; not retried: the delivery deadline of 1.2 s"),
        "{pd_d}"
    );
    assert_eq!(
        (
            outcomes[1]["status"].as_str(),
            outcomes[1]["attempts"].as_u64(),
            outcomes[1]["dedup_key"].as_str()
        ),
        (
            Some("not_attempted"),
            Some(0),
            Some(
                format!(
                    "vigil:{}:freshness/freshness:sessions_partition",
                    report["state"]["warehouse_id"].as_str().unwrap()
                )
                .as_str()
            )
        )
    );
    assert!(
        stdout.contains("vigil: alert to pd (pagerduty) FAILED: 1 of 2 request(s) failed")
            && stdout.contains("1 of 2 request(s) not attempted: the delivery deadline of 1.2 s had passed (0 sent)"),
        "{stdout}"
    );
    // The JSON rewritten with the deliveries is still the same run as the other reports.
    assert!(md.contains(report["run_id"].as_str().unwrap()));
    assert!(!report.to_string().contains("K3Y"));
}

#[test]
fn a_429_is_retried_after_its_retry_after_and_attempts_are_counted_per_event() {
    let _serial = serial();
    let hook = LoopServer::start(None, |n| match n {
        0 => Reply::status(429, "{\"error\": \"rate limited\"}").header("Retry-After", "1"),
        _ => Reply::status(200, ""),
    });
    // PagerDuty: the first event fails once (503), the second goes through at once.
    let pd = LoopServer::start(None, |n| match n {
        0 => Reply::status(503, "busy"),
        _ => Reply::status(202, ""),
    });
    set_env("VIGIL_TEST_HOOK_429", &hook.url());
    set_env("VIGIL_TEST_PD_429", "K3Y");
    let copy = puffy_copy();
    let destinations = format!(
        "    hook: {{kind: webhook, url_env: VIGIL_TEST_HOOK_429}}\n    pd: {{kind: pagerduty, routing_key_env: VIGIL_TEST_PD_429, events_url: \"{}\"}}\n",
        pd.url()
    );
    let (report, _, stdout, _) =
        timed_run(copy.path(), &destinations, "error_channels: [hook, pd]");
    let hits = hook.stop();
    assert_eq!(hits.len(), 2);
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_millis(900),
        "{waited:?}: Retry-After: 1 ignored"
    );
    let deliveries = report["routing"]["deliveries"].as_array().unwrap();
    let hook_d = &deliveries[0];
    assert_eq!(
        (hook_d["status"].as_str(), hook_d["attempts"].as_u64()),
        (Some("sent"), Some(2)),
        "{hook_d}"
    );
    assert_eq!(pd.stop().len(), 3);
    let pd_d = &deliveries[1];
    let attempts: Vec<u64> = pd_d["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [2, 1], "{pd_d}");
    assert_eq!(
        (
            pd_d["status"].as_str(),
            pd_d["attempts"].as_u64(),
            pd_d["sent"].as_u64()
        ),
        (Some("sent"), Some(3), Some(2))
    );
    assert!(
        stdout.contains("vigil: alert to pd (pagerduty): sent (2 finding(s))"),
        "{stdout}"
    );
}

#[test]
fn malformed_urls_give_a_clear_error_without_the_secret() {
    let _serial = serial();
    set_env("VIGIL_TEST_HOOK_NO_SCHEME", "hooks.example.com/T0/S3CRET");
    set_env("VIGIL_TEST_HOOK_GARBAGE", "http://exa mple.com/S3CRET");
    set_env("VIGIL_TEST_PD_BADURL", "K3Y");
    let copy = puffy_copy();
    let (code, report, stdout) = run(
        copy.path(),
        "    a: {kind: webhook, url_env: VIGIL_TEST_HOOK_NO_SCHEME}\n    b: {kind: slack, webhook_url_env: VIGIL_TEST_HOOK_GARBAGE}\n    c: {kind: pagerduty, routing_key_env: VIGIL_TEST_PD_BADURL, events_url: \"ftp://events.example.com\"}\n",
        "error_channels: [a, b, c]",
        &[],
    );
    assert_eq!(code, 0);
    let errors: Vec<&str> = report["routing"]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["error"].as_str().unwrap())
        .collect();
    assert_eq!(
        errors,
        [
            "the value of VIGIL_TEST_HOOK_NO_SCHEME is not a usable URL: it has no http:// or https:// scheme",
            "the value of VIGIL_TEST_HOOK_GARBAGE is not a usable URL: it is not a valid URL (a typo, a space or a missing scheme?)",
            "alert_routing.destinations.c.events_url `ftp://events.example.com` is not a usable URL: its scheme is not http or https",
        ]
    );
    assert!(!stdout.contains("S3CRET") && !report.to_string().contains("S3CRET"));
}

/// The Puffy warehouse with the `direct` channel renamed to `name` in every table.
fn rename_direct(warehouse: &Path, name: &str) {
    for entry in std::fs::read_dir(warehouse).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let renamed: String = text
            .lines()
            .map(|line| {
                line.split(',')
                    .map(|cell| if cell == "direct" { name } else { cell })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&path, renamed + "\n").unwrap();
    }
}

#[test]
fn a_hostile_channel_name_is_escaped_in_every_report_the_console_and_the_alerts() {
    let _serial = serial();
    let copy = puffy_copy();
    let long = "x".repeat(1_200);
    let hostile =
        format!("<!channel> & |a|b| `tick` <script>alert(1)</script> \u{1b}[31mRED\u{7}{long}");
    rename_direct(&copy.path().join("warehouse"), &hostile);
    let slack = LoopServer::start(None, |_| Reply::status(200, ""));
    let pd = LoopServer::start(None, |_| Reply::status(202, ""));
    set_env("VIGIL_TEST_SLACK_HOSTILE", &slack.url());
    set_env("VIGIL_TEST_PD_HOSTILE", "K3Y");
    let example = std::fs::read_to_string(repo_root().join("schema/examples/puffy.yml")).unwrap();
    let (head, _) = example.split_once("alert_routing:").unwrap();
    let config = copy.path().join("vigil.yml");
    std::fs::write(
        &config,
        format!(
            "{head}alert_routing:\n  warn_channels: [slack, pd]\n  destinations:\n    slack: {{kind: slack, webhook_url_env: VIGIL_TEST_SLACK_HOSTILE}}\n    pd: {{kind: pagerduty, routing_key_env: VIGIL_TEST_PD_HOSTILE, events_url: \"{}\"}}\n",
            pd.url()
        ),
    )
    .unwrap();
    let out = copy.path().join("reports");
    let result = vigil_run(
        &copy.path().join("warehouse"),
        &config,
        &out,
        "2025-03-08",
        &[],
    );
    assert_eq!(result.code, 0, "{result:?}");
    let report = json_report(&out);
    // The channel shift is found under its hostile name.
    let shift = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "anomaly:channel_session_share")
        .expect("the channel shift");
    assert_eq!(shift["context"]["channel"], hostile.as_str());
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();

    // JUnit: well-formed XML 1.0, the name intact apart from the escaped controls.
    let junit = read("monitoring_report.junit.xml");
    let doc = roxmltree::Document::parse(&junit).expect("the JUnit report is valid XML");
    let visible = hostile.replace('\u{1b}', "\\x1b").replace('\u{7}', "\\x07");
    assert!(
        doc.descendants().any(
            |n| n.attribute("message").is_some_and(|m| m.contains(&visible))
                || n.text().is_some_and(|t| t.contains(&visible))
        ),
        "the channel is in the JUnit report"
    );
    let run_id = report["run_id"].as_str().unwrap();
    assert!(doc.descendants().any(|n| n.has_tag_name("property")
        && n.attribute("name") == Some("run_id")
        && n.attribute("value") == Some(run_id)));

    // Markdown: no raw HTML, no table cell split by the name, no raw control character.
    let md = read("monitoring_report.md");
    let raw: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("<script") || l.contains("<!channel"))
        .collect();
    assert!(raw.is_empty(), "raw HTML in Markdown: {raw:?}");
    assert!(
        !md.chars().any(|c| c.is_control() && c != '\n'),
        "a control character in Markdown"
    );
    assert!(
        md.contains("&lt;script&gt;") && md.contains("\\|a\\|b\\|"),
        "{md}"
    );
    for table_row in md
        .lines()
        .filter(|l| l.starts_with("| `anomaly:channel_session_share"))
    {
        // metric, value, baseline, z, change, flagged: 6 cells, 7 unescaped bars.
        let bars = table_row.matches('|').count() - table_row.matches("\\|").count();
        assert_eq!(bars, 7, "{table_row}");
    }

    // HTML: escaped, no raw control character.
    let html = read("monitoring_report.html");
    assert!(!html.contains("<script") && html.contains("&lt;script&gt;"));
    assert!(!html.chars().any(|c| c.is_control() && c != '\n'));

    // Console: no escape sequence reaches the terminal.
    assert!(!result.stdout.contains('\u{1b}') && !result.stdout.contains('\u{7}'));
    assert!(
        result.stdout.contains("\\x1b[31mRED\\x07"),
        "{}",
        result.stdout
    );

    // Slack: no mention, no link, no raw control character.
    let slack_hits = slack.stop();
    let text = slack_hits[0].body["text"].as_str().unwrap();
    assert!(
        !text.contains("<!channel>") && !text.contains("<script"),
        "{text}"
    );
    assert!(text.contains("&lt;!channel&gt; &amp; |a|b|"), "{text}");
    assert!(text.chars().count() <= 40_000);

    // PagerDuty: the summary within 1,024 characters, the dedup key within 255 bytes.
    let pd_hits = pd.stop();
    assert!(!pd_hits.is_empty());
    for hit in &pd_hits {
        let summary = hit.body["payload"]["summary"].as_str().unwrap();
        assert!(summary.chars().count() <= 1_024, "{}", summary.len());
        assert!(hit.body["dedup_key"].as_str().unwrap().len() <= 255);
    }
    assert!(pd_hits.iter().any(|h| h.body["payload"]["summary"]
        .as_str()
        .unwrap()
        .ends_with('…')));
}
