//! kolokol-engine: SIP transports, the registrar and (next) call control.
//! Knows nothing of SQL or HTTP: what it needs from outside comes through small traits
//! such as [`registrar::Directory`] and [`registrar::BindingSink`].

pub mod clock;
pub mod registrar;
pub mod service;
pub mod sip;
pub mod transport;
