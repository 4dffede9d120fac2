//! `kolokol_crm::exchange::read_sheet` on XLSX files whose XML parts the fuzzer writes:
//! the input is the parts, separated by 0xFF bytes (never in UTF-8 XML): the sheet, the
//! shared strings, the styles, the workbook. They are stored (not deflated) in a zip with
//! the fixed content types and relationships a workbook needs, so mutations reach
//! calamine's XML readers instead of dying in the zip layer.
//!
//! Invariants: no panic, no unbounded allocation; what is read fits the limits.
#![no_main]

use kolokol_crm::exchange::{read_sheet, Format, SheetLimits};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#;
const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;
const WORKBOOK: &[u8] = br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#;

const SMALL: SheetLimits = SheetLimits {
    columns: 5,
    rows: 8,
    cells: 24,
    unpacked_bytes: 1 << 16,
};

fn zip(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, body) in parts {
        out.start_file(*name, stored).unwrap();
        out.write_all(body).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// `read_sheet` catches a panic in calamine (refused as a damaged file), but libFuzzer's
/// panic hook aborts before anything unwinds. This hook lets panics unwind: one that
/// `read_sheet` catches is then no failure, one that leaves the target still is (the
/// harness aborts on it). Panics from outside calamine are printed as before.
fn let_caught_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _libfuzzer_abort = std::panic::take_hook();
        let print = std::panic::take_hook(); // the default one, once libFuzzer's is taken
        std::panic::set_hook(Box::new(move |info| {
            if !info
                .location()
                .is_some_and(|l| l.file().contains("/calamine-"))
            {
                print(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_caught_panics_unwind();
    let mut parts = data.split(|b| *b == 0xFF);
    let sheet = parts.next().unwrap_or_default();
    let shared = parts.next();
    let styles = parts.next();
    let workbook = parts.next().unwrap_or(WORKBOOK);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", RELS.as_bytes()),
        ("xl/workbook.xml", workbook),
        ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet),
    ];
    if let Some(s) = shared {
        files.push(("xl/sharedStrings.xml", s));
    }
    if let Some(s) = styles {
        files.push(("xl/styles.xml", s));
    }
    let bytes = zip(&files);
    for limits in [SheetLimits::IMPORT, SMALL] {
        let Ok((header, rows)) = read_sheet(Format::Xlsx, &bytes, &limits) else {
            continue;
        };
        assert!(header.len() as u64 <= u64::from(limits.columns));
        assert!(rows.len() as u64 <= u64::from(limits.rows));
        let cells = header.len() as u64 + rows.iter().map(|r| r.len() as u64).sum::<u64>();
        assert!(cells <= limits.cells);
    }
});
