//! Every RFC 4475 torture message through the SIP service: the right answer, the right
//! parsed values for the valid ones, and never a panic.

use kolokol_engine::registrar::{
    location::Forget, Directory, Location, Registrar, RegistrarConfig, SipAccount,
};
use kolokol_engine::service::SipService;
use kolokol_engine::sip::{self, Inbound};
use kolokol_engine::transport::{Flow, Transport};
use std::path::PathBuf;
use std::sync::Arc;

include!("support/rfc4475_table.rs");

struct Nobody;
impl Directory for Nobody {
    fn account(&self, _: &str) -> Option<SipAccount> {
        None
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/rfc4475")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.dat"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn service() -> SipService {
    let location = Arc::new(Location::new(Arc::new(Forget)));
    SipService::new(Registrar::new(
        RegistrarConfig::default(),
        [1; 32],
        Arc::new(Nobody),
        location,
    ))
}

fn flow() -> Flow {
    Flow {
        transport: Transport::Udp,
        remote: "192.0.2.200:5060".parse().unwrap(),
        local: "192.0.2.1:5060".parse().unwrap(),
        connection: None,
    }
}

#[test]
fn the_table_covers_every_file() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".dat")
                .map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = RFC4475.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn each_message_gets_its_answer() {
    let service = service();
    let mut wrong = Vec::new();
    for (name, expected) in RFC4475 {
        let out = service.handle(&read(name), &flow(), 1_000_000);
        let status = out.as_ref().map(|o| {
            std::str::from_utf8(&o.bytes[8..11])
                .unwrap()
                .parse::<u16>()
                .unwrap()
        });
        if status != *expected {
            wrong.push(format!(
                "{name}: expected {expected:?}, got {status:?}: {:?}",
                out.map(|o| String::from_utf8_lossy(&o.bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string())
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn valid_messages_parse_to_the_right_values() {
    let wsinv = read("wsinv");
    let Ok(Inbound::Request(req)) = sip::decode(&wsinv) else {
        panic!("wsinv rejected")
    };
    assert_eq!(
        (req.method, req.cseq, req.max_forwards),
        ("INVITE", 9, Some(68))
    );
    assert_eq!(req.scan.content_length, Some(150));
    assert_eq!(req.scan.body.len(), 150);
    assert_eq!(req.call_id(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(req.to_uri(), "sip:vivekg@chair-dnrc.example.com");
    assert_eq!(
        req.scan
            .all("Via")
            .flat_map(sip::grammar::split_list)
            .count(),
        3
    );
    assert_eq!(
        req.header("NewFangledHeader"),
        Some("newfangled value continued newfangled value")
    );

    // Two requests in one datagram: only the first counts.
    let dblreq = read("dblreq");
    let Ok(Inbound::Request(req)) = sip::decode(&dblreq) else {
        panic!("dblreq rejected")
    };
    assert_eq!((req.method, req.scan.body.len()), ("REGISTER", 0));
    assert!(req.scan.consumed < dblreq.len());

    let intmeth = read("intmeth");
    let Ok(Inbound::Request(req)) = sip::decode(&intmeth) else {
        panic!("intmeth rejected")
    };
    assert_eq!(req.method, "!interesting-Method0123456789_*+`.%indeed'~");

    let esc02 = read("esc02");
    let Ok(Inbound::Request(req)) = sip::decode(&esc02) else {
        panic!("esc02 rejected")
    };
    assert_eq!(req.method, "RE%47IST%45R");
    // "C%6Fntact" is not Contact: two Contacts only.
    assert_eq!(req.scan.count("Contact"), 2);

    let mpart = read("mpart01");
    let Ok(Inbound::Request(req)) = sip::decode(&mpart) else {
        panic!("mpart01 rejected")
    };
    assert_eq!(Some(req.scan.body.len()), req.scan.content_length);
}

#[test]
fn the_registrar_reads_the_contact_each_message_means() {
    use sip::grammar::{check_name_addr, split_list};
    let contact = |name: &str| {
        let data = read(name);
        let Ok(Inbound::Request(req)) = sip::decode(&data) else {
            panic!("{name} rejected")
        };
        let c = req.header("Contact").unwrap().to_string();
        split_list(&c)
            .iter()
            .map(|v| check_name_addr(v).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    // Without <>, ;unknownparam belongs to the header, not the URI...
    assert_eq!(contact("cparam01"), ["sip:+19725552222@gw1.example.net"]);
    // ...inside <>, it is a URI parameter.
    assert_eq!(
        contact("cparam02"),
        ["sip:+19725552222@gw1.example.net;unknownparam"]
    );
    // Escaped headers inside <> are part of the contact to bind.
    assert_eq!(
        contact("regescrt"),
        ["sip:user@example.com?Route=%3Csip:sip.example.com%3E"]
    );
}

#[test]
fn truncations_of_every_message_never_panic() {
    let service = service();
    for (name, _) in RFC4475 {
        let data = read(name);
        for cut in (0..data.len()).step_by(7) {
            let _ = service.handle(&data[..cut], &flow(), 1_000_000);
        }
    }
}
