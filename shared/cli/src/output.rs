//! Output helpers of both command lines: aligned tables for people (laid out by `comfy-table`,
//! plain text without borders), JSON for scripts (`--format json` prints one document on stdout
//! and nothing else).
//!
//! No business logic here: callers decide what the rows are. No colours or terminal detection:
//! the same bytes go to a terminal, a pipe or journald.

use std::io::Write;

use clap::ValueEnum;

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
pub fn table_text(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    for row in rows {
        table.add_row(row.clone());
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

/// Print one JSON document on stdout.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
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
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// A reader that closed our stdout early (`export | head`) is not an error worth a message.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
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
