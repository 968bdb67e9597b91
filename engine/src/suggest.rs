//! "Did you mean" suggestions for misspelt keys, rule ids and values.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| *distance <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Adds "did you mean" to serde's `unknown field`/`unknown variant` messages, using the
/// alternatives serde lists after `expected`.
pub fn enrich_serde_message(message: &str) -> String {
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_string();
    };
    let Some((unknown, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let Some((_, expected)) = tail.split_once("expected") else {
        return message.to_string();
    };
    let options: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match closest(unknown, options) {
        Some(best) => format!("{message}; did you mean `{best}`?"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_candidates_only() {
        let keys = ["tables", "rules", "operations", "alert_routing"];
        assert_eq!(closest("tabels", keys), Some("tables"));
        assert_eq!(closest("rule", keys), Some("rules"));
        assert_eq!(closest("Operation", keys), Some("operations"));
        assert_eq!(closest("zzz", keys), None);
    }

    #[test]
    fn enriches_serde_messages() {
        assert_eq!(
            enrich_serde_message("unknown field `tabels`, expected one of `tables`, `rules`"),
            "unknown field `tabels`, expected one of `tables`, `rules`; did you mean `tables`?"
        );
        assert_eq!(
            enrich_serde_message("unknown variant `eror`, expected `info`, `warn` or `error`"),
            "unknown variant `eror`, expected `info`, `warn` or `error`; did you mean `error`?"
        );
        assert_eq!(
            enrich_serde_message("unknown field `qqqq`, expected `a` or `b`"),
            "unknown field `qqqq`, expected `a` or `b`"
        );
        assert_eq!(
            enrich_serde_message("missing field `a`"),
            "missing field `a`"
        );
    }
}
