//! Where a call goes: what call control asks the outside (the binary answers from the
//! database) about users, numbers and trunks.

use crate::transport::Transport;
use std::net::{IpAddr, SocketAddr};

/// Where an inbound number or a dialled extension leads (IVRs join later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A user, by login (the address-of-record their devices register).
    User(String),
    /// An ACD queue, by name: the caller is answered and waits for an operator.
    Queue(String),
}

/// A user as routing sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRoute {
    pub login: String,
    pub name: String,
    pub extension: Option<String>,
    /// Whether calls involving this user are recorded.
    pub record: bool,
    /// The trunk this user may call external numbers through.
    pub trunk: Option<i64>,
}

/// An inbound number (DID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number {
    pub number: String,
    pub destination: Destination,
    pub record: bool,
}

/// A SIP trunk to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trunk {
    pub id: i64,
    pub name: String,
    /// Where calls out through the trunk are sent.
    pub address: SocketAddr,
    pub transport: Transport,
    /// Calls from this address (any port when `inbound_port` is None) are the trunk's.
    pub inbound_ip: Option<IpAddr>,
    pub inbound_port: Option<u16>,
    /// The caller-ID presented on calls out; the user's extension when None.
    pub caller_id: Option<String>,
    /// Credentials for providers that challenge our INVITEs and for registration.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl Trunk {
    pub fn matches_source(&self, source: SocketAddr) -> bool {
        self.inbound_ip == Some(source.ip()) && self.inbound_port.is_none_or(|p| p == source.port())
    }
}

/// Answers from memory: asked on every INVITE.
pub trait Dialplan: Send + Sync {
    /// The trunk a request from this source belongs to, if any.
    fn trunk_from(&self, source: SocketAddr) -> Option<Trunk>;
    fn trunk(&self, id: i64) -> Option<Trunk>;
    fn number(&self, number: &str) -> Option<Number>;
    /// A user by extension or login.
    fn user(&self, extension_or_login: &str) -> Option<UserRoute>;
}

/// A dialplan with nothing in it (tools, tests).
pub struct EmptyDialplan;

impl Dialplan for EmptyDialplan {
    fn trunk_from(&self, _: SocketAddr) -> Option<Trunk> {
        None
    }
    fn trunk(&self, _: i64) -> Option<Trunk> {
        None
    }
    fn number(&self, _: &str) -> Option<Number> {
        None
    }
    fn user(&self, _: &str) -> Option<UserRoute> {
        None
    }
}
