//! `SipService::handle`: a whole datagram or stream message through the decoder, the
//! registrar (REGISTER with digest, against a directory that knows one user) and the
//! stateless answers, as every transport calls it (call control is not attached: INVITEs
//! get their answer from the service alone).
//!
//! Invariants: no panic; whatever the service sends back decodes as a SIP response.
#![no_main]

use kolokol_engine::registrar::{
    digest::{self, Algorithm},
    location::Forget,
    Directory, Location, Registrar, RegistrarConfig, SipAccount,
};
use kolokol_engine::service::SipService;
use kolokol_engine::sip::{self, Inbound};
use kolokol_engine::transport::{Flow, Transport};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

struct One;
impl Directory for One {
    fn account(&self, username: &str) -> Option<SipAccount> {
        (username == "2001").then(|| SipAccount {
            user_id: 1,
            username: "2001".into(),
            ha1_md5: digest::ha1(Algorithm::Md5, "2001", "kolokol", "s3cret"),
            ha1_sha256: digest::ha1(Algorithm::Sha256, "2001", "kolokol", "s3cret"),
        })
    }
}

fn service() -> &'static SipService {
    static SERVICE: OnceLock<SipService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let location = Arc::new(Location::new(Arc::new(Forget)));
        SipService::new(Registrar::new(
            RegistrarConfig::default(),
            [1; 32],
            Arc::new(One),
            location,
        ))
    })
}

static NOW: AtomicU64 = AtomicU64::new(1_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    let transport = match selector % 5 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Tls,
        3 => Transport::Ws,
        _ => Transport::Wss,
    };
    // A source per input, so one input's failed logins do not ban the next's.
    let h = message.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    let flow = Flow {
        transport,
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(h | 0x0100_0000)), 5060),
        local: "192.0.2.1:5060".parse().unwrap(),
        connection: transport.is_reliable().then_some(u64::from(selector)),
    };
    let now = NOW.fetch_add(20, Ordering::Relaxed);
    let svc = service();
    if let Some(out) = svc.handle(message, &flow, now) {
        if out.bytes != b"\r\n" {
            match sip::decode(&out.bytes) {
                Ok(Inbound::Response(..)) => {}
                other => panic!(
                    "reply does not decode as a response: {other:?}\n{}",
                    String::from_utf8_lossy(&out.bytes)
                ),
            }
        }
    }
    if now.is_multiple_of(20_000) {
        svc.sweep(now);
        svc.tick(now);
    }
});
