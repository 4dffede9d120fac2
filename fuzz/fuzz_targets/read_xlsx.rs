//! `kolokol_crm::exchange::read_sheet` on any bytes given as an XLSX import (a zip).
//!
//! Invariants: no panic, no unbounded allocation; what is read fits the limits.
#![no_main]

use kolokol_crm::exchange::{read_sheet, Format, SheetLimits};
use libfuzzer_sys::fuzz_target;

const SMALL: SheetLimits = SheetLimits {
    columns: 5,
    rows: 8,
    cells: 24,
    unpacked_bytes: 1 << 16,
};

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
    for limits in [SheetLimits::IMPORT, SMALL] {
        let Ok((header, rows)) = read_sheet(Format::Xlsx, data, &limits) else {
            continue;
        };
        assert!(header.len() as u64 <= u64::from(limits.columns));
        assert!(rows.len() as u64 <= u64::from(limits.rows));
        let cells = header.len() as u64 + rows.iter().map(|r| r.len() as u64).sum::<u64>();
        assert!(cells <= limits.cells);
    }
});
