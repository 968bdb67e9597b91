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
use vigil_tests::{json_report, puffy_copy, vigil_run};

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
    assert_eq!(
        keys,
        [
            "vigil:freshness:orders_partition:2025-03-09",
            "vigil:freshness:sessions_partition:2025-03-09"
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
        (Some("failed"), Some(1), Some("HTTP 400 (not retried)"))
    );
    assert!(
        stdout.contains(
            "vigil: alert to strict (webhook) FAILED after 1 attempt(s): HTTP 400 (not retried)"
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
    assert!(!stdout.contains("would send"), "{stdout}");
}
