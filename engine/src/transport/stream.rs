//! Stream transports (TCP, TLS): framing by Content-Length, one reader and one writer task
//! per connection; responses and later requests go through the connection's queue.

use super::{Connections, Flow, OpenConnection, Transport};
use crate::clock::now_ms;
use crate::service::SipService;
use bytes::{Buf, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What every stream connection shares.
pub struct StreamContext {
    pub service: Arc<SipService>,
    pub connections: Arc<Connections>,
    pub max_message: usize,
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
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(remote);
        let (ctx, tls) = (ctx.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => run(stream, Transport::Tcp, remote, local, ctx).await,
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => run(s, Transport::Tls, remote, local, ctx).await,
                    Err(e) => tracing::debug!(error = %e, %remote, "tls handshake failed"),
                },
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
    let total = lead + end + 4 + length;
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
    ctx: Arc<StreamContext>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let StreamContext {
        service,
        connections,
        max_message,
    } = &*ctx;
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
    'read: loop {
        let eof = tokio::select! {
            read = reader.read_buf(&mut buf) => matches!(read, Ok(0) | Err(_)),
            // The peer let its answers pile up: it is not reading.
            _ = close.notified() => break 'read,
        };
        loop {
            match frame(&buf, max_message) {
                Frame::Message(n) => {
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
    // What was queued goes out if the peer takes it soon; one that stopped reading does
    // not keep the task (and its socket) alive.
    let mut writer_task = writer_task;
    if tokio::time::timeout(WRITER_GRACE, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}

/// How long a closing connection's writer may take to flush what was queued.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

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
