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
    let timestamps = kernel_timestamps(&socket);
    receive_buffer(&socket, RECEIVE_BUFFER);
    loop {
        let (len, remote, received) = match recv_stamped(&socket, &mut buf, timestamps) {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on Linux.
                tracing::trace!(error = %e, "udp recv error");
                continue;
            }
        };
        if let Some(received) = received {
            let waited = std::time::SystemTime::now()
                .duration_since(received)
                .unwrap_or_default();
            service.admission.observe(waited.as_micros() as u64);
        }
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

/// The socket's receive buffer. The kernel's default (~200 KB, ~160 datagrams) drops
/// whatever arrives in a spike — the ACKs and BYEs of calls already taken as much as new
/// INVITEs — and the drops come back as retransmissions. A larger buffer keeps them, and
/// the wait they build is what closes the door to new calls.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;

/// Sets the receive buffer: past `net.core.rmem_max` when allowed (SO_RCVBUFFORCE, root
/// or CAP_NET_ADMIN), else as far as the limit lets.
fn receive_buffer(socket: &UdpSocket, bytes: libc::c_int) {
    let _ = set_option(socket, libc::SO_RCVBUFFORCE, bytes)
        || set_option(socket, libc::SO_RCVBUF, bytes);
}

/// Asks the kernel to stamp each datagram with its arrival time (SO_TIMESTAMPNS), the
/// overload signal; false where it cannot (then nothing is measured).
fn kernel_timestamps(socket: &UdpSocket) -> bool {
    set_option(socket, libc::SO_TIMESTAMPNS, 1)
}

/// One integer SOL_SOCKET option; whether the kernel took it.
fn set_option(socket: &UdpSocket, option: libc::c_int, value: libc::c_int) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            &value as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// `recv_from`, plus when the kernel received the datagram (with `stamped`).
fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    stamped: bool,
) -> std::io::Result<(usize, std::net::SocketAddr, Option<std::time::SystemTime>)> {
    if !stamped {
        let (n, from) = socket.recv_from(buf)?;
        return Ok((n, from, None));
    }
    use std::os::fd::AsRawFd;
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // Room for one timespec control message, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; every pointer in it refers to a live buffer above.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &mut addr as *mut libc::sockaddr_storage as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: a valid descriptor and a msghdr whose buffers outlive the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let from = sockaddr_to_std(&addr).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "unknown address family")
    })?;
    let mut received = None;
    // SAFETY: walking the control messages the kernel wrote into `control`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                received = Some(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32),
                );
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, from, received))
}

fn sockaddr_to_std(addr: &libc::sockaddr_storage) -> Option<std::net::SocketAddr> {
    match addr.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in) };
            Some(std::net::SocketAddr::from((
                u32::from_be(a.sin_addr.s_addr).to_be_bytes(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(addr as *const _ as *const libc::sockaddr_in6) };
            Some(std::net::SocketAddr::V6(std::net::SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
