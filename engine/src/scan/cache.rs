//! Stored partial results of the partitions of partitioned tables (Parquet datasets), so that an
//! incremental run reads only the partitions that changed since the last run. The state store
//! implements [`PartitionCache`]; the scan decides what a key and a stored value are.

/// Where a scan keeps and finds the partial results of partitions between runs.
pub trait PartitionCache: Sync {
    /// The bytes stored for `key` of `table`, if any.
    fn get(&self, table: &str, key: &str) -> Option<Vec<u8>>;

    /// Stores `bytes` for `key` of `table` (kept when the run's state is committed). Keys of a
    /// scanned table neither read nor stored in a run are forgotten when it commits.
    fn put(&self, table: &str, key: &str, bytes: Vec<u8>);
}

impl std::fmt::Debug for dyn PartitionCache + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartitionCache")
    }
}
