//! schemathesis (from PyPI; the README test command installs it) against the OpenAPI
//! document of the running binary, authenticated as an administrator: every operation
//! fuzzed, no server error and every response as the document describes it.

mod common;

use common::*;
use std::process::Command;

/// Where scripts/test.sh installs schemathesis (`KOLOKOL_SCHEMATHESIS` overrides).
fn schemathesis() -> String {
    std::env::var("KOLOKOL_SCHEMATHESIS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/kolokol-st/bin/st",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

#[test]
fn every_operation_survives_schemathesis() {
    let mut server = Server::start(&[("2001", "secret-2001")], &[]);
    let token = server.admin_token();
    let out = Command::new(schemathesis())
        .args([
            "run",
            &format!("http://127.0.0.1:{}/api/v1/openapi.json", server.http_port),
            "-H",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "30",
        ])
        .env("NO_COLOR", "1")
        // Its cache (.schemathesis/) goes with the server's data, not into the clone.
        .current_dir(&server.dir)
        .output()
        .expect("schemathesis is installed by the README test command (scripts/test.sh)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    // The administrator's token must open every operation: an operation that answers
    // only 401/403 is not tested at all (a fuzzer once demoted its own account).
    assert!(
        !report.contains("Authentication failed"),
        "operations left untested:\n{report}"
    );
    assert!(report.contains(" passed"), "{report}");
    assert!(server.alive());
}
