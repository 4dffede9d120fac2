//! Import and export (SPEC 2.7): partners from CSV and XLSX (`calamine`) with a column →
//! field mapping, a dry run and a report of every rejected row; the table (with its
//! search, filters and sort) and lists out to CSV and XLSX (`rust_xlsxwriter`). Both go
//! through the viewer's field access like every other path.

use crate::access::Viewer;
use crate::form::{Field, Form};
use crate::store::{invalid, Arg};
use crate::table::TableQuery;
use crate::{Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, StoreError> {
        match s {
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            _ => Err(invalid("format", "csv or xlsx")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// A sheet: its header row and data rows.
pub type Sheet = (Vec<String>, Vec<Vec<Value>>);

/// Reads the first sheet (XLSX) or the file (CSV, `,` or `;` separated, BOM tolerated).
pub fn read_sheet(format: Format, bytes: &[u8]) -> Result<Sheet, StoreError> {
    let mut rows: Vec<Vec<Value>> = match format {
        Format::Csv => {
            let text =
                std::str::from_utf8(bytes).map_err(|_| invalid("file", "CSV must be UTF-8"))?;
            let text = text.trim_start_matches('\u{feff}');
            let first = text.lines().next().unwrap_or_default();
            let delimiter = if first.matches(';').count() > first.matches(',').count() {
                b';'
            } else {
                b','
            };
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(text.as_bytes())
                .records()
                .map(|r| {
                    r.map(|r| r.iter().map(|c| Value::String(c.to_string())).collect())
                        .map_err(|e| invalid("file", &format!("CSV: {e}")))
                })
                .collect::<Result<_, _>>()?
        }
        Format::Xlsx => {
            use calamine::Reader;
            let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec()))
                .map_err(|e| invalid("file", &format!("XLSX: {e}")))?;
            let range = book
                .worksheet_range_at(0)
                .ok_or_else(|| invalid("file", "XLSX: no sheet"))?
                .map_err(|e| invalid("file", &format!("XLSX: {e}")))?;
            range.rows().map(|r| r.iter().map(cell).collect()).collect()
        }
    };
    if rows.is_empty() {
        return Err(invalid("file", "no header row"));
    }
    let header = rows
        .remove(0)
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s.trim().to_string(),
            Value::Null => String::new(),
            v => v.to_string(),
        })
        .collect();
    Ok((header, rows))
}

fn cell(c: &calamine::Data) -> Value {
    use calamine::Data;
    match c {
        Data::Int(i) => Value::from(*i),
        Data::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Value::String(s.clone()),
        Data::Bool(b) => Value::String(b.to_string()),
        Data::DateTime(d) => d
            .as_datetime()
            .map(|t| Value::String(t.date().format("%Y-%m-%d").to_string()))
            .unwrap_or(Value::Null),
        Data::Error(_) | Data::Empty => Value::Null,
    }
}

/// One row the import refused, and why (row numbers as in the file, header = 1).
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub message: String,
}

/// An import as asked: the file, how its columns map to fields, whether only to check.
pub struct Import<'a> {
    pub format: Format,
    pub bytes: &'a [u8],
    /// Column header → field latin name; none: columns named like fields.
    pub mapping: Option<&'a BTreeMap<String, String>>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ImportReport {
    pub rows: usize,
    /// Cards created (would be, on a dry run).
    pub imported: usize,
    pub rejected: Vec<RowError>,
    pub dry_run: bool,
}

/// Which field each column fills: `mapping` (header → latin name) when given, else the
/// columns whose header is a field's latin or display name. Columns mapped to nothing are
/// skipped.
fn column_fields<'f>(
    viewer: &Viewer,
    form: &'f Form,
    header: &[String],
    mapping: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Option<&'f Field>>, StoreError> {
    if let Some(m) = mapping {
        if let Some((column, _)) = m.iter().find(|(c, _)| !header.contains(c)) {
            return Err(invalid(
                "mapping",
                &format!("no column \"{column}\" in the file"),
            ));
        }
        if let Some((_, latin)) = m
            .iter()
            .find(|(_, l)| !l.is_empty() && viewer.field(form, l).is_none())
        {
            return Err(invalid("mapping", &format!("no field {latin}")));
        }
    }
    Ok(header
        .iter()
        .map(|h| match mapping {
            Some(m) => m.get(h).and_then(|l| viewer.field(form, l)),
            None => viewer.visible(form).find(|f| {
                f.spec.latin.eq_ignore_ascii_case(h)
                    || f.spec.name.to_lowercase() == h.to_lowercase()
            }),
        })
        .collect())
}

impl Store {
    /// Imports partners from a sheet; on a dry run only checks. Rows are checked like cards
    /// saved through the API; `progress(done, total)` is called as rows are written.
    pub async fn import_partners(
        &self,
        viewer: &Viewer,
        form: &Form,
        import: Import<'_>,
        progress: impl Fn(usize, usize),
    ) -> Result<ImportReport, StoreError> {
        let Import {
            format,
            bytes,
            mapping,
            dry_run,
        } = import;
        if !viewer.works_with_contacts() {
            return Err(StoreError::Forbidden(
                "importing partners needs the contacts right".into(),
            ));
        }
        let (header, rows) = read_sheet(format, bytes)?;
        let columns = column_fields(viewer, form, &header, mapping)?;
        if columns.iter().all(Option::is_none) {
            return Err(invalid("mapping", "no column maps to a field"));
        }
        let mut rejected = Vec::new();
        let mut good: Vec<Vec<(&Field, Arg)>> = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let values: Map<String, Value> = columns
                .iter()
                .zip(row)
                .filter_map(|(f, v)| Some((f.as_ref()?.spec.latin.clone(), v.clone())))
                .filter(|(_, v)| !v.is_null())
                .collect();
            match self.checked_card(viewer, form, &values) {
                Ok(checked) => good.push(checked),
                Err(StoreError::InvalidField { field, message }) => rejected.push(RowError {
                    row: n + 2,
                    field: field.trim_start_matches("values.").to_string(),
                    message,
                }),
                Err(e) => return Err(e),
            }
        }
        let imported = good.len();
        if !dry_run {
            let author = crate::partners::Author {
                id: Some(viewer.user.id),
                name: &viewer.user.name,
            };
            let total = good.len();
            for (done, chunk) in good.chunks(1000).enumerate() {
                self.insert_partners(form, chunk, &author, "imported")
                    .await?;
                progress(((done + 1) * 1000).min(total), total);
            }
            if total >= 1000 {
                self.analyse().await?;
            }
        }
        Ok(ImportReport {
            rows: rows.len(),
            imported,
            rejected,
            dry_run,
        })
    }

    /// The table as the viewer sees it (search, filters, sort as given; every page) as a
    /// file: a header of field names, then one row per partner.
    pub async fn export_partners(
        &self,
        viewer: &Viewer,
        form: &Form,
        query: &TableQuery,
        format: Format,
    ) -> Result<Vec<u8>, StoreError> {
        let table = self.whole_table(viewer, form, query, usize::MAX).await?;
        let header: Vec<String> = table
            .columns
            .iter()
            .map(|l| form.field(l).map_or(l.clone(), |f| f.spec.name.clone()))
            .collect();
        let rows: Vec<Vec<Value>> = table
            .rows
            .iter()
            .map(|r| {
                table
                    .columns
                    .iter()
                    .map(|c| r.values.get(c).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect();
        write_sheet(format, &header, &rows)
    }

    /// A list's items as a file.
    pub async fn export_list(&self, id: i64, format: Format) -> Result<Vec<u8>, StoreError> {
        let form = self.form().await?;
        let list = form.list(id).ok_or(StoreError::NotFound)?;
        let header = ["name", "position", "hidden_by_default"].map(String::from);
        let rows: Vec<Vec<Value>> = list
            .items
            .iter()
            .map(|i| {
                vec![
                    Value::String(i.name.clone()),
                    Value::from(i.position),
                    Value::Bool(i.hidden_by_default),
                ]
            })
            .collect();
        write_sheet(format, &header, &rows)
    }
}

fn cell_text(v: &Value) -> String {
    crate::values::plain(v).unwrap_or_default()
}

/// Writes a header and rows: CSV with a BOM (so Excel reads UTF-8), or an XLSX sheet with
/// numbers as numbers.
pub fn write_sheet(
    format: Format,
    header: &[String],
    rows: &[Vec<Value>],
) -> Result<Vec<u8>, StoreError> {
    let failed = |e: &dyn std::fmt::Display| StoreError::Io(format!("export: {e}"));
    match format {
        Format::Csv => {
            let mut out = "\u{feff}".as_bytes().to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(header).map_err(|e| failed(&e))?;
                for r in rows {
                    w.write_record(r.iter().map(cell_text))
                        .map_err(|e| failed(&e))?;
                }
                w.flush().map_err(|e| failed(&e))?;
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let sheet = book.add_worksheet();
            for (c, h) in header.iter().enumerate() {
                sheet
                    .write_string_with_format(0, c as u16, h, &bold)
                    .map_err(|e| failed(&e))?;
            }
            for (r, row) in rows.iter().enumerate() {
                let r = r as u32 + 1;
                for (c, v) in row.iter().enumerate() {
                    let c = c as u16;
                    match v {
                        Value::Null => {}
                        Value::Number(n) => {
                            sheet
                                .write_number(r, c, n.as_f64().unwrap_or_default())
                                .map_err(|e| failed(&e))?;
                        }
                        v => {
                            sheet
                                .write_string(r, c, cell_text(v))
                                .map_err(|e| failed(&e))?;
                        }
                    }
                }
            }
            book.save_to_buffer().map_err(|e| failed(&e))
        }
    }
}
