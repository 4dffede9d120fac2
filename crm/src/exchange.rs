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

/// How much of a file an import reads. An import holds the file's rows in memory and checks
/// each like a card saved through the API, so a file is measured while it is read and
/// refused, with the limit named, before it can take more memory than these allow: a
/// 1.4 KB XLSX naming cell XFD1048576 would otherwise become 17 billion cells, and a zip
/// of a few kilobytes can unpack to gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetLimits {
    /// Columns, counted from A (256: A…IV). A card has a few dozen fields; a wider sheet
    /// is not a base of partners.
    pub columns: u32,
    /// Data rows under the header: a million cards, the base SPEC 2.5 is built for.
    pub rows: u32,
    /// Cells of the rows as held (each row up to its last filled cell, empty ones
    /// included): what bounds the memory rows take, about 50 bytes a cell.
    pub cells: u64,
    /// Bytes the parts of an XLSX unpack to, together (the sheet is read as it unpacks,
    /// the shared strings are held).
    pub unpacked_bytes: u64,
}

impl SheetLimits {
    /// The limits of `POST /api/v1/partners/import`: a million cards of five fields, or
    /// 20,000 rows of 256 columns; an XLSX of at most 512 MiB unpacked.
    pub const IMPORT: SheetLimits = SheetLimits {
        columns: 256,
        rows: 1_000_000,
        cells: 5_000_000,
        unpacked_bytes: 512 << 20,
    };
}

impl Default for SheetLimits {
    fn default() -> Self {
        SheetLimits::IMPORT
    }
}

/// A column's letters as a spreadsheet shows them (0: A, 255: IV, 16383: XFD).
pub fn column_name(col: u32) -> String {
    let mut n = col as u64 + 1;
    let mut letters = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        letters.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// Refusals of a file beyond `limits`, each naming the limit.
impl SheetLimits {
    fn column(&self, col: u32) -> Result<(), StoreError> {
        if col >= self.columns {
            return Err(invalid(
                "file",
                &format!(
                    "column {} is beyond the {} columns an import reads",
                    column_name(col),
                    self.columns
                ),
            ));
        }
        Ok(())
    }

    /// `row` counted from 0 (the header's row).
    fn row(&self, row: u64) -> Result<(), StoreError> {
        if row > self.rows as u64 {
            return Err(invalid(
                "file",
                &format!(
                    "row {} is beyond the {} rows (and a header) an import reads",
                    row + 1,
                    self.rows
                ),
            ));
        }
        Ok(())
    }

    fn cells(&self, cells: u64) -> Result<(), StoreError> {
        if cells > self.cells {
            return Err(invalid(
                "file",
                &format!("more than the {} cells an import reads", self.cells),
            ));
        }
        Ok(())
    }
}

/// Reads the first sheet (XLSX) or the file (CSV, `,` or `;` separated, BOM tolerated)
/// within `limits`. Blocking work: call it off the async runtime.
pub fn read_sheet(format: Format, bytes: &[u8], limits: &SheetLimits) -> Result<Sheet, StoreError> {
    let mut rows: Vec<Vec<Value>> = match format {
        Format::Csv => read_csv(bytes, limits)?,
        Format::Xlsx => read_xlsx_caught(bytes, limits)?,
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

fn read_csv(bytes: &[u8], limits: &SheetLimits) -> Result<Vec<Vec<Value>>, StoreError> {
    let text = std::str::from_utf8(bytes).map_err(|_| invalid("file", "CSV must be UTF-8"))?;
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() > first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut cells = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(invalid("file", &format!("CSV: {e}"))),
        }
        limits.row(rows.len() as u64)?;
        if !record.is_empty() {
            limits.column(record.len() as u32 - 1)?;
        }
        cells += record.len() as u64;
        limits.cells(cells)?;
        rows.push(
            record
                .iter()
                .map(|c| Value::String(c.to_string()))
                .collect(),
        );
    }
    Ok(rows)
}

/// Refuses a zip whose parts unpack to more than `limits` allow: by the sizes it declares,
/// then (a declared size is only the file's word) by unpacking each part, counted.
fn check_unpacked(bytes: &[u8], limits: &SheetLimits) -> Result<(), StoreError> {
    let refused = |size: &dyn std::fmt::Display| {
        invalid(
            "file",
            &format!(
                "XLSX: its parts unpack to {size} bytes, more than the {} an import reads",
                limits.unpacked_bytes
            ),
        )
    };
    let xlsx = |e: &dyn std::fmt::Display| invalid("file", &format!("XLSX: {e}"));
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| xlsx(&e))?;
    match zip.decompressed_size() {
        Some(declared) if declared <= limits.unpacked_bytes as u128 => {}
        Some(declared) => return Err(refused(&declared)),
        None => return Err(refused(&"more than 2^128")),
    }
    let mut left = limits.unpacked_bytes;
    for i in 0..zip.len() {
        let part = zip.by_index(i).map_err(|e| xlsx(&e))?;
        let got = std::io::copy(
            &mut std::io::Read::take(part, left + 1),
            &mut std::io::sink(),
        )
        .map_err(|e| xlsx(&e))?;
        if got > left {
            return Err(refused(&format!("more than {}", limits.unpacked_bytes)));
        }
        left -= got;
    }
    Ok(())
}

/// [`read_xlsx`], a panic in calamine refused as a damaged file: calamine 0.31's cell reader
/// indexes the shared strings unchecked (a cell naming a string the file lacks panicked).
fn read_xlsx_caught(bytes: &[u8], limits: &SheetLimits) -> Result<Vec<Vec<Value>>, StoreError> {
    std::panic::catch_unwind(|| read_xlsx(bytes, limits))
        .unwrap_or_else(|_| Err(invalid("file", "XLSX: the file is damaged")))
}

/// The first sheet's cells, streamed (calamine's cell reader: no sheet-sized grid is
/// allocated from what the file claims), as rows from the first filled row and column on.
fn read_xlsx(bytes: &[u8], limits: &SheetLimits) -> Result<Vec<Vec<Value>>, StoreError> {
    use calamine::Reader;
    let xlsx = |e: &dyn std::fmt::Display| invalid("file", &format!("XLSX: {e}"));
    check_unpacked(bytes, limits)?;
    let mut book = calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| xlsx(&e))?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| invalid("file", "XLSX: no sheet"))?;
    let mut reader = book.worksheet_cells_reader(&first).map_err(|e| xlsx(&e))?;
    // Filled cells as (row, column, value); empty ones cost nothing.
    let mut filled: Vec<(u32, u32, Value)> = Vec::new();
    while let Some(c) = reader.next_cell().map_err(|e| xlsx(&e))? {
        let value = cell(c.get_value());
        if value.is_null() {
            continue;
        }
        let (row, col) = c.get_position();
        limits.column(col)?;
        limits.row(row as u64)?;
        limits.cells(filled.len() as u64 + 1)?;
        filled.push((row, col, value));
    }
    // Cells do not always come in order; a later one at the same place wins.
    filled.sort_by_key(|(r, c, _)| (*r, *c));
    let (Some(top), Some(left)) = (
        filled.first().map(|c| c.0),
        filled.iter().map(|c| c.1).min(),
    ) else {
        return Ok(Vec::new());
    };
    limits.row((filled.last().map_or(top, |c| c.0) - top) as u64)?;
    // Each row up to its last filled cell, measured before anything is allocated.
    let mut held = 0u64;
    for (i, (row, col, _)) in filled.iter().enumerate() {
        if filled.get(i + 1).is_none_or(|next| next.0 != *row) {
            held += (col - left) as u64 + 1;
        }
    }
    limits.cells(held)?;
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for (row, col, value) in filled {
        let r = (row - top) as usize;
        if rows.len() <= r {
            rows.resize_with(r + 1, Vec::new);
        }
        let cells = &mut rows[r];
        let c = (col - left) as usize;
        if cells.len() <= c {
            cells.resize(c + 1, Value::Null);
        }
        cells[c] = value;
    }
    Ok(rows)
}

fn cell(c: &calamine::DataRef<'_>) -> Value {
    use calamine::DataRef;
    match c {
        DataRef::Int(i) => Value::from(*i),
        DataRef::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            Value::String(s.clone())
        }
        DataRef::SharedString(s) => Value::String(s.to_string()),
        DataRef::Bool(b) => Value::String(b.to_string()),
        DataRef::DateTime(d) => d
            .as_datetime()
            .map(|t| Value::String(t.date().format("%Y-%m-%d").to_string()))
            .unwrap_or(Value::Null),
        DataRef::Error(_) | DataRef::Empty => Value::Null,
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
    pub bytes: bytes::Bytes,
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
        // Parsing a large file takes seconds of a core: not on the async runtime's threads.
        let (header, rows) =
            tokio::task::spawn_blocking(move || read_sheet(format, &bytes, &SheetLimits::IMPORT))
                .await
                .map_err(|e| StoreError::Io(format!("import: {e}")))??;
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
    /// file: a header of field names, then one row per partner. Needs the reports right
    /// (the file is the partners report's data: a bulk copy of the base, not a card's view).
    /// More matching rows than the format holds ([`MAX_CSV_EXPORT_ROWS`],
    /// [`MAX_XLSX_EXPORT_ROWS`]) are refused, named `filter`, before anything is sent; a
    /// CSV is then written page by page as it is sent, an XLSX is built in memory.
    pub async fn export_partners(
        &self,
        viewer: &Viewer,
        form: &Form,
        query: &TableQuery,
        format: Format,
    ) -> Result<Export, StoreError> {
        let max = match format {
            Format::Csv => MAX_CSV_EXPORT_ROWS,
            Format::Xlsx => MAX_XLSX_EXPORT_ROWS,
        };
        self.export_at_most(viewer, form, query, format, max).await
    }

    /// [`Store::export_partners`] holding at most `max` rows.
    async fn export_at_most(
        &self,
        viewer: &Viewer,
        form: &Form,
        query: &TableQuery,
        format: Format,
        max: usize,
    ) -> Result<Export, StoreError> {
        may_export(viewer)?;
        let mut q = query.clone();
        q.limit = EXPORT_PAGE;
        q.after = None;
        // The first page checks every parameter before an answer begins.
        let first = self.partner_table(viewer, form, &q).await?;
        let matching = match first.next {
            None => first.rows.len(),
            Some(_) => self.table_count(viewer, form, &q, max + 1).await?,
        };
        if matching > max {
            return Err(invalid(
                "filter",
                &format!(
                    "more than {max} partners match; a {} export holds at most {max}: narrow the search, filters or period{}",
                    match format {
                        Format::Csv => "CSV",
                        Format::Xlsx => "XLSX",
                    },
                    match format {
                        Format::Csv => "",
                        Format::Xlsx => ", or export CSV",
                    }
                ),
            ));
        }
        let header: Vec<String> = first
            .columns
            .iter()
            .map(|l| form.field(l).map_or(l.clone(), |f| f.spec.name.clone()))
            .collect();
        let mut pages = TablePages {
            store: self.clone(),
            viewer: viewer.clone(),
            form: form.clone(),
            query: q,
            first: Some(first),
            after: None,
            left: max,
            header: Some(header),
        };
        match format {
            Format::Csv => Ok(Export::Csv(Box::new(pages))),
            Format::Xlsx => {
                let header = pages.header.take().expect("a header");
                let mut rows = Vec::new();
                while let Some(page) = pages.next_rows().await? {
                    rows.extend(page);
                }
                Ok(Export::File(write_sheet(format, &header, &rows)?))
            }
        }
    }

    /// A list's items as a file (the admin's, like the list).
    pub async fn export_list(
        &self,
        viewer: &Viewer,
        id: i64,
        format: Format,
    ) -> Result<Vec<u8>, StoreError> {
        if !viewer.user.admin {
            return Err(StoreError::Forbidden(
                "exporting a list is the administrator's".into(),
            ));
        }
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

/// The most rows a CSV export holds: it is written a page at a time as it is sent, so only
/// time bounds it; a million is the base SPEC 2.5 is built for.
pub const MAX_CSV_EXPORT_ROWS: usize = 1_000_000;

/// The most rows an XLSX export holds: rust_xlsxwriter builds the workbook in memory
/// (some hundred bytes a cell), so as many as a report holds.
pub const MAX_XLSX_EXPORT_ROWS: usize = crate::reports::MAX_ROWS;

/// Rows read per query while exporting (the table's largest page).
const EXPORT_PAGE: u32 = 500;

fn may_export(viewer: &Viewer) -> Result<(), StoreError> {
    if viewer.user.admin || viewer.user.reports {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "exporting partners needs the reports right".into(),
        ))
    }
}

/// An export as it is answered.
pub enum Export {
    /// Built whole (XLSX).
    File(Vec<u8>),
    /// Written as it is sent: [`TablePages::next_piece`] until none.
    Csv(Box<TablePages>),
}

/// The table's rows for an export, read a page at a time from the first on.
pub struct TablePages {
    store: Store,
    viewer: Viewer,
    form: Form,
    query: TableQuery,
    /// The page read when the export was checked, not yet handed out.
    first: Option<crate::table::TablePage>,
    /// The cursor of the next page; none: no more.
    after: Option<String>,
    /// Rows still allowed.
    left: usize,
    /// Not yet written.
    header: Option<Vec<String>>,
}

impl TablePages {
    /// The next page's rows, each a value per column; none at the end.
    async fn next_rows(&mut self) -> Result<Option<Vec<Vec<Value>>>, StoreError> {
        let page = match self.first.take() {
            Some(first) => first,
            None => match self.after.take() {
                None => return Ok(None),
                Some(after) => {
                    self.query.after = Some(after);
                    self.store
                        .partner_table(&self.viewer, &self.form, &self.query)
                        .await?
                }
            },
        };
        if self.left == 0 {
            return Ok(None);
        }
        let mut rows: Vec<Vec<Value>> = page
            .rows
            .into_iter()
            .map(|mut r| {
                page.columns
                    .iter()
                    .map(|c| r.values.remove(c).unwrap_or(Value::Null))
                    .collect()
            })
            .collect();
        rows.truncate(self.left);
        self.left -= rows.len();
        self.after = page.next;
        Ok(Some(rows))
    }

    /// The next piece of the CSV file: the header with the first page, then a page at a
    /// time; none at the end.
    pub async fn next_piece(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        let header = self.header.take();
        let rows = match self.next_rows().await? {
            Some(rows) => rows,
            None if header.is_none() => return Ok(None),
            None => Vec::new(),
        };
        let mut out = Vec::new();
        if let Some(header) = header {
            out.extend_from_slice("\u{feff}".as_bytes());
            csv_records(
                &mut out,
                std::iter::once(header.iter().map(|h| csv_text(h))),
            )?;
        }
        csv_records(&mut out, rows.iter().map(|r| r.iter().map(csv_cell)))?;
        Ok(Some(out))
    }
}

fn export_failed(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Io(format!("export: {e}"))
}

/// Appends CSV records to `out`.
fn csv_records<R, C>(out: &mut Vec<u8>, records: R) -> Result<(), StoreError>
where
    R: Iterator<Item = C>,
    C: IntoIterator<Item = String>,
{
    let mut w = csv::Writer::from_writer(out);
    for r in records {
        w.write_record(r).map_err(|e| export_failed(&e))?;
    }
    w.flush().map_err(|e| export_failed(&e))
}

fn cell_text(v: &Value) -> String {
    crate::values::plain(v).unwrap_or_default()
}

/// A text as a CSV cell a spreadsheet will not run (OWASP, CSV injection): a text that
/// begins with `=`, `+`, `-`, `@`, a tab or a carriage return gets a `'` before it, unless
/// it is only digits and `+-().,` and spaces (a phone number or a signed number, which a
/// spreadsheet can only read as arithmetic on numbers).
fn csv_text(text: &str) -> String {
    let starts_formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let only_a_number = text
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().,".contains(c));
    if starts_formula && !only_a_number {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// A value as a CSV cell: numbers as they are, any other text through [`csv_text`].
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        v => csv_text(&cell_text(v)),
    }
}

/// Writes a header and rows: CSV with a BOM (so Excel reads UTF-8), cells that would read
/// as formulas neutralised; or an XLSX sheet with numbers as numbers and every other value
/// a string cell (never a formula).
pub fn write_sheet(
    format: Format,
    header: &[String],
    rows: &[Vec<Value>],
) -> Result<Vec<u8>, StoreError> {
    let failed = export_failed;
    match format {
        Format::Csv => {
            let mut out = "\u{feff}".as_bytes().to_vec();
            csv_records(
                &mut out,
                std::iter::once(header.iter().map(|h| csv_text(h))),
            )?;
            csv_records(&mut out, rows.iter().map(|r| r.iter().map(csv_cell)))?;
            Ok(out)
        }
        Format::Xlsx => {
            let mut book = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let duration = rust_xlsxwriter::Format::new().set_num_format("[h]:mm:ss");
            let sheet = book.add_worksheet();
            sheet.set_freeze_panes(1, 0).map_err(|e| failed(&e))?;
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
                        v if crate::values::duration_of(v).is_some() => {
                            let ms = crate::values::duration_of(v).unwrap_or_default();
                            sheet
                                .write_number_with_format(r, c, ms as f64 / 86_400_000.0, &duration)
                                .map_err(|e| failed(&e))?;
                        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An XLSX with these cells (row, column from 0), as Excel would write it.
    fn xlsx(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (r, c, text) in cells {
            sheet.write_string(*r, *c, *text).unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    fn refusal(result: Result<Sheet, StoreError>) -> String {
        match result {
            Err(StoreError::Invalid {
                field: "file",
                message,
            }) => message,
            other => panic!("not refused for the file: {other:?}"),
        }
    }

    #[test]
    fn columns_are_named_as_a_spreadsheet_names_them() {
        let names: Vec<String> = [0, 25, 26, 255, 16383].map(column_name).to_vec();
        assert_eq!(names, ["A", "Z", "AA", "IV", "XFD"]);
    }

    #[test]
    fn a_sheet_reads_from_its_first_filled_cell() {
        let bytes = xlsx(&[
            (1, 1, "title"),
            (1, 2, "phone"),
            (2, 1, "Альфа"),
            (4, 2, "+7 495 123-45-67"),
        ]);
        let (header, rows) = read_sheet(Format::Xlsx, &bytes, &SheetLimits::IMPORT).unwrap();
        assert_eq!(header, ["title", "phone"]);
        assert_eq!(
            rows,
            [
                vec![Value::from("Альфа")],
                vec![],
                vec![Value::Null, Value::from("+7 495 123-45-67")],
            ]
        );
    }

    /// The bomb of issue 15: two cells, A1 and XFD1048576, made calamine's range allocate
    /// 16,384 × 1,048,576 cells and the process abort.
    #[test]
    fn a_cell_at_xfd1048576_is_refused_without_a_grid() {
        let bytes = xlsx(&[(0, 0, "title"), (1_048_575, 16_383, "boom")]);
        assert!(bytes.len() < 8 << 10, "{} bytes", bytes.len());
        let message = refusal(read_sheet(Format::Xlsx, &bytes, &SheetLimits::IMPORT));
        assert_eq!(
            message,
            "column XFD is beyond the 256 columns an import reads"
        );
        // Within the columns, the last row is beyond the rows.
        let bytes = xlsx(&[(0, 0, "title"), (1_048_575, 0, "boom")]);
        let message = refusal(read_sheet(Format::Xlsx, &bytes, &SheetLimits::IMPORT));
        assert_eq!(
            message,
            "row 1048576 is beyond the 1000000 rows (and a header) an import reads"
        );
    }

    #[test]
    fn the_cells_rows_hold_are_bounded_before_they_are_allocated() {
        let limits = SheetLimits {
            cells: 100,
            ..SheetLimits::IMPORT
        };
        // Two filled cells, but the second row would hold 200.
        let bytes = xlsx(&[(0, 0, "title"), (1, 199, "far")]);
        let message = refusal(read_sheet(Format::Xlsx, &bytes, &limits));
        assert_eq!(message, "more than the 100 cells an import reads");
        let bytes = xlsx(&[(0, 0, "title"), (1, 98, "near")]);
        assert!(read_sheet(Format::Xlsx, &bytes, &limits).is_ok());
    }

    /// Sets every part's declared unpacked size in a zip to 1 byte (the central directory
    /// and the local headers), as a crafted bomb could.
    fn understate_sizes(zip: &mut [u8]) {
        let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        let end = zip
            .windows(4)
            .rposition(|w| w == b"PK\x05\x06")
            .expect("end of central directory");
        let (entries, mut at) = (u16_at(zip, end + 10), u32_at(zip, end + 16) as usize);
        for _ in 0..entries {
            assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
            let local = u32_at(zip, at + 42) as usize;
            zip[at + 24..at + 28].copy_from_slice(&1u32.to_le_bytes());
            zip[local + 22..local + 26].copy_from_slice(&1u32.to_le_bytes());
            at += 46 + u16_at(zip, at + 28) + u16_at(zip, at + 30) + u16_at(zip, at + 32);
        }
    }

    #[test]
    fn a_zip_unpacking_beyond_the_budget_is_refused() {
        let limits = SheetLimits {
            unpacked_bytes: 1 << 20,
            ..SheetLimits::IMPORT
        };
        // Two megabytes of shared strings (Excel's strings are at most 32,767 characters),
        // packed into a few kilobytes.
        let long: Vec<String> = (0..64)
            .map(|i| format!("{i}{}", "a".repeat(32_000)))
            .collect();
        let cells = |strings: &[String]| -> Vec<u8> {
            let mut cells: Vec<(u32, u16, &str)> = vec![(0, 0, "title")];
            cells.extend(
                strings
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i as u32 + 1, 0, s.as_str())),
            );
            xlsx(&cells)
        };
        let mut bytes = cells(&long);
        assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
        let message = refusal(read_sheet(Format::Xlsx, &bytes, &limits));
        assert!(
            message.starts_with("XLSX: its parts unpack to "),
            "{message}"
        );
        assert!(message.ends_with("more than the 1048576 an import reads"));
        // The declared sizes lie: the parts are measured as they unpack.
        understate_sizes(&mut bytes);
        let message = refusal(read_sheet(Format::Xlsx, &bytes, &limits));
        assert_eq!(
            message,
            "XLSX: its parts unpack to more than 1048576 bytes, more than the 1048576 an import reads"
        );
        // The same file within the budget reads.
        let (_, rows) = read_sheet(Format::Xlsx, &cells(&long), &SheetLimits::IMPORT).unwrap();
        assert_eq!(rows.len(), 64);
        assert_eq!(rows[63][0], Value::from(long[63].clone()));
    }

    #[test]
    fn a_csv_is_bounded_by_columns_rows_and_cells() {
        let limits = SheetLimits {
            columns: 3,
            rows: 2,
            cells: 8,
            ..SheetLimits::IMPORT
        };
        let read = |text: &str| read_sheet(Format::Csv, text.as_bytes(), &limits);
        assert!(read("a,b,c\n1,2,3\n4,5\n").is_ok());
        assert_eq!(
            refusal(read("a,b,c,d\n")),
            "column D is beyond the 3 columns an import reads"
        );
        assert_eq!(
            refusal(read("a\n1\n2\n3\n")),
            "row 4 is beyond the 2 rows (and a header) an import reads"
        );
        assert_eq!(
            refusal(read("a,b,c\n1,2,3\n4,5,6\n")),
            "more than the 8 cells an import reads"
        );
    }

    /// A store in a fresh SQLite file, an admin viewer and a form of one text field.
    pub(crate) async fn store_with_partners(name: &str, titles: &[&str]) -> (Store, Viewer, Form) {
        let dir = std::env::temp_dir().join(format!("kolokol-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.join("crm.db").display()))
            .await
            .unwrap();
        let new: crate::NewUser = serde_json::from_value(serde_json::json!(
            {"login": "boss", "name": "Boss", "admin": true}
        ))
        .unwrap();
        let (user, _) = store.create_user(&new, "kolokol").await.unwrap();
        let spec = serde_json::from_value(serde_json::json!(
            {"name": "Название", "latin": "title", "kind": "text", "in_table": true}
        ))
        .unwrap();
        store.create_field(&spec).await.unwrap();
        let viewer = store.viewer(user).await.unwrap();
        let form = store.form().await.unwrap();
        for t in titles {
            let values = serde_json::json!({"title": t});
            store
                .create_partner(&viewer, &form, values.as_object().unwrap())
                .await
                .unwrap();
        }
        (store, viewer, form)
    }

    async fn csv_of(export: Export) -> String {
        let Export::Csv(mut pages) = export else {
            panic!("a CSV is sent as it is read")
        };
        let mut out = Vec::new();
        while let Some(piece) = pages.next_piece().await.unwrap() {
            out.extend(piece);
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn an_export_beyond_its_rows_is_refused_before_it_begins() {
        let (store, viewer, form) =
            store_with_partners("export-bound", &["a", "b", "c", "d"]).await;
        let q = TableQuery {
            sort: Some("title".into()),
            ..TableQuery::default()
        };
        for format in [Format::Csv, Format::Xlsx] {
            match store.export_at_most(&viewer, &form, &q, format, 3).await {
                Err(StoreError::Invalid {
                    field: "filter",
                    message,
                }) => assert!(
                    message.starts_with("more than 3 partners match"),
                    "{message}"
                ),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("{format:?}: an export of 4 rows where 3 are allowed"),
            }
        }
        let csv = csv_of(
            store
                .export_at_most(&viewer, &form, &q, Format::Csv, 4)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(csv, "\u{feff}Название\na\nb\nc\nd\n");
        // Narrowed, it goes.
        let q = TableQuery {
            filters: vec![("title".into(), "a".into())],
            ..q
        };
        let csv = csv_of(
            store
                .export_at_most(&viewer, &form, &q, Format::Csv, 3)
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(csv, "\u{feff}Название\na\n");
        // Past the first page the matching rows are counted (up to the bound).
        let mut file = String::from("title\n");
        for i in 0..1000 {
            file.push_str(&format!("p{i:04}\n"));
        }
        let import = Import {
            format: Format::Csv,
            bytes: file.into_bytes().into(),
            mapping: None,
            dry_run: false,
        };
        store
            .import_partners(&viewer, &form, import, |_, _| {})
            .await
            .unwrap();
        let q = TableQuery {
            filters: vec![("title".into(), "p".into())],
            ..q
        };
        assert!(matches!(
            store
                .export_at_most(&viewer, &form, &q, Format::Csv, 999)
                .await,
            Err(StoreError::Invalid {
                field: "filter",
                ..
            })
        ));
        let csv = csv_of(
            store
                .export_at_most(&viewer, &form, &q, Format::Csv, 1000)
                .await
                .unwrap(),
        )
        .await;
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1001);
        assert_eq!(
            (lines[1], lines[500], lines[501], lines[1000]),
            ("p0000", "p0499", "p0500", "p0999")
        );
    }

    /// OWASP's CSV injection: a text a spreadsheet would run as a formula is written with a
    /// `'` before it; numbers, and texts that are only a (phone) number, stay as they are.
    #[test]
    fn csv_cells_never_read_as_formulas() {
        let header = ["=HYPERLINK(\"http://evil\")".to_string(), "n".to_string()];
        let rows = [
            vec![Value::from("=cmd|' /C calc'!A0"), Value::from(-5)],
            vec![Value::from("+A1"), Value::from(1.5)],
            vec![Value::from("-2+3+cmd|' /C calc'!A0"), Value::Null],
            vec![
                Value::from("@SUM(A1:A2)"),
                Value::from("+7 (495) 123-45-67"),
            ],
            vec![Value::from("\t=1+1"), Value::from("\r=1+1")],
            vec![Value::from("safe = text"), Value::from("-12,5")],
        ];
        let bytes = write_sheet(Format::Csv, &header, &rows).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(
            lines,
            [
                "\"'=HYPERLINK(\"\"http://evil\"\")\",n",
                "'=cmd|' /C calc'!A0,-5",
                "'+A1,1.5",
                "'-2+3+cmd|' /C calc'!A0,",
                "'@SUM(A1:A2),+7 (495) 123-45-67",
                "'\t=1+1,\"'\r=1+1\"",
                "safe = text,\"-12,5\"",
            ]
        );
    }
}
