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
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

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

/// One open connection's outbound side.
struct Outbound {
    queue: mpsc::Sender<Bytes>,
    /// Tells the connection's reader to close it (its queue overflowed).
    close: Arc<Notify>,
}

/// What a transport task gets for a connection it opened.
pub struct OpenConnection {
    pub id: u64,
    /// What the writer sends, in order.
    pub outbound: mpsc::Receiver<Bytes>,
    /// Notified when the connection must close (its peer stopped reading).
    pub close: Arc<Notify>,
}

/// Open stream connections by id, each with the bounded queue its writer drains.
///
/// Ids are never reused, not even across restarts: they start at the process's start
/// time in milliseconds times 2^20. A binding restored from the database names the
/// connection of a process that is gone, so it reaches nobody instead of whoever holds
/// the connection that happens to carry the same number now.
pub struct Connections {
    next: AtomicU64,
    capacity: usize,
    writers: DashMap<u64, Outbound>,
}

impl Connections {
    /// `capacity`: messages queued per connection before it is closed as not reading (a
    /// peer that lets them pile up is not reading, or reads slowly on purpose).
    pub fn new(capacity: usize) -> Self {
        Connections {
            next: AtomicU64::new(crate::clock::now_ms() << 20),
            capacity: capacity.max(1),
            writers: DashMap::new(),
        }
    }

    pub fn open(&self) -> OpenConnection {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (queue, outbound) = mpsc::channel(self.capacity);
        let close = Arc::new(Notify::new());
        self.writers.insert(
            id,
            Outbound {
                queue,
                close: close.clone(),
            },
        );
        OpenConnection {
            id,
            outbound,
            close,
        }
    }

    /// Asks a connection to close once what is queued on it has gone out.
    pub fn shut(&self, id: u64) {
        if let Some(w) = self.writers.get(&id) {
            w.close.notify_one();
        }
    }

    pub fn close(&self, id: u64) {
        self.writers.remove(&id);
    }

    /// Queues bytes on a connection; false when it is gone, or when its queue is full —
    /// then the connection is closed and forgotten at once.
    pub fn send(&self, id: u64, bytes: Bytes) -> bool {
        let Some(w) = self.writers.get(&id) else {
            return false;
        };
        match w.queue.try_send(bytes) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("kolokol_sip_connections_closed_total", "reason" => "send-queue-full")
                    .increment(1);
                tracing::info!(
                    connection = id,
                    "peer not reading: send queue full, closing"
                );
                w.close.notify_one();
                drop(w);
                self.writers.remove(&id);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn len(&self) -> usize {
        self.writers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writers.is_empty()
    }
}

/// Waits for a closing connection's writer to send what was queued, for a moment: a peer
/// that stopped reading does not keep the task (and its socket) alive.
pub async fn finish_writer(mut writer: tokio::task::JoinHandle<()>) {
    const GRACE: std::time::Duration = std::time::Duration::from_secs(1);
    if tokio::time::timeout(GRACE, &mut writer).await.is_err() {
        writer.abort();
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

    /// Sends or queues one message; false when its connection is gone (closed, or from
    /// before a restart), so call control can treat the leg as lost and fail over.
    pub fn send(&self, out: Outgoing) -> bool {
        match out.connection {
            Some(id) => {
                let sent = self.connections.send(id, Bytes::from(out.bytes));
                if !sent {
                    tracing::debug!(connection = id, "connection gone, message dropped");
                }
                sent
            }
            None => {
                match self.udp.get() {
                    Some(s) => {
                        if let Err(e) = s.send_to(&out.bytes, out.to) {
                            tracing::debug!(error = %e, to = %out.to, "udp send failed");
                        }
                    }
                    None => tracing::debug!(to = %out.to, "no UDP socket, message dropped"),
                }
                true
            }
        }
    }
}
