//! The registrar against sipp, the independent SIP peer, over UDP and TCP.

mod common;
use common::*;
use std::time::Duration;

fn register(
    server: &Server,
    user: &str,
    pass: &str,
    transport: &str,
    expires: u32,
    port: u16,
) -> (bool, String) {
    let t = if transport == "tcp" { "t1" } else { "u1" };
    let (expires, port) = (expires.to_string(), port.to_string());
    sipp_as(
        server,
        "register.xml",
        user,
        pass,
        &["-t", t, "-key", "expires", &expires, "-p", &port, "-m", "1"],
    )
}

#[test]
fn register_refresh_and_unregister_over_udp_and_tcp() {
    let server = Server::start(&[("2001", "secret-2001"), ("2002", "secret-2002")], &[]);
    let token = server.admin_token();
    let phone_port = free_port();
    for (user, transport, port) in [("2001", "udp", phone_port), ("2002", "tcp", free_port())] {
        let (ok, out) = register(
            &server,
            user,
            &format!("secret-{user}"),
            transport,
            600,
            port,
        );
        assert!(ok, "{transport} register failed: {out}\n{}", server.log());
    }
    let regs = server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array().unwrap().len() == 2
    });
    assert_eq!(regs[0]["aor"], "2001");
    assert_eq!(regs[0]["transport"], "udp");
    assert_eq!(regs[1]["aor"], "2002");
    assert_eq!(regs[1]["transport"], "tcp");
    let left = regs[0]["expires_in"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "expires_in {left}");

    // A refresh from the same contact replaces the binding instead of adding one.
    let (ok, out) = register(&server, "2001", "secret-2001", "udp", 300, phone_port);
    assert!(ok, "{out}");
    let regs = server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array()
            .unwrap()
            .iter()
            .any(|r| r["aor"] == "2001" && r["expires_in"].as_u64().unwrap() <= 300)
    });
    assert_eq!(regs.as_array().unwrap().len(), 2);

    let (ok, out) = sipp_as(
        &server,
        "unregister.xml",
        "2001",
        "secret-2001",
        &["-t", "u1", "-m", "1"],
    );
    assert!(ok, "{out}");
    let regs = server.wait_registrations(&token, Duration::from_secs(5), |v| {
        v.as_array().unwrap().len() == 1
    });
    assert_eq!(regs[0]["aor"], "2002");
}

#[test]
fn wrong_password_and_unknown_user_both_get_403() {
    let server = Server::start(&[("2001", "secret-2001")], &[]);
    for (user, pass) in [("2001", "wrong-password"), ("9999", "secret-2001")] {
        let (ok, out) = sipp_as(
            &server,
            "register_forbidden.xml",
            user,
            pass,
            &["-t", "u1", "-m", "1"],
        );
        assert!(ok, "{user}: {out}");
    }
    let log = server.log();
    assert!(
        log.contains("auth failure: src=127.0.0.1 user=\"2001\""),
        "{log}"
    );
    assert!(
        log.contains("auth failure: src=127.0.0.1 user=\"9999\""),
        "{log}"
    );
}

#[test]
fn a_binding_expires_on_time() {
    let server = Server::start(
        &[("2001", "secret-2001")],
        &[("KOLOKOL_REGISTRAR__MIN_EXPIRES", "1")],
    );
    let token = server.admin_token();
    let (ok, out) = register(&server, "2001", "secret-2001", "udp", 2, free_port());
    assert!(ok, "{out}");
    server.wait_registrations(&token, Duration::from_secs(2), |v| {
        v.as_array().unwrap().len() == 1
    });
    server.wait_registrations(&token, Duration::from_secs(6), |v| {
        v.as_array().unwrap().is_empty()
    });
}

#[test]
fn a_source_that_keeps_failing_is_banned() {
    let server = Server::start(
        &[("2001", "secret-2001")],
        &[
            ("KOLOKOL_REGISTRAR__PIKE__MAX_FAILURES", "5"),
            ("KOLOKOL_REGISTRAR__PIKE__WINDOW_MS", "60000"),
        ],
    );
    let (ok, out) = sipp_as(
        &server,
        "register_forbidden.xml",
        "2001",
        "bad-guess",
        &["-t", "u1", "-m", "5", "-l", "1"],
    );
    assert!(ok, "{out}");
    // The sixth failure bans the source...
    let (ok, _) = sipp_as(
        &server,
        "register_forbidden.xml",
        "2001",
        "bad-guess",
        &["-t", "u1", "-m", "1"],
    );
    assert!(ok);
    assert!(
        server.log().contains("source banned: src=127.0.0.1"),
        "{}",
        server.log()
    );
    // ...after which even the right password goes unanswered.
    let (ok, out) = sipp_as(
        &server,
        "register.xml",
        "2001",
        "secret-2001",
        &[
            "-t",
            "u1",
            "-key",
            "expires",
            "60",
            "-m",
            "1",
            "-recv_timeout",
            "2s",
        ],
    );
    assert!(!ok, "a banned source was answered: {out}");
    let (_, _, metrics) = server.http("GET", "/metrics", &[], "");
    assert!(metrics.contains("kolokol_pike_bans_total 1"), "{metrics}");
}
