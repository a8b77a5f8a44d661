//! Output helpers of both command lines: aligned tables for people (laid out by `comfy-table`,
//! plain text without borders), JSON for scripts (`--format json` prints one document on stdout
//! and nothing else).
//!
//! No business logic here: callers decide what the rows are. No colours or terminal detection:
//! the same bytes go to a terminal, a pipe or journald.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use clap::ValueEnum;
use tournee_core::model::is_forbidden_char;

/// Output format of listing commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document.
    Json,
}

/// Spaces between two columns of a table.
pub const TABLE_COLUMN_GAP: u16 = 2;

/// Rows as aligned text (laid out by `comfy-table`): a header line, then one line per row; columns
/// left-aligned, as wide as their widest cell (in terminal columns) and `TABLE_COLUMN_GAP`
/// spaces apart; no borders, no rule under the header, no trailing spaces, no final newline.
/// Rows may be shorter or longer than the header: missing cells are blank, extra cells get a
/// column without a title. Never wraps, whatever the terminal's width.
///
/// Cells are shown through `escape`: a control character, an escape sequence or a bidi override
/// stored in a record (or typed before input was checked) cannot break a line or recolour the
/// terminal.
pub fn table_text(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(headers.iter().map(|h| escape(h)).collect::<Vec<_>>());
    for row in rows {
        table.add_row(row.iter().map(|c| escape(c)).collect::<Vec<_>>());
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        let left = if i == 0 { 0 } else { TABLE_COLUMN_GAP };
        column.set_padding((left, 0));
    }
    table.trim_fmt()
}

/// Print rows as an aligned table with a header line (see `table_text`).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", table_text(headers, rows))?;
    Ok(())
}

/// Text for one line of a table, a `key  value` pair or a log field: every character that
/// `tournee_core::model::is_forbidden_char` names (controls, CR/LF, ESC, bidi overrides and
/// isolates) is shown as `\u{XXXX}`, and a backslash as `\\` so an escape cannot be forged.
/// Borrowed when there is nothing to escape (the usual case).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_forbidden_char(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_forbidden_char(c) {
            let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Print one JSON document on stdout. It is serialised first, so a reader that went away is
/// an `io::Error` (`is_broken_pipe`), not a serializer error hiding one. JSON escapes control
/// characters itself.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&text)?;
    out.flush()?;
    Ok(())
}

/// Print one line on stdout (an id, a digest, a confirmation), as `println!` would, but
/// returning a closed stdout as an error instead of panicking.
pub fn print_line(line: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Print `key  value` lines, aligned, without a header.
pub fn print_pairs(rows: &[(&str, String)]) -> anyhow::Result<()> {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in rows {
        writeln!(out, "{k:<width$}  {}", escape(v))?;
    }
    Ok(())
}

/// A reader that closed our stdout early (`export | head`) is not an error worth a message.
/// Looks through the whole chain, and into `serde_json` errors, which wrap the I/O error
/// without exposing it as a source.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn columns_are_left_aligned_two_spaces_apart_without_trailing_spaces() {
        let text = table_text(
            &["id", "commune", "status"],
            &rows(&[
                &["a1", "Amiens (80021)", "seen"],
                &["b22222", "Éclusier-Vaux", ""],
            ]),
        );
        assert_eq!(
            text,
            "id      commune         status\n\
             a1      Amiens (80021)  seen\n\
             b22222  Éclusier-Vaux"
        );
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(escape("Amiens"), "Amiens");
        assert!(matches!(escape("Éclusier-Vaux"), Cow::Borrowed(_)));
        assert_eq!(
            escape("pc\n2026-12-01 INFO forged"),
            "pc\\u{000A}2026-12-01 INFO forged"
        );
        assert_eq!(escape("\u{1b}[31mred"), "\\u{001B}[31mred");
        assert_eq!(escape("abc\u{202E}fed"), "abc\\u{202E}fed");
        // A typed backslash cannot pass for an escape.
        assert_eq!(escape("a\\u{000A}"), "a\\\\u{000A}");
        let text = table_text(&["name"], &rows(&[&["a\r\nb"]]));
        assert_eq!(text, "name\na\\u{000D}\\u{000A}b");
    }

    #[test]
    fn a_header_alone_is_one_line() {
        assert_eq!(table_text(&["field", "value"], &[]), "field  value");
    }

    /// The hand-made printer this replaced indexed its widths by the header and panicked here.
    #[test]
    fn rows_longer_or_shorter_than_the_header_print() {
        let text = table_text(
            &["field", "value"],
            &rows(&[&["status", "seen", "extra"], &["only"], &["a", "b"]]),
        );
        assert_eq!(
            text,
            "field   value\n\
             status  seen   extra\n\
             only\n\
             a       b"
        );
    }
}
