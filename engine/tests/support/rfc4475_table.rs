// What kolokol answers to each RFC 4475 torture message (see ../shared/testdata/rfc4475/README.md).
// `None`: dropped without an answer (responses, unanswerable input).
// Shared by the engine's unit-level suite and the end-to-end wire suite.
pub const RFC4475: &[(&str, Option<u16>)] = &[
    // 3.1.1 valid: parsed and answered like any request of their method
    ("wsinv", Some(480)), // INVITE: no call routing until the calls issue
    ("intmeth", Some(501)),
    ("esc01", Some(480)),
    ("escnull", Some(401)),
    ("esc02", Some(501)),
    ("lwsdisp", Some(200)),
    ("longreq", Some(480)),
    ("dblreq", Some(401)),
    ("semiuri", Some(200)),
    ("transports", Some(200)),
    ("mpart01", Some(405)), // MESSAGE: not offered here
    ("unreason", None),
    ("noreason", None),
    // 3.1.2 invalid
    ("badinv01", Some(400)),
    ("clerr", Some(400)),
    ("ncl", Some(400)),
    ("scalar02", Some(400)),
    ("scalarlg", None),
    ("quotbal", Some(400)),
    ("ltgtruri", Some(400)),
    ("lwsruri", Some(400)),
    ("lwsstart", Some(400)),
    ("trws", Some(400)),
    ("escruri", Some(400)),
    ("baddate", Some(400)),
    ("regbadct", Some(400)),
    ("badaspec", Some(400)),
    ("baddn", Some(400)),
    ("badvers", Some(505)),
    ("mismatch01", Some(400)),
    ("mismatch02", Some(400)),
    ("bigcode", None),
    // 3.2 transaction layer
    ("badbranch", Some(200)),
    // 3.3 application semantics
    ("insuf", Some(400)),
    ("unkscm", Some(416)),
    ("novelsc", Some(416)),
    ("unksm2", Some(416)),
    ("bext01", Some(420)),
    ("invut", Some(415)),
    ("regaut01", Some(401)),
    ("multi01", Some(400)),
    ("mcl01", Some(400)),
    ("bcast", None),
    ("zeromf", Some(200)), // OPTIONS to us: answered here, never forwarded
    ("cparam01", Some(401)),
    ("cparam02", Some(401)),
    ("regescrt", Some(401)),
    ("sdp01", Some(406)),
    // 3.4
    ("inv2543", Some(480)),
];
