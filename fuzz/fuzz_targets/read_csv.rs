//! `kolokol_crm::exchange::read_sheet` on any CSV file an import is given.
//!
//! Invariants: no panic; what is read fits the limits it was read within (rows, columns,
//! cells), under the import's own limits and under small ones.
#![no_main]

use kolokol_crm::exchange::{read_sheet, Format, SheetLimits};
use libfuzzer_sys::fuzz_target;

const SMALL: SheetLimits = SheetLimits {
    columns: 5,
    rows: 8,
    cells: 24,
    unpacked_bytes: 1 << 16,
};

fuzz_target!(|data: &[u8]| {
    for limits in [SheetLimits::IMPORT, SMALL] {
        let Ok((header, rows)) = read_sheet(Format::Csv, data, &limits) else {
            continue;
        };
        assert!(header.len() as u64 <= u64::from(limits.columns));
        assert!(rows.len() as u64 <= u64::from(limits.rows));
        let cells = header.len() as u64 + rows.iter().map(|r| r.len() as u64).sum::<u64>();
        assert!(cells <= limits.cells);
        assert!(rows
            .iter()
            .all(|r| r.len() as u64 <= u64::from(limits.columns)));
    }
});
