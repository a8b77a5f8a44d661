//! The coverage export as an OpenDocument spreadsheet, for LibreOffice users: the CSV's columns
//! and rows (`tournee_report::report::export_rows`), counts as numbers, codes kept as text.
//!
//! What it does not do: choose the rows (the report does) or style the sheet.

use anyhow::{Context, Result};
use spreadsheet_ods::{Sheet, WorkBook};
use tournee_report::report::{export_rows, is_number_column, Coverage, CSV_COLUMNS};

/// The spreadsheet's bytes: one sheet « couverture », a header row, then the export's rows.
pub fn coverage(c: &Coverage) -> Result<Vec<u8>> {
    let mut book = WorkBook::new_empty();
    let mut sheet = Sheet::new("couverture");
    for (col, name) in (0u32..).zip(CSV_COLUMNS) {
        sheet.set_value(0, col, *name);
    }
    for (row, cells) in (1u32..).zip(export_rows(c)) {
        for ((col, name), cell) in (0u32..).zip(CSV_COLUMNS).zip(cells) {
            match cell.parse::<f64>() {
                Ok(n) if is_number_column(name) => sheet.set_value(row, col, n),
                _ if cell.is_empty() => {}
                _ => sheet.set_value(row, col, cell),
            }
        }
    }
    book.push_sheet(sheet);
    spreadsheet_ods::write_ods_buf(&mut book, Vec::new()).context("writing the ODS file")
}
