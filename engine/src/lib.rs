//! kolokol-engine: SIP transports, the registrar, B2BUA call control, ACD queues and the
//! call events.
//! Knows nothing of SQL or HTTP: what it needs from outside comes through small traits
//! such as [`registrar::Directory`] and [`registrar::BindingSink`].

pub mod admission;
pub mod browser;
pub mod call;
pub mod clock;
pub mod event;
pub mod queue;
pub mod registrar;
pub mod service;
pub mod sip;
pub mod transport;
