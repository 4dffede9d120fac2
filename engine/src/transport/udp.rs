//! The UDP transport: one socket read by one dedicated OS thread with blocking calls.
//! REGISTER and OPTIONS are answered inline in microseconds, so an async task gains
//! nothing here and the runtime's wake-ups cost more CPU than the work itself.

use super::{Flow, Transport};
use crate::clock::now_ms;
use crate::service::SipService;
use std::net::UdpSocket;
use std::sync::Arc;

/// Serves `socket` on a new thread until the process ends.
pub fn spawn(
    socket: UdpSocket,
    service: Arc<SipService>,
    max_message: usize,
) -> std::io::Result<()> {
    socket.set_nonblocking(false)?;
    std::thread::Builder::new()
        .name("sip-udp".into())
        .spawn(move || serve(socket, service, max_message))?;
    Ok(())
}

/// Datagrams are read into a buffer one byte larger than the limit, so an oversized one
/// is seen as such and dropped instead of being parsed truncated.
fn serve(socket: UdpSocket, service: Arc<SipService>, max_message: usize) {
    let local = match socket.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "udp socket has no local address");
            return;
        }
    };
    let mut buf = vec![0u8; max_message + 1];
    loop {
        let (len, remote) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on Linux.
                tracing::trace!(error = %e, "udp recv error");
                continue;
            }
        };
        if len > max_message {
            metrics::counter!("kolokol_sip_dropped_total", "reason" => "too-large").increment(1);
            continue;
        }
        let flow = Flow {
            transport: Transport::Udp,
            remote,
            local,
            connection: None,
        };
        if let Some(out) = service.handle(&buf[..len], &flow, now_ms()) {
            if let Err(e) = socket.send_to(&out.bytes, out.to) {
                tracing::debug!(error = %e, to = %out.to, "udp send failed");
            }
        }
    }
}
