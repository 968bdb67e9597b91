//! Escaping of untrusted text (channel names, column names, messages, paths: anything that
//! comes from the data or the config) for each output format, so that no value can break a
//! report's syntax, inject markup or reach a terminal as a control sequence.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether a character is shown as an escape rather than as itself: C0 and C1 controls, DEL,
/// the bidirectional overrides and isolates (which reorder what a reader sees), the line and
/// paragraph separators, and the noncharacters U+FFFE and U+FFFF.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

fn push_escape(out: &mut String, c: char) {
    let code = u32::from(c);
    if code < 0x100 {
        let _ = write!(out, "\\x{code:02x}");
    } else {
        let _ = write!(out, "\\u{{{code:x}}}");
    }
}

/// `s` with each character that `special` writes in its own way (returning `true`) written so,
/// every other hidden character as a visible escape, and the rest as it is.
fn escape(s: &str, special: impl Fn(char, &mut String) -> bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if special(c, &mut out) {
            continue;
        }
        if hidden(c) {
            push_escape(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// The text for a terminal or a log line: every hidden character (controls, newlines and tabs
/// included) replaced by a visible escape such as `\x1b`, `\x0a` or `\u{202e}`: one line, and
/// nothing else changes.
pub fn console(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(escape(s, |_, _| false))
}

/// Text for XML 1.0 character data or a double-quoted attribute value: `& < > " '` as entities,
/// tab, line feed and carriage return as character references (kept through attribute
/// normalization), and every character XML 1.0 does not allow (other controls, U+FFFE, U+FFFF)
/// or that would hide text as a visible escape (`\x1b`).
pub fn xml(s: &str) -> String {
    escape(s, |c, out| {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            '\t' => "&#9;",
            '\n' => "&#10;",
            '\r' => "&#13;",
            _ => return false,
        };
        out.push_str(entity);
        true
    })
}

/// Text for HTML (element content or a double-quoted attribute value): `& < > "` as entities,
/// hidden characters as visible escapes.
pub fn html(s: &str) -> String {
    escape(s, |c, out| {
        let entity = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => return false,
        };
        out.push_str(entity);
        true
    })
}

/// Plain text for Markdown, in a table cell or a list item: the characters Markdown gives a
/// meaning to are backslash-escaped, `<` and `>` become entities (no raw HTML), a line break
/// becomes `<br>` and other hidden characters visible escapes, so the text stays one cell and
/// renders as written.
pub fn md(s: &str) -> String {
    escape(s, |c, out| {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            // A backslash before the escape keeps it literal text.
            c if hidden(c) => {
                out.push('\\');
                push_escape(out, c);
            }
            _ => return false,
        }
        true
    })
}

/// Text as inline code in a Markdown table cell: as [`md_code`], and `|` escaped (GitHub's
/// tables split cells on it even inside code; they show `\|` there as `|`).
pub fn md_cell_code(s: &str) -> String {
    code(s, true)
}

/// Text as inline code in Markdown (`` `text` ``), or, when it holds a character code cannot
/// show safely (`<`, `>`, `&`, a backtick, a backslash, a control), as escaped plain text
/// ([`md`]).
pub fn md_code(s: &str) -> String {
    code(s, false)
}

fn code(s: &str, in_table: bool) -> String {
    // Inside code, entities and backslashes are literal: text that needs them is written as
    // escaped plain text instead, so that no `<`, `>` or backtick reaches a renderer raw.
    if s.contains(['<', '>', '`', '&', '\\']) || s.chars().any(hidden) || s.is_empty() {
        return md(s);
    }
    let body = if in_table {
        s.replace('|', "\\|")
    } else {
        s.to_string()
    };
    format!("`{body}`")
}

/// Text for a Slack message: `&`, `<` and `>` as `&amp;`, `&lt;` and `&gt;`, as Slack
/// documents, so that no value becomes a mention (`<!channel>`) or a link.
pub fn slack(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if hidden(c) => push_escape(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`; a cut text ends with `…` (counted in `max`).
pub fn truncate(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    if max > 0 {
        out.push('…');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(console("a\u{1b}[31mb\n\t"), "a\\x1b[31mb\\x0a\\x09");
        assert_eq!(console("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert!(matches!(console("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn xml_has_only_allowed_characters() {
        assert_eq!(
            xml("<a & \"b\">\u{1}\n\u{fffe}"),
            "&lt;a &amp; &quot;b&quot;&gt;\\x01&#10;\\u{fffe}"
        );
    }

    #[test]
    fn markdown_text_and_code_stay_in_their_cell() {
        assert_eq!(md("a|b<script>\nc`d"), "a\\|b&lt;script&gt;<br>c\\`d");
        assert_eq!(md_cell_code("a|b"), "`a\\|b`");
        assert_eq!(md_code("a|b"), "`a|b`");
        assert_eq!(md_code("x`y"), "x\\`y");
        assert_eq!(md_cell_code("<script>|"), "&lt;script&gt;\\|");
        assert_eq!(md_code("a\nb"), "a<br>b");
    }

    #[test]
    fn slack_text_has_no_mention_or_link() {
        assert_eq!(
            slack("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo world", 5), "héll…");
    }
}
