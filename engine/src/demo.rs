//! `vigil demo`: a realistic sample warehouse to try vigil without data.
//!
//! It writes `fct_sessions.csv`, `fct_orders.csv` and `fct_attribution.csv` with the Puffy
//! tables' columns (long URLs and user agents included), weekly seasonality and noise, and can
//! inject faults into the last day (the partition a run judges), plus a `vigil.yml` tuned for it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, NaiveDate};
use fastrand::Rng;

/// A fault the generator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Fault {
    /// The day three days before the last has no rows at all.
    MissingDay,
    /// Only the first 7 hours of the last day are loaded.
    PartialLoad,
    /// Five orders of the last day appear twice.
    Duplicates,
    /// Three orders of the last day have negative revenue.
    NegativeRevenue,
    /// Half the orders of the last day have zero revenue.
    ZeroRevenueSpike,
    /// The last day's purchase rate falls to a quarter.
    ConversionDrop,
    /// The last day's order values are tripled.
    RevenueSpike,
    /// The referrer is lost on the last day: most sessions and orders become `direct`.
    ChannelShiftToDirect,
    /// `google_ads` has no sessions and no orders on the last day.
    ChannelDisappearing,
    /// A fifth of the last day's sessions have no client id.
    NullSpike,
    /// Some session timestamps of the last day are garbled.
    UnparsableTimestamps,
    /// The orders table's `revenue` column is renamed `order_revenue`.
    RenamedColumn,
}

impl Fault {
    /// The CLI spelling.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoSpec {
    /// The last day (the partition a run judges).
    pub end: NaiveDate,
    /// Number of days, ending with `end`.
    pub days: u32,
    /// Sessions of an average weekday.
    pub sessions_per_day: u32,
    /// Seed of the random generator (the same seed writes the same files).
    pub seed: u64,
    /// Faults injected into the last day.
    pub faults: Vec<Fault>,
}

/// The three table files' contents, or where they go.
pub struct Tables<W> {
    /// `fct_sessions.csv`
    pub sessions: W,
    /// `fct_orders.csv`
    pub orders: W,
    /// `fct_attribution.csv`
    pub attribution: W,
}

/// How many rows were written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Session rows.
    pub sessions: u64,
    /// Order rows.
    pub orders: u64,
    /// Attribution rows.
    pub attribution: u64,
}

/// Channels with their share of sessions on a normal day.
const CHANNELS: [(&str, f64); 8] = [
    ("direct", 0.34),
    ("google_ads", 0.20),
    ("utm_tagged", 0.12),
    ("google_organic", 0.10),
    ("meta_ads", 0.08),
    ("microsoft_ads", 0.07),
    ("other_referrer", 0.06),
    ("bing_organic", 0.03),
];

/// Purchase rate of a session on a normal day.
const CONVERSION: f64 = 0.012;

/// Relative traffic per weekday, Monday first.
const WEEKDAY: [f64; 7] = [1.0, 1.03, 1.01, 0.98, 0.94, 0.78, 0.84];

const PRICES: [f64; 7] = [449.0, 649.0, 849.0, 1049.0, 1449.0, 1849.0, 2249.0];

const USER_AGENTS: [(&str, &str); 5] = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "mobile"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.6261.119 Mobile Safari/537.36", "mobile"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.80", "desktop"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15", "desktop"),
    ("Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1", "tablet"),
];

const PAGES: [&str; 6] = [
    "products/the-original-mattress",
    "products/lux-hybrid-mattress",
    "products/royal-hybrid-mattress",
    "collections/pillows-and-bedding",
    "pages/sleep-trial-and-warranty",
    "",
];

/// Writes the three tables for `spec`.
pub fn generate<W: Write>(spec: &DemoSpec, out: &mut Tables<W>) -> io::Result<Written> {
    let mut g = Generator {
        spec,
        rng: Rng::with_seed(spec.seed),
        line: String::with_capacity(1024),
        written: Written::default(),
    };
    g.headers(out)?;
    let first = spec
        .end
        .checked_sub_days(Days::new(u64::from(spec.days.max(1) - 1)))
        .unwrap_or(spec.end);
    for (i, day) in first.iter_days().take_while(|d| *d <= spec.end).enumerate() {
        g.day(out, i, day)?;
    }
    Ok(g.written)
}

/// Writes the tables into `dir/warehouse/` and a config `dir/vigil.yml`; returns the
/// warehouse folder.
pub fn write_dir(spec: &DemoSpec, dir: &Path) -> io::Result<(PathBuf, Written)> {
    let warehouse = dir.join("warehouse");
    std::fs::create_dir_all(&warehouse)?;
    let open = |name: &str| {
        File::create(warehouse.join(name)).map(|f| BufWriter::with_capacity(1 << 20, f))
    };
    let mut tables = Tables {
        sessions: open("fct_sessions.csv")?,
        orders: open("fct_orders.csv")?,
        attribution: open("fct_attribution.csv")?,
    };
    let written = generate(spec, &mut tables)?;
    for w in [
        &mut tables.sessions,
        &mut tables.orders,
        &mut tables.attribution,
    ] {
        w.flush()?;
    }
    std::fs::write(dir.join("vigil.yml"), config_yaml(spec))?;
    Ok((warehouse, written))
}

/// A config for the demo warehouse: every rule, floors at 40% of a normal day, weekday
/// seasonality.
pub fn config_yaml(spec: &DemoSpec) -> String {
    let sessions_floor = (f64::from(spec.sessions_per_day) * 0.4).round();
    let orders_floor = (f64::from(spec.sessions_per_day) * CONVERSION * 0.4).floor();
    format!(
        "# vigil config for the demo warehouse written by `vigil demo` (seed {seed}).\n\
         version: 1\n\
         tables:\n\
         \x20 sessions:\n\
         \x20   file: fct_sessions.csv\n\
         \x20   date_column: session_start\n\
         \x20   required_columns: [session_id, session_start, client_id, marketing_source, purchases]\n\
         \x20 orders:\n\
         \x20   file: fct_orders.csv\n\
         \x20   date_column: order_ts\n\
         \x20   required_columns: [transaction_id, order_ts, revenue]\n\
         \x20 attribution:\n\
         \x20   file: fct_attribution.csv\n\
         \x20   date_column: orders.order_ts\n\
         \x20   required_columns: [transaction_id, model, attributed_source]\n\
         \x20   lookups: [{{table: orders, key: transaction_id, columns: [order_ts, revenue]}}]\n\
         rules:\n\
         \x20 freshness:\n\
         \x20   tables:\n\
         \x20     sessions: {{count_distinct: session_id, min_per_day: {sessions_floor}}}\n\
         \x20     orders: {{count_distinct: transaction_id, min_per_day: {orders_floor}, floor_severity: warn}}\n\
         \x20 revenue:\n\
         \x20   max_zero_revenue_orders: 5\n\
         \x20   null_rates: {{table: sessions, max: {{client_id: 0.05}}}}\n\
         \x20 anomaly:\n\
         \x20   baseline: {{window_days: 56, min_points: 6, seasonality: day_of_week}}\n\
         \x20   metrics:\n\
         \x20     sessions: {{drop: warn, spike: info}}\n\
         \x20     orders: {{drop: error, spike: warn}}\n\
         \x20     revenue: {{drop: error, spike: warn}}\n\
         \x20     aov: {{drop: warn, spike: warn}}\n\
         \x20 funnel:\n\
         \x20   baseline: {{window_days: 56, min_points: 6, seasonality: day_of_week}}\n\
         \x20 drift:\n\
         \x20   weightings: [sessions, revenue]\n\
         \x20   baseline: {{window_days: 28, min_points: 7}}\n\
         operations:\n\
         \x20 quarantine_on_error: true\n\
         \x20 quarantine_target_dir: quarantine\n\
         alert_routing:\n\
         \x20 error_channels: [\"pagerduty://demo-analytics\", \"slack://#data-alerts\"]\n\
         \x20 warn_channels: [\"slack://#data-warnings\"]\n\
         \x20 info_channels: []\n",
        seed = spec.seed,
    )
}

struct Generator<'a> {
    spec: &'a DemoSpec,
    rng: Rng,
    line: String,
    written: Written,
}

/// One session as the orders and attribution tables need it.
struct Purchase {
    session_id: String,
    client_id: String,
    second: u32,
    channel: &'static str,
    device: &'static str,
}

impl Generator<'_> {
    fn has(&self, fault: Fault) -> bool {
        self.spec.faults.contains(&fault)
    }

    fn headers<W: Write>(&mut self, out: &mut Tables<W>) -> io::Result<()> {
        out.sessions.write_all(
            b"session_id,client_id,session_start,session_end,events,pageviews,add_to_cart,checkout_started,purchases,duration_sec,page_url,ref_domain,marketing_source,utm_source,utm_medium,utm_campaign,user_agent,device_type\n",
        )?;
        let revenue = if self.has(Fault::RenamedColumn) {
            "order_revenue"
        } else {
            "revenue"
        };
        writeln!(
            out.orders,
            "transaction_id,client_id,order_ts,{revenue},items_count,session_id,marketing_source,utm_source,utm_medium,utm_campaign,ref_domain,device_type"
        )?;
        out.attribution.write_all(
            b"transaction_id,model,attributed_session_id,attributed_source,utm_source,utm_medium,utm_campaign,ref_domain\n",
        )
    }

    fn day<W: Write>(
        &mut self,
        out: &mut Tables<W>,
        index: usize,
        day: NaiveDate,
    ) -> io::Result<()> {
        let last = day == self.spec.end;
        let fault = |f: Fault| last && self.spec.faults.contains(&f);
        if self.has(Fault::MissingDay) && Some(day) == self.spec.end.checked_sub_days(Days::new(3))
        {
            return Ok(());
        }
        let weekday = WEEKDAY[day.weekday().num_days_from_monday() as usize];
        let noise = 1.0 + (self.rng.f64() - 0.5) * 0.08;
        let mut sessions = (f64::from(self.spec.sessions_per_day) * weekday * noise).round() as u32;
        let mut seconds_in_day = 86_400;
        if fault(Fault::PartialLoad) {
            seconds_in_day = 7 * 3600;
            sessions = sessions * 7 / 24;
        }
        let conversion = if fault(Fault::ConversionDrop) {
            CONVERSION / 4.0
        } else {
            CONVERSION
        };
        let mut purchases = Vec::new();
        for n in 0..sessions {
            let second = self.rng.u32(0..seconds_in_day);
            let channel = self.channel(
                fault(Fault::ChannelShiftToDirect),
                fault(Fault::ChannelDisappearing),
            );
            let (agent, device) = USER_AGENTS[self.rng.usize(0..USER_AGENTS.len())];
            let client_id = if fault(Fault::NullSpike) && self.rng.f64() < 0.2 {
                String::new()
            } else {
                format!(
                    "{}-{}",
                    1_700_000_000 + index as u64 * 86_400 + u64::from(n),
                    self.token(12)
                )
            };
            let session_id = format!(
                "{}-{}",
                if client_id.is_empty() {
                    self.token(22)
                } else {
                    client_id.clone()
                },
                1
            );
            let purchased = self.rng.f64() < conversion;
            let add_to_cart = purchased || self.rng.f64() < 0.07;
            let checkout = purchased || (add_to_cart && self.rng.f64() < 0.35);
            let events =
                1 + self.rng.u32(0..12) + 3 * u32::from(add_to_cart) + 2 * u32::from(checkout);
            let pageviews = 1 + self.rng.u32(0..events);
            let duration =
                f64::from(self.rng.u32(0..1800)) + f64::from(self.rng.u32(0..1000)) / 1000.0;
            let start = if fault(Fault::UnparsableTimestamps) && self.rng.f64() < 0.02 {
                format!("{day} 25:{:02}:00", self.rng.u32(0..60))
            } else {
                self.timestamp(day, second)
            };
            let end = self.timestamp(day, (second + duration as u32).min(86_399));
            let utm = self.utm(channel);
            let referrer = self.referrer(channel);
            self.line.clear();
            let _ = writeln!(
                self.line,
                "{session_id},{client_id},{start},{end},{events},{pageviews},{},{},{},{duration},\"https://shop.example.com/{}?variant={}{}\",{referrer},{channel},{},{},{},\"{agent}\",{device}",
                u32::from(add_to_cart),
                u32::from(checkout),
                u32::from(purchased),
                PAGES[self.rng.usize(0..PAGES.len())],
                40_000_000_000u64 + self.rng.u64(0..1_000_000_000),
                utm.query,
                utm.source,
                utm.medium,
                utm.campaign,
            );
            out.sessions.write_all(self.line.as_bytes())?;
            self.written.sessions += 1;
            if purchased {
                purchases.push(Purchase {
                    session_id,
                    client_id,
                    second: (second + duration as u32).min(86_399),
                    channel,
                    device,
                });
            }
        }
        self.orders(out, day, last, &purchases)
    }

    fn orders<W: Write>(
        &mut self,
        out: &mut Tables<W>,
        day: NaiveDate,
        last: bool,
        purchases: &[Purchase],
    ) -> io::Result<()> {
        let fault = |f: Fault| last && self.spec.faults.contains(&f);
        let compact = day.format("%Y%m%d").to_string();
        let mut rows = Vec::new();
        for (n, p) in purchases.iter().enumerate() {
            let items = 1 + u32::from(self.rng.f64() < 0.15);
            let mut revenue = PRICES[self.rng.usize(0..PRICES.len())] * f64::from(items);
            let zero_share = if fault(Fault::ZeroRevenueSpike) {
                0.5
            } else {
                0.02
            };
            if self.rng.f64() < zero_share {
                revenue = 0.0;
            }
            if fault(Fault::RevenueSpike) {
                revenue *= 3.0;
            }
            if fault(Fault::NegativeRevenue) && n < 3 {
                revenue = -revenue.max(449.0);
            }
            let id = format!("ORD-{compact}-{n}");
            self.line.clear();
            let ts = self.timestamp(day, p.second);
            let _ = writeln!(
                self.line,
                "{id},{},{ts},{revenue:.1},{items},{},{},,,,,{}",
                p.client_id, p.session_id, p.channel, p.device
            );
            rows.push(self.line.clone());
            let first = CHANNELS[self.rng.usize(0..CHANNELS.len())].0;
            for (model, channel) in [("first_click", first), ("last_click", p.channel)] {
                self.line.clear();
                let _ = writeln!(self.line, "{id},{model},{},{channel},,,,", p.session_id);
                out.attribution.write_all(self.line.as_bytes())?;
                self.written.attribution += 1;
            }
        }
        if fault(Fault::Duplicates) {
            let repeated: Vec<String> = rows.iter().take(5).cloned().collect();
            rows.extend(repeated);
        }
        for row in rows {
            out.orders.write_all(row.as_bytes())?;
            self.written.orders += 1;
        }
        Ok(())
    }

    fn channel(&mut self, to_direct: bool, without_google_ads: bool) -> &'static str {
        if to_direct && self.rng.f64() < 0.7 {
            return "direct";
        }
        loop {
            let mut x = self.rng.f64();
            let picked = CHANNELS
                .iter()
                .find(|(_, share)| {
                    x -= share;
                    x < 0.0
                })
                .map_or("direct", |(c, _)| c);
            if !(without_google_ads && picked == "google_ads") {
                return picked;
            }
        }
    }

    fn token(&mut self, len: usize) -> String {
        (0..len).map(|_| self.rng.alphanumeric()).collect()
    }

    /// A pandas-style UTC timestamp; one in a thousand has no fraction (as in the Puffy data).
    fn timestamp(&mut self, day: NaiveDate, second: u32) -> String {
        let (h, m, s) = (second / 3600, second / 60 % 60, second % 60);
        if self.rng.u32(0..1000) == 0 {
            format!("{day} {h:02}:{m:02}:{s:02}+00:00")
        } else {
            format!(
                "{day} {h:02}:{m:02}:{s:02}.{:06}+00:00",
                self.rng.u32(0..1000) * 1000
            )
        }
    }

    fn utm(&mut self, channel: &str) -> Utm {
        match channel {
            "utm_tagged" | "google_ads" | "meta_ads" | "microsoft_ads" => {
                let source = format!("{:06X}", self.rng.u32(0..0xFF_FFFF));
                let campaign = format!("{:06X}", self.rng.u32(0..0xFF_FFFF));
                let click = self.token(40);
                Utm {
                    query: format!(
                        "&utm_source={source}&utm_medium=cpc&utm_campaign={campaign}&gclid={click}"
                    ),
                    source,
                    medium: "cpc".into(),
                    campaign,
                }
            }
            _ => Utm::default(),
        }
    }

    fn referrer(&mut self, channel: &str) -> &'static str {
        match channel {
            "google_organic" | "google_ads" => "www.google.com",
            "bing_organic" | "microsoft_ads" => "www.bing.com",
            "meta_ads" => "l.facebook.com",
            "other_referrer" => "source-ee658ef2.com",
            _ => "",
        }
    }
}

#[derive(Default)]
struct Utm {
    query: String,
    source: String,
    medium: String,
    campaign: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(faults: Vec<Fault>) -> DemoSpec {
        DemoSpec {
            end: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
            days: 10,
            sessions_per_day: 300,
            seed: 7,
            faults,
        }
    }

    fn tables(spec: &DemoSpec) -> (Tables<Vec<u8>>, Written) {
        let mut t = Tables {
            sessions: Vec::new(),
            orders: Vec::new(),
            attribution: Vec::new(),
        };
        let written = generate(spec, &mut t).unwrap();
        (t, written)
    }

    #[test]
    fn the_same_seed_writes_the_same_warehouse() {
        let (a, wa) = tables(&spec(vec![]));
        let (b, wb) = tables(&spec(vec![]));
        assert_eq!(wa, wb);
        assert!(a.sessions == b.sessions && a.orders == b.orders && a.attribution == b.attribution);
        assert_eq!(wa.attribution, 2 * wa.orders);
        assert!((2500..3400).contains(&wa.sessions), "{wa:?}");
    }

    #[test]
    fn every_row_has_the_header_field_count() {
        let (t, _) = tables(&spec(vec![Fault::ChannelShiftToDirect, Fault::Duplicates]));
        for text in [&t.sessions, &t.orders, &t.attribution] {
            let mut reader = csv::Reader::from_reader(text.as_slice());
            let width = reader.headers().unwrap().len();
            for record in reader.records() {
                assert_eq!(record.unwrap().len(), width);
            }
        }
    }

    #[test]
    fn faults_change_only_what_they_say() {
        let (clean, _) = tables(&spec(vec![]));
        let (renamed, _) = tables(&spec(vec![Fault::RenamedColumn]));
        assert!(String::from_utf8_lossy(&renamed.orders)
            .starts_with("transaction_id,client_id,order_ts,order_revenue,"));
        assert_eq!(clean.sessions, renamed.sessions);
        let (missing, _) = tables(&spec(vec![Fault::MissingDay]));
        let text = String::from_utf8(missing.sessions).unwrap();
        assert!(
            !text.contains(",2025-03-28 "),
            "the day three days before the end is missing"
        );
        assert!(text.contains(",2025-03-27 ") && text.contains(",2025-03-29 "));
        assert_eq!(Fault::ZeroRevenueSpike.name(), "zero-revenue-spike");
    }
}
