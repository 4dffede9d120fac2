//! Inputs the fuzz targets in `fuzz/` (cargo-fuzz; `fuzz/run.sh`) found crashing the CRM's
//! readers of untrusted files and query strings, or breaking what they promise. Each test
//! feeds the exact bytes to the function the target calls and expects an answer, not a
//! panic.

use base64::Engine;
use kolokol_crm::exchange::{read_sheet, Format, SheetLimits};
use kolokol_crm::table::TableQuery;
use kolokol_crm::values;
use std::io::Write;

fn base64(parts: &[&str]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(parts.concat())
        .expect("base64")
}

/// `read_xlsx` crash-b31c2988191e9118550a9bc32a314ccc782c30b1: an XLSX whose shared strings
/// part is named `(l/sharedStrings.xml` in the zip's directory, so the workbook has none,
/// while its sheet's cells name shared strings 0 and 1.
const XLSX_WITHOUT_ITS_SHARED_STRINGS: &[&str] = &[
    "UEsDBBQAAAAIACNog11Da539FgEAADADAAATAAAAW0NvbnRlbnRfVHlwZXNdLnhtbK1SzU4CMRC++xRNr4QWPBhj",
    "WDigHtVEfICxnWUb+pfOgPD2lgWNMSgXTpP2+81kJrNt8GKDhVyKjRyrkRQYTbIuLhv5tngc3kpBDNGCTxEbuUOS",
    "s+nVZLHLSKKKIzWyY853WpPpMACplDFWpE0lANdnWeoMZgVL1Nej0Y02KTJGHvLeQ04n99jC2rN42NbvQ5GCnqSY",
    "H4j7rEZCzt4Z4IrrTbS/UobHBFWVPYc6l2lQCVKfTNgjfwccdc91M8VZFC9Q+AlCZemt1x+prN5TWqn/TU60TG3r",
    "DNpk1qFKFOWCYKlD5OBVP1UAFwfn83sy6X6ML1zk2/9MD+qgoH3lUq+FLr6MH97nevDO48UL9KZfybo/+OknUEsD",
    "BBQAAAAIACNog10GWceCsQAAACgBAAALAAAAX3JlbHMvLnJlbHONz7EOgjAQBuDdp2hul4KDMYbCYkxYDT5AbY9C",
    "gF7TVoW3t6MaB8fL/ff9ubJe5ok90IeBrIAiy4GhVaQHawRc2/P2ACxEabWcyKKAFQPU1aa84CRjugn94AJLiA0C",
    "+hjdkfOgepxlyMihTZuO/CxjGr3hTqpRGuS7PN9z/25A9WGyRgvwjS6AtavDf2zqukHhidR9Rht/VHwlkiy9wShg",
    "mfiT/HgjGrOEAq9K/vFg9QJQSwMEFAAAAAgAI2iDXXdA/sS8AAAAHAEAAA8AAAB4bC93b3JrYm9vay54bWyNT8uO",
    "wjAMvPMVke9L2j0gVLXlgpA4L3xAaFwa0diVneXx94TXndOMNZrxTL26xtGcUTQwNVDOCzBIHftAxwb2u83PEowm",
    "R96NTNjADRVW7ay+sJwOzCeT/aQNDClNlbXaDRidznlCykrPEl3KpxytToLO64CY4mh/i2JhowsEr4RKvsngvg8d",
    "rrn7j0jpFSI4upTb6xAmhbZ+ftA3GnIxt/578DIveeDW56FgpAqZyNaXYNvafmz2s6y9A1BLAwQUAAAACAAjaINd",
    "3dGJodgAAAA1AgAAGgAAAHhsL19yZWxzL3dvcmtib29rLnhtbC5yZWxzrZHBasMwDEDv+wqj++KkgzFGnV7KoNet",
    "+wBjK3FoYhtJ7Za/nylsa6CMHXoSktDTQ1pvPqdRnZB4SNFAU9WgMLrkh9gbeN+/3D+BYrHR2zFFNDAjw6a9W7/i",
    "aKXMcBgyqwKJbCCI5Get2QWcLFcpYyydLtFkpaTU62zdwfaoV3X9qOmSAe2CqXbeAO18A2o/Z/wPO3Xd4HCb3HHC",
    "KFdW6I9EBw6IUqCWehQDPyXW59BUhQr6uszqljIcLKF/Eyqn5l+hRfkvmYebysg84qXFOf9erxffbr8AUEsDBBQA",
    "AAAIACNog12QJnbXIAEAAB8CAAAYAAAAeGwvd29ya3NoZWV0cy9zaGVldDEueG1sbZHRbsIgFIbv9xSEXddD6TRL",
    "QzFas8vdzD0Aa49K1oIBUufbD6lrnDHhgpPv53wHEMufviMDOq+tqWg+Y5SgaWyrzb6in9u37JUSH5RpVWcNVvSM",
    "ni7lkzhZ9+0PiIHEBsZX9BDCsQTwzQF75Wf2iCaSnXW9CrF0e/BHh6pNh/oOOGML6JU2VIpW92guExCHu4qu8rIu",
    "KEiRshsVlBTOnoiLA8Z0c9msckpCRX2sB8kEDFJAc2XrkWnTaYMfwcWM9lIEWetwFhBi9FJP+fraKyUHubbOTA0h",
    "iic7n+z8xp7f2Uf29YjVkfnxFoN8mTPGZvPHquJPtS5SOMv5XasiaTDR53dY/cebEbcJc8YXGcszxreMlWndWeHm",
    "qWH6W/kLUEsDBBQAAAAIACNog12hwuFFsQAAAO0AAAAUAAAAeGwvc2hhcmVkU3RyaW5ncy54bWw9jkFqAzEMRfc5",
    "hdE+0TSLUoLtUApZZ5EewJ1RMgZbnlqakN6+ninNQh/e+3yQPT5yMneqEgs7eNl1YIj7MkS+Ofi8nLZvYEQDDyEV",
    "Jgc/JHD0Gyuipk1ZHIyq0wFR+pFykF2ZiFtzLTUHbVhvKFOlMMhIpDnhvuteMYfIYPoyszrYg5k5fs/08c/eSvRW",
    "/SVqIovqLS5iubr49/Qn68r13OILFz6v9TSGZ78Osf3rfwFQSwMEFAAAAAgAI2iDXWEA/5/SAAAAOQEAAA0AAAB4",
    "bC9zdHlsZXMueG1sVY/BasMwDIbvewqj++K0jDKG4x4GgV562Qa7erHSBCzZRM5o3n5OW7pNF1m/rE+/zP5MQX3j",
    "JGPkBjZVDQq5i37kUwMf7+3jMyjJjr0LkbGBBQX29sFIXgK+DYhZFQJLA0PO6UVr6QYkJ1VMyKXTx4lcLuV00pIm",
    "dF7WIQp6W9c7TW5ksIZnaimL6uLMudi4S+qaDr6IuydQV9xr9MWK9xVRtZQAbY2+MazpMITP/g7bFti5/wOq1+//",
    "lAvapRSW40xfOLWXLauPFXzjldfv0fYHUEsBAhQDFAAAAAgAI2iDXUNrnf0WAQD3LwMAABMAAAAAAAAAAAAAAIAB",
    "AAAAAFtDb250ZW50X1R5cGVzXS54bWxQSwECFAMUAAAACAAjaINdBlnHgrEAAAAoAQAACwAAAAAAAAAAAAAAgAFH",
    "AQAAX3JlbHMvLnJlbHNQSwECFAMUAAAACAAjaINdd0D+xLwAAAAcAQAADwAAAAAAAAAAAAAAgAEhAgAAeGwvd29y",
    "a2Jvb2sueG1sUEsBAhQDFAAAAAgAI2iDXd3RiaHYAAAANQIAABoAAAAAAAAAAAAAAIABCgMAAHhsL19yZWxzL3dv",
    "cmtib29rLnhtbC5yZWxzUEsBAhQDFAAAAAgAI2iDXZAmdtcgAQAAHwIAABgAAAAAAAAAAAAAAIABGgQAAHhsL3dv",
    "cmtzaGVldHMvc2hlZXQxLnhtbFBLAQIUAxQAAAAIACNog12hwuFFsQAAAO0AAAAUAAAAAAAAAAAAAACAAXAFAAAo",
    "bC9zaGFyZWRTdHJpbmdzLnhtbFBLAQIUAxQAAAAIACNog11hAP+f0gAAADkBAAANAAAAAAAAAAAAAACAAVMGAAB4",
    "bC9zdHlsZXMueG1sUEsFBgAAAAAHAAcAwgEAAFAHAAAAAA==",
];

fn refused_as_damaged(read: Result<kolokol_crm::exchange::Sheet, kolokol_crm::StoreError>) {
    let message = read.expect_err("refused").to_string();
    assert!(message.starts_with("file: XLSX"), "{message}");
}

/// calamine 0.31's cell reader indexed its shared strings unchecked: the import panicked
/// (in a blocking task: a 500) instead of refusing the file.
#[test]
fn xlsx_cell_naming_a_missing_shared_string_is_refused() {
    let bytes = base64(XLSX_WITHOUT_ITS_SHARED_STRINGS);
    refused_as_damaged(read_sheet(Format::Xlsx, &bytes, &SheetLimits::IMPORT));
}

/// The same fault written plainly: one shared string, a cell naming the eighth.
#[test]
fn xlsx_shared_string_index_past_the_table_is_refused() {
    let parts: [(&str, &str); 6] = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>7</v></c></row></sheetData></worksheet>"#,
        ),
        (
            "xl/sharedStrings.xml",
            r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>Title</t></si></sst>"#,
        ),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    refused_as_damaged(read_sheet(Format::Xlsx, &bytes, &SheetLimits::IMPORT));
}

/// `table_query` crash-2f327c2c0a3ecc7d8a3b8d044ba8cc07a443ee3c: the phone filter
/// `5.1*.2026..20-2116-24` read in Germany became `+4951202620211624`, 16 digits, which
/// phonenumber calls valid; E.164 numbers have at most 15.
#[test]
fn a_phone_filter_longer_than_e164_is_no_phone_number() {
    let input: &[u8] = b"\x05q=%D0%90%D0%BB%D1%8%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%.2%2C5&filter.ph8Cit=5.1*.2026..20-2116-24&format=csv";
    let raw = std::str::from_utf8(&input[1..]).unwrap();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap();
    let (q, _) = TableQuery::from_pairs(pairs, &["format", "columns"]).unwrap();
    for (_, text) in &q.filters {
        for country in ["RU", "US", "DE", "ZZ"] {
            if let Some(e164) = values::normalise_phone(text, country) {
                let digits = e164.strip_prefix('+').expect("E.164 starts with +");
                assert!(digits.len() <= 15, "{text:?} in {country}: {e164}");
            }
        }
    }
    assert_eq!(values::normalise_phone("5.1*.2026..20-2116-24", "DE"), None);
    // Numbers as long as E.164 allows still read.
    assert_eq!(
        values::normalise_phone("+7 495 123-45-67", "DE").as_deref(),
        Some("+74951234567")
    );
}

/// A store in a fresh SQLite file with an administrator, a text field in the table and
/// a card (what `table_page`'s database has, as far as these inputs need).
async fn store_with_a_card(name: &str) -> (kolokol_crm::Store, kolokol_crm::access::Viewer) {
    let dir = std::env::temp_dir().join(format!("kolokol-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = kolokol_crm::Store::open(&format!("sqlite://{}", dir.join("crm.db").display()))
        .await
        .unwrap();
    let new: kolokol_crm::NewUser = serde_json::from_value(serde_json::json!(
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
    let card = serde_json::json!({"title": "Альфа"});
    store
        .create_partner(&viewer, &form, card.as_object().unwrap())
        .await
        .unwrap();
    (store, viewer)
}

/// `table_page` crash-05bfa2704f6d15ae2de6c79b5f1f5b43f53c021b: a search term holding NUL
/// characters went into the trigram index's MATCH as a phrase, which FTS5 reads only up to
/// the NUL: "unterminated string", a database error (500) instead of a page.
#[tokio::test]
async fn a_search_term_with_nul_characters_gets_a_page() {
    let input: &[u8] = b"q=%D0%90%D0%BB%D1%8C%D1%84%D0ter.city=%D0%9C%D0%BE%D\x04\x00\x00\x00\x00\x00\x00\x00BA%D0%B2%D0%B0,%D0%9A%D0%B0%D0%B7%D0%B0%D0%B&limit=5&created=24.11.2026..2126-11-24";
    let (store, viewer) = store_with_a_card("nul-search").await;
    let form = store.form().await.unwrap();
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(std::str::from_utf8(input).unwrap()).unwrap();
    let (q, _) = TableQuery::from_pairs(pairs, &[]).unwrap();
    let page = store.partner_table(&viewer, &form, &q).await.unwrap();
    assert!(page.rows.is_empty());
    // A term with a NUL is looked for in the cards, not the index: no error either.
    let q = TableQuery {
        search: Some("Аль\0фа".into()),
        limit: 50,
        ..TableQuery::default()
    };
    assert!(store
        .partner_table(&viewer, &form, &q)
        .await
        .unwrap()
        .rows
        .is_empty());
    assert_eq!(store.table_count(&viewer, &form, &q, 10).await.unwrap(), 0);
}
