//! Alert delivery: the findings of each severity go to the destinations its channel list names
//! (Slack incoming webhook, PagerDuty Events API v2, generic JSON webhook), over HTTP with a
//! timeout per request, bounded retries and one deadline for the whole delivery. A failed
//! delivery is reported, never fatal: the run's verdict and exit code stay the data's. Secrets
//! come from environment variables and are never written to reports, logs or the console.
//!
//! The run first [`plan`]s the deliveries (reading the secrets, building every request, so the
//! reports can list them as `pending`), writes the reports, then [`deliver`]s: the destinations
//! in parallel, each one's requests in order, all bounded by `alert_routing.deadline_seconds`;
//! what the deadline leaves is recorded as `not_attempted`.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use std::collections::HashSet;

use crate::config::{AlertRouting, Destination};
use crate::report::text;
use crate::report::{one_line, verdict, Delivery, RequestOutcome, RunInfo};
use crate::rule::{Finding, Severity};
use crate::runner::Evaluation;
use crate::state::incident::{Lifecycle, Notice, Status, Tracked};
use crate::state::store::Delivered;
use crate::state::{dedup_key, fingerprint};

/// Characters Slack shows of a message's `text` (it truncates beyond).
pub const SLACK_MAX_CHARS: usize = 40_000;
/// Characters of one finding's line in a Slack message.
const SLACK_MAX_LINE: usize = 2_000;
/// Characters of a PagerDuty event's `payload.summary`.
pub const PAGERDUTY_MAX_SUMMARY: usize = 1_024;
/// Characters of an answer's body kept in a recorded error.
const BODY_EXCERPT: usize = 200;

/// One HTTP request to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Where to.
    pub url: String,
    /// The JSON body.
    pub body: Value,
    /// The PagerDuty dedup key of the event, if any.
    pub dedup_key: Option<String>,
}

/// Where environment variables are read (tests pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One destination's delivery, ready to send: its requests, the incidents it tells about and
/// the secrets to keep out of anything printed or recorded.
#[derive(Clone, Debug)]
pub struct Planned {
    delivery: Delivery,
    requests: Vec<Request>,
    covers: Vec<(String, Notice)>,
    secrets: Vec<String>,
}

impl Planned {
    /// The delivery as the reports show it before it is made: `pending` (or `failed` when the
    /// destination cannot be addressed: a missing secret, an unusable URL).
    pub fn delivery(&self) -> &Delivery {
        &self.delivery
    }
}

/// The notices routed to one destination.
struct Routed<'a> {
    /// New (or escalated, or not yet announced) incidents, each with its most severe finding.
    opened: Vec<(&'a Tracked, &'a Finding)>,
    /// Incidents still failing on a new partition (Slack and webhooks only).
    ongoing: Vec<&'a Tracked>,
    /// Incidents this run resolved.
    resolved: Vec<&'a Tracked>,
}

impl Routed<'_> {
    fn len(&self) -> usize {
        self.opened.len() + self.ongoing.len() + self.resolved.len()
    }

    /// The incidents told about, with what is said of each.
    fn covers(&self) -> Vec<(String, Notice)> {
        let opened = self.opened.iter().map(|(t, _)| (t, Notice::Open));
        let ongoing = self.ongoing.iter().map(|t| (t, Notice::Remind));
        let resolved = self.resolved.iter().map(|t| (t, Notice::Resolve));
        opened
            .chain(ongoing)
            .chain(resolved)
            .map(|(t, notice)| (t.incident.fingerprint.clone(), notice))
            .collect()
    }
}

/// The notices of a run's incident `lifecycle` routed to the destination `name`: each due
/// notice whose severity's channel list names it (a resolution: the severity it was announced
/// at), and no reminder for a PagerDuty destination (its incident stays open by itself).
fn route<'a>(
    routing: &AlertRouting,
    name: &str,
    pagerduty: bool,
    lifecycle: &'a Lifecycle,
    findings: &'a [Finding],
) -> Routed<'a> {
    let routes = |s: Severity| channels(routing, s).iter().any(|c| c == name);
    let due = |notice: Notice| {
        lifecycle
            .tracked
            .values()
            .filter(move |t| t.notice == Some(notice))
    };
    Routed {
        opened: due(Notice::Open)
            .filter(|t| routes(t.incident.severity))
            .filter_map(|t| {
                let print = &t.incident.fingerprint;
                findings
                    .iter()
                    .find(|f| fingerprint(f) == *print)
                    .map(|f| (t, f))
            })
            .collect(),
        ongoing: if pagerduty {
            Vec::new()
        } else {
            due(Notice::Remind)
                .filter(|t| routes(t.incident.severity))
                .collect()
        },
        resolved: due(Notice::Resolve)
            .filter(|t| t.incident.notified.is_some_and(routes))
            .collect(),
    }
}

/// What a run would send if every channel `alert_routing` names (a configured destination or
/// only a name such as `slack://#data-alerts`) took each alert: per channel, in name order,
/// the incidents it would be told about. A PagerDuty destination, or a channel named
/// `pagerduty://...`, gets no reminders. What `vigil backtest` counts.
pub fn would_send(
    routing: &AlertRouting,
    lifecycle: &Lifecycle,
    findings: &[Finding],
) -> Vec<(String, Vec<(String, Notice)>)> {
    let named: std::collections::BTreeSet<&String> = routing
        .error_channels
        .iter()
        .chain(&routing.warn_channels)
        .chain(&routing.info_channels)
        .chain(routing.destinations.keys())
        .collect();
    named
        .into_iter()
        .filter_map(|name| {
            let pagerduty = match routing.destinations.get(name) {
                Some(destination) => matches!(destination, Destination::Pagerduty { .. }),
                None => name.starts_with("pagerduty:"),
            };
            let covers = route(routing, name, pagerduty, lifecycle, findings).covers();
            (!covers.is_empty()).then(|| (name.clone(), covers))
        })
        .collect()
}

/// The deliveries of a run: one per destination that has something due (per the run's
/// incident lifecycle: new incidents, daily "still failing" reminders, resolutions), each with
/// its requests built (the secrets read from `env`). `reports` are the report paths a webhook
/// is told about.
pub fn plan(
    info: &RunInfo<'_>,
    eval: &Evaluation,
    reports: &[std::path::PathBuf],
    env: Env<'_>,
) -> Vec<Planned> {
    let routing = &info.config.alert_routing;
    let mut plans = Vec::new();
    for (name, destination) in &routing.destinations {
        let kind = match destination {
            Destination::Slack { .. } => "slack",
            Destination::Pagerduty { .. } => "pagerduty",
            Destination::Webhook { .. } => "webhook",
        };
        let routed = route(
            routing,
            name,
            kind == "pagerduty",
            &info.lifecycle,
            &eval.findings,
        );
        if routed.len() == 0 {
            continue;
        }
        let covers = routed.covers();
        let mut delivery = Delivery {
            destination: name.clone(),
            kind,
            status: "pending",
            findings: routed.len(),
            requests: Vec::new(),
            error: None,
        };
        let mut secrets = Vec::new();
        match requests(
            name,
            destination,
            info,
            eval,
            reports,
            &routed,
            env,
            &mut secrets,
        ) {
            Ok(requests) => {
                delivery.requests = requests
                    .iter()
                    .map(|r| RequestOutcome {
                        dedup_key: r.dedup_key.clone(),
                        status: "pending",
                        attempts: 0,
                        error: None,
                    })
                    .collect();
                plans.push(Planned {
                    delivery,
                    requests,
                    covers,
                    secrets,
                });
            }
            Err(e) => {
                delivery.status = "failed";
                delivery.error = Some(e);
                plans.push(Planned {
                    delivery,
                    requests: Vec::new(),
                    covers,
                    secrets,
                });
            }
        }
    }
    plans
}

/// Which notices reached every destination they were routed to (`plans` and the
/// `deliveries` made of them, in the same order): an incident is announced once its opening
/// alert was sent everywhere, and retried by the next run otherwise.
pub fn delivered(covers: &[Vec<(String, Notice)>], deliveries: &[Delivery]) -> Delivered {
    let mut failed: HashSet<(&str, Notice)> = HashSet::new();
    let mut sent: HashSet<(&str, Notice)> = HashSet::new();
    for (covers, delivery) in covers.iter().zip(deliveries) {
        let into = if delivery.status == "sent" {
            &mut sent
        } else {
            &mut failed
        };
        into.extend(covers.iter().map(|(p, n)| (p.as_str(), *n)));
    }
    let ok = |notice: Notice| -> HashSet<String> {
        sent.iter()
            .filter(|(p, n)| *n == notice && !failed.contains(&(*p, notice)))
            .map(|(p, _)| (*p).to_string())
            .collect()
    };
    Delivered {
        opened: ok(Notice::Open),
        reminded: ok(Notice::Remind),
    }
}

/// The incidents each planned delivery tells about, in plan order (for [`delivered`]).
pub fn covers(plans: &[Planned]) -> Vec<Vec<(String, Notice)>> {
    plans.iter().map(|p| p.covers.clone()).collect()
}

/// Makes the planned deliveries: the destinations in parallel, all within
/// `alert_routing.deadline_seconds` from now (requests the deadline leaves are
/// `not_attempted`). With `dry_run`, sends nothing and prints what would be sent on `out`,
/// secrets redacted.
pub fn deliver(
    routing: &AlertRouting,
    plans: Vec<Planned>,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Vec<Delivery> {
    if dry_run {
        return plans
            .into_iter()
            .map(|plan| {
                let mut delivery = plan.delivery;
                if delivery.status != "pending" {
                    return delivery;
                }
                for request in &plan.requests {
                    let shown = redact_value(&request.body, &plan.secrets);
                    let _ = writeln!(
                        out,
                        "vigil: would send to {} ({}): {}",
                        text::console(&delivery.destination),
                        delivery.kind,
                        text::console(&shown.to_string())
                    );
                }
                delivery.status = "dry_run";
                for r in &mut delivery.requests {
                    r.status = "dry_run";
                }
                delivery
            })
            .collect();
    }
    let now = Instant::now();
    let limit = seconds(routing.deadline_seconds);
    let deadline = now.checked_add(limit).unwrap_or(now);
    std::thread::scope(|scope| {
        let running: Vec<_> = plans
            .into_iter()
            .map(|plan| {
                let pending = plan.delivery.clone();
                let handle = scope.spawn(move || send_all(routing, plan, deadline));
                (pending, handle)
            })
            .collect();
        running
            .into_iter()
            .map(|(pending, handle)| {
                handle.join().unwrap_or_else(|_| Delivery {
                    status: "failed",
                    error: Some("the delivery thread panicked".into()),
                    ..pending
                })
            })
            .collect()
    })
}

/// One destination's requests in order, until the deadline.
fn send_all(routing: &AlertRouting, plan: Planned, deadline: Instant) -> Delivery {
    let mut delivery = plan.delivery;
    if delivery.status != "pending" {
        return delivery;
    }
    delivery.requests = plan
        .requests
        .iter()
        .map(|request| send(routing, request, deadline, &plan.secrets))
        .collect();
    let (sent, failed, skipped) = (
        delivery.count("sent"),
        delivery.count("failed"),
        delivery.count("not_attempted"),
    );
    let total = delivery.requests.len();
    delivery.status = if failed > 0 {
        "failed"
    } else if skipped == total {
        "not_attempted"
    } else if skipped > 0 {
        "incomplete"
    } else {
        "sent"
    };
    delivery.error = if total == 1 {
        delivery.requests[0].error.clone()
    } else if failed + skipped == 0 {
        None
    } else {
        let mut parts = Vec::new();
        if failed > 0 {
            let first = delivery
                .requests
                .iter()
                .find(|r| r.status == "failed")
                .map(|r| {
                    format!(
                        "first: {} after {} attempt(s): {}",
                        r.dedup_key.as_deref().unwrap_or("request"),
                        r.attempts,
                        r.error.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_default();
            parts.push(format!("{failed} of {total} request(s) failed ({first})"));
        }
        if skipped > 0 {
            parts.push(format!(
                "{skipped} of {total} request(s) not attempted: the delivery deadline of {} s had passed ({sent} sent)",
                routing.deadline_seconds
            ));
        }
        Some(parts.join("; "))
    };
    delivery
}

fn channels(routing: &AlertRouting, severity: Severity) -> &[String] {
    match severity {
        Severity::Error => &routing.error_channels,
        Severity::Warn => &routing.warn_channels,
        Severity::Info => &routing.info_channels,
    }
}

/// The requests of one destination (the secret read from its environment variable and added to
/// `secrets`).
#[allow(clippy::too_many_arguments)]
fn requests(
    name: &str,
    destination: &Destination,
    info: &RunInfo<'_>,
    eval: &Evaluation,
    reports: &[std::path::PathBuf],
    routed: &Routed<'_>,
    env: Env<'_>,
    secrets: &mut Vec<String>,
) -> Result<Vec<Request>, String> {
    let mut secret = |var: &str| {
        let value = env(var)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("environment variable {var} is not set"))?;
        secrets.push(value.clone());
        Ok::<String, String>(value)
    };
    let secret_url = |value: String, var: &str| {
        usable_url(&value)
            .map(|()| value)
            .map_err(|why| format!("the value of {var} is not a usable URL: {why}"))
    };
    let headline = format!(
        "vigil: {} for partition {} ({} ERROR, {} WARN, {} INFO)",
        verdict(eval),
        eval.expected_date,
        eval.count(Severity::Error),
        eval.count(Severity::Warn),
        eval.count(Severity::Info)
    );
    let key = |t: &Tracked| dedup_key(&info.warehouse_id, &t.incident.fingerprint);
    Ok(match destination {
        Destination::Slack { webhook_url_env } => {
            let url = secret_url(secret(webhook_url_env)?, webhook_url_env)?;
            let new: Vec<String> = routed
                .opened
                .iter()
                .map(|(t, f)| {
                    let since = match t.status {
                        Status::New => String::new(),
                        _ => format!(
                            " (failing since {}, {} runs)",
                            t.incident.first_seen, t.incident.runs
                        ),
                    };
                    format!("*{}* {}{since}", f.severity, one_line(f))
                })
                .collect();
            let ongoing: Vec<String> = routed
                .ongoing
                .iter()
                .map(|t| {
                    format!(
                        "*{}* {} (since {}, {} runs)",
                        t.incident.severity,
                        incident_line(t),
                        t.incident.first_seen,
                        t.incident.runs
                    )
                })
                .collect();
            let resolved: Vec<String> = routed
                .resolved
                .iter()
                .map(|t| {
                    format!(
                        "{} (failing since {}, {} runs)",
                        incident_line(t),
                        t.incident.first_seen,
                        t.incident.runs
                    )
                })
                .collect();
            let sections = [
                ("New", new),
                ("Still failing", ongoing),
                ("Resolved", resolved),
            ];
            vec![Request {
                url,
                body: json!({"text": slack_text(&headline, &sections)}),
                dedup_key: None,
            }]
        }
        Destination::Pagerduty {
            routing_key_env,
            events_url,
        } => {
            let routing_key = secret(routing_key_env)?;
            usable_url(events_url).map_err(|why| {
                format!(
                    "alert_routing.destinations.{name}.events_url `{}` is not a usable URL: {why}",
                    text::console(&redact(events_url, std::slice::from_ref(&routing_key)))
                )
            })?;
            let triggers = routed.opened.iter().map(|(t, f)| {
                let dedup_key = key(t);
                Request {
                    url: events_url.clone(),
                    body: json!({
                        "routing_key": routing_key,
                        "event_action": "trigger",
                        "dedup_key": dedup_key,
                        "payload": {
                            "summary": text::truncate(&one_line(f), PAGERDUTY_MAX_SUMMARY),
                            "source": "vigil",
                            "severity": match f.severity {
                                Severity::Error => "error",
                                Severity::Warn => "warning",
                                Severity::Info => "info",
                            },
                            "component": f.rule,
                            "custom_details": {
                                "check": f.check,
                                "subject": f.subject,
                                "fingerprint": t.incident.fingerprint,
                                "partition_date": f.partition_date.map(|d| d.to_string()),
                                "first_seen": t.incident.first_seen.to_string(),
                                "runs": t.incident.runs,
                                "value": f.value,
                                "threshold": f.threshold,
                                "run_id": info.run_id,
                            },
                        },
                    }),
                    dedup_key: Some(dedup_key),
                }
            });
            let resolves = routed.resolved.iter().map(|t| {
                let dedup_key = key(t);
                Request {
                    url: events_url.clone(),
                    body: json!({
                        "routing_key": routing_key,
                        "event_action": "resolve",
                        "dedup_key": dedup_key,
                    }),
                    dedup_key: Some(dedup_key),
                }
            });
            triggers.chain(resolves).collect()
        }
        Destination::Webhook { url_env } => {
            let incident = |t: &Tracked| {
                json!({
                    "fingerprint": t.incident.fingerprint,
                    "dedup_key": key(t),
                    "severity": t.incident.severity.label(),
                    "check": t.incident.check,
                    "subject": t.incident.subject,
                    "first_seen": t.incident.first_seen.to_string(),
                    "last_seen": t.incident.last_seen.to_string(),
                    "runs": t.incident.runs,
                    "message": t.incident.message,
                })
            };
            vec![Request {
                url: secret_url(secret(url_env)?, url_env)?,
                body: json!({
                    "run_id": info.run_id,
                    "warehouse_id": info.warehouse_id,
                    "verdict": verdict(eval),
                    "expected_partition_date": eval.expected_date.to_string(),
                    "counts": {
                        "ERROR": eval.count(Severity::Error),
                        "WARN": eval.count(Severity::Warn),
                        "INFO": eval.count(Severity::Info),
                    },
                    "findings": routed.opened.iter().map(|(t, f)| json!({
                        "severity": f.severity.label(),
                        "check": f.check,
                        "subject": f.subject,
                        "fingerprint": t.incident.fingerprint,
                        "dedup_key": key(t),
                        "status": t.status,
                        "first_seen": t.incident.first_seen.to_string(),
                        "runs": t.incident.runs,
                        "partition_date": f.partition_date.map(|d| d.to_string()),
                        "message": f.message,
                        "value": f.value,
                        "threshold": f.threshold,
                    })).collect::<Vec<_>>(),
                    "ongoing": routed.ongoing.iter().map(|t| incident(t)).collect::<Vec<_>>(),
                    "resolved": routed.resolved.iter().map(|t| incident(t)).collect::<Vec<_>>(),
                    "reports": reports.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                }),
                dedup_key: None,
            }]
        }
    })
}

/// `check [subject]: message` of an incident.
fn incident_line(t: &Tracked) -> String {
    let i = &t.incident;
    match &i.subject {
        Some(subject) => format!("{} [{subject}]: {}", i.check, i.message),
        None => format!("{}: {}", i.check, i.message),
    }
}

/// The Slack message: the headline, then each non-empty section (`*New*`, `*Still failing*`,
/// `*Resolved*`) with one line per incident (`&`, `<`, `>` escaped as Slack documents, each
/// line at most [`SLACK_MAX_LINE`] characters), cut before [`SLACK_MAX_CHARS`] with "… and N
/// more".
pub fn slack_text(headline: &str, sections: &[(&str, Vec<String>)]) -> String {
    let mut message = text::slack(headline);
    let mut length = message.chars().count();
    // Room for the last line: "\n… and 1234567 more (see the reports)".
    let reserve = 64;
    let total: usize = sections.iter().map(|(_, lines)| lines.len()).sum();
    let mut shown = 0;
    'sections: for (title, lines) in sections.iter().filter(|(_, l)| !l.is_empty()) {
        let heading = format!("\n*{title}* ({})", lines.len());
        let mut heading = Some(heading);
        for line in lines {
            let line = format!("\n• {}", text::truncate(&text::slack(line), SLACK_MAX_LINE));
            let add = heading.as_deref().unwrap_or("").chars().count() + line.chars().count();
            if length + add + reserve > SLACK_MAX_CHARS {
                message.push_str(&format!("\n… and {} more (see the reports)", total - shown));
                break 'sections;
            }
            if let Some(h) = heading.take() {
                message.push_str(&h);
            }
            length += add;
            message.push_str(&line);
            shown += 1;
        }
    }
    message
}

/// Why a URL cannot be sent to (without quoting it: it may be a secret).
fn usable_url(url: &str) -> Result<(), &'static str> {
    if !url.contains("://") {
        return Err("it has no http:// or https:// scheme");
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| "it is not a valid URL (a typo, a space or a missing scheme?)")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        None => return Err("it has no http:// or https:// scheme"),
        Some(_) => return Err("its scheme is not http or https"),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("it has no host");
    }
    Ok(())
}

/// A number of seconds from the config as a duration, never panicking: negative or NaN is 0,
/// anything above 10^9 s (infinity included) is 10^9 s.
pub fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.clamp(0.0, 1e9)).unwrap_or(Duration::ZERO)
}

/// Sends one request with retries (after a failed connection, a 5xx or a 429, waiting as the
/// answer's `Retry-After` says or else the doubling backoff), never past `deadline`.
fn send(
    routing: &AlertRouting,
    request: &Request,
    deadline: Instant,
    secrets: &[String],
) -> RequestOutcome {
    let mut outcome = RequestOutcome {
        dedup_key: request.dedup_key.clone(),
        status: "failed",
        attempts: 0,
        error: None,
    };
    let body = request.body.to_string();
    let past_deadline = format!(
        "the delivery deadline of {} s had passed",
        routing.deadline_seconds
    );
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            outcome.error = Some(match outcome.error.take() {
                None => {
                    outcome.status = "not_attempted";
                    format!("not attempted: {past_deadline}")
                }
                Some(last) => format!("{last}; not retried: {past_deadline}"),
            });
            return outcome;
        }
        let timeout = seconds(routing.timeout_seconds)
            .min(remaining)
            .max(Duration::from_millis(1));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        outcome.attempts += 1;
        let result = agent
            .post(&request.url)
            .header("Content-Type", "application/json")
            .header("User-Agent", concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .send(body.as_str());
        let (retry, wait, error) = match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                if (200..=299).contains(&status) {
                    outcome.status = "sent";
                    outcome.error = None;
                    return outcome;
                }
                let wait = retry_after(response.headers());
                let excerpt = body_excerpt(response.body_mut(), secrets);
                match status {
                    429 | 500..=599 => (true, wait, format!("HTTP {status}{excerpt}")),
                    _ => (false, None, format!("HTTP {status} (not retried){excerpt}")),
                }
            }
            Err(e) => (true, None, redact(&transport_error(&e), secrets)),
        };
        if !retry || outcome.attempts > routing.retries {
            outcome.error = Some(error);
            return outcome;
        }
        let backoff = routing.retry_backoff_seconds
            * 2f64.powi(i32::try_from(outcome.attempts - 1).unwrap_or(i32::MAX));
        let wait = wait.unwrap_or_else(|| seconds(backoff));
        let remaining = deadline.saturating_duration_since(Instant::now());
        if wait >= remaining && wait < Duration::from_millis(100) {
            outcome.error = Some(format!("{error}; not retried: {past_deadline}"));
            return outcome;
        }
        if wait >= remaining {
            outcome.error = Some(format!(
                "{error}; not retried: the wait of {:.1} s before the next attempt would pass the delivery deadline of {} s",
                wait.as_secs_f64(),
                routing.deadline_seconds
            ));
            return outcome;
        }
        outcome.error = Some(error);
        std::thread::sleep(wait);
    }
}

/// The wait an answer's `Retry-After` asks for: seconds, or an HTTP date.
fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(s) = value.parse::<f64>() {
        return Some(seconds(s));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// `, body: <the start of the answer's body>` (one line, secrets redacted, controls escaped),
/// or nothing for an empty body.
fn body_excerpt(body: &mut ureq::Body, secrets: &[String]) -> String {
    let mut bytes = Vec::new();
    let _ = body
        .as_reader()
        .take(4 * BODY_EXCERPT as u64)
        .read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return String::new();
    }
    let redacted = redact(&one_line, secrets);
    format!(
        ", body: {}",
        text::console(&text::truncate(&redacted, BODY_EXCERPT))
    )
}

/// The text with every secret replaced by `***`.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

/// A JSON value with every secret in its strings replaced by `***`.
fn redact_value(value: &Value, secrets: &[String]) -> Value {
    match value {
        Value::String(s) => Value::String(redact(s, secrets)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| redact_value(v, secrets)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_value(v, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A transport error without the URL (which may hold a secret).
fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::BadUri(_) => "the URL is not valid".into(),
        ureq::Error::Tls(_) => "TLS failed".into(),
        other => {
            let kind = error_kind(other);
            if kind.is_empty() {
                "request failed".into()
            } else {
                format!("request failed: {kind}")
            }
        }
    }
}

fn error_kind(e: &ureq::Error) -> String {
    let text = e.to_string();
    // ureq's messages may quote the URL; keep only the text before any "http".
    text::console(
        text.split("http")
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches(':'),
    )
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(check: &str) -> Finding {
        let mut f = Finding::new(Severity::Error, "rule", check, "message");
        f.partition_date = chrono::NaiveDate::from_ymd_opt(2025, 3, 9);
        f
    }

    #[test]
    fn no_duration_from_the_config_panics() {
        for s in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, -1.0, 1e300, 0.0] {
            let _ = seconds(s);
        }
        // A delivery with absurd settings returns (no panic, no endless wait).
        let routing = AlertRouting {
            timeout_seconds: f64::INFINITY,
            retry_backoff_seconds: f64::NAN,
            deadline_seconds: f64::INFINITY,
            retries: 1,
            ..AlertRouting::default()
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let request = Request {
            url,
            body: json!({}),
            dedup_key: None,
        };
        let deadline = Instant::now() + seconds(routing.deadline_seconds);
        let outcome = send(&routing, &request, deadline, &[]);
        assert_eq!((outcome.status, outcome.attempts), ("failed", 2));
    }

    #[test]
    fn a_slack_message_is_capped_with_the_count_left_out() {
        let findings: Vec<Finding> = (0..500)
            .map(|i| {
                let mut f = finding(&format!("drift:{i}"));
                f.message = format!("<{}>", "m".repeat(5_000));
                f
            })
            .collect();
        let lines: Vec<String> = findings
            .iter()
            .map(|f| format!("*{}* {}", f.severity, one_line(f)))
            .collect();
        let text = slack_text("vigil: FAIL", &[("New", lines), ("Resolved", Vec::new())]);
        let chars = text.chars().count();
        assert!(chars <= SLACK_MAX_CHARS, "{chars}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "*New* (500)");
        let shown = lines.len() - 3;
        assert!(shown >= 15, "{shown}");
        assert_eq!(
            lines.last().copied(),
            Some(format!("… and {} more (see the reports)", 500 - shown).as_str())
        );
        assert!(lines[2].starts_with("• *ERROR* drift:0 (2025-03-09): &lt;mmm"));
        assert!(lines[2].chars().count() <= SLACK_MAX_LINE + 12);
    }

    #[test]
    fn urls_without_scheme_or_host_are_refused_with_a_reason() {
        assert!(usable_url("https://hooks.slack.com/services/T/B/X").is_ok());
        assert_eq!(
            usable_url("hooks.slack.com/x"),
            Err("it has no http:// or https:// scheme")
        );
        assert!(usable_url("not a url").is_err());
        assert_eq!(
            usable_url("ftp://host/x"),
            Err("its scheme is not http or https")
        );
    }
}
