//! A compact binary encoding of the partial results of a partition (see
//! [`incremental`](super::incremental)): LEB128 integers, little-endian floats and hashes,
//! length-prefixed bytes. Reading never panics: bytes that end early or hold an impossible value
//! read as `None`.

use chrono::NaiveDate;

/// Appends values to a buffer.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// An unsigned integer, 7 bits a byte.
    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A count or position.
    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }

    /// A signed integer (zigzag).
    pub fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A 64-bit word as it is (hashes, which do not shrink as integers).
    pub fn word(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A float, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.word(v.to_bits());
    }

    /// Bytes, their length first.
    pub fn bytes(&mut self, v: &[u8]) {
        self.usize(v.len());
        self.0.extend_from_slice(v);
    }

    /// A day, as days since 0001-01-01.
    pub fn date(&mut self, d: NaiveDate) {
        self.i64(i64::from(chrono::Datelike::num_days_from_ce(&d)));
    }

    /// An optional value: a flag, then the value.
    pub fn option<T>(&mut self, v: Option<T>, mut write: impl FnMut(&mut Self, T)) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                write(self, v);
            }
        }
    }
}

/// Reads values written by [`Writer`].
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    /// An unsigned integer.
    pub fn u64(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.take(1)?.first()?;
            v |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A count or position.
    pub fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }

    /// A count of items each at least `min_bytes` long: never more than the bytes left can
    /// hold, so a corrupt count cannot ask for a huge allocation.
    pub fn count(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.usize()?;
        (n <= self.bytes.len() / min_bytes.max(1)).then_some(n)
    }

    /// A signed integer.
    pub fn i64(&mut self) -> Option<i64> {
        let v = self.u64()?;
        Some(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A 64-bit word.
    pub fn word(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A float.
    pub fn f64(&mut self) -> Option<f64> {
        self.word().map(f64::from_bits)
    }

    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.usize()?;
        self.take(n)
    }

    /// Length-prefixed UTF-8 text.
    pub fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_string)
    }

    /// A day.
    pub fn date(&mut self) -> Option<NaiveDate> {
        NaiveDate::from_num_days_from_ce_opt(i32::try_from(self.i64()?).ok()?)
    }

    /// An optional value.
    pub fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match *self.take(1)?.first()? {
            0 => Some(None),
            1 => read(self).map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_and_short_input_reads_as_none() {
        let mut w = Writer::default();
        w.u64(u64::MAX);
        w.i64(-5);
        w.f64(0.1);
        w.bytes(b"abc");
        w.date(NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
        w.option(Some(7u64), |w, v| w.u64(v));
        let bytes = w.0;
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u64(), Some(u64::MAX));
        assert_eq!(r.i64(), Some(-5));
        assert_eq!(r.f64(), Some(0.1));
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert_eq!(r.date(), NaiveDate::from_ymd_opt(2025, 3, 1));
        assert_eq!(r.option(|r| r.u64()), Some(Some(7)));
        assert!(r.is_empty());
        for end in 0..bytes.len() - 1 {
            let mut r = Reader::new(&bytes[..end]);
            let all = (|| {
                r.u64()?;
                r.i64()?;
                r.f64()?;
                r.bytes()?;
                r.date()?;
                r.option(|r| r.u64())
            })();
            assert_eq!(all, None, "{end}");
        }
        assert_eq!(Reader::new(&[0xff; 11]).u64(), None);
        assert_eq!(Reader::new(&[200]).count(1), None);
    }
}
