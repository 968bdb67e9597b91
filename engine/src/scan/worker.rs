//! The hot loop: reads the records of a table (or of segments of it) with `simd-csv`'s
//! zero-copy reader and folds each into the states of the bound requests.

use crate::metric::is_empty;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use simd_csv::{ZeroCopyByteRecord, ZeroCopyReader};
use smallvec::SmallVec;

use super::columns::{ColumnRef, Plan};
use super::state::{hash_cell, Cell, Need, Partial, RowCell, State};
use super::{day_of, DateStats, Row, Rows, TableProblem};
use crate::config::TableConfig;
use crate::timestamp::DayParser;

/// What a worker found in its records.
#[derive(Debug)]
pub struct Output {
    /// Records read.
    pub rows: u64,
    /// Records whose field count differs from the header's.
    pub malformed_rows: u64,
    /// Per lookup, records whose non-empty key was not found.
    pub lookup_misses: Vec<u64>,
    /// Date parsing, when the table has a usable date column (without samples).
    pub dates: Option<DateStats>,
    /// Per segment read, its first unparsable date cells.
    pub samples: Vec<(usize, Vec<String>)>,
    /// One partial value per bound request, in plan order.
    pub partials: Vec<Partial>,
    /// The exported rows by key (first row of each key), when the plan exports.
    pub index_rows: Rows,
    /// CSV records that run over more than one line (a quoted cell holds a line break).
    pub multiline: Multiline,
}

/// CSV records that run over more than one line: legitimate for a cell with a line break, but
/// in bulk the sign of a quote that is not closed (every record after it merges with the next).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Multiline {
    /// Records with a line break inside.
    pub records: u64,
    /// Byte offset in the file of the first such record.
    pub first: Option<u64>,
    /// The most line breaks inside one record.
    pub most_breaks: u64,
    /// The line (1-based) the first such record starts on, once counted.
    pub first_line: Option<u64>,
}

impl Multiline {
    /// Adds those of another part of the same table.
    pub fn merge(&mut self, other: Multiline) {
        self.records += other.records;
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.most_breaks = self.most_breaks.max(other.most_breaks);
    }
}

/// Maps days to dense slot numbers.
#[derive(Default)]
struct DayIndex {
    days: Vec<NaiveDate>,
    /// Rows per slot.
    rows: Vec<u64>,
    slots: HashMap<NaiveDate, usize, foldhash::fast::FixedState>,
    last: Option<(NaiveDate, usize)>,
}

impl DayIndex {
    /// The slot of a row's day, counting the row.
    fn slot(&mut self, day: NaiveDate) -> usize {
        let slot = match self.last {
            Some((d, s)) if d == day => s,
            _ => {
                let next = self.days.len();
                let slot = *self.slots.entry(day).or_insert(next);
                if slot == next {
                    self.days.push(day);
                    self.rows.push(0);
                }
                self.last = Some((day, slot));
                slot
            }
        };
        self.rows[slot] += 1;
        slot
    }
}

/// The cells of the current row that the requests read, each classified and hashed at most
/// once (no allocation per row: the buffers live on the stack or are reused).
struct RowCells<'r, 'c> {
    bytes: &'c [Option<&'r [u8]>],
    classes: &'c mut [Option<Cell>],
    hashes: &'c mut [Option<u64>],
}

impl RowCells<'_, '_> {
    fn cell(&mut self, i: usize) -> Cell {
        let bytes = self.bytes[i];
        *self.classes[i].get_or_insert_with(|| Cell::classify(bytes))
    }

    fn hash(&mut self, i: usize) -> u64 {
        let bytes = self.bytes[i];
        *self.hashes[i].get_or_insert_with(|| hash_cell(bytes.unwrap_or_default()))
    }
}

/// One row of a table as text cells, whatever the file format: a CSV record, or a row of a
/// Parquet batch whose typed values are written as the CSV would hold them.
pub trait Record {
    /// The number of fields of the row.
    fn len(&self) -> usize;
    /// Whether the row has no field.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The field at a header position (`None`: absent).
    fn cell(&self, i: usize) -> Option<&[u8]>;
}

/// A CSV record's cells come without their surrounding quotes. Doubled quotes inside stay
/// doubled: valid CSV writes a value one way, so equal values stay equal, and no cell that
/// holds a number or a date has quotes inside.
impl Record for ZeroCopyByteRecord<'_> {
    fn len(&self) -> usize {
        ZeroCopyByteRecord::len(self)
    }

    fn cell(&self, i: usize) -> Option<&[u8]> {
        self.unquote(i)
    }
}

/// A cell of the record or of a looked-up row.
fn fetch<'r, R: Record + ?Sized>(
    record: &'r R,
    looked: &[Option<Row<'r>>],
    r: ColumnRef,
) -> Option<&'r [u8]> {
    match r {
        ColumnRef::Own(i) => record.cell(i),
        ColumnRef::Looked(l, j) => looked.get(l).copied().flatten()?.value(j),
    }
}

/// The folding of records into the states of a plan's requests. One worker may read several
/// segments of a table (in any order: a splittable plan does not depend on row order).
pub struct Worker<'p> {
    plan: &'p Plan<'p>,
    config: &'p TableConfig,
    states: Vec<State>,
    /// Per state, how much of the cell it needs.
    needs: Vec<Need>,
    /// Per state, the dimension cell it reads: a fused state reads its derived partner's.
    dimensions: Vec<Option<usize>>,
    days: DayIndex,
    parser: DayParser,
    dates: Option<DateStats>,
    /// Per segment read, its first unparsable date cells; those of the segment being read.
    samples: Vec<(usize, Vec<String>)>,
    segment_samples: Vec<String>,
    rows: u64,
    malformed_rows: u64,
    lookup_misses: Vec<u64>,
    index_rows: Rows,
    /// Per row, the class and the hash of each cell, computed at most once.
    classes: Vec<Option<Cell>>,
    hashes: Vec<Option<u64>>,
    multiline: Multiline,
}

impl<'p> Worker<'p> {
    /// A worker with fresh states for every bound request of `plan`.
    pub fn new(plan: &'p Plan<'p>, config: &'p TableConfig) -> Self {
        let mut states: Vec<State> = plan
            .bound
            .iter()
            .map(|b| State::new(&b.request.measure, &b.request.grouping))
            .collect();
        let unfiltered: Vec<bool> = plan
            .bound
            .iter()
            .map(|b| b.request.filter.is_none())
            .collect();
        let mut dimensions: Vec<Option<usize>> = plan.bound.iter().map(|b| b.dimension).collect();
        for (fused, derived) in State::fuse(&mut states, &unfiltered) {
            dimensions[fused] = plan.bound[derived].dimension;
        }
        Worker {
            plan,
            config,
            needs: states.iter().map(State::needs).collect(),
            states,
            dimensions,
            days: DayIndex::default(),
            parser: DayParser::default(),
            dates: plan.date.map(|_| DateStats {
                column: config.date_column.clone().unwrap_or_default(),
                ..DateStats::default()
            }),
            samples: Vec::new(),
            segment_samples: Vec::new(),
            rows: 0,
            malformed_rows: 0,
            lookup_misses: vec![0; plan.lookups.len()],
            index_rows: match &plan.export {
                Some((_, Ok((_, values)))) => Rows::new(values.len()),
                _ => Rows::default(),
            },
            classes: vec![None; plan.cells.len()],
            hashes: vec![None; plan.cells.len()],
            multiline: Multiline::default(),
        }
    }

    /// Reads segment number `segment` (0 for a whole table): records until the end of
    /// `reader`, or until a record starts at or after `limit` bytes from where the reader
    /// started. Returns where reading stopped, relative to that start: the start of the first
    /// record at or after the limit, or the end of the stream. `start` is where the reader
    /// starts in the file (for the offsets of multi-line records); `progress` counts the bytes
    /// read.
    pub fn read<R: Read>(
        &mut self,
        mut reader: ZeroCopyReader<R>,
        segment: usize,
        start: u64,
        limit: Option<u64>,
        progress: Option<&AtomicU64>,
    ) -> Result<u64, TableProblem> {
        let mut reported = 0u64;
        let mut records = 0u64;
        let stopped_at = loop {
            let position = reader.position();
            if limit.is_some_and(|limit| position >= limit) {
                break position;
            }
            if let Some(progress) = progress {
                if records.is_multiple_of(65_536) {
                    progress.fetch_add(position - reported, Ordering::Relaxed);
                    reported = position;
                }
            }
            let record = match reader.read_byte_record() {
                Ok(Some(record)) => record,
                Ok(None) => break position,
                Err(e) => {
                    let rows = self.rows;
                    return Err(TableProblem::Unreadable(format!("after row {rows}: {e}")));
                }
            };
            records += 1;
            if self.fold(&record) && memchr::memchr(b'\n', record.as_slice()).is_some() {
                let breaks = memchr::memchr_iter(b'\n', record.as_slice()).count() as u64;
                let multiline = &mut self.multiline;
                multiline.records += 1;
                multiline.first.get_or_insert(start + position);
                multiline.most_breaks = multiline.most_breaks.max(breaks);
            }
        };
        if let Some(progress) = progress {
            progress.fetch_add(stopped_at.saturating_sub(reported), Ordering::Relaxed);
        }
        let samples = std::mem::take(&mut self.segment_samples);
        self.samples.push((segment, samples));
        Ok(stopped_at)
    }

    /// Folds one row of any format (a Parquet row, say) into the states.
    pub fn fold_record(&mut self, record: &dyn Record) {
        self.fold(record);
    }

    /// Ends segment number `segment` of rows given to [`Worker::fold_record`].
    pub fn end_segment(&mut self, segment: usize) {
        let samples = std::mem::take(&mut self.segment_samples);
        self.samples.push((segment, samples));
    }

    /// Folds one record into the states; `false` when it is dated after the plan's `until`
    /// and left out (it only goes into the exported index).
    fn fold<R: Record + ?Sized>(&mut self, record: &R) -> bool {
        let plan = self.plan;
        if let Some((_, Ok((key, values)))) = &plan.export {
            let k = fetch(record, &[], *key).unwrap_or_default();
            let exported = values
                .iter()
                .map(|r| fetch(record, &[], *r).unwrap_or_default());
            self.index_rows.insert_first(k, exported);
        }
        let mut looked: SmallVec<[Option<Row<'_>>; 4]> = SmallVec::new();
        let mut missed: SmallVec<[bool; 4]> = SmallVec::new();
        for (index, key) in &plan.lookups {
            let key = key
                .and_then(|k| fetch(record, &[], k))
                .filter(|k| !k.is_empty());
            let found = key.and_then(|k| index.rows.get(k));
            missed.push(key.is_some() && found.is_none());
            looked.push(found);
        }
        // Parsing a date that is found touches no count: a row left out leaves no trace.
        let day = match (plan.date, self.dates.as_mut()) {
            (Some(ColumnRef::Looked(l, _)), Some(_)) if looked[l].is_none() => None,
            (Some(r), Some(stats)) => {
                let cell = fetch(record, &looked, r);
                let samples = &mut self.segment_samples;
                day_of(cell, &mut self.parser, self.config, stats, samples)
            }
            _ => None,
        };
        if day.zip(plan.until).is_some_and(|(day, until)| day > until) {
            return false;
        }
        let day = day.map(|d| self.days.slot(d));
        self.rows += 1;
        if record.len() != plan.header.len() {
            self.malformed_rows += 1;
        }
        for (misses, missed) in self.lookup_misses.iter_mut().zip(missed) {
            *misses += u64::from(missed);
        }
        self.classes.fill(None);
        self.hashes.fill(None);
        // Filled in place: a collected (then moved) buffer costs a copy per row.
        let mut bytes: SmallVec<[Option<&[u8]>; 16]> = SmallVec::new();
        for r in &plan.cells {
            bytes.push(fetch(record, &looked, *r));
        }
        let mut cells = RowCells {
            bytes: &bytes,
            classes: &mut self.classes,
            hashes: &mut self.hashes,
        };
        for (((b, state), &need), dimension) in plan
            .bound
            .iter()
            .zip(&mut self.states)
            .zip(&self.needs)
            .zip(&self.dimensions)
        {
            if state.is_derived() {
                continue;
            }
            if let Some(filter) = &b.request.filter {
                if !filter.accepts(|n| cells.bytes[b.filter[n]]) {
                    continue;
                }
            }
            let (bytes, cell) = match b.column {
                Some(i) => {
                    let cell = match need {
                        Need::Class => cells.cell(i),
                        Need::Nullness => Cell::nullness(cells.bytes[i]),
                        Need::Bytes => Cell::Text,
                    };
                    (cells.bytes[i], cell)
                }
                None => (None, Cell::Null),
            };
            // Empty dimension cells (absent, empty, NULL, null) are grouped under "".
            let dim = dimension
                .and_then(|i| cells.bytes[i])
                .filter(|b| !is_empty(Some(b)))
                .unwrap_or_default();
            let row = RowCell { bytes, cell };
            let hash = || b.column.map_or(0, |i| cells.hash(i));
            state.update(day, &row, hash, dim);
        }
        true
    }

    /// What the worker found in all the records it read.
    pub fn finish(self) -> Output {
        let mut dates = self.dates;
        if let Some(stats) = dates.as_mut() {
            stats.rows_by_day = self
                .days
                .days
                .iter()
                .copied()
                .zip(self.days.rows.iter().copied())
                .collect();
        }
        Output {
            rows: self.rows,
            malformed_rows: self.malformed_rows,
            lookup_misses: self.lookup_misses,
            dates,
            samples: self.samples,
            partials: self
                .states
                .into_iter()
                .map(|s| s.into_partial(&self.days.days))
                .collect(),
            index_rows: self.index_rows,
            multiline: self.multiline,
        }
    }
}
