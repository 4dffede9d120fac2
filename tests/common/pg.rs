//! A PostgreSQL for tests: the one `KOLOKOL_TEST_POSTGRES` names, or a private cluster
//! from scripts/postgres.sh; each test takes a database of its own.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub fn postgres_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("KOLOKOL_TEST_POSTGRES") {
            return url;
        }
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/postgres.sh"))
            .output()
            .expect("scripts/postgres.sh");
        assert!(
            out.status.success(),
            "starting PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database of its own on the shared PostgreSQL, dropped afterwards.
pub struct PgDatabase {
    name: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kolokol_test_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        psql(postgres_url(), &format!("CREATE DATABASE {name}"));
        PgDatabase { name }
    }

    pub fn url(&self) -> String {
        let base = postgres_url();
        let (server, _) = base.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                postgres_url(),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}
