//! SIP over WebSocket (RFC 7118): one SIP message per text or binary frame.

use crate::AppState;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use kolokol_engine::clock::now_ms;
use kolokol_engine::transport::{Flow, OpenConnection, Transport};
use std::net::SocketAddr;

pub async fn upgrade(
    ws: WebSocketUpgrade,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    State(st): State<AppState>,
    transport: Transport,
) -> Response {
    if !st.guard.origin_allowed(&headers) {
        return foreign_origin();
    }
    // Behind a trusted reverse proxy the browser's own address is what failures count
    // against, not the proxy's (which would ban every browser at once).
    let remote = SocketAddr::new(st.guard.client_ip(peer, &headers), peer.port());
    ws.protocols(["sip"])
        .max_message_size(st.max_message)
        .on_upgrade(move |socket| session(socket, remote, st, transport))
}

/// The answer to a WebSocket upgrade from another site's page.
pub fn foreign_origin() -> Response {
    crate::Problem::new(
        axum::http::StatusCode::FORBIDDEN,
        "Forbidden",
        "this origin may not open kolokol's WebSockets (http.allowed_origins)",
    )
    .into_response()
}

async fn session(socket: WebSocket, remote: SocketAddr, st: AppState, transport: Transport) {
    let (mut sink, mut stream) = socket.split();
    let OpenConnection {
        id,
        outbound: mut rx,
        close,
    } = st.connections.open();
    let local: SocketAddr = ([0, 0, 0, 0], 0).into();
    let flow = Flow {
        transport,
        remote,
        local,
        connection: Some(id),
    };
    let keepalive = st.ws_keepalive;
    let writer = tokio::spawn(async move {
        // Pings keep NATs open and prove the browser is there (it answers with pongs).
        let mut ping = tokio::time::interval(keepalive);
        loop {
            let message = tokio::select! {
                bytes = rx.recv() => match bytes {
                    Some(bytes) => Message::Text(String::from_utf8_lossy(&bytes).into_owned().into()),
                    None => break,
                },
                _ = ping.tick() => Message::Ping(Bytes::new()),
            };
            if sink.send(message).await.is_err() {
                break;
            }
        }
    });
    // A client silent for three ping periods is gone (a closed laptop, a lost network):
    // it is dropped like a closed socket, so the operator shows offline at once.
    loop {
        let msg = tokio::select! {
            biased;
            // Closed from outside: its send queue overflowed, or it failed auth too often.
            _ = close.notified() => break,
            msg = tokio::time::timeout(keepalive * 3, stream.next()) => match msg {
                Ok(Some(Ok(msg))) => msg,
                _ => break,
            },
        };
        let data: Vec<u8> = match msg {
            Message::Text(t) => t.as_bytes().to_vec(),
            Message::Binary(b) => b.to_vec(),
            Message::Close(_) => break,
            _ => continue,
        };
        if let Some(out) = st.sip.handle(&data, &flow, now_ms()) {
            if !st.connections.send(id, Bytes::from(out.bytes)) {
                break;
            }
        }
    }
    st.connections.close(id);
    st.sip.registrar.location.connection_closed(id);
    st.sip.connection_closed(id, now_ms());
    kolokol_engine::transport::finish_writer(writer).await;
}
