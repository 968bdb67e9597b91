//! Metric states: one per request, updated row by row in slots (a day is a slot number, a
//! dimension value an interned number), then turned into date-keyed partial values that merge
//! across parallel workers and finish into a [`MetricValue`].
//!
//! Memory is bounded by the number of distinct keys (days, dimension values, distinct cells),
//! never by the number of rows. Distinct cells are kept, and dimension values recognised, as
//! 64-bit hashes.

use crate::metric::{is_empty, parse_number as number};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

use chrono::NaiveDate;
use foldhash::fast::FixedState;

use super::codec::{Reader, Writer};
use crate::metric::{Grouping, Measure, MetricValue};

/// The hasher of distinct cells and of hash sets: fixed seed, so runs are reproducible.
pub const HASHER: FixedState = FixedState::with_seed(0x7669_6769_6c21);

/// A set of 64-bit hashes.
pub type HashSet64 = HashSet<u64, FixedState>;

/// A cell as the measures see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// Empty, the literal `NULL`/`null`, or absent from a short row.
    Null,
    /// A finite number.
    Number(f64),
    /// Any other text.
    Text,
}

impl Cell {
    /// Classifies raw cell bytes.
    pub fn classify(raw: Option<&[u8]>) -> Self {
        match raw {
            None | Some(b"" | b"NULL" | b"null") => Cell::Null,
            Some(bytes) => match number(bytes.trim_ascii()) {
                Some(n) => Cell::Number(n),
                None => Cell::Text,
            },
        }
    }
}

/// An accumulator of one group.
#[derive(Debug)]
pub enum Acc {
    /// A sum or count.
    Sum(f64),
    /// Distinct cells, as hashes.
    Set(HashSet64),
    /// Distinct cells with the dimension value they came with: one probe per row serves a
    /// per-day and a per-day-and-dimension distinct count of the same column.
    Fused(FusedDay),
    /// The distinct count of a day whose rows all sat in one stored partition (an incremental
    /// run keeps only the counts of such days): the cells, and per dimension number the cells
    /// of the dimension value (for a fused count; `None`: no row with that value). It never
    /// meets another accumulator of its day (the scan reads the partition again if one would).
    Counted {
        /// Distinct cells.
        distinct: usize,
        /// Distinct cells per dimension number.
        by_dim: Vec<Option<usize>>,
    },
}

/// Distinct cells of a day, each with its dimension numbers.
#[derive(Debug, Default)]
pub struct FusedDay {
    /// Each cell with the dimension of its first row.
    first: HashMap<u64, usize, FixedState>,
    /// The rare (cell, dimension) pairs beyond the first dimension of a cell.
    extra: HashSet<(u64, usize), FixedState>,
    /// Distinct cells per dimension number, kept as cells come in; `None` for a dimension
    /// value with no row on the day, `Some(0)` for one whose rows all had empty cells.
    counts: Vec<Option<usize>>,
}

impl FusedDay {
    fn insert(&mut self, cell: u64, dim: usize) {
        let new = match self.first.entry(cell) {
            Entry::Vacant(entry) => {
                entry.insert(dim);
                true
            }
            Entry::Occupied(first) => *first.get() != dim && self.extra.insert((cell, dim)),
        };
        let count = self.touch(dim);
        if new {
            *count += 1;
        }
    }

    /// Records that the dimension value has a row on the day (its count stays 0 without a
    /// non-empty cell).
    fn touch(&mut self, dim: usize) -> &mut usize {
        if self.counts.len() <= dim {
            self.counts.resize(dim + 1, None);
        }
        self.counts[dim].get_or_insert(0)
    }

    /// Replaces each dimension number `d` by `renumber[d]`; the cells keep their slots.
    fn renumber(&mut self, renumber: &[usize]) {
        for dim in self.first.values_mut() {
            *dim = renumber[*dim];
        }
        if !self.extra.is_empty() {
            self.extra = self.extra.drain().map(|(c, d)| (c, renumber[d])).collect();
        }
        let mut counts = vec![None; renumber.iter().max().map_or(0, |m| m + 1)];
        for (d, n) in self.counts.iter().enumerate() {
            counts[renumber[d]] = *n;
        }
        self.counts = counts;
    }
}

impl Acc {
    fn merge(&mut self, other: Acc) {
        match (self, other) {
            (Acc::Sum(a), Acc::Sum(b)) => *a += b,
            (Acc::Set(a), Acc::Set(mut b)) => {
                if b.len() > a.len() {
                    std::mem::swap(a, &mut b);
                }
                a.extend(b);
            }
            (Acc::Fused(a), Acc::Fused(b)) => {
                for (dim, _) in b.counts.iter().enumerate().filter(|(_, n)| n.is_some()) {
                    a.touch(dim);
                }
                for (cell, dim) in b.first.into_iter().chain(b.extra) {
                    a.insert(cell, dim);
                }
            }
            _ => unreachable!("one request has one kind of accumulator"),
        }
    }

    fn value(&self) -> f64 {
        match self {
            Acc::Sum(v) => *v,
            Acc::Set(s) => s.len() as f64,
            Acc::Fused(f) => f.first.len() as f64,
            Acc::Counted { distinct, .. } => *distinct as f64,
        }
    }
}

/// A request's groups keyed by date and dimension value: what workers hand over and merge.
#[derive(Debug)]
pub enum Partial {
    /// [`Grouping::Total`].
    Total(Acc),
    /// [`Grouping::Day`].
    Daily(HashMap<NaiveDate, Acc>),
    /// [`Grouping::DayBy`]: per day, per dimension value (only values that had rows).
    DailyBy(HashMap<NaiveDate, HashMap<Vec<u8>, Acc>>),
    /// A per-day distinct count fused with a per-day-and-dimension one ([`Acc::Fused`]); the
    /// dimension values by number.
    Fused(HashMap<NaiveDate, Acc>, Vec<Vec<u8>>),
    /// Computed by the fused partial of the request at this position.
    Derived(usize),
    /// [`Measure::Duplicates`]: the counts, and each value with the group (day, for a daily
    /// grouping, and dimension value) of its first row. Merged in file order: the first row of
    /// a value that an earlier part already holds is a duplicate too.
    Ordered(Box<Partial>, FirstRows),
}

/// Values and the group of their first row: its day slot and dimension number.
#[derive(Debug)]
pub struct FirstRows {
    /// Each value, with the day slot and dimension number of its first row.
    values: HashMap<Vec<u8>, (usize, usize), FixedState>,
    /// Days by slot (none for a total).
    days: Vec<NaiveDate>,
    /// Dimension values by number (none without a dimension).
    dims: Vec<Vec<u8>>,
}

impl FirstRows {
    /// Takes the values of a later part: returns the groups (day, dimension value) of those
    /// this one already holds (duplicates), and adds the others.
    fn absorb(&mut self, later: FirstRows) -> Vec<(Option<NaiveDate>, Vec<u8>)> {
        fn number<T: PartialEq + Clone>(all: &mut Vec<T>, item: &T) -> usize {
            match all.iter().position(|x| x == item) {
                Some(n) => n,
                None => {
                    all.push(item.clone());
                    all.len() - 1
                }
            }
        }
        let slots: Vec<usize> = later
            .days
            .iter()
            .map(|d| number(&mut self.days, d))
            .collect();
        let dims: Vec<usize> = later
            .dims
            .iter()
            .map(|d| number(&mut self.dims, d))
            .collect();
        let mut duplicates = Vec::new();
        for (value, (slot, dim)) in later.values {
            match self.values.entry(value) {
                Entry::Occupied(_) => duplicates.push((
                    later.days.get(slot).copied(),
                    later.dims.get(dim).cloned().unwrap_or_default(),
                )),
                Entry::Vacant(entry) => {
                    entry.insert((
                        slots.get(slot).copied().unwrap_or(0),
                        dims.get(dim).copied().unwrap_or(0),
                    ));
                }
            }
        }
        duplicates
    }
}

impl Partial {
    /// Adds another worker's groups.
    pub fn merge(&mut self, other: Partial) {
        fn into<K: std::hash::Hash + Eq>(a: &mut HashMap<K, Acc>, b: HashMap<K, Acc>) {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(acc) => acc.merge(v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        match (self, other) {
            (Partial::Total(a), Partial::Total(b)) => a.merge(b),
            (Partial::Daily(a), Partial::Daily(b)) => into(a, b),
            (Partial::DailyBy(a), Partial::DailyBy(b)) => {
                for (day, dims) in b {
                    into(a.entry(day).or_default(), dims);
                }
            }
            (Partial::Fused(a, dims), Partial::Fused(b, b_dims)) => {
                // Dimension numbers are per worker: renumber the other's into ours.
                let renumber: Vec<usize> = b_dims
                    .into_iter()
                    .map(|dim| match dims.iter().position(|d| *d == dim) {
                        Some(n) => n,
                        None => {
                            dims.push(dim);
                            dims.len() - 1
                        }
                    })
                    .collect();
                let mut b = b;
                if renumber.iter().enumerate().any(|(i, n)| i != *n) {
                    for acc in b.values_mut() {
                        match acc {
                            Acc::Fused(f) => f.renumber(&renumber),
                            Acc::Counted { by_dim, .. } => {
                                let mut counts =
                                    vec![None; renumber.iter().max().map_or(0, |m| m + 1)];
                                for (d, n) in by_dim.iter().enumerate() {
                                    counts[renumber[d]] = *n;
                                }
                                *by_dim = counts;
                            }
                            _ => unreachable!("fused partials hold fused days"),
                        }
                    }
                }
                into(a, b);
            }
            (Partial::Derived(_), Partial::Derived(_)) => {}
            (Partial::Ordered(a, firsts), Partial::Ordered(b, later)) => {
                a.merge(*b);
                for (day, dim) in firsts.absorb(later) {
                    a.add_one(day, dim);
                }
            }
            _ => unreachable!("one request has one grouping"),
        }
    }

    /// Adds one to the sum of a group (a duplicate found when merging).
    fn add_one(&mut self, day: Option<NaiveDate>, dim: Vec<u8>) {
        let acc = match (self, day) {
            (Partial::Total(acc), _) => acc,
            (Partial::Daily(days), Some(day)) => days.entry(day).or_insert(Acc::Sum(0.0)),
            (Partial::DailyBy(days), Some(day)) => days
                .entry(day)
                .or_default()
                .entry(dim)
                .or_insert(Acc::Sum(0.0)),
            _ => return,
        };
        if let Acc::Sum(sum) = acc {
            *sum += 1.0;
        }
    }

    /// The per-day-and-dimension distinct counts of a fused partial, as a partial.
    pub fn by_dimension(&self) -> Partial {
        let Partial::Fused(days, dims) = self else {
            unreachable!("only a fused partial is split by dimension")
        };
        Partial::DailyBy(
            days.iter()
                .map(|(day, acc)| {
                    let counts = match acc {
                        Acc::Fused(f) => &f.counts,
                        Acc::Counted { by_dim, .. } => by_dim,
                        _ => unreachable!("fused partials hold fused days"),
                    };
                    let counts = counts
                        .iter()
                        .zip(dims)
                        .filter_map(|(n, dim)| Some((dim.clone(), Acc::Sum((*n)? as f64))));
                    (*day, counts.collect())
                })
                .collect(),
        )
    }

    /// The metric value; per-day series hold 0 on every day of the table's date span, and
    /// nothing outside it (days left out of the run's window).
    pub fn finish(self, span: Option<(NaiveDate, NaiveDate)>) -> MetricValue {
        let within = |d: &NaiveDate| super::DateStats::in_span(span, d);
        let span_days = || {
            span.into_iter()
                .flat_map(|(first, last)| first.iter_days().take_while(move |d| *d <= last))
        };
        match self {
            Partial::Total(acc) => MetricValue::Total(acc.value()),
            Partial::Daily(days) | Partial::Fused(days, _) => {
                let mut series: BTreeMap<NaiveDate, f64> = span_days().map(|d| (d, 0.0)).collect();
                series.extend(
                    days.into_iter()
                        .filter(|(d, _)| within(d))
                        .map(|(d, acc)| (d, acc.value())),
                );
                MetricValue::Daily(series)
            }
            Partial::DailyBy(days) => {
                let mut series: BTreeMap<NaiveDate, BTreeMap<String, f64>> =
                    span_days().map(|d| (d, BTreeMap::new())).collect();
                for (day, dims) in days.into_iter().filter(|(d, _)| within(d)) {
                    let slot = series.entry(day).or_default();
                    for (dim, acc) in dims {
                        // Cells are compared unquoted: a doubled quote is one quote.
                        let name = dimension_name(&dim).replace("\"\"", "\"");
                        slot.insert(name, acc.value());
                    }
                }
                MetricValue::DailyBy(series)
            }
            Partial::Ordered(counts, _) => counts.finish(span),
            Partial::Derived(_) => unreachable!("a derived partial is finished from its source"),
        }
    }
}

/// A dimension value as text that keeps distinct bytes distinct: valid UTF-8 as it is, each
/// invalid byte as `\xNN` (two values that differ only in invalid bytes must not merge).
fn dimension_name(bytes: &[u8]) -> String {
    let mut name = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        name.push_str(chunk.valid());
        for byte in chunk.invalid() {
            name.push_str(&format!("\\x{byte:02X}"));
        }
    }
    name
}

/// How much of a cell a measure needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The bytes only.
    Bytes,
    /// Whether it is null ([`Cell::Null`] or [`Cell::Text`] for anything else).
    Nullness,
    /// Null, number or text.
    Class,
}

impl Cell {
    /// Null or not, without parsing a number.
    pub fn nullness(raw: Option<&[u8]>) -> Self {
        match raw {
            None | Some(b"" | b"NULL" | b"null") => Cell::Null,
            Some(_) => Cell::Text,
        }
    }
}

/// What one row offers a state: its day slot, the measured cell, its hash (lazily) and the
/// dimension value's interned number.
pub struct RowCell<'a> {
    /// The cell's bytes (`None`: absent).
    pub bytes: Option<&'a [u8]>,
    /// The classified cell.
    pub cell: Cell,
}

/// The running state of one request, in slots.
#[derive(Debug)]
pub struct State {
    measure: Measure,
    grouping: Grouping,
    /// Per day slot (slot 0 for totals), per dimension number (0 without a dimension).
    slots: Vec<Vec<Option<Acc>>>,
    /// Per day slot (slot 0 for totals), when the measure adds a number per row and is not
    /// grouped by a dimension (most requests): a plain vector instead of `slots`.
    sums: Option<Vec<f64>>,
    /// Dimension values by number.
    dims: Vec<Vec<u8>>,
    /// Dimension numbers by the hash of the value.
    dim_numbers: HashMap<u64, usize, FixedState>,
    /// Exact values seen so far, each with the group (day slot, dimension number) of its first
    /// row (only for [`Measure::Duplicates`]).
    seen: HashMap<Vec<u8>, (usize, usize), FixedState>,
    /// A per-day distinct count that also records each cell's dimension value.
    fused: bool,
    /// Computed by the fused state at this position: updates are skipped.
    derived_from: Option<usize>,
}

impl State {
    /// A fresh state for a request.
    pub fn new(measure: &Measure, grouping: &Grouping) -> Self {
        State {
            measure: measure.clone(),
            grouping: grouping.clone(),
            slots: Vec::new(),
            sums: (!matches!(measure, Measure::Distinct(_))
                && !matches!(grouping, Grouping::DayBy(_)))
            .then(Vec::new),
            dims: Vec::new(),
            dim_numbers: HashMap::with_hasher(HASHER),
            seen: HashMap::with_hasher(HASHER),
            fused: false,
            derived_from: None,
        }
    }

    /// Fuses states of one table: a per-day-and-dimension distinct count of a column is served
    /// by the per-day distinct count of the same column (same filter), which then records the
    /// dimension value of each cell; one hash probe per row instead of two.
    /// Returns the (fused, derived) pairs: the fused state reads the derived one's dimension.
    pub fn fuse(states: &mut [State], unfiltered: &[bool]) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for j in 0..states.len() {
            let Grouping::DayBy(_) = states[j].grouping else {
                continue;
            };
            if !matches!(states[j].measure, Measure::Distinct(_)) || !unfiltered[j] {
                continue;
            }
            let partner = (0..states.len()).find(|&i| {
                unfiltered[i]
                    && states[i].grouping == Grouping::Day
                    && states[i].measure == states[j].measure
                    && !states[i].fused
                    && states[i].derived_from.is_none()
            });
            if let Some(i) = partner {
                states[i].fused = true;
                states[j].derived_from = Some(i);
                pairs.push((i, j));
            }
        }
        pairs
    }

    /// Whether another state computes this one.
    pub fn is_derived(&self) -> bool {
        self.derived_from.is_some()
    }

    /// How much of the cell the measure needs.
    pub fn needs(&self) -> Need {
        match self.measure {
            Measure::Rows | Measure::Distinct(_) | Measure::Duplicates(_) => Need::Bytes,
            Measure::Nulls(_) => Need::Nullness,
            _ => Need::Class,
        }
    }

    /// The number of a dimension value, known by the hash of its bytes (no byte comparison
    /// per row).
    fn dim_number(&mut self, dim: &[u8]) -> usize {
        let next = self.dims.len();
        let n = *self.dim_numbers.entry(hash_cell(dim)).or_insert(next);
        if n == next {
            self.dims.push(dim.to_vec());
        }
        n
    }

    /// Folds one row in. `day` is the row's day slot (`None`: no day), `hash` the measured
    /// cell's hash (for distinct counts), `dim` the dimension value.
    pub fn update(
        &mut self,
        day: Option<usize>,
        cell: &RowCell<'_>,
        hash: impl FnOnce() -> u64,
        dim: &[u8],
    ) {
        let slot = match self.grouping {
            Grouping::Total => 0,
            _ => match day {
                Some(d) => d,
                None => return,
            },
        };
        if self.fused {
            let dim = self.dim_number(dim);
            let acc = self.acc(slot, 0, || Acc::Fused(FusedDay::default()));
            if let Acc::Fused(f) = acc {
                match cell.bytes {
                    Some(b) if !is_empty(Some(b)) => f.insert(hash(), dim),
                    _ => {
                        f.touch(dim);
                    }
                }
            }
            return;
        }
        if let Measure::Distinct(_) = self.measure {
            let dim = match self.grouping {
                Grouping::DayBy(_) => self.dim_number(dim),
                _ => 0,
            };
            let acc = self.acc(slot, dim, || Acc::Set(HashSet64::with_hasher(HASHER)));
            if let (Acc::Set(set), Some(b)) = (acc, cell.bytes) {
                if !is_empty(Some(b)) {
                    set.insert(hash());
                }
            }
            return;
        }
        let dim = match self.sums {
            Some(_) => 0,
            None => self.dim_number(dim),
        };
        let add = self.row_value(cell, (slot, dim));
        if let Some(sums) = &mut self.sums {
            if sums.len() <= slot {
                sums.resize(slot + 1, 0.0);
            }
            sums[slot] += add;
            return;
        }
        if let Acc::Sum(sum) = self.acc(slot, dim, || Acc::Sum(0.0)) {
            *sum += add;
        }
    }

    /// What a row adds to a sum-like measure; `group` is the row's (day slot, dimension
    /// number).
    fn row_value(&mut self, cell: &RowCell<'_>, group: (usize, usize)) -> f64 {
        match (&self.measure, cell.cell) {
            (Measure::Rows, _) => 1.0,
            (Measure::Sum(_), Cell::Number(n)) => n,
            (Measure::SumSquares(_), Cell::Number(n)) => crate::metric::square(n),
            (Measure::Numeric(_), Cell::Number(_)) => 1.0,
            (Measure::Nulls(_), Cell::Null) => 1.0,
            (Measure::NonNumeric(_), Cell::Text) => 1.0,
            (Measure::Where { cmp, value, .. }, Cell::Number(n)) => {
                f64::from(u8::from(cmp.holds(n, value.0)))
            }
            (Measure::Duplicates(_), _) => {
                // Empty cells (absent, empty, NULL, null) count as equal to each other.
                let key = cell
                    .bytes
                    .filter(|b| !is_empty(Some(b)))
                    .unwrap_or_default();
                if self.seen.contains_key(key) {
                    1.0
                } else {
                    self.seen.insert(key.to_vec(), group);
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    fn acc(&mut self, slot: usize, dim: usize, new: impl FnOnce() -> Acc) -> &mut Acc {
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, Vec::new);
        }
        let dims = &mut self.slots[slot];
        if dims.len() <= dim {
            dims.resize_with(dim + 1, || None);
        }
        dims[dim].get_or_insert_with(new)
    }

    /// The groups keyed by date (`days[slot]`) and dimension value, for merging.
    pub fn into_partial(mut self, days: &[NaiveDate]) -> Partial {
        if let Some(source) = self.derived_from {
            return Partial::Derived(source);
        }
        if self.fused {
            let days = self
                .slots
                .into_iter()
                .enumerate()
                .filter_map(|(slot, mut d)| Some((days[slot], d.get_mut(0)?.take()?)))
                .collect();
            return Partial::Fused(days, self.dims);
        }
        if let Measure::Duplicates(_) = self.measure {
            let firsts = FirstRows {
                values: std::mem::take(&mut self.seen),
                days: match self.grouping {
                    Grouping::Total => Vec::new(),
                    _ => days.to_vec(),
                },
                dims: self.dims.clone(),
            };
            return Partial::Ordered(Box::new(self.groups(days)), firsts);
        }
        self.groups(days)
    }

    /// The groups of a state that is neither derived nor fused.
    fn groups(self, days: &[NaiveDate]) -> Partial {
        if let Some(sums) = self.sums {
            return match self.grouping {
                Grouping::Total => Partial::Total(Acc::Sum(sums.first().copied().unwrap_or(0.0))),
                _ => Partial::Daily(
                    sums.into_iter()
                        .enumerate()
                        .map(|(slot, sum)| (days[slot], Acc::Sum(sum)))
                        .collect(),
                ),
            };
        }
        let dims = self.dims;
        let mut slots = self.slots.into_iter().enumerate();
        match self.grouping {
            Grouping::Total => {
                // Only distinct counts are kept in slots (sums are in `sums`).
                let acc = slots
                    .next()
                    .and_then(|(_, mut d)| d.get_mut(0).and_then(Option::take))
                    .unwrap_or_else(|| Acc::Set(HashSet64::with_hasher(HASHER)));
                Partial::Total(acc)
            }
            Grouping::Day => Partial::Daily(
                slots
                    .filter_map(|(slot, mut d)| Some((days[slot], d.get_mut(0)?.take()?)))
                    .collect(),
            ),
            Grouping::DayBy(_) => Partial::DailyBy(
                slots
                    .map(|(slot, d)| {
                        let by_dim = d
                            .into_iter()
                            .enumerate()
                            .filter_map(|(n, acc)| Some((dims[n].clone(), acc?)))
                            .collect();
                        (days[slot], by_dim)
                    })
                    .filter(|(_, by_dim): &(NaiveDate, HashMap<Vec<u8>, Acc>)| !by_dim.is_empty())
                    .collect(),
            ),
        }
    }
}

/// The kind of accumulators a partial holds, for checking decoded bytes against the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccKind {
    /// Sums and counts.
    Sum,
    /// Distinct cells ([`Acc::Set`] or [`Acc::Counted`]).
    Set,
    /// Fused distinct cells ([`Acc::Fused`] or [`Acc::Counted`]).
    Fused,
}

impl Acc {
    /// Writes the accumulator; `claimed`: only its counts (see [`Acc::Counted`]).
    fn encode(&self, w: &mut Writer, claimed: bool) {
        match self {
            Acc::Sum(v) => {
                w.usize(0);
                w.f64(*v);
            }
            Acc::Set(set) if claimed => counted(w, set.len(), &[]),
            Acc::Fused(f) if claimed => counted(w, f.first.len(), &f.counts),
            Acc::Set(set) => {
                w.usize(1);
                w.usize(set.len());
                for h in set {
                    w.word(*h);
                }
            }
            Acc::Fused(f) => {
                w.usize(2);
                w.usize(f.first.len());
                for (cell, dim) in &f.first {
                    w.word(*cell);
                    w.usize(*dim);
                }
                w.usize(f.extra.len());
                for (cell, dim) in &f.extra {
                    w.word(*cell);
                    w.usize(*dim);
                }
                dims(w, &f.counts);
            }
            Acc::Counted { distinct, by_dim } => counted(w, *distinct, by_dim),
        }
    }

    /// Reads an accumulator of `kind` whose dimension numbers are below `dims`.
    fn decode(r: &mut Reader<'_>, kind: AccKind, dims: usize) -> Option<Acc> {
        let dim = |r: &mut Reader<'_>| r.usize().filter(|d| *d < dims);
        let acc = match (r.usize()?, kind) {
            (0, AccKind::Sum) => Acc::Sum(r.f64()?),
            (1, AccKind::Set) => {
                let n = r.count(8)?;
                let mut set = HashSet64::with_capacity_and_hasher(n, HASHER);
                for _ in 0..n {
                    set.insert(r.word()?);
                }
                Acc::Set(set)
            }
            (2, AccKind::Fused) => {
                let mut f = FusedDay::default();
                let n = r.count(9)?;
                f.first.reserve(n);
                for _ in 0..n {
                    let cell = r.word()?;
                    f.first.insert(cell, dim(r)?);
                }
                for _ in 0..r.count(9)? {
                    let cell = r.word()?;
                    f.extra.insert((cell, dim(r)?));
                }
                f.counts = read_dims(r, dims)?;
                Acc::Fused(f)
            }
            (3, AccKind::Set | AccKind::Fused) => {
                let distinct = r.usize()?;
                let by_dim = read_dims(r, dims)?;
                (kind == AccKind::Fused || by_dim.is_empty())
                    .then_some(Acc::Counted { distinct, by_dim })?
            }
            _ => return None,
        };
        Some(acc)
    }
}

/// Writes an [`Acc::Counted`].
fn counted(w: &mut Writer, distinct: usize, by_dim: &[Option<usize>]) {
    w.usize(3);
    w.usize(distinct);
    dims(w, by_dim);
}

/// Writes counts per dimension number.
fn dims(w: &mut Writer, counts: &[Option<usize>]) {
    w.usize(counts.len());
    for n in counts {
        w.option(*n, Writer::usize);
    }
}

/// Reads counts per dimension number, at most `dims` of them.
fn read_dims(r: &mut Reader<'_>, dims: usize) -> Option<Vec<Option<usize>>> {
    let n = r.count(1)?;
    if n > dims.max(1) {
        return None;
    }
    (0..n).map(|_| r.option(Reader::usize)).collect()
}

impl Partial {
    /// The days this partial holds accumulators for.
    pub fn days(&self) -> Vec<NaiveDate> {
        match self {
            Partial::Total(_) | Partial::Derived(_) => Vec::new(),
            Partial::Daily(days) | Partial::Fused(days, _) => days.keys().copied().collect(),
            Partial::DailyBy(days) => days.keys().copied().collect(),
            Partial::Ordered(counts, _) => counts.days(),
        }
    }

    /// Writes the partial; the distinct cells of the `claimed` days are written as counts only
    /// (see [`Acc::Counted`]).
    pub fn encode(&self, w: &mut Writer, claimed: &dyn Fn(&NaiveDate) -> bool) {
        let days = |w: &mut Writer, days: &HashMap<NaiveDate, Acc>| {
            w.usize(days.len());
            for (day, acc) in days {
                w.date(*day);
                acc.encode(w, claimed(day));
            }
        };
        match self {
            Partial::Total(acc) => {
                w.usize(0);
                acc.encode(w, false);
            }
            Partial::Daily(d) => {
                w.usize(1);
                days(w, d);
            }
            Partial::DailyBy(d) => {
                w.usize(2);
                w.usize(d.len());
                for (day, by_dim) in d {
                    w.date(*day);
                    w.usize(by_dim.len());
                    for (dim, acc) in by_dim {
                        w.bytes(dim);
                        acc.encode(w, claimed(day));
                    }
                }
            }
            Partial::Fused(d, dims) => {
                w.usize(3);
                w.usize(dims.len());
                for dim in dims {
                    w.bytes(dim);
                }
                days(w, d);
            }
            Partial::Derived(source) => {
                w.usize(4);
                w.usize(*source);
            }
            Partial::Ordered(counts, firsts) => {
                w.usize(5);
                counts.encode(w, claimed);
                w.usize(firsts.days.len());
                for day in &firsts.days {
                    w.date(*day);
                }
                w.usize(firsts.dims.len());
                for dim in &firsts.dims {
                    w.bytes(dim);
                }
                w.usize(firsts.values.len());
                for (value, (slot, dim)) in &firsts.values {
                    w.bytes(value);
                    w.usize(*slot);
                    w.usize(*dim);
                }
            }
        }
    }

    /// Reads a partial of the same shape as `template` (what a worker of the same plan hands
    /// over) whose accumulators are of `kind`; `None` for anything else.
    pub fn decode(r: &mut Reader<'_>, template: &Partial, kind: AccKind) -> Option<Partial> {
        fn days(r: &mut Reader<'_>, kind: AccKind, dims: usize) -> Option<HashMap<NaiveDate, Acc>> {
            let n = r.count(2)?;
            let mut days = HashMap::with_capacity(n);
            for _ in 0..n {
                let day = r.date()?;
                days.insert(day, Acc::decode(r, kind, dims)?);
            }
            Some(days)
        }
        let partial = match (r.usize()?, template) {
            (0, Partial::Total(_)) => Partial::Total(Acc::decode(r, kind, 0)?),
            (1, Partial::Daily(_)) => Partial::Daily(days(r, kind, 0)?),
            (2, Partial::DailyBy(_)) => {
                let n = r.count(2)?;
                let mut out = HashMap::with_capacity(n);
                for _ in 0..n {
                    let day = r.date()?;
                    let m = r.count(2)?;
                    let mut by_dim = HashMap::with_capacity(m);
                    for _ in 0..m {
                        let dim = r.bytes()?.to_vec();
                        by_dim.insert(dim, Acc::decode(r, kind, 0)?);
                    }
                    out.insert(day, by_dim);
                }
                Partial::DailyBy(out)
            }
            (3, Partial::Fused(..)) => {
                let n = r.count(1)?;
                let dims: Vec<Vec<u8>> = (0..n)
                    .map(|_| r.bytes().map(<[u8]>::to_vec))
                    .collect::<Option<_>>()?;
                Partial::Fused(days(r, kind, dims.len())?, dims)
            }
            (4, Partial::Derived(source)) => {
                (r.usize()? == *source).then_some(Partial::Derived(*source))?
            }
            (5, Partial::Ordered(counts, _)) => {
                let counts = Partial::decode(r, counts, kind)?;
                let days: Vec<NaiveDate> =
                    (0..r.count(1)?).map(|_| r.date()).collect::<Option<_>>()?;
                let dims: Vec<Vec<u8>> = (0..r.count(1)?)
                    .map(|_| r.bytes().map(<[u8]>::to_vec))
                    .collect::<Option<_>>()?;
                let n = r.count(3)?;
                let mut values = HashMap::with_capacity_and_hasher(n, HASHER);
                for _ in 0..n {
                    let value = r.bytes()?.to_vec();
                    let slot = r.usize().filter(|s| *s < days.len().max(1))?;
                    let dim = r.usize().filter(|d| *d < dims.len().max(1))?;
                    values.insert(value, (slot, dim));
                }
                Partial::Ordered(Box::new(counts), FirstRows { values, days, dims })
            }
            _ => return None,
        };
        Some(partial)
    }
}

/// The hash of a distinct cell.
pub fn hash_cell(bytes: &[u8]) -> u64 {
    HASHER.hash_one(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_fast_and_strictly() {
        assert_eq!(Cell::classify(Some(b"42")), Cell::Number(42.0));
        assert_eq!(Cell::classify(Some(b" 1449.0 ")), Cell::Number(1449.0));
        assert_eq!(Cell::classify(Some(b"-3e2")), Cell::Number(-300.0));
        assert_eq!(Cell::classify(Some(b"NaN")), Cell::Text);
        assert_eq!(Cell::classify(Some(b"inf")), Cell::Text);
        assert_eq!(Cell::classify(Some(b"12,5")), Cell::Text);
        assert_eq!(Cell::classify(Some(b"")), Cell::Null);
        assert_eq!(Cell::classify(None), Cell::Null);
        assert_eq!(
            Cell::classify(Some(b"99999999999999999999")),
            Cell::Number(1e20)
        );
    }

    #[test]
    fn partials_of_two_workers_merge_into_one_value() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2025, 3, d).unwrap();
        fn rows(v: &str) -> RowCell<'_> {
            RowCell {
                bytes: Some(v.as_bytes()),
                cell: Cell::Text,
            }
        }
        let distinct = Measure::Distinct("id".into());
        let mut a = State::new(&distinct, &Grouping::Day);
        let mut b = State::new(&distinct, &Grouping::Day);
        a.update(Some(0), &rows("x"), || hash_cell(b"x"), b"");
        a.update(Some(1), &rows("y"), || hash_cell(b"y"), b"");
        b.update(Some(0), &rows("x"), || hash_cell(b"x"), b"");
        b.update(Some(0), &rows("z"), || hash_cell(b"z"), b"");
        let mut merged = a.into_partial(&[day(1), day(2)]);
        merged.merge(b.into_partial(&[day(1)]));
        assert_eq!(
            merged.finish(Some((day(1), day(3)))),
            MetricValue::Daily(BTreeMap::from([
                (day(1), 2.0),
                (day(2), 1.0),
                (day(3), 0.0)
            ]))
        );
    }
}
