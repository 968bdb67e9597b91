//! The incident lifecycle: a finding's fingerprint opens an incident, later runs in which it
//! still fires keep it ongoing, the first run in which it no longer fires resolves it. This
//! module is pure: it takes the open incidents and silences read from the store and a run's
//! findings, and says what each incident becomes and what is due to be sent about it.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::SilenceConfig;
use crate::rule::{Finding, Severity};

use super::fingerprint;

/// One incident: a fingerprint that fired, from its first run to its last.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Incident {
    /// Its id in the store (`None` until the run that opens it is committed).
    pub id: Option<i64>,
    /// The fingerprint of its findings (rule, check, subject).
    pub fingerprint: String,
    /// The rule of its findings.
    pub rule: String,
    /// The check of its findings.
    pub check: String,
    /// The subject of its findings, if any.
    pub subject: Option<String>,
    /// The severity of its latest finding (the most severe of a run).
    pub severity: Severity,
    /// The expected partition of the run that opened it.
    pub first_seen: NaiveDate,
    /// The expected partition of the latest run it fired in.
    pub last_seen: NaiveDate,
    /// How many daily runs it fired in (re-runs of a partition count once).
    pub runs: u32,
    /// The severity it was announced at, once an opening alert reached every destination its
    /// severity routes to.
    pub notified: Option<Severity>,
    /// The partition of the last run that announced it or sent an "ongoing" reminder.
    pub reminded: Option<NaiveDate>,
    /// The message of its latest finding.
    pub message: String,
}

/// What became of an incident in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened by this run.
    New,
    /// Open before, still firing.
    Ongoing,
    /// Open before, not firing any more: resolved by this run.
    Resolved,
}

/// What is due to be sent about an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// Announce it (new, escalated, or not yet announced everywhere): a PagerDuty `trigger`, a
    /// Slack and webhook "new" line.
    Open,
    /// Still failing on a new partition: a Slack and webhook "still failing" line (PagerDuty's
    /// incident is already open).
    Remind,
    /// It cleared: a PagerDuty `resolve`, a Slack and webhook "resolved" line.
    Resolve,
}

/// A silence: findings of a check (and subject) that are reported but not alerted until a day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Silence {
    /// Its id in the store (`None` for one declared in the config and not stored yet).
    pub id: Option<i64>,
    /// The check id (or a fingerprint) it covers.
    pub check: String,
    /// The subject it covers; `None`: every subject of the check.
    pub subject: Option<String>,
    /// The last expected partition it covers.
    pub until: NaiveDate,
    /// Why.
    pub reason: String,
    /// Who added it.
    pub created_by: String,
    /// Whether its expiry was already reported.
    pub expiry_reported: bool,
    /// `store` (added with `vigil silence add`) or `config`.
    pub origin: &'static str,
}

impl From<&SilenceConfig> for Silence {
    /// A silence declared in the config (`state.silences`), not stored yet.
    fn from(s: &SilenceConfig) -> Self {
        Silence {
            id: None,
            check: s.check.clone(),
            subject: s.subject.clone(),
            until: s.until,
            reason: s.reason.clone(),
            created_by: "config".into(),
            expiry_reported: false,
            origin: "config",
        }
    }
}

impl Silence {
    /// Whether it covers `f` on partition `day`.
    pub fn covers(&self, f: &Finding, day: NaiveDate) -> bool {
        day <= self.until && self.matches(f)
    }

    /// Whether it names `f`'s check (or fingerprint) and subject, whatever the day.
    pub fn matches(&self, f: &Finding) -> bool {
        let check = self.check == f.check || self.check == fingerprint(f);
        check
            && self
                .subject
                .as_ref()
                .is_none_or(|s| f.subject.as_ref() == Some(s))
    }
}

/// One incident's fate in this run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tracked {
    /// The incident, as it stands after this run.
    pub incident: Incident,
    /// What became of it.
    pub status: Status,
    /// The silence that covers its findings, if any.
    pub silence: Option<Silence>,
    /// What is due to be sent about it, if anything.
    pub notice: Option<Notice>,
}

/// What a run does to the incidents.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Lifecycle {
    /// Every incident this run touched, by fingerprint: those its findings opened or kept
    /// open, and those it resolved.
    pub tracked: BTreeMap<String, Tracked>,
    /// Silences whose expiry this run reports (once each).
    pub expired: Vec<Silence>,
    /// `false` when the run judges a partition older than the store's latest run (a backfill):
    /// it records its findings but leaves the incidents as they are and sends nothing.
    pub advances: bool,
}

impl Lifecycle {
    /// The incident of a finding.
    pub fn of(&self, f: &Finding) -> Option<&Tracked> {
        self.tracked.get(&fingerprint(f))
    }

    /// Whether a finding is silenced.
    pub fn silenced(&self, f: &Finding) -> bool {
        self.of(f).is_some_and(|t| t.silence.is_some())
    }

    /// The incidents of each status.
    pub fn count(&self, status: Status) -> usize {
        self.tracked.values().filter(|t| t.status == status).count()
    }

    /// `N new, N ongoing, N resolved`, as the console and the Markdown report say it.
    pub fn summary(&self) -> String {
        format!(
            "{} new, {} ongoing, {} resolved",
            self.count(Status::New),
            self.count(Status::Ongoing),
            self.count(Status::Resolved)
        )
    }
}

/// What a run decides from the store's open incidents and silences (`open`, `silences`), the
/// expected partition of its latest run (`latest`), and its own findings.
pub fn advance(
    open: Vec<Incident>,
    silences: &[Silence],
    latest: Option<NaiveDate>,
    findings: &[Finding],
    day: NaiveDate,
) -> Lifecycle {
    let advances = latest.is_none_or(|latest| day >= latest);
    let mut open: BTreeMap<String, Incident> = open
        .into_iter()
        .map(|i| (i.fingerprint.clone(), i))
        .collect();
    let mut tracked: BTreeMap<String, Tracked> = BTreeMap::new();
    for f in findings {
        let print = fingerprint(f);
        if let Some(t) = tracked.get_mut(&print) {
            // Several findings of one fingerprint (several days with scope `all`): the incident
            // takes the most severe, and the latest day's message.
            if f.severity > t.incident.severity {
                t.incident.severity = f.severity;
                t.incident.message.clone_from(&f.message);
            }
            continue;
        }
        let silence = silences.iter().find(|s| s.covers(f, day)).cloned();
        let (incident, status) = match open.remove(&print) {
            Some(mut incident) => {
                if advances && day > incident.last_seen {
                    incident.runs += 1;
                    incident.last_seen = day;
                }
                incident.severity = f.severity;
                incident.message.clone_from(&f.message);
                (incident, Status::Ongoing)
            }
            None => (
                Incident {
                    id: None,
                    fingerprint: print.clone(),
                    rule: f.rule.clone(),
                    check: f.check.clone(),
                    subject: f.subject.clone(),
                    severity: f.severity,
                    first_seen: day,
                    last_seen: day,
                    runs: 1,
                    notified: None,
                    reminded: None,
                    message: f.message.clone(),
                },
                Status::New,
            ),
        };
        tracked.insert(
            print,
            Tracked {
                incident,
                status,
                silence,
                notice: None,
            },
        );
    }
    if advances {
        for (print, incident) in open {
            tracked.insert(
                print,
                Tracked {
                    incident,
                    status: Status::Resolved,
                    silence: None,
                    notice: None,
                },
            );
        }
    }
    for t in tracked.values_mut() {
        t.notice = if advances { notice(t, day) } else { None };
    }
    let expired = silences
        .iter()
        .filter(|s| advances && s.until < day && !s.expiry_reported)
        .cloned()
        .collect();
    Lifecycle {
        tracked,
        expired,
        advances,
    }
}

/// What is due about one incident on partition `day`.
fn notice(t: &Tracked, day: NaiveDate) -> Option<Notice> {
    let i = &t.incident;
    match t.status {
        Status::Resolved => i.notified.map(|_| Notice::Resolve),
        _ if t.silence.is_some() => None,
        _ if i.notified.is_none_or(|n| n < i.severity) => Some(Notice::Open),
        Status::Ongoing if i.reminded.is_none_or(|r| r < day) && i.last_seen == day => {
            Some(Notice::Remind)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, d).unwrap()
    }

    fn finding(severity: Severity, check: &str, subject: Option<&str>) -> Finding {
        let f = Finding::new(severity, "drift", check, format!("{check} fired"));
        match subject {
            Some(s) => f.about(s),
            None => f,
        }
    }

    /// Runs day after day, carrying the open incidents over as the store would (announced
    /// when an Open notice is due, reminded when a Remind is).
    fn carry(lifecycle: &Lifecycle, day: NaiveDate) -> Vec<Incident> {
        lifecycle
            .tracked
            .values()
            .filter(|t| t.status != Status::Resolved)
            .map(|t| {
                let mut i = t.incident.clone();
                match t.notice {
                    Some(Notice::Open) => {
                        i.notified = Some(i.severity);
                        i.reminded = Some(day);
                    }
                    Some(Notice::Remind) => i.reminded = Some(day),
                    _ => {}
                }
                i
            })
            .collect()
    }

    #[test]
    fn an_incident_opens_once_stays_ongoing_and_resolves_when_it_clears() {
        let error = [finding(Severity::Error, "volume:sessions_floor", None)];
        let first = advance(Vec::new(), &[], None, &error, day(8));
        let t = &first.tracked["drift/volume:sessions_floor"];
        assert_eq!((t.status, t.notice), (Status::New, Some(Notice::Open)));

        // The same day again: ongoing, nothing due.
        let again = advance(carry(&first, day(8)), &[], Some(day(8)), &error, day(8));
        let t = &again.tracked["drift/volume:sessions_floor"];
        assert_eq!(
            (t.status, t.notice, t.incident.runs),
            (Status::Ongoing, None, 1)
        );

        // The next day: ongoing, one reminder, two runs, first seen kept.
        let next = advance(carry(&again, day(8)), &[], Some(day(8)), &error, day(9));
        let t = &next.tracked["drift/volume:sessions_floor"];
        assert_eq!(
            (t.status, t.notice, t.incident.runs, t.incident.first_seen),
            (Status::Ongoing, Some(Notice::Remind), 2, day(8))
        );

        // Fixed: resolved, with a resolve due because it was announced.
        let fixed = advance(carry(&next, day(9)), &[], Some(day(9)), &[], day(10));
        let t = &fixed.tracked["drift/volume:sessions_floor"];
        assert_eq!(
            (t.status, t.notice),
            (Status::Resolved, Some(Notice::Resolve))
        );
        assert_eq!(fixed.count(Status::Resolved), 1);
    }

    #[test]
    fn subjects_make_separate_incidents_and_dates_do_not() {
        let mut findings: Vec<Finding> = ["direct", "paid", "email", "social"]
            .iter()
            .map(|c| finding(Severity::Warn, "anomaly:channel_share", Some(c)))
            .collect();
        findings.push(finding(Severity::Warn, "anomaly:channel_share", Some("direct")).on(day(7)));
        let l = advance(Vec::new(), &[], None, &findings, day(8));
        assert_eq!(l.tracked.len(), 4);
        assert!(l.tracked.contains_key("drift/anomaly:channel_share/paid"));
    }

    #[test]
    fn escalation_is_announced_again_and_a_failed_announcement_is_retried() {
        let warn = [finding(Severity::Warn, "revenue:aov", None)];
        let first = advance(Vec::new(), &[], None, &warn, day(8));
        let error = [finding(Severity::Error, "revenue:aov", None)];
        let next = advance(carry(&first, day(8)), &[], Some(day(8)), &error, day(9));
        assert_eq!(next.tracked["drift/revenue:aov"].notice, Some(Notice::Open));
        // Never announced (no carry of the notice): announced again the next run.
        let mut open = carry(&first, day(8));
        open[0].notified = None;
        let retry = advance(open, &[], Some(day(8)), &warn, day(8));
        assert_eq!(
            retry.tracked["drift/revenue:aov"].notice,
            Some(Notice::Open)
        );
    }

    #[test]
    fn silences_keep_findings_quiet_until_they_expire_and_expiry_is_reported_once() {
        let silence = Silence {
            id: Some(1),
            check: "anomaly:channel_share".into(),
            subject: Some("direct".into()),
            until: day(9),
            reason: "migration".into(),
            created_by: "ana".into(),
            expiry_reported: false,
            origin: "store",
        };
        let findings = [
            finding(Severity::Error, "anomaly:channel_share", Some("direct")),
            finding(Severity::Error, "anomaly:channel_share", Some("paid")),
        ];
        let l = advance(
            Vec::new(),
            std::slice::from_ref(&silence),
            None,
            &findings,
            day(9),
        );
        let direct = &l.tracked["drift/anomaly:channel_share/direct"];
        assert_eq!((direct.silence.is_some(), direct.notice), (true, None));
        assert!(l.silenced(&findings[0]) && !l.silenced(&findings[1]));
        assert!(l.expired.is_empty());

        let later = advance(
            carry(&l, day(9)),
            std::slice::from_ref(&silence),
            Some(day(9)),
            &findings,
            day(10),
        );
        let direct = &later.tracked["drift/anomaly:channel_share/direct"];
        assert_eq!(
            (direct.silence.is_some(), direct.notice),
            (false, Some(Notice::Open))
        );
        assert_eq!(later.expired.len(), 1);
        let reported = Silence {
            expiry_reported: true,
            ..silence
        };
        let after = advance(Vec::new(), &[reported], Some(day(10)), &findings, day(11));
        assert!(after.expired.is_empty());
    }

    #[test]
    fn a_backfill_run_changes_no_incident() {
        let error = [finding(Severity::Error, "volume:sessions_floor", None)];
        let first = advance(Vec::new(), &[], None, &error, day(8));
        let old = advance(carry(&first, day(8)), &[], Some(day(8)), &[], day(2));
        assert!(!old.advances);
        assert!(old.tracked.is_empty());
    }
}
