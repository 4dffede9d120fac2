//! The load scripts of benches/ at a tiny size, against the binary under test
//! (`KOLOKOL_BIN`), with `STRICT=1`: a script exits 1 when a call or registration fails or
//! fewer than asked succeed. A script that rots (a port taken, a scenario out of step with
//! kolokol, a load generator that no longer builds) fails here rather than on the next
//! benchmark run. One script at a time (the machine may have 2 cores); each is bounded.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// One load at a time: they measure, and share the cores with the others.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long a script may take, its load generators' builds included.
const LIMIT: Duration = Duration::from_secs(300);

/// Runs `benches/<script> <args>` with `env`; returns its stdout once it exited 0.
fn run(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let child = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/").to_string() + script)
        .args(args)
        .env("KOLOKOL_BIN", env!("CARGO_BIN_EXE_kolokol"))
        .env("STRICT", "1")
        .env("SIPP_TIMEOUT", "60")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that kolokol and the sipps can be stopped with it.
        .process_group(0)
        .spawn()
        .expect("bash");
    let group = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("script output"),
        Err(_) => {
            // SAFETY: kill(2) on the process group this test started.
            unsafe { libc::kill(-group, libc::SIGTERM) };
            let out = rx
                .recv_timeout(Duration::from_secs(20))
                .ok()
                .and_then(Result::ok);
            unsafe { libc::kill(-group, libc::SIGKILL) };
            let (stdout, stderr) = out.map_or_else(Default::default, |o| {
                (
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            });
            panic!("{script} {args:?} still running after {LIMIT:?}:\n{stdout}\n{stderr}");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!(
        "{script} {args:?} in {:.1} s:\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    stdout
}

fn expect(out: &str, wanted: &str) {
    assert!(out.contains(wanted), "no `{wanted}` in:\n{out}");
}

/// The number after `key` in the script's output (e.g. a relay counter).
fn number_after(out: &str, key: &str) -> u64 {
    let at = out
        .find(key)
        .unwrap_or_else(|| panic!("no `{key}` in:\n{out}"))
        + key.len();
    let digits: String = out[at..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after `{key}` in:\n{out}"))
}

#[test]
fn call_load_signalling() {
    let out = run("call-load.sh", &["20", "10", "none", "false"], &[]);
    expect(&out, "successful=20 failed=0");
}

#[test]
fn call_load_rtp_recorded() {
    let out = run(
        "call-load.sh",
        &["10", "10", "rtp", "true"],
        &[("HOLD", "1000")],
    );
    expect(&out, "successful=10 failed=0");
    assert!(number_after(&out, "kolokol_rtp_packets_total{dir=\"out\"}") > 0);
}

#[test]
fn queue_load() {
    let out = run("queue-load.sh", &["20", "10", "2"], &[]);
    expect(&out, "operators=2 (registered 2)");
    expect(&out, "successful=20 failed=0");
    expect(&out, "answered=20");
}

#[test]
fn register_load() {
    let out = run(
        "register-load.sh",
        &["10", "2", "10"],
        &[("SIPP_RATE", "5")],
    );
    expect(&out, " ok, 0 failed, 10 distinct users");
    expect(&out, "registered AoRs per API: 10");
    expect(&out, "sipp: successful=100 failed=0");
}

#[test]
fn media_load() {
    let out = run(
        "media-load.sh",
        &["4", "true", "2"],
        &[("HOLD_SLACK_S", "5")],
    );
    expect(&out, "bridged at window start: 4");
    expect(&out, "successful=4 failed=0");
    assert!(number_after(&out, "received=") > 0);
}

#[test]
fn kamailio_load() {
    let found = Command::new("sh")
        .args(["-c", "command -v kamailio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("kamailio_load: skipped, no kamailio installed");
        return;
    }
    let out = run("kamailio-load.sh", &["20", "10"], &[]);
    expect(&out, "successful=20 failed=0");
}
