//! The HTML report as a browser renders it: the Puffy runs of 2025-03-07 and 2025-03-08 with the
//! example config (the second report charts each metric's days and its values over both runs)
//! are opened in headless Chromium with a script that measures every chart (axis labels, legend
//! entries, points and their tooltips, with `getBoundingClientRect`) and writes the result
//! into the page, read back with `--dump-dom`. A missing `chromium` is a failure that says how
//! to install it.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vigil_tests::{json_report, puffy_copy, repo_root, vigil_run};

/// The Chromium binary: `VIGIL_CHROMIUM`, else `chromium` on the `PATH`.
fn chromium() -> String {
    std::env::var("VIGIL_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Measures each chart of the page into `<pre id="measured">` as JSON: per chart its title,
/// tick and date labels, points and their tooltips, legend entries (with whether each is
/// visible inside its chart), the labels that overflow their chart and the pairs of labels
/// that overlap.
const MEASURE: &str = r#"<script>
window.addEventListener('load', () => {
  const inside = (r, box) => r.left >= box.left - 0.5 && r.right <= box.right + 0.5
    && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
  const overlap = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const charts = [...document.querySelectorAll('div.chart')].map(chart => {
    const svg = chart.querySelector('svg.plot');
    const box = svg.getBoundingClientRect();
    const card = chart.getBoundingClientRect();
    const labels = [...svg.querySelectorAll('text')];
    const rects = labels.map(t => t.getBoundingClientRect());
    const overlaps = [];
    rects.forEach((a, i) => rects.forEach((b, j) => {
      if (i < j && overlap(a, b)) overlaps.push([labels[i].textContent, labels[j].textContent]);
    }));
    const points = [...svg.querySelectorAll('circle.point')];
    return {
      runs: chart.classList.contains('runs'),
      title: chart.querySelector('h3').textContent,
      ticks: [...svg.querySelectorAll('text.tick')].map(t => t.textContent),
      dates: [...svg.querySelectorAll('text.date')].map(t => t.textContent),
      overflow: labels.filter((t, i) => !inside(rects[i], box)).map(t => t.textContent),
      overlaps,
      points: points.length,
      flagged: svg.querySelectorAll('circle.flag').length,
      tooltips: points.map(p => p.querySelector('title') ? p.querySelector('title').textContent : ''),
      legend: [...chart.querySelectorAll('.legend .key')].map(k => {
        const r = k.getBoundingClientRect();
        return {label: k.textContent, visible: r.width > 0 && r.height > 0 && inside(r, card)};
      }),
    };
  });
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify(charts);
  document.body.appendChild(out);
});
</script>"#;

/// Renders `html` in headless Chromium with [`MEASURE`] and returns what it measured.
fn measure(html: &str, dir: &Path) -> Vec<Value> {
    let page = dir.join("measured.html");
    fs::write(&page, html.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
    let binary = chromium();
    let output = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,900",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{binary}` ({e}): the browser test needs Chromium; install it with \
                 `apt-get update && apt-get install -y chromium` (or set VIGIL_CHROMIUM)"
            )
        });
    let dom = String::from_utf8_lossy(&output.stdout);
    let json = dom
        .split("<pre id=\"measured\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "Chromium wrote no measurements ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn labels(chart: &Value, key: &str) -> Vec<String> {
    chart[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_rendered_charts_have_labelled_axes_a_legend_and_a_tooltip_on_every_point() {
    let copy = puffy_copy();
    let out = copy.path().join("reports");
    let example = repo_root().join("schema/examples/puffy.yml");
    for date in ["2025-03-07", "2025-03-08"] {
        let result = vigil_run(&copy.path().join("warehouse"), &example, &out, date, &[]);
        assert_eq!(result.code, 0, "{result:?}");
    }
    let html = fs::read_to_string(out.join("monitoring_report.html")).unwrap();
    let report = json_report(&out);
    let measured = measure(&html, copy.path());
    let (runs, charts): (Vec<Value>, Vec<Value>) =
        measured.into_iter().partition(|c| c["runs"] == true);

    // A chart per metric with a daily history (the single-value checks are in the table).
    let charted: Vec<&str> = report["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metric"].as_str().unwrap())
        .filter(|m| report["daily_metrics"][m].as_object().unwrap().len() > 1)
        .collect();
    assert_eq!(charts.len(), charted.len());
    assert_eq!(runs.len(), report["observations"].as_array().unwrap().len());
    assert!(charted.contains(&"volume:sessions_floor"), "{charted:?}");

    for chart in &charts {
        let title = chart["title"].as_str().unwrap();
        let metric = title.trim_end_matches(" — flagged");
        let days = report["daily_metrics"][metric].as_object().unwrap().len();
        let ticks = labels(chart, "ticks");
        assert!(ticks.len() >= 3, "{title}: value ticks {ticks:?}");
        assert!(
            ticks.iter().all(|t| t.chars().any(|c| c.is_ascii_digit())),
            "{title}: {ticks:?}"
        );
        // Dates under the x axis, the judged day last and in full.
        let dates = labels(chart, "dates");
        assert!(dates.len() >= 2, "{title}: dates {dates:?}");
        assert_eq!(dates[0], "2025-03-08", "{title}: {dates:?}");
        assert!(
            dates[1..]
                .iter()
                .all(|d| d.len() == 5 && d.as_bytes()[2] == b'-'),
            "{title}: {dates:?}"
        );
        // Every point has a tooltip naming its day.
        assert_eq!(chart["points"].as_u64().unwrap() as usize, days, "{title}");
        for (tooltip, day) in labels(chart, "tooltips")
            .iter()
            .zip(report["daily_metrics"][metric].as_object().unwrap().keys())
        {
            assert!(
                tooltip.starts_with(&format!("{day}: ")),
                "{title}: {tooltip}"
            );
        }
        // A visible legend: the value and what it is judged against.
        let legend: Vec<(String, bool)> = chart["legend"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["label"].as_str().unwrap().to_string(),
                    k["visible"] == true,
                )
            })
            .collect();
        assert!(
            legend.iter().all(|(_, visible)| *visible),
            "{title}: {legend:?}"
        );
        let names: Vec<&str> = legend.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(names[0], "value", "{title}");
        assert!(
            names.contains(&"baseline band (center ± 3 spreads)")
                || names.iter().any(|n| n.starts_with("allowed: ")),
            "{title}: {names:?}"
        );
        assert_eq!(
            names.contains(&"flagged day"),
            chart["flagged"].as_u64().unwrap() > 0,
            "{title}: {names:?}"
        );
        // No label leaves its chart or covers another.
        assert_eq!(chart["overflow"], Value::Array(vec![]), "{title}");
        assert_eq!(chart["overlaps"], Value::Array(vec![]), "{title}");
    }

    // The values over the runs: both runs' points with their tooltips, on labelled axes.
    for chart in &runs {
        let title = chart["title"].as_str().unwrap();
        assert!(labels(chart, "ticks").len() >= 3, "{title}: {chart}");
        assert_eq!(labels(chart, "dates"), ["2025-03-08", "03-07"], "{title}");
        let tooltips = labels(chart, "tooltips");
        assert_eq!(tooltips.len(), 2, "{title}");
        assert!(
            tooltips[0].starts_with("run for 2025-03-07: "),
            "{title}: {tooltips:?}"
        );
        assert!(
            tooltips[1].starts_with("run for 2025-03-08: "),
            "{title}: {tooltips:?}"
        );
        assert_eq!(
            chart["legend"][0]["label"], "value the run judged",
            "{title}"
        );
        assert_eq!(chart["legend"][0]["visible"], true, "{title}");
        assert_eq!(chart["overflow"], Value::Array(vec![]), "{title}");
        assert_eq!(chart["overlaps"], Value::Array(vec![]), "{title}");
    }
    let floor_runs = runs
        .iter()
        .find(|c| c["title"] == "volume:sessions_floor")
        .unwrap();
    assert_eq!(
        labels(floor_runs, "tooltips"),
        [
            "run for 2025-03-07: 2,268 sessions/day",
            "run for 2025-03-08: 2,587 sessions/day"
        ]
    );

    let chart = |title: &str| charts.iter().find(|c| c["title"] == title).unwrap();
    let direct = chart("anomaly:channel_session_share direct — flagged");
    assert_eq!(direct["flagged"], 6, "03-01 and 03-04..03-08");
    assert!(labels(direct, "ticks").iter().all(|t| t.ends_with(" %")));
    let revenue = chart("anomaly:revenue");
    assert_eq!(
        labels(revenue, "tooltips").last().unwrap(),
        "2025-03-08: 22,885.00 · baseline 20,202.42 ± 5,961.62 · z 0.45"
    );
    let floor = chart("volume:sessions_floor");
    let names: Vec<String> = floor["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"allowed: min 1,000 sessions/day".to_string()),
        "{names:?}"
    );
    assert_eq!(
        labels(floor, "tooltips").last().unwrap(),
        "2025-03-08: 2,587 sessions/day · min 1,000 sessions/day"
    );
}
