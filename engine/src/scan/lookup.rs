//! The rows a table hands to the tables that look it up: keys and values in one buffer, found
//! by key through a hash table of row numbers (a few allocations in all, not a few per row, so
//! building and dropping an index of many rows stays cheap).

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::state::HASHER;

/// Rows by key; the first row of each key is kept.
#[derive(Clone)]
pub struct Rows {
    /// The key then the values of each row, one after the other.
    bytes: Vec<u8>,
    /// Where each cell ends in `bytes`: `width` cells per row.
    ends: Vec<usize>,
    /// Cells per row: the key and the values.
    width: usize,
    /// Row numbers, by the hash of their key.
    by_key: HashTable<usize>,
}

/// One row of [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    row: usize,
}

impl<'a> Row<'a> {
    /// The value at position `j` (`None` past the last).
    pub fn value(&self, j: usize) -> Option<&'a [u8]> {
        let rows: &'a Rows = self.rows;
        (j + 1 < rows.width).then(|| rows.cell(self.row, j + 1))
    }
}

/// Cell `i` of row `row`.
fn cell<'a>(bytes: &'a [u8], ends: &[usize], width: usize, row: usize, i: usize) -> &'a [u8] {
    let n = row * width + i;
    let start = n.checked_sub(1).map_or(0, |p| ends[p]);
    &bytes[start..ends[n]]
}

impl Rows {
    /// No rows yet; each row will hold `values` values.
    pub fn new(values: usize) -> Self {
        Rows {
            bytes: Vec::new(),
            ends: Vec::new(),
            width: values + 1,
            by_key: HashTable::new(),
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Cells per row: the key and the values.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Each row's cells (the key first), in the order they were inserted.
    pub fn rows(&self) -> impl Iterator<Item = impl Iterator<Item = &[u8]>> {
        (0..self.ends.len() / self.width.max(1))
            .map(move |row| (0..self.width).map(move |i| self.cell(row, i)))
    }

    /// Adds the rows of `other` (of the same width) in their order, each unless a row with its
    /// key is already held: the rows of a table read in parts, merged in file order.
    pub fn append(&mut self, other: &Rows) {
        for mut cells in other.rows() {
            let key = cells.next().unwrap_or_default();
            self.insert_first(key, cells);
        }
    }

    /// Every row's cells as held (keys and values in insertion order, where each cell ends,
    /// cells per row): equal for equal rows inserted in the same order.
    pub fn contents(&self) -> (&[u8], &[usize], usize) {
        (&self.bytes, &self.ends, self.width)
    }

    fn cell(&self, row: usize, i: usize) -> &[u8] {
        cell(&self.bytes, &self.ends, self.width, row, i)
    }

    /// The row of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Row<'_>> {
        let hash = HASHER.hash_one(key);
        self.by_key
            .find(hash, |&row| self.cell(row, 0) == key)
            .map(|&row| Row { rows: self, row })
    }

    /// Adds a row with this key and these values (as many as the rows hold), unless a row
    /// with this key is already held.
    pub fn insert_first<'v>(&mut self, key: &'v [u8], values: impl IntoIterator<Item = &'v [u8]>) {
        let hash = HASHER.hash_one(key);
        if self
            .by_key
            .find(hash, |&row| self.cell(row, 0) == key)
            .is_some()
        {
            return;
        }
        let row = self.ends.len() / self.width;
        for value in std::iter::once(key).chain(values).take(self.width) {
            self.bytes.extend_from_slice(value);
            self.ends.push(self.bytes.len());
        }
        while self.ends.len() < (row + 1) * self.width {
            self.ends.push(self.bytes.len());
        }
        let (bytes, ends, width) = (&self.bytes, &self.ends, self.width);
        self.by_key.insert_unique(hash, row, |&r| {
            HASHER.hash_one(cell(bytes, ends, width, r, 0))
        });
    }
}

impl Default for Rows {
    /// No rows, of a key only.
    fn default() -> Self {
        Rows::new(0)
    }
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rows({} rows of {} cells)", self.len(), self.width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_row_of_each_key_is_found_with_its_values() {
        let mut rows = Rows::new(2);
        rows.insert_first(b"A", [&b"2025-03-01"[..], b"10"]);
        rows.insert_first(b"B", [&b""[..], b"20"]);
        rows.insert_first(b"A", [&b"2025-03-09"[..], b"99"]);
        // A short row: its missing values read as empty.
        rows.insert_first(b"C", [&b"2025-03-02"[..]]);
        assert_eq!(rows.len(), 3);
        let a = rows.get(b"A").unwrap();
        assert_eq!(
            (a.value(0), a.value(1), a.value(2)),
            (Some(&b"2025-03-01"[..]), Some(&b"10"[..]), None)
        );
        let b = rows.get(b"B").unwrap();
        assert_eq!((b.value(0), b.value(1)), (Some(&b""[..]), Some(&b"20"[..])));
        let c = rows.get(b"C").unwrap();
        assert_eq!(
            (c.value(0), c.value(1)),
            (Some(&b"2025-03-02"[..]), Some(&b""[..]))
        );
        assert!(rows.get(b"D").is_none());
        assert!(rows.get(b"").is_none());
    }

    #[test]
    fn many_rows_survive_the_table_growing() {
        let mut rows = Rows::new(1);
        for i in 0..10_000 {
            rows.insert_first(
                format!("T{i}").as_bytes(),
                [format!("{}", i * 2).as_bytes()],
            );
        }
        assert_eq!(rows.len(), 10_000);
        for i in (0..10_000).step_by(997) {
            let row = rows.get(format!("T{i}").as_bytes()).unwrap();
            assert_eq!(row.value(0), Some(format!("{}", i * 2).as_bytes()));
        }
    }
}
