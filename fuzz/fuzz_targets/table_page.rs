//! The partner table run for any query string (`GET /api/v1/partners?…`): decoded as the
//! web crate does, read by `TableQuery::from_pairs`, then `Store::partner_table` and
//! `Store::table_count` on a small SQLite database whose form has a field of every kind
//! (lists with an item hidden by default) and a few cards. The SQL is built from the
//! query, so this is where a filter, search term, sort or cursor could break it.
//!
//! Invariants: no panic; a query is answered with a page or refused naming the parameter
//! at fault (never a database error, which the API would turn into a 500); a page's
//! `next` cursor reads the next page.
#![no_main]

#[path = "common/crm_db.rs"]
mod crm_db;

use crm_db::{refused, table};
use kolokol_crm::table::TableQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(raw) else {
        return;
    };
    let Ok((mut q, _)) = TableQuery::from_pairs(pairs, &[]) else {
        return;
    };
    let t = table();
    t.rt.block_on(async {
        match t.store.partner_table(&t.viewer, &t.form, &q).await {
            Ok(page) => {
                assert!(page.rows.len() <= q.limit as usize);
                if let Some(next) = page.next {
                    q.after = Some(next);
                    if let Err(e) = t.store.partner_table(&t.viewer, &t.form, &q).await {
                        panic!("the next page of {raw:?}: {e:?}");
                    }
                }
            }
            Err(e) if refused(&e) => {}
            Err(e) => panic!("{raw:?}: {e:?}"),
        }
        match t.store.table_count(&t.viewer, &t.form, &q, 1000).await {
            Ok(n) => assert!(n <= 24),
            Err(e) if refused(&e) => {}
            Err(e) => panic!("count of {raw:?}: {e:?}"),
        }
    });
});
