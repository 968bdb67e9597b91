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
        |_, _, _, score| score.exceeds(3.0, 0.3),
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
        |_, _, _, score| score.exceeds(3.0, 0.3),
    );
    assert!(!judged.last().unwrap().1.flagged);
}

#[test]
fn the_mad_has_the_mean_absolute_deviation_as_its_floor() {
    // Half the window equals the median: the MAD is 0, yet the other days vary by ±20.
    let s = series(
        "2025-03-01",
        &[100.0, 100.0, 100.0, 120.0, 80.0, 100.0, 130.0, 70.0],
    );
    let params = BaselineParams {
        window_days: 8,
        min_points: 8,
        center: Center::Median,
        ..BaselineParams::default()
    };
    let b = params
        .baseline(&s, day("2025-03-09"), &BTreeSet::new())
        .unwrap();
    assert_eq!(b.center, 100.0);
    // Deviations 0,0,0,0,20,20,30,30: MAD 0, 75th percentile 22.5, scaled 0.8694 x 22.5.
    assert!((b.spread - 19.5615).abs() < 1e-9, "{}", b.spread);
    // More than three quarters equal: the mean absolute deviation, 1.2533 x 80 / 8.
    let flat = series("2025-03-01", &[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 85.0]);
    let b2 = params
        .baseline(&flat, day("2025-03-09"), &BTreeSet::new())
        .unwrap();
    assert!((b2.spread - 12.533).abs() < 1e-9, "{}", b2.spread);
    // A day at 110 is under one spread away, not an unbounded score.
    let score = Score::new(110.0, b.center, b.spread);
    assert!(!score.exceeds(3.0, 0.0), "{score:?}");
}

#[test]
fn values_that_are_not_finite_stay_out_of_baselines_and_are_unbounded() {
    let s = series("2025-03-01", &[10.0, f64::INFINITY, 12.0, f64::NAN, 11.0]);
    let params = BaselineParams {
        window_days: 5,
        min_points: 3,
        ..BaselineParams::default()
    };
    let b = params
        .baseline(&s, day("2025-03-06"), &BTreeSet::new())
        .unwrap();
    assert_eq!(
        b.days,
        [day("2025-03-01"), day("2025-03-03"), day("2025-03-05")]
    );
    assert_eq!(b.center, 11.0);
    assert_eq!(
        Score::new(f64::INFINITY, 11.0, 1.0),
        Score { z: None, pct: None }
    );
}

/// 14 days near 100, then `low` days near 50, judged with a 10-day window.
fn shifted(low: usize, adapt_after_days: u32) -> Vec<(NaiveDate, Judgement)> {
    let mut values = vec![100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0];
    values.extend([97.0, 100.0, 101.0, 99.0, 102.0, 98.0, 100.0]);
    values.extend((0..low).map(|i| 50.0 + (i % 3) as f64));
    let s = series("2025-03-01", &values);
    let params = BaselineParams {
        window_days: 10,
        min_points: 5,
        adapt_after_days,
        ..BaselineParams::default()
    };
    let last = *s.keys().last().unwrap();
    judge_history(&s, &params, Noise::None, last, |_, _, _, score| {
        score.exceeds(3.0, 0.3)
    })
}

#[test]
fn a_lasting_level_shift_is_one_new_level_and_the_baseline_adapts() {
    let judged = shifted(8, 3);
    let flagged: Vec<(NaiveDate, Option<NaiveDate>)> = judged
        .iter()
        .filter(|(_, j)| j.flagged)
        .map(|(d, j)| (*d, j.since))
        .collect();
    // The shift begins on 03-15: that day is new, the next two continue it; after 3 days the
    // new level rejoins the baseline, whose spread then covers both levels.
    assert_eq!(
        flagged,
        [
            (day("2025-03-15"), None),
            (day("2025-03-16"), Some(day("2025-03-15"))),
            (day("2025-03-17"), Some(day("2025-03-15"))),
        ]
    );
    let after = &judged.last().unwrap().1;
    assert!(!after.flagged);
    let baseline = after.baseline.as_ref().unwrap();
    assert!(baseline.excluded.is_empty(), "{baseline:?}");
    assert!(baseline.days.contains(&day("2025-03-15")));
    // With adaptation off, the low days stay flagged against the old level until excluding
    // them leaves too few days for a baseline: the shift is then not judged at all.
    let strict = shifted(8, 0);
    assert_eq!(strict.iter().filter(|(_, j)| j.flagged).count(), 6);
    assert_eq!(
        strict.last().unwrap().1.baseline,
        Err(Insufficient {
            points: 4,
            needed: 5
        })
    );
}

#[test]
fn scope_all_records_the_expected_day_with_its_reference_baseline_and_history() {
    // Positions 0-3 are never judged; from position 4 the baseline is the mean and population
    // std of the earlier values: 11 ± 1 for both 2025-03-05 (10: z -1) and 2025-03-07 (30).
    let values = [10.0, 12.0, 10.0, 12.0, 10.0, 12.0, 30.0];
    let dense = series("2025-03-01", &values);
    let sparse: Vec<(NaiveDate, Option<f64>)> = dense.iter().map(|(d, v)| (*d, Some(*v))).collect();
    let cx = RunCtx::new(day("2025-03-07"), Scope::All, Default::default());
    let mut observations = Vec::new();
    let flags = flag_days(
        &cx,
        Series {
            metric: "anomaly:orders",
            dense: &dense,
            sparse: &sparse,
            noise: Noise::None,
            unit: Unit::count("orders/day"),
        },
        &BaselineParams::default(),
        &mut observations,
        |_, _, _, score| score.exceeds(3.0, 0.3),
    )
    .unwrap();
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].day, day("2025-03-07"));
    let [o] = observations.as_slice() else {
        panic!("one observation: {observations:?}")
    };
    assert_eq!(o.metric, "anomaly:orders");
    assert_eq!(o.day, day("2025-03-07"));
    assert_eq!(o.value, 30.0);
    assert_eq!(o.baseline, Some((11.0, 1.0)));
    assert_eq!(o.z, Some(19.0));
    assert!(o.flagged);
    assert_eq!(o.unit, Unit::count("orders/day"));
    let judged: Vec<_> = o
        .history
        .iter()
        .map(|p| (p.day, p.baseline, p.flagged))
        .collect();
    assert_eq!(
        judged,
        [
            (day("2025-03-01"), None, false),
            (day("2025-03-02"), None, false),
            (day("2025-03-03"), None, false),
            (day("2025-03-04"), None, false),
            (day("2025-03-05"), Some((11.0, 1.0)), false),
            (day("2025-03-06"), o.history[5].baseline, false),
            (day("2025-03-07"), Some((11.0, 1.0)), true),
        ]
    );
    // Mean 10.8 and population std √0.96 of 10, 12, 10, 12, 10.
    let (center, spread) = o.history[5].baseline.unwrap();
    assert!((center - 10.8).abs() < 1e-12 && (spread - 0.96f64.sqrt()).abs() < 1e-12);
}

#[test]
fn the_normal_tail_is_accurate() {
    for (z, p) in [
        (0.0, 0.5),
        (1.0, 0.158_655_25),
        (3.0, 0.001_349_898),
        (-2.0, 0.977_249_87),
    ] {
        assert!((normal_tail(z) - p).abs() < 2e-7, "{z}: {}", normal_tail(z));
    }
}

#[test]
fn the_poisson_tail_sums_exactly() {
    // λ = 0.6: P(X ≥ 3) = 1 − e^−0.6 (1 + 0.6 + 0.18) = 0.023115...
    assert!(
        (poisson_tail(3.0, 0.6) - 0.023_115_5).abs() < 1e-6,
        "{}",
        poisson_tail(3.0, 0.6)
    );
    assert!((poisson_tail(1.0, 2.0) - (1.0 - (-2.0_f64).exp())).abs() < 1e-12);
    assert_eq!(poisson_tail(0.0, 5.0), 1.0);
    assert_eq!(poisson_tail(2.0, 0.0), 0.0);
    // A fractional count asks for at least the next whole one.
    assert_eq!(poisson_tail(2.5, 1.0), poisson_tail(3.0, 1.0));
}

#[test]
fn sums_and_means_have_the_noise_of_their_values() {
    // A day of 4 orders of 100, 100, 200, 600: Y = 1000, Q = 420000, mean 250.
    let d = day("2025-03-10");
    let one = |v: f64| -> DailySeries { [(d, v)].into_iter().collect() };
    let (squares, sums, counts) = (one(420_000.0), one(1000.0), one(4.0));
    let sums_noise = Noise::Sums {
        squares: &squares,
        sums: &sums,
    };
    // At a baseline of 1200: √(1200 × 420000 / 1000) = √504000.
    assert!((sums_noise.floor(d, 1200.0) - 504_000_f64.sqrt()).abs() < 1e-9);
    let means = Noise::Means {
        squares: &squares,
        sums: &sums,
        counts: &counts,
    };
    // Variance of the values 105000 − 62500 = 42500, over 4 values: √10625.
    assert!((means.floor(d, 300.0) - 10_625_f64.sqrt()).abs() < 1e-9);
    // The next day's floors come from the usual values (03-10's), not its own: tripled order
    // values do not widen them; a mean of no values has none.
    let next = day("2025-03-11");
    let two = |a: f64, b: f64| -> DailySeries { [(d, a), (next, b)].into_iter().collect() };
    let (squares, sums, counts) = (
        two(420_000.0, 9.0 * 420_000.0),
        two(1000.0, 3000.0),
        two(4.0, 4.0),
    );
    let sums_noise = Noise::Sums {
        squares: &squares,
        sums: &sums,
    };
    assert!((sums_noise.floor(next, 1200.0) - 504_000_f64.sqrt()).abs() < 1e-9);
    let means = Noise::Means {
        squares: &squares,
        sums: &sums,
        counts: &counts,
    };
    assert!((means.floor(next, 300.0) - 10_625_f64.sqrt()).abs() < 1e-9);
    let none = Noise::Means {
        squares: &squares,
        sums: &sums,
        counts: &one(4.0),
    };
    assert_eq!(none.floor(next, 300.0), 0.0);
}
