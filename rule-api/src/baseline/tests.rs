use super::*;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn series(start: &str, values: &[f64]) -> DailySeries {
    day(start).iter_days().zip(values.iter().copied()).collect()
}

#[test]
fn the_reference_baseline_reproduces_the_spec_worked_example() {
    // SPEC 4.7: revenue on 03-01 against 02-23..02-28.
    let values = [
        20408.0, 25457.6, 13543.0, 15430.0, 16599.0, 18669.0, 30585.0,
    ];
    let series: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
    let (mean, std) = reference_baseline(&series, 6, 7).unwrap();
    let (z, pct) = reference_score(30585.0, mean, std);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(mean, 18351.100000000002), "{mean}");
    assert!(close(std, 3863.3911161914043), "{std}");
    assert!(close(z, 3.1666221803761823), "{z}");
    assert!(close(pct, 0.6666575845589636), "{pct}");
}

#[test]
fn the_reference_baseline_skips_the_first_four_positions_and_gaps() {
    let s = [Some(1.0), None, Some(2.0), None, Some(3.0), Some(9.0)];
    assert_eq!(reference_baseline(&s, 3, 7), None);
    // Position 4 has only 2 prior values.
    assert_eq!(reference_baseline(&s, 4, 7), None);
    // Position 5: prior values 1, 2, 3; last 2 of them with n = 2.
    assert_eq!(reference_baseline(&s, 5, 2), Some((2.5, 0.5)));
    assert_eq!(reference_score(4.0, 4.0, 0.0), (0.0, 0.0));
    assert_eq!(reference_score(3.0, 4.0, 0.0), (f64::INFINITY, -0.25));
    assert_eq!(reference_score(3.0, 0.0, 1.0), (3.0, f64::INFINITY));
}

#[test]
fn calendar_baselines_use_only_earlier_days_of_the_window() {
    let s = series("2025-03-01", &[10.0, 12.0, 14.0, 16.0, 100.0]);
    let params = BaselineParams {
        window_days: 3,
        min_points: 3,
        ..BaselineParams::default()
    };
    let b = params
        .baseline(&s, day("2025-03-05"), &BTreeSet::new())
        .unwrap();
    assert_eq!(
        b.days,
        [day("2025-03-02"), day("2025-03-03"), day("2025-03-04")]
    );
    assert_eq!(b.window, (day("2025-03-02"), day("2025-03-04")));
    assert_eq!(b.center, 14.0);
    assert_eq!(b.spread, 2.0); // sample std of 12, 14, 16
    let short = params
        .baseline(&s, day("2025-03-03"), &BTreeSet::new())
        .unwrap_err();
    assert_eq!(
        short,
        Insufficient {
            points: 2,
            needed: 3
        }
    );
}

#[test]
fn flagged_days_and_other_weekdays_are_left_out() {
    // Four weeks of a weekly pattern: weekends at 50, weekdays at 100.
    let values: Vec<f64> = (0..28)
        .map(|i| if i % 7 >= 5 { 50.0 } else { 100.0 })
        .collect();
    let s = series("2025-03-03", &values); // a Monday
    let params = BaselineParams {
        window_days: 28,
        min_points: 2,
        seasonality: Seasonality::DayOfWeek,
        ..BaselineParams::default()
    };
    let saturday = day("2025-03-29");
    let b = params
        .baseline(&s, saturday, &BTreeSet::from([day("2025-03-15")]))
        .unwrap();
    assert_eq!(b.days, [day("2025-03-08"), day("2025-03-22")]);
    assert_eq!(b.excluded, [day("2025-03-15")]);
    assert_eq!((b.center, b.spread), (50.0, 0.0));
}

#[test]
fn median_and_mad_resist_an_outlier_in_the_window() {
    let s = series("2025-03-01", &[10.0, 11.0, 9.0, 10.0, 1000.0, 10.0]);
    let params = BaselineParams {
        window_days: 5,
        min_points: 5,
        center: Center::Median,
        ..BaselineParams::default()
    };
    let b = params
        .baseline(&s, day("2025-03-06"), &BTreeSet::new())
        .unwrap();
    assert_eq!(b.center, 10.0);
    assert!((b.spread - 1.4826).abs() < 1e-12, "{}", b.spread);
}

#[test]
fn scores_never_divide_by_zero() {
    assert_eq!(
        Score::new(5.0, 5.0, 0.0),
        Score {
            z: Some(0.0),
            pct: Some(0.0)
        }
    );
    assert_eq!(
        Score::new(6.0, 5.0, 0.0),
        Score {
            z: None,
            pct: Some(0.2)
        }
    );
    assert_eq!(Score::new(3.0, 0.0, 0.0), Score { z: None, pct: None });
    assert_eq!(
        Score::new(-2.0, 4.0, 2.0),
        Score {
            z: Some(-3.0),
            pct: Some(-1.5)
        }
    );
    assert!(Score::new(6.0, 5.0, 0.0).exceeds(3.0, 0.1));
    assert!(!Score::new(6.0, 5.0, 0.0).exceeds(3.0, 0.3));
    assert_eq!(Score::new(6.0, 5.0, 0.0).describe(), "z=∞, change=+20.00%");
}

#[test]
fn an_incident_does_not_become_the_baseline_of_the_next_days() {
    // A level shift down from day 8: the first low day is flagged and left out, so the next
    // low days are judged against the old level and flagged too.
    let values = [
        100.0, 101.0, 99.0, 100.0, 102.0, 98.0, 100.0, 101.0, 50.0, 51.0, 49.0,
    ];
    let s = series("2025-03-01", &values);
    let params = BaselineParams {
        window_days: 7,
        min_points: 5,
        ..BaselineParams::default()
    };
    let judged = judge_history(
        &s,
        &params,
        Noise::None,
        day("2025-03-11"),
        |_, _, score| score.exceeds(3.0, 0.3),
    );
    let flagged: Vec<NaiveDate> = judged
        .iter()
        .filter(|(_, j)| j.flagged)
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(
        flagged,
        [day("2025-03-09"), day("2025-03-10"), day("2025-03-11")]
    );
    let last = &judged.last().unwrap().1;
    assert_eq!(
        last.baseline.as_ref().unwrap().excluded,
        [day("2025-03-09"), day("2025-03-10")]
    );
    // Without exclusion the incident soon looks normal.
    let lenient = BaselineParams {
        exclude_flagged: false,
        ..params
    };
    let judged = judge_history(
        &s,
        &lenient,
        Noise::None,
        day("2025-03-11"),
        |_, _, score| score.exceeds(3.0, 0.3),
    );
    assert!(!judged.last().unwrap().1.flagged);
}
