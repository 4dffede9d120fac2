//! Where a call goes: what call control asks the outside (the binary answers from the
//! database) about users, numbers and trunks.

use crate::transport::{Flow, Transport};
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
    /// Whether a request that came this way is the trunk's: from its inbound address
    /// (and port, when set) over its transport — the same address over another transport
    /// (a WebSocket through a proxy on the provider's host, a TCP connection from a
    /// shared address) is not the provider.
    pub fn matches(&self, flow: &Flow) -> bool {
        let source = flow.remote;
        self.transport == flow.transport
            && self.inbound_ip == Some(source.ip())
            && self.inbound_port.is_none_or(|p| p == source.port())
    }
}

/// Answers from memory: asked on every INVITE.
pub trait Dialplan: Send + Sync {
    /// The trunk a request from this source belongs to, if any.
    fn trunk_from(&self, flow: &Flow) -> Option<Trunk>;
    fn trunk(&self, id: i64) -> Option<Trunk>;
    fn number(&self, number: &str) -> Option<Number>;
    /// A user by extension or login.
    fn user(&self, extension_or_login: &str) -> Option<UserRoute>;
}

/// A dialplan with nothing in it (tools, tests).
pub struct EmptyDialplan;

impl Dialplan for EmptyDialplan {
    fn trunk_from(&self, _: &Flow) -> Option<Trunk> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trunk_is_its_address_over_its_transport() {
        let trunk = Trunk {
            id: 1,
            name: "provider".into(),
            address: ([203, 0, 113, 5], 5060).into(),
            transport: Transport::Udp,
            inbound_ip: Some([203, 0, 113, 5].into()),
            inbound_port: None,
            caller_id: None,
            username: None,
            password: None,
        };
        let flow = |transport, port| Flow {
            transport,
            remote: ([203, 0, 113, 5], port).into(),
            local: ([192, 0, 2, 1], 5060).into(),
            connection: None,
        };
        assert!(trunk.matches(&flow(Transport::Udp, 5060)));
        assert!(trunk.matches(&flow(Transport::Udp, 40123)));
        assert!(!trunk.matches(&flow(Transport::Tcp, 5060)));
        assert!(!trunk.matches(&flow(Transport::Wss, 443)));
    }
}
