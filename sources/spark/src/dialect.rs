//! Spark SQL as the planner writes it: backquoted names, `STRING`/`DOUBLE`, Java regular
//! expressions through `RLIKE` and `regexp_extract`, `try_cast` for text numbers, arrays
//! indexed from 0, `grouping_id`, and rows ordered by their file and position when the
//! relation reads files (`_metadata`), else by `monotonically_increasing_id()`.

use vigil_engine::sql::{Dialect, BLANKS};

/// Spark SQL (4.x), for a query whose relations all read files (`file_order`) or not.
pub struct Spark {
    /// Whether every relation of the query has the file metadata column `_metadata`.
    pub file_order: bool,
}

/// A Java regular expression anchored at the very end: `$` also matches before a final line
/// terminator in Java, `\z` only at the end.
fn java(pattern: &str) -> String {
    match pattern.strip_suffix('$') {
        Some(body) => format!("{body}\\z"),
        None => pattern.to_string(),
    }
}

impl Dialect for Spark {
    fn quote(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    fn row_order(&self, alias: &str) -> String {
        if self.file_order {
            format!("struct({alias}._metadata.file_path, {alias}._metadata.row_index)")
        } else {
            "monotonically_increasing_id()".into()
        }
    }

    fn text_param(&self, n: usize) -> String {
        format!("CAST(:p{n} AS STRING)")
    }

    fn number_param(&self, n: usize) -> String {
        format!("CAST(:p{n} AS DOUBLE)")
    }

    fn literal(&self, text: &str) -> String {
        // Spark reads backslash escapes in literals: a backslash and a quote are escaped.
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    fn text_type(&self) -> &'static str {
        "STRING"
    }

    fn double_type(&self) -> &'static str {
        "DOUBLE"
    }

    fn null_text_array(&self) -> String {
        "CAST(NULL AS ARRAY<STRING>)".into()
    }

    fn trim(&self, text: &str, start_only: bool) -> String {
        let side = if start_only { "LEADING" } else { "BOTH" };
        format!("trim({side} {} FROM {text})", self.literal(BLANKS))
    }

    fn matches(&self, text: &str, pattern: &str) -> String {
        format!("{text} RLIKE {}", self.literal(&java(pattern)))
    }

    fn captures(&self, text: &str, pattern: &str, groups: usize) -> String {
        let pattern = self.literal(&java(pattern));
        let each: Vec<String> = (1..=groups)
            .map(|g| format!("regexp_extract({text}, {pattern}, {g})"))
            .collect();
        format!(
            "CASE WHEN {text} RLIKE {pattern} THEN array({}) END",
            each.join(", ")
        )
    }

    fn capture(&self, captures: &str, i: usize) -> String {
        // A group that took no part is extracted as ''; every group of the grammars matches
        // at least one character when it takes part.
        format!("nullif({captures}[{}], '')", i - 1)
    }

    fn days_in_month(&self, y: &str, m: &str) -> String {
        format!("day(last_day(make_date({y}, {m}, 1)))")
    }

    fn utc_date(&self, timestamp: &str) -> String {
        // The session's time zone is UTC for the run.
        format!("CAST({timestamp} AS DATE)")
    }

    fn zoned_text(&self, timestamp: &str) -> String {
        // `2025-03-08 10:00:00.000000Z`: the session's time zone is UTC.
        format!("date_format({timestamp}, 'yyyy-MM-dd HH:mm:ss.SSSSSSXXX')")
    }

    fn finite(&self, number: &str) -> String {
        format!(
            "CASE WHEN isnan({number}) OR abs({number}) = CAST('Infinity' AS DOUBLE) THEN NULL \
             ELSE CAST({number} AS DOUBLE) END"
        )
    }

    fn text_number(&self, t: &str) -> String {
        // Java's `Double.parseDouble` rounds as Rust's parse does, with any exponent: a value
        // beyond the largest double is infinite (no number), one below the smallest is 0.
        let pattern = self.literal("^[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?\\z");
        format!(
            "CASE WHEN {t} RLIKE {pattern} AND abs(try_cast({t} AS DOUBLE)) <> CAST('Infinity' AS DOUBLE) \
             THEN try_cast({t} AS DOUBLE) END"
        )
    }

    fn first_texts(&self, value: &str, order: &str, filter: &str, n: usize) -> String {
        format!(
            "slice(transform(array_sort(collect_list(struct({order} AS o, CAST({value} AS STRING) AS v)) \
             FILTER (WHERE {filter})), x -> x.v), 1, {n})"
        )
    }

    fn grouping(&self, columns: &[String]) -> String {
        format!("grouping_id({})", columns.join(", "))
    }

    fn first_per_key(
        &self,
        key: &str,
        values: &[(String, String)],
        from: &str,
        order: &str,
    ) -> String {
        let inner: String = values
            .iter()
            .map(|(e, alias)| format!(", {e} AS {alias}"))
            .collect();
        let outer: String = values
            .iter()
            .map(|(_, alias)| format!(", {alias}"))
            .collect();
        format!(
            "SELECT k{outer} FROM (SELECT {key} AS k{inner}, \
             ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {order}) AS rn FROM {from}) WHERE rn = 1"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_what_spark_unescapes() {
        let spark = Spark { file_order: true };
        assert_eq!(spark.literal("a'b\\d"), "'a\\'b\\\\d'");
        assert_eq!(spark.quote("we`ird"), "`we``ird`");
    }

    #[test]
    fn patterns_end_at_the_very_end() {
        assert_eq!(java("^(\\d{4})$"), "^(\\d{4})\\z");
        assert_eq!(java("^(\\d{4})"), "^(\\d{4})");
    }
}
