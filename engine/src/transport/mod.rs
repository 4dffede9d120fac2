//! SIP transports: UDP, TCP, TLS here; WebSocket frames arrive from the web crate's
//! `/sip` endpoint. All of them feed [`crate::service::SipService`] and send through the
//! [`Connections`] table, so a request to a device goes back over the flow it registered on.

pub mod stream;
pub mod udp;

use crate::service::Outgoing;
use bytes::Bytes;
use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

/// How one message arrived: enough to answer it and to reach the sender later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flow {
    pub transport: Transport,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// The connection a stream or WebSocket message came on.
    pub connection: Option<u64>,
}

/// Open stream connections by id, each with the queue its writer task drains.
#[derive(Default)]
pub struct Connections {
    next: AtomicU64,
    writers: DashMap<u64, mpsc::UnboundedSender<Bytes>>,
}

impl Connections {
    pub fn open(&self, writer: mpsc::UnboundedSender<Bytes>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.writers.insert(id, writer);
        id
    }

    pub fn close(&self, id: u64) {
        self.writers.remove(&id);
    }

    /// Queues bytes on a connection; false when it is gone.
    pub fn send(&self, id: u64, bytes: Bytes) -> bool {
        self.writers.get(&id).is_some_and(|w| w.send(bytes).is_ok())
    }

    pub fn len(&self) -> usize {
        self.writers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }
}

/// Sends what the SIP service and call control produce: over the message's connection,
/// else from the UDP socket.
pub struct Sender {
    udp: std::sync::OnceLock<std::net::UdpSocket>,
    pub connections: std::sync::Arc<Connections>,
}

impl Sender {
    pub fn new(connections: std::sync::Arc<Connections>) -> Self {
        Sender {
            udp: std::sync::OnceLock::new(),
            connections,
        }
    }

    /// The UDP socket datagrams leave from (the one SIP listens on, so replies come back).
    pub fn set_udp(&self, socket: std::net::UdpSocket) {
        let _ = self.udp.set(socket);
    }

    pub fn send(&self, out: Outgoing) {
        match out.connection {
            Some(id) => {
                if !self.connections.send(id, Bytes::from(out.bytes)) {
                    tracing::debug!(connection = id, "connection gone, message dropped");
                }
            }
            None => match self.udp.get() {
                Some(s) => {
                    if let Err(e) = s.send_to(&out.bytes, out.to) {
                        tracing::debug!(error = %e, to = %out.to, "udp send failed");
                    }
                }
                None => tracing::debug!(to = %out.to, "no UDP socket, message dropped"),
            },
        }
    }
}
