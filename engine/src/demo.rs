//! `vigil demo`: a realistic sample warehouse to try vigil without data.
//!
//! It writes `fct_sessions.csv`, `fct_orders.csv` and `fct_attribution.csv` with the Puffy
//! tables' columns (long URLs and user agents included), weekly seasonality and noise, and can
//! inject faults into the last day (the partition a run judges) at three magnitudes, plus a
//! `vigil.yml` tuned for it. A fault changes only the rows it names: the rest of a faulty
//! warehouse is the clean warehouse of the same seed, byte for byte.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, NaiveDate};
use fastrand::Rng;

/// A fault the generator can inject, at a [`Magnitude`] (values: subtle / clear / gross).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Fault {
    /// A day has no rows at all: the day 20 / 8 / 3 days before the last.
    MissingDay,
    /// Only the first hours of the last day are loaded (sessions by start, orders by time):
    /// 18 / 12 / 7 hours of 24.
    PartialLoad,
    /// The first orders of the last day appear twice: 1 / 2 / 5 orders.
    Duplicates,
    /// The first orders of the last day have negative revenue: 1 / 2 / 3 orders.
    NegativeRevenue,
    /// Zero-revenue orders of the last day (normally about 2%): 10% / 25% / 50% of its orders.
    ZeroRevenueSpike,
    /// The last day's purchases are lost at payment (the sessions keep their checkout, the orders
    /// go): 0.7 / 0.5 / 0.25 of its purchases remain.
    ConversionDrop,
    /// The last day's order values are multiplied by 1.3 / 1.7 / 3.
    RevenueSpike,
    /// The referrer is lost on the last day: of its non-direct sessions (and their orders) 20% /
    /// 45% / 70% become `direct`.
    ChannelShiftToDirect,
    /// The ad click id is lost on the last day: of its `google_ads` sessions (and their orders)
    /// 50% / 90% / 100% fall back to `google_organic`.
    ChannelDisappearing,
    /// Sessions of the last day (and their orders) without a client id (normally none): 2% / 8% /
    /// 20% of them.
    NullSpike,
    /// Session start timestamps of the last day garbled (hour 25): 0.2% / 0.5% / 2% of them.
    UnparsableTimestamps,
    /// The orders table's `revenue` column is renamed `order_revenue` (binary: the same at
    /// every magnitude).
    RenamedColumn,
}

impl Fault {
    /// The CLI spelling.
    pub fn name(self) -> String {
        cli_name(&self)
    }

    /// The fault's size at `magnitude`, in the unit its doc names: days before the last day
    /// (missing day), hours loaded (partial load), orders (duplicates, negative revenue), a share
    /// of the day's rows (zero revenue, channel shift, channel disappearing, null spike,
    /// unparsable timestamps), a factor (conversion drop, revenue spike), or 1 (renamed column).
    pub fn amount(self, magnitude: Magnitude) -> f64 {
        let [subtle, clear, gross] = match self {
            Fault::MissingDay => [20.0, 8.0, 3.0],
            Fault::PartialLoad => [18.0, 12.0, 7.0],
            Fault::Duplicates => [1.0, 2.0, 5.0],
            Fault::NegativeRevenue => [1.0, 2.0, 3.0],
            Fault::ZeroRevenueSpike => [0.10, 0.25, 0.5],
            Fault::ConversionDrop => [0.7, 0.5, 0.25],
            Fault::RevenueSpike => [1.3, 1.7, 3.0],
            Fault::ChannelShiftToDirect => [0.2, 0.45, 0.7],
            Fault::ChannelDisappearing => [0.5, 0.9, 1.0],
            Fault::NullSpike => [0.02, 0.08, 0.2],
            Fault::UnparsableTimestamps => [0.002, 0.005, 0.02],
            Fault::RenamedColumn => [1.0, 1.0, 1.0],
        };
        match magnitude {
            Magnitude::Subtle => subtle,
            Magnitude::Clear => clear,
            Magnitude::Gross => gross,
        }
    }
}

/// How large the injected faults are, on the demo's scale (3,000 sessions and about 40 orders a
/// day). Gross is the default and the size the demo has always injected.
///
/// - subtle: a real defect a demanding analyst wants to hear about, but one a day's noise or a
///   campaign could also explain (a 30% revenue rise, one duplicated order, a fifth of the
///   non-direct traffic shown as direct, a missing day three weeks back);
/// - clear: no analyst would call it noise (half the purchases gone, 45% of the non-direct
///   traffic shown as direct, as in the real Puffy incident of March 2025, half the day loaded);
/// - gross: the day is plainly broken (a quarter of the purchases, revenue tripled, 7 hours of
///   24 loaded, a channel gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Magnitude {
    /// A defect noise or a campaign could also explain.
    Subtle,
    /// Unmistakable, but the day still looks like a day.
    Clear,
    /// The day is plainly broken (the demo's faults before magnitudes existed).
    #[default]
    Gross,
}

impl Magnitude {
    /// The CLI spelling.
    pub fn name(self) -> String {
        cli_name(&self)
    }
}

/// The CLI spelling of a value.
fn cli_name<T: clap::ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
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
    /// How large the faults are.
    pub magnitude: Magnitude,
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
///
/// Every day is generated from the seed alone, so the warehouses of one seed share their rows:
/// a fault changes only the rows it names (chosen by a second generator), and a warehouse with
/// fewer days ending earlier (same first day) is a prefix of a longer one.
pub fn generate<W: Write>(spec: &DemoSpec, out: &mut Tables<W>) -> io::Result<Written> {
    let mut g = Generator {
        spec,
        rng: Rng::with_seed(spec.seed),
        picker: Rng::with_seed(spec.seed ^ PICKER_SEED),
        line: String::with_capacity(1024),
        written: Written::default(),
    };
    g.headers(out)?;
    let first = spec
        .end
        .checked_sub_days(Days::new(u64::from(spec.days.max(1) - 1)))
        .unwrap_or(spec.end);
    let missing = g
        .amount(Fault::MissingDay)
        .and_then(|n| spec.end.checked_sub_days(Days::new(n as u64)));
    for (i, day) in first.iter_days().take_while(|d| *d <= spec.end).enumerate() {
        let mut rows = g.day(i, day);
        if day == spec.end {
            g.inject(day, &mut rows);
        }
        if Some(day) != missing {
            g.write(out, &rows)?;
        }
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

/// Seeds the generator that picks the rows a fault changes (xored with the seed).
const PICKER_SEED: u64 = 0x5EED_FA17;

struct Generator<'a> {
    spec: &'a DemoSpec,
    /// Draws the clean rows: the same for every fault.
    rng: Rng,
    /// Picks the rows a fault changes.
    picker: Rng,
    line: String,
    written: Written,
}

/// One session row.
struct Session {
    id: String,
    client_id: String,
    second: u32,
    start: String,
    end: String,
    events: u32,
    pageviews: u32,
    add_to_cart: bool,
    checkout: bool,
    purchased: bool,
    duration: f64,
    page: &'static str,
    variant: u64,
    channel: &'static str,
    utm: Utm,
    referrer: &'static str,
    agent: &'static str,
    device: &'static str,
    loaded: bool,
}

/// One order row and its two attribution rows.
struct Order {
    id: String,
    /// Its session's index in the day's sessions.
    session: usize,
    second: u32,
    ts: String,
    revenue: f64,
    items: u32,
    first_click: &'static str,
    loaded: bool,
}

/// A day's rows, and how many of its first orders are written twice.
struct Day {
    sessions: Vec<Session>,
    orders: Vec<Order>,
    duplicates: usize,
}

impl Generator<'_> {
    /// The size of `fault` if the spec injects it.
    fn amount(&self, fault: Fault) -> Option<f64> {
        self.spec
            .faults
            .contains(&fault)
            .then(|| fault.amount(self.spec.magnitude))
    }

    fn headers<W: Write>(&mut self, out: &mut Tables<W>) -> io::Result<()> {
        out.sessions.write_all(
            b"session_id,client_id,session_start,session_end,events,pageviews,add_to_cart,checkout_started,purchases,duration_sec,page_url,ref_domain,marketing_source,utm_source,utm_medium,utm_campaign,user_agent,device_type\n",
        )?;
        let revenue = if self.amount(Fault::RenamedColumn).is_some() {
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

    /// The clean rows of `day`, the `index`-th day.
    fn day(&mut self, index: usize, day: NaiveDate) -> Day {
        let weekday = WEEKDAY[day.weekday().num_days_from_monday() as usize];
        let noise = 1.0 + (self.rng.f64() - 0.5) * 0.08;
        let count = (f64::from(self.spec.sessions_per_day) * weekday * noise).round() as u32;
        let mut sessions = Vec::with_capacity(count as usize);
        for n in 0..count {
            let second = self.rng.u32(0..86_400);
            let channel = self.channel();
            let (agent, device) = USER_AGENTS[self.rng.usize(0..USER_AGENTS.len())];
            let client_id = format!(
                "{}-{}",
                1_700_000_000 + index as u64 * 86_400 + u64::from(n),
                self.token(12)
            );
            let purchased = self.rng.f64() < CONVERSION;
            let add_to_cart = purchased || self.rng.f64() < 0.07;
            let checkout = purchased || (add_to_cart && self.rng.f64() < 0.35);
            let events =
                1 + self.rng.u32(0..12) + 3 * u32::from(add_to_cart) + 2 * u32::from(checkout);
            let pageviews = 1 + self.rng.u32(0..events);
            let duration =
                f64::from(self.rng.u32(0..1800)) + f64::from(self.rng.u32(0..1000)) / 1000.0;
            let start = self.timestamp(day, second);
            let end = self.timestamp(day, (second + duration as u32).min(86_399));
            let utm = self.utm(channel);
            sessions.push(Session {
                id: format!("{client_id}-1"),
                client_id,
                second,
                start,
                end,
                events,
                pageviews,
                add_to_cart,
                checkout,
                purchased,
                duration,
                page: PAGES[self.rng.usize(0..PAGES.len())],
                variant: 40_000_000_000u64 + self.rng.u64(0..1_000_000_000),
                channel,
                utm,
                referrer: referrer(channel),
                agent,
                device,
                loaded: true,
            });
        }
        let orders = self.orders(day, &sessions);
        Day {
            sessions,
            orders,
            duplicates: 0,
        }
    }

    /// The clean orders of `day`'s purchasing sessions.
    fn orders(&mut self, day: NaiveDate, sessions: &[Session]) -> Vec<Order> {
        let compact = day.format("%Y%m%d").to_string();
        let mut orders = Vec::new();
        for (session, s) in sessions.iter().enumerate().filter(|(_, s)| s.purchased) {
            let items = 1 + u32::from(self.rng.f64() < 0.15);
            let mut revenue = PRICES[self.rng.usize(0..PRICES.len())] * f64::from(items);
            if self.rng.f64() < 0.02 {
                revenue = 0.0;
            }
            let second = (s.second + s.duration as u32).min(86_399);
            let ts = self.timestamp(day, second);
            orders.push(Order {
                id: format!("ORD-{compact}-{}", orders.len()),
                session,
                second,
                ts,
                revenue,
                items,
                first_click: CHANNELS[self.rng.usize(0..CHANNELS.len())].0,
                loaded: true,
            });
        }
        orders
    }

    /// Injects the spec's faults (except the missing day and the renamed column, which are not
    /// in a day's rows) into the rows of `day`.
    fn inject(&mut self, day: NaiveDate, rows: &mut Day) {
        let Day {
            sessions, orders, ..
        } = rows;
        if let Some(hours) = self.amount(Fault::PartialLoad) {
            let cutoff = (hours * 3600.0) as u32;
            for s in sessions.iter_mut() {
                s.loaded = s.second < cutoff;
            }
            for o in orders.iter_mut() {
                o.loaded = o.second < cutoff;
            }
        }
        if let Some(remaining) = self.amount(Fault::ConversionDrop) {
            let lost = self.pick(loaded(orders, |_| true), 1.0 - remaining);
            for i in lost {
                orders[i].loaded = false;
                sessions[orders[i].session].purchased = false;
            }
        }
        if let Some(share) = self.amount(Fault::ChannelShiftToDirect) {
            for i in self.pick(loaded(sessions, |s| s.channel != "direct"), share) {
                let s = &mut sessions[i];
                (s.channel, s.utm, s.referrer) = ("direct", Utm::default(), "");
            }
        }
        if let Some(share) = self.amount(Fault::ChannelDisappearing) {
            for i in self.pick(loaded(sessions, |s| s.channel == "google_ads"), share) {
                let s = &mut sessions[i];
                (s.channel, s.utm) = ("google_organic", Utm::default());
            }
        }
        if let Some(share) = self.amount(Fault::NullSpike) {
            for i in self.pick(loaded(sessions, |_| true), share) {
                sessions[i].client_id.clear();
            }
        }
        if let Some(share) = self.amount(Fault::UnparsableTimestamps) {
            for i in self.pick(loaded(sessions, |_| true), share) {
                sessions[i].start = format!("{day} 25:{:02}:00", self.picker.u32(0..60));
            }
        }
        if let Some(share) = self.amount(Fault::ZeroRevenueSpike) {
            let all = loaded(orders, |_| true).len();
            let zero = loaded(orders, |o| o.revenue == 0.0).len();
            let target = (share * all as f64).round() as usize;
            let mut more = loaded(orders, |o| o.revenue != 0.0);
            self.picker.shuffle(&mut more);
            for i in more.into_iter().take(target.saturating_sub(zero)) {
                orders[i].revenue = 0.0;
            }
        }
        if let Some(factor) = self.amount(Fault::RevenueSpike) {
            for o in orders.iter_mut() {
                o.revenue *= factor;
            }
        }
        if let Some(count) = self.amount(Fault::NegativeRevenue) {
            for i in loaded(orders, |_| true).into_iter().take(count as usize) {
                orders[i].revenue = -orders[i].revenue.max(449.0);
            }
        }
        if let Some(count) = self.amount(Fault::Duplicates) {
            rows.duplicates = count as usize;
        }
    }

    /// `round(share * candidates)` of `candidates`, picked at random.
    fn pick(&mut self, mut candidates: Vec<usize>, share: f64) -> Vec<usize> {
        let k = (share * candidates.len() as f64).round() as usize;
        self.picker.shuffle(&mut candidates);
        candidates.truncate(k);
        candidates
    }

    fn write<W: Write>(&mut self, out: &mut Tables<W>, rows: &Day) -> io::Result<()> {
        let sessions = &rows.sessions;
        for s in sessions.iter().filter(|s| s.loaded) {
            self.line.clear();
            let _ = writeln!(
                self.line,
                "{},{},{},{},{},{},{},{},{},{},\"https://shop.example.com/{}?variant={}{}\",{},{},{},{},{},\"{}\",{}",
                s.id,
                s.client_id,
                s.start,
                s.end,
                s.events,
                s.pageviews,
                u32::from(s.add_to_cart),
                u32::from(s.checkout),
                u32::from(s.purchased),
                s.duration,
                s.page,
                s.variant,
                s.utm.query,
                s.referrer,
                s.channel,
                s.utm.source,
                s.utm.medium,
                s.utm.campaign,
                s.agent,
                s.device,
            );
            out.sessions.write_all(self.line.as_bytes())?;
            self.written.sessions += 1;
        }
        let orders: Vec<&Order> = rows.orders.iter().filter(|o| o.loaded).collect();
        let repeated = orders.iter().take(rows.duplicates);
        for o in orders.iter().chain(repeated) {
            let s = &sessions[o.session];
            self.line.clear();
            let _ = writeln!(
                self.line,
                "{},{},{},{:.1},{},{},{},,,,,{}",
                o.id, s.client_id, o.ts, o.revenue, o.items, s.id, s.channel, s.device
            );
            out.orders.write_all(self.line.as_bytes())?;
            self.written.orders += 1;
        }
        for o in &orders {
            let s = &sessions[o.session];
            for (model, channel) in [("first_click", o.first_click), ("last_click", s.channel)] {
                self.line.clear();
                let _ = writeln!(self.line, "{},{model},{},{channel},,,,", o.id, s.id);
                out.attribution.write_all(self.line.as_bytes())?;
                self.written.attribution += 1;
            }
        }
        Ok(())
    }

    fn channel(&mut self) -> &'static str {
        let mut x = self.rng.f64();
        CHANNELS
            .iter()
            .find(|(_, share)| {
                x -= share;
                x < 0.0
            })
            .map_or("direct", |(c, _)| c)
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
}

/// The indices of the loaded rows for which `keep` holds.
fn loaded<T: Row>(rows: &[T], keep: impl Fn(&T) -> bool) -> Vec<usize> {
    (0..rows.len())
        .filter(|&i| rows[i].loaded() && keep(&rows[i]))
        .collect()
}

/// A row that a partial load can leave out.
trait Row {
    fn loaded(&self) -> bool;
}

impl Row for Session {
    fn loaded(&self) -> bool {
        self.loaded
    }
}

impl Row for Order {
    fn loaded(&self) -> bool {
        self.loaded
    }
}

fn referrer(channel: &str) -> &'static str {
    match channel {
        "google_organic" | "google_ads" => "www.google.com",
        "bing_organic" | "microsoft_ads" => "www.bing.com",
        "meta_ads" => "l.facebook.com",
        "other_referrer" => "source-ee658ef2.com",
        _ => "",
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

    const END: &str = "2025-03-31";

    fn spec(faults: Vec<Fault>) -> DemoSpec {
        DemoSpec {
            end: NaiveDate::from_ymd_opt(2025, 3, 31).unwrap(),
            days: 10,
            sessions_per_day: 300,
            seed: 7,
            faults,
            magnitude: Magnitude::Gross,
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

    /// A generated warehouse, parsed: each table's header and records.
    struct Parsed {
        headers: [Vec<String>; 3],
        sessions: Vec<Vec<String>>,
        orders: Vec<Vec<String>>,
        attribution: Vec<Vec<String>>,
    }

    fn parse(text: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(text);
        let header = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (header, rows)
    }

    /// 22 days (the subtle missing day is 20 days back) of 800 sessions, seed 11.
    fn warehouse(faults: &[Fault], magnitude: Magnitude) -> Parsed {
        let spec = DemoSpec {
            days: 22,
            sessions_per_day: 800,
            seed: 11,
            faults: faults.to_vec(),
            magnitude,
            ..spec(vec![])
        };
        let (t, _) = tables(&spec);
        let (hs, sessions) = parse(&t.sessions);
        let (ho, orders) = parse(&t.orders);
        let (ha, attribution) = parse(&t.attribution);
        Parsed {
            headers: [hs, ho, ha],
            sessions,
            orders,
            attribution,
        }
    }

    /// The rows of `day` (`YYYY-MM-DD`): sessions and orders by their timestamp, attribution
    /// by its order id.
    fn of_day(p: &Parsed, day: &str) -> [Vec<Vec<String>>; 3] {
        let compact = format!("ORD-{}-", day.replace('-', ""));
        [
            p.sessions
                .iter()
                .filter(|r| r[2].starts_with(day))
                .cloned()
                .collect(),
            p.orders
                .iter()
                .filter(|r| r[2].starts_with(day))
                .cloned()
                .collect(),
            p.attribution
                .iter()
                .filter(|r| r[0].starts_with(&compact))
                .cloned()
                .collect(),
        ]
    }

    /// The rows of every day but `except`.
    fn other_days<'a>(p: &'a Parsed, except: &[&str]) -> [Vec<&'a Vec<String>>; 3] {
        let keep = |day: &str| !except.iter().any(|e| day.starts_with(e));
        let order_day = |id: &str| format!("{}-{}-{}", &id[4..8], &id[8..10], &id[10..12]);
        [
            p.sessions.iter().filter(|r| keep(&r[2])).collect(),
            p.orders.iter().filter(|r| keep(&r[2])).collect(),
            p.attribution
                .iter()
                .filter(|r| keep(&order_day(&r[0])))
                .collect(),
        ]
    }

    const MAGNITUDES: [Magnitude; 3] = [Magnitude::Subtle, Magnitude::Clear, Magnitude::Gross];

    /// The rows of `faulty` that differ from `clean` at the same position (equal lengths).
    fn changed<'a>(
        clean: &'a [Vec<String>],
        faulty: &'a [Vec<String>],
    ) -> Vec<(&'a [String], &'a [String])> {
        assert_eq!(clean.len(), faulty.len());
        clean
            .iter()
            .zip(faulty)
            .filter(|(c, f)| c != f)
            .map(|(c, f)| (c.as_slice(), f.as_slice()))
            .collect()
    }

    /// Columns `a` and `b` differ in, by header name.
    fn columns(header: &[String], a: &[String], b: &[String]) -> Vec<String> {
        (0..header.len())
            .filter(|&i| a[i] != b[i])
            .map(|i| header[i].clone())
            .collect()
    }

    fn share(n: usize, share: f64) -> usize {
        (share * n as f64).round() as usize
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
    fn a_shorter_warehouse_from_the_same_first_day_is_a_prefix() {
        let long = spec(vec![]);
        let short = DemoSpec {
            end: NaiveDate::from_ymd_opt(2025, 3, 27).unwrap(),
            days: 6,
            ..long.clone()
        };
        let (l, _) = tables(&long);
        let (s, _) = tables(&short);
        for (short, long) in [
            (&s.sessions, &l.sessions),
            (&s.orders, &l.orders),
            (&s.attribution, &l.attribution),
        ] {
            assert!(short.len() < long.len() && long.starts_with(short));
        }
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
    fn every_fault_leaves_the_other_days_and_the_headers_alone() {
        let clean = warehouse(&[], Magnitude::Gross);
        for fault in <Fault as clap::ValueEnum>::value_variants() {
            for m in MAGNITUDES {
                let faulty = warehouse(&[*fault], m);
                let missing = (*fault == Fault::MissingDay).then(|| {
                    let back = fault.amount(m) as u64;
                    (spec(vec![]).end - Days::new(back)).to_string()
                });
                let except: Vec<&str> = [Some(END), missing.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                assert!(
                    other_days(&clean, &except) == other_days(&faulty, &except),
                    "{fault:?} {m:?}"
                );
                if *fault == Fault::RenamedColumn {
                    assert_eq!(faulty.headers[1][3], "order_revenue");
                    assert_eq!(
                        (
                            &clean.headers[0],
                            &clean.headers[2],
                            &clean.headers[1][..3],
                            &clean.headers[1][4..]
                        ),
                        (
                            &faulty.headers[0],
                            &faulty.headers[2],
                            &faulty.headers[1][..3],
                            &faulty.headers[1][4..]
                        )
                    );
                    assert!(of_day(&clean, END) == of_day(&faulty, END));
                } else {
                    assert_eq!(clean.headers, faulty.headers, "{fault:?} {m:?}");
                }
            }
        }
        assert_eq!(Fault::ZeroRevenueSpike.name(), "zero-revenue-spike");
        assert_eq!(Magnitude::default().name(), "gross");
    }

    #[test]
    fn a_missing_day_is_the_named_day_and_nothing_else() {
        let clean = warehouse(&[], Magnitude::Gross);
        for (m, day) in MAGNITUDES
            .into_iter()
            .zip(["2025-03-11", "2025-03-23", "2025-03-28"])
        {
            let faulty = warehouse(&[Fault::MissingDay], m);
            assert!(of_day(&faulty, day).iter().all(Vec::is_empty), "{m:?}");
            assert!(of_day(&clean, day).iter().all(|t| !t.is_empty()));
            assert!(other_days(&clean, &[day]) == other_days(&faulty, &[day]));
        }
    }

    #[test]
    fn a_partial_load_keeps_the_first_hours() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        for (m, hours) in MAGNITUDES.into_iter().zip([18, 12, 7]) {
            let faulty = warehouse(&[Fault::PartialLoad], m);
            let before = |r: &Vec<String>| r[2][11..13].parse::<u32>().unwrap() < hours;
            let kept: Vec<Vec<String>> = orders.iter().filter(|r| before(r)).cloned().collect();
            let ids: Vec<&String> = kept.iter().map(|r| &r[0]).collect();
            let expected = [
                sessions.iter().filter(|r| before(r)).cloned().collect(),
                kept.clone(),
                attribution
                    .iter()
                    .filter(|r| ids.contains(&&r[0]))
                    .cloned()
                    .collect(),
            ];
            assert!(of_day(&faulty, END) == expected, "{m:?}");
            let share = expected[0].len() as f64 / sessions.len() as f64;
            assert!(
                (share - f64::from(hours) / 24.0).abs() < 0.05,
                "{m:?}: {share}"
            );
        }
    }

    #[test]
    fn duplicates_repeat_the_first_orders() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        for (m, count) in MAGNITUDES.into_iter().zip([1, 2, 5]) {
            let [s, o, a] = of_day(&warehouse(&[Fault::Duplicates], m), END);
            assert!(s == sessions && a == attribution);
            assert_eq!(o.len(), orders.len() + count, "{m:?}");
            assert_eq!(o[..orders.len()], orders[..]);
            assert_eq!(o[orders.len()..], orders[..count]);
        }
    }

    #[test]
    fn revenue_faults_change_only_the_revenue_of_the_orders_they_name() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        let revenue = |r: &[String]| r[3].parse::<f64>().unwrap();
        let zero = orders.iter().filter(|r| revenue(r) == 0.0).count();
        assert!(zero < share(orders.len(), 0.1));
        for fault in [
            Fault::NegativeRevenue,
            Fault::ZeroRevenueSpike,
            Fault::RevenueSpike,
        ] {
            for m in MAGNITUDES {
                let faulty = warehouse(&[fault], m);
                let [s, o, a] = of_day(&faulty, END);
                assert!(s == sessions && a == attribution, "{fault:?} {m:?}");
                let diff = changed(&orders, &o);
                for (c, f) in &diff {
                    assert_eq!(
                        columns(&clean.headers[1], c, f),
                        ["revenue"],
                        "{fault:?} {m:?}"
                    );
                }
                let amount = fault.amount(m);
                match fault {
                    Fault::NegativeRevenue => {
                        assert_eq!(diff.len(), amount as usize, "{m:?}");
                        for (i, (c, f)) in diff.iter().enumerate() {
                            assert_eq!(c[0], orders[i][0]);
                            assert_eq!(revenue(f), -revenue(c).max(449.0));
                        }
                    }
                    Fault::ZeroRevenueSpike => {
                        assert_eq!(diff.len(), share(orders.len(), amount) - zero, "{m:?}");
                        assert!(diff.iter().all(|(_, f)| revenue(f) == 0.0));
                    }
                    _ => {
                        assert_eq!(diff.len(), orders.len() - zero, "{m:?}");
                        for (c, f) in &diff {
                            assert!((revenue(f) - revenue(c) * amount).abs() <= 0.05, "{m:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_conversion_drop_loses_the_named_share_of_purchases_at_payment() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        for (m, remaining) in MAGNITUDES.into_iter().zip([0.7, 0.5, 0.25]) {
            let [s, o, a] = of_day(&warehouse(&[Fault::ConversionDrop], m), END);
            let lost = share(orders.len(), 1.0 - remaining);
            assert_eq!(o.len(), orders.len() - lost, "{m:?}");
            assert!(o.iter().all(|r| orders.contains(r)));
            let kept: Vec<&String> = o.iter().map(|r| &r[0]).collect();
            let expected: Vec<Vec<String>> = attribution
                .iter()
                .filter(|r| kept.contains(&&r[0]))
                .cloned()
                .collect();
            assert!(a == expected);
            let diff = changed(&sessions, &s);
            assert_eq!(diff.len(), lost);
            for (c, f) in diff {
                assert_eq!(columns(&clean.headers[0], c, f), ["purchases"]);
                assert_eq!(
                    (&c[7][..], &f[7][..], &f[8][..]),
                    ("1", "1", "0"),
                    "checkout kept"
                );
            }
        }
    }

    #[test]
    fn channel_faults_relabel_the_named_share_of_sessions_and_their_orders() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        for (fault, from, to) in [
            (Fault::ChannelShiftToDirect, None, "direct"),
            (
                Fault::ChannelDisappearing,
                Some("google_ads"),
                "google_organic",
            ),
        ] {
            let candidates = sessions
                .iter()
                .filter(|r| from.map_or(r[12] != "direct", |f| r[12] == f))
                .count();
            for m in MAGNITUDES {
                let [s, o, a] = of_day(&warehouse(&[fault], m), END);
                let diff = changed(&sessions, &s);
                assert_eq!(
                    diff.len(),
                    share(candidates, fault.amount(m)),
                    "{fault:?} {m:?}"
                );
                let mut moved = Vec::new();
                for (c, f) in diff {
                    assert_eq!(f[12], to);
                    assert!(f[13..16].iter().all(String::is_empty), "utm cleared");
                    let expected_ref = if to == "direct" { "" } else { &c[11] };
                    assert_eq!(f[11], expected_ref);
                    assert_eq!(f[10], c[10].split("&utm_source").next().unwrap());
                    moved.push(c[0].clone());
                }
                for (c, f) in changed(&orders, &o) {
                    assert!(moved.contains(&c[5]));
                    assert_eq!(columns(&clean.headers[1], c, f), ["marketing_source"]);
                    assert_eq!(f[6], to);
                }
                for (c, f) in changed(&attribution, &a) {
                    assert_eq!((&f[1][..], &f[3][..]), ("last_click", to), "{c:?}");
                }
            }
        }
    }

    #[test]
    fn session_faults_change_the_named_share_of_one_column() {
        let clean = warehouse(&[], Magnitude::Gross);
        let [sessions, orders, attribution] = of_day(&clean, END);
        for (fault, column) in [
            (Fault::NullSpike, "client_id"),
            (Fault::UnparsableTimestamps, "session_start"),
        ] {
            for m in MAGNITUDES {
                let [s, o, a] = of_day(&warehouse(&[fault], m), END);
                let diff = changed(&sessions, &s);
                assert_eq!(
                    diff.len(),
                    share(sessions.len(), fault.amount(m)),
                    "{fault:?} {m:?}"
                );
                let mut emptied = Vec::new();
                for (c, f) in diff {
                    assert_eq!(columns(&clean.headers[0], c, f), [column]);
                    if fault == Fault::NullSpike {
                        assert_eq!(f[1], "");
                        emptied.push(c[1].clone());
                    } else {
                        assert!(f[2].starts_with(&format!("{END} 25:")), "{}", f[2]);
                    }
                }
                assert!(a == attribution);
                // The orders of the sessions without a client id have none either.
                for (c, f) in changed(&orders, &o) {
                    assert!(emptied.contains(&c[1]));
                    assert_eq!(columns(&clean.headers[1], c, f), ["client_id"]);
                }
            }
        }
    }
}
