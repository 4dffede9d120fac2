//! Stream transports (TCP, TLS): framing by Content-Length, one reader and one writer task
//! per connection; responses and later requests go through the connection's queue.

use super::{Connections, Flow, OpenConnection, Transport};
use crate::clock::now_ms;
use crate::service::SipService;
use bytes::{Buf, Bytes, BytesMut};
use dashmap::DashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What every stream connection shares.
pub struct StreamContext {
    pub service: Arc<SipService>,
    pub connections: Arc<Connections>,
    pub max_message: usize,
    pub limits: StreamLimits,
    /// Open connections per source address, for `limits.per_source`.
    pub open: DashMap<IpAddr, usize>,
}

/// Bounds on what one outsider may hold open.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Connections open at once, in all and from one source address.
    pub total: usize,
    pub per_source: usize,
    /// From accept to the first whole message, the TLS handshake included.
    pub first_message: Duration,
    /// Silence after which a connection that no registration uses is closed.
    pub idle: Duration,
}

/// Counts a connection against its source while it lives.
struct Admitted<'a> {
    ctx: &'a StreamContext,
    ip: IpAddr,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.ctx.open.remove_if_mut(&self.ip, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

impl StreamContext {
    pub fn new(
        service: Arc<SipService>,
        connections: Arc<Connections>,
        max_message: usize,
        limits: StreamLimits,
    ) -> Self {
        StreamContext {
            service,
            connections,
            max_message,
            limits,
            open: DashMap::new(),
        }
    }

    /// Takes a place for a connection from `ip`, or none when it or everyone holds too many.
    fn admit(&self, ip: IpAddr) -> Option<Admitted<'_>> {
        if self.connections.len() >= self.limits.total {
            return None;
        }
        let mut n = self.open.entry(ip).or_insert(0);
        if *n >= self.limits.per_source {
            return None;
        }
        *n += 1;
        Some(Admitted { ctx: self, ip })
    }
}

/// Accepts TCP connections; with `tls`, wraps each in TLS first.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: Arc<StreamContext>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors (EMFILE) and the like: the error repeats at once
                // until a connection closes, so wait instead of spinning on it.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (ctx, tls) = (ctx.clone(), tls.clone());
        tokio::spawn(async move {
            let Some(_admitted) = ctx.admit(remote.ip()) else {
                metrics::counter!("kolokol_sip_connections_refused_total").increment(1);
                tracing::debug!(%remote, "too many connections: refused");
                return;
            };
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(remote);
            match tls {
                None => run(stream, Transport::Tcp, remote, local, &ctx).await,
                Some(acceptor) => {
                    let deadline = ctx.limits.first_message;
                    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => run(s, Transport::Tls, remote, local, &ctx).await,
                        Ok(Err(e)) => tracing::debug!(error = %e, %remote, "tls handshake failed"),
                        Err(_) => tracing::debug!(%remote, "tls handshake timed out"),
                    }
                }
            }
        });
    }
}

/// What the framer found at the front of the buffer.
enum Frame {
    Message(usize),
    NeedMore,
    /// Not framable: answer with this status (400 without Content-Length, 513 too large).
    Broken(u16),
}

fn frame(buf: &[u8], max_message: usize) -> Frame {
    let lead = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let Some(end) = buf[lead..].windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > max_message {
            Frame::Broken(513)
        } else {
            Frame::NeedMore
        };
    };
    let head = &buf[lead..lead + end];
    let length = std::str::from_utf8(head).ok().and_then(|h| {
        h.split("\r\n").find_map(|l| {
            let (name, value) = l.split_once(':')?;
            crate::sip::header_is(name.trim(), "Content-Length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
    });
    let Some(length) = length else {
        // RFC 3261 §18.3: Content-Length is mandatory on streams.
        return Frame::Broken(400);
    };
    // A Content-Length near usize::MAX must not wrap around into a small total.
    let total = (lead + end + 4).saturating_add(length);
    if total > max_message {
        Frame::Broken(513)
    } else if buf.len() < total {
        Frame::NeedMore
    } else {
        Frame::Message(total)
    }
}

pub async fn run<S>(
    stream: S,
    transport: Transport,
    remote: SocketAddr,
    local: SocketAddr,
    ctx: &StreamContext,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let StreamContext {
        service,
        connections,
        max_message,
        limits,
        ..
    } = ctx;
    let max_message = *max_message;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let OpenConnection {
        id,
        mut outbound,
        close,
    } = connections.open();
    let flow = Flow {
        transport,
        remote,
        local,
        connection: Some(id),
    };
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = outbound.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let reply = |bytes: Vec<u8>| connections.send(id, Bytes::from(bytes));
    let mut buf = BytesMut::with_capacity(8192);
    let mut framed_one = false;
    'read: loop {
        // Until its first message a connection gets a short while (slowloris); after
        // that, silence closes it only when no registration depends on it.
        let wait = if framed_one {
            limits.idle
        } else {
            limits.first_message
        };
        let eof = tokio::select! {
            biased;
            // Closed from outside: its send queue overflowed, or it failed auth too often.
            _ = close.notified() => break 'read,
            read = tokio::time::timeout(wait, reader.read_buf(&mut buf)) => match read {
                Ok(read) => matches!(read, Ok(0) | Err(_)),
                Err(_) if framed_one && service.registrar.location.uses_connection(id) => continue,
                Err(_) => {
                    tracing::debug!(%remote, "silent connection closed");
                    break 'read;
                }
            },
        };
        loop {
            match frame(&buf, max_message) {
                Frame::Message(n) => {
                    framed_one = true;
                    let msg = buf.split_to(n);
                    if let Some(out) = service.handle(&msg, &flow, now_ms()) {
                        if !reply(out.bytes) {
                            break 'read;
                        }
                    }
                }
                Frame::NeedMore if !eof => break,
                Frame::NeedMore if buf.iter().all(|b| b.is_ascii_whitespace()) => break 'read,
                broken @ (Frame::NeedMore | Frame::Broken(_)) => {
                    // Answer what can be answered, then close: the stream has lost its
                    // framing (or the peer closed mid-message).
                    let status = if let Frame::Broken(s) = broken {
                        s
                    } else {
                        400
                    };
                    if let Some(out) = reject_broken(&buf, status, &flow) {
                        reply(out);
                    }
                    buf.advance(buf.len());
                    break 'read;
                }
            }
        }
        if eof {
            break;
        }
    }
    // A TCP/TLS phone's binding outlives the connection: it is reached by connecting
    // to its Contact again. (WebSocket bindings die with their connection.)
    connections.close(id);
    service.connection_closed(id, now_ms());
    super::finish_writer(writer_task).await;
}

fn reject_broken(buf: &[u8], status: u16, flow: &Flow) -> Option<Vec<u8>> {
    let scan = crate::sip::scan::scan_lenient(buf).ok()?;
    if scan.start_line.starts_with("SIP/") || scan.first("Via").is_none() {
        return None;
    }
    let reason = if status == 513 {
        "Message Too Large"
    } else {
        "Bad Request Framing"
    };
    Some(
        crate::sip::ResponseBuilder::new(
            &scan,
            status,
            reason,
            Some(&crate::sip::response::stateless_tag(&scan)),
            Some(flow.remote),
        )
        .finish(b"", None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_content_length_is_too_large_not_an_overflow() {
        let msg = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert!(matches!(frame(msg, 65535), Frame::Broken(513)));
    }
}
