//! Alert delivery: the findings of each severity go to the destinations its channel list names
//! (Slack incoming webhook, PagerDuty Events API v2, generic JSON webhook), over HTTP with a
//! timeout and bounded retries. A failed delivery is reported, never fatal: the run's verdict
//! and exit code stay the data's. Secrets come from environment variables and are never
//! written to reports or logs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{AlertRouting, Destination};
use crate::report::{one_line, verdict, Delivery, RunInfo};
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;

/// One HTTP request to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Where to.
    pub url: String,
    /// The JSON body.
    pub body: Value,
}

/// Where environment variables are read (tests pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Delivers the run's findings to every destination that has some; with `dry_run`, only says
/// what would be sent (on `out`).
pub fn deliver(
    info: &RunInfo<'_>,
    eval: &Evaluation,
    reports: &[std::path::PathBuf],
    dry_run: bool,
    env: Env<'_>,
    out: &mut dyn std::io::Write,
) -> Vec<Delivery> {
    let routing = &info.config.alert_routing;
    let mut deliveries = Vec::new();
    for (name, destination) in &routing.destinations {
        let routed: Vec<&Finding> = eval
            .findings
            .iter()
            .filter(|f| channels(routing, f.severity).contains(name))
            .collect();
        if routed.is_empty() {
            continue;
        }
        let kind = match destination {
            Destination::Slack { .. } => "slack",
            Destination::Pagerduty { .. } => "pagerduty",
            Destination::Webhook { .. } => "webhook",
        };
        let mut delivery = Delivery {
            destination: name.clone(),
            kind,
            status: "sent",
            findings: routed.len(),
            requests: 0,
            attempts: 0,
            error: None,
        };
        let requests = match requests(destination, info, eval, reports, &routed, env) {
            Ok(requests) => requests,
            Err(e) => {
                delivery.status = "failed";
                delivery.error = Some(e);
                deliveries.push(delivery);
                continue;
            }
        };
        delivery.requests = requests.len();
        if dry_run {
            delivery.status = "dry_run";
            for request in &requests {
                let _ = writeln!(
                    out,
                    "vigil: would send to {name} ({kind}): {}",
                    request.body
                );
            }
            deliveries.push(delivery);
            continue;
        }
        for request in &requests {
            let (attempts, result) = send(routing, request);
            delivery.attempts += attempts;
            if let Err(e) = result {
                delivery.status = "failed";
                delivery.error = Some(e);
            }
        }
        deliveries.push(delivery);
    }
    deliveries
}

fn channels(routing: &AlertRouting, severity: Severity) -> &[String] {
    match severity {
        Severity::Error => &routing.error_channels,
        Severity::Warn => &routing.warn_channels,
        Severity::Info => &routing.info_channels,
    }
}

/// The requests of one destination (the secret read from its environment variable).
fn requests(
    destination: &Destination,
    info: &RunInfo<'_>,
    eval: &Evaluation,
    reports: &[std::path::PathBuf],
    routed: &[&Finding],
    env: Env<'_>,
) -> Result<Vec<Request>, String> {
    let secret = |var: &str| {
        env(var)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("environment variable {var} is not set"))
    };
    let headline = format!(
        "vigil: {} for partition {} ({} ERROR, {} WARN, {} INFO)",
        verdict(eval),
        eval.expected_date,
        eval.count(Severity::Error),
        eval.count(Severity::Warn),
        eval.count(Severity::Info)
    );
    Ok(match destination {
        Destination::Slack { webhook_url_env } => {
            let lines: Vec<String> = routed
                .iter()
                .map(|f| format!("• *{}* {}", f.severity, one_line(f)))
                .collect();
            vec![Request {
                url: secret(webhook_url_env)?,
                body: json!({"text": format!("{headline}\n{}", lines.join("\n"))}),
            }]
        }
        Destination::Pagerduty {
            routing_key_env,
            events_url,
        } => {
            let key = secret(routing_key_env)?;
            routed
                .iter()
                .map(|f| Request {
                    url: events_url.clone(),
                    body: json!({
                        "routing_key": key,
                        "event_action": "trigger",
                        "dedup_key": dedup_key(f),
                        "payload": {
                            "summary": one_line(f),
                            "source": "vigil",
                            "severity": match f.severity {
                                Severity::Error => "error",
                                Severity::Warn => "warning",
                                Severity::Info => "info",
                            },
                            "component": f.rule,
                            "custom_details": {
                                "check": f.check,
                                "partition_date": f.partition_date.map(|d| d.to_string()),
                                "value": f.value,
                                "threshold": f.threshold,
                                "run_id": info.run_id,
                            },
                        },
                    }),
                })
                .collect()
        }
        Destination::Webhook { url_env } => vec![Request {
            url: secret(url_env)?,
            body: json!({
                "run_id": info.run_id,
                "verdict": verdict(eval),
                "expected_partition_date": eval.expected_date.to_string(),
                "counts": {
                    "ERROR": eval.count(Severity::Error),
                    "WARN": eval.count(Severity::Warn),
                    "INFO": eval.count(Severity::Info),
                },
                "findings": routed.iter().map(|f| json!({
                    "severity": f.severity.label(),
                    "check": f.check,
                    "partition_date": f.partition_date.map(|d| d.to_string()),
                    "message": f.message,
                    "value": f.value,
                    "threshold": f.threshold,
                })).collect::<Vec<_>>(),
                "reports": reports.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            }),
        }],
    })
}

/// The PagerDuty dedup key of a finding: one incident per check and partition.
pub fn dedup_key(f: &Finding) -> String {
    let day = f
        .partition_date
        .map_or("all".to_string(), |d| d.to_string());
    format!("vigil:{}:{day}", f.check)
}

/// Sends one request with retries; returns the attempts made and the outcome.
fn send(routing: &AlertRouting, request: &Request) -> (u32, Result<(), String>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs_f64(
            routing.timeout_seconds.max(0.001),
        )))
        .http_status_as_error(false)
        .build()
        .into();
    let body = request.body.to_string();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = agent
            .post(&request.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .send(body.as_str());
        let (retry, error) = match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => return (attempts, Ok(())),
                    500..=599 => (true, format!("HTTP {status}")),
                    _ => (false, format!("HTTP {status} (not retried)")),
                }
            }
            Err(e) => (true, transport_error(&e)),
        };
        if !retry || attempts > routing.retries {
            return (attempts, Err(error));
        }
        let backoff = routing.retry_backoff_seconds * 2f64.powi(attempts as i32 - 1);
        std::thread::sleep(Duration::from_secs_f64(backoff.max(0.0)));
    }
}

/// A transport error without the URL (which may hold a secret).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        other => format!("request failed: {}", error_kind(other)),
    }
}

fn error_kind(e: &ureq::Error) -> String {
    let text = e.to_string();
    // ureq's messages may quote the URL; keep only the text before any "http".
    text.split("http")
        .next()
        .unwrap_or("")
        .trim()
        .trim_end_matches(':')
        .to_string()
}
