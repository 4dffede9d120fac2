//! An import's dry run (`POST /api/v1/partners/import`, `dry_run`) of any CSV file:
//! `read_sheet`, then every row checked as a card saved through the API would be (values
//! of every field kind read and normalised), against `table_page`'s small database.
//!
//! Invariants: no panic; a file is reported on (rows imported or rejected, each with its
//! row number) or refused naming what is wrong, never a database error; a dry run counts
//! every data row once and writes nothing.
#![no_main]

#[path = "common/crm_db.rs"]
mod crm_db;

use crm_db::{refused, table};
use kolokol_crm::exchange::{Format, Import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = table();
    t.rt.block_on(async {
        let import = Import {
            format: Format::Csv,
            bytes: data.to_vec().into(),
            mapping: None,
            dry_run: true,
        };
        match t
            .store
            .import_partners(&t.viewer, &t.form, import, |_, _| {})
            .await
        {
            Ok(report) => {
                assert!(report.dry_run);
                assert_eq!(report.imported + report.rejected.len(), report.rows);
                assert!(report.rejected.iter().all(|r| r.row >= 2));
            }
            Err(e) if refused(&e) => {}
            Err(e) => panic!("{e:?}"),
        }
    });
});
