//! Receiving every datagram queued on a socket with one system call (`recvmmsg`).
//!
//! A relay socket carries one packet per 20 ms, so a batch is usually one packet; the gain is
//! that a short batch proves the queue empty, so the edge-triggered poll needs no extra
//! `recvfrom` that ends in `EAGAIN` — one receive call per packet instead of two. Linux
//! only, like the rest of kolokol's deployment.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Largest datagram we relay; anything bigger is not G.711 RTP.
pub(super) const MAX_DATAGRAM: usize = 2048;
/// Datagrams taken per call.
pub(super) const BATCH: usize = 8;

/// Buffers for one batch, allocated once per worker and reused for every packet.
pub(super) struct RecvBatch {
    buffers: Box<[[u8; MAX_DATAGRAM]; BATCH]>,
    sources: [Option<SocketAddr>; BATCH],
    lens: [usize; BATCH],
}

impl RecvBatch {
    pub(super) fn new() -> RecvBatch {
        RecvBatch {
            buffers: Box::new([[0; MAX_DATAGRAM]; BATCH]),
            sources: [None; BATCH],
            lens: [0; BATCH],
        }
    }

    /// Datagram `i` of the last batch and where it came from (`None` for an address family
    /// we do not relay).
    pub(super) fn packet(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>) {
        (&mut self.buffers[i][..self.lens[i]], self.sources[i])
    }

    /// Receives up to [`BATCH`] datagrams without blocking; `Ok(n < BATCH)` means the queue
    /// was empty when the call returned. `WouldBlock` when nothing was queued.
    pub(super) fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // SAFETY: every pointer handed to recvmmsg points into `self` or these locals, all
        // alive and exclusively borrowed for the duration of the call; the lengths passed are
        // the real sizes of those buffers.
        unsafe {
            let mut names: [libc::sockaddr_storage; BATCH] = std::mem::zeroed();
            let mut iovecs: [libc::iovec; BATCH] = std::mem::zeroed();
            let mut headers: [libc::mmsghdr; BATCH] = std::mem::zeroed();
            for i in 0..BATCH {
                iovecs[i].iov_base = self.buffers[i].as_mut_ptr().cast();
                iovecs[i].iov_len = MAX_DATAGRAM;
                let header = &mut headers[i].msg_hdr;
                header.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
                header.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
                header.msg_iov = &mut iovecs[i];
                header.msg_iovlen = 1;
            }
            let n = libc::recvmmsg(
                socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            );
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            for i in 0..n {
                let truncated = headers[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                // A truncated datagram is too big to be ours: hand on an empty packet, which
                // the relay drops as malformed.
                self.lens[i] = if truncated {
                    0
                } else {
                    headers[i].msg_len as usize
                };
                self.sources[i] = socket_addr(&names[i]);
            }
            Ok(n)
        }
    }
}

fn socket_addr(name: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match name.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in for AF_INET; sockaddr_storage is large
            // and aligned enough for it.
            let v4 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn a_batch_takes_every_queued_datagram_and_its_source() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_nonblocking(true).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(
            batch.receive(&receiver).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for i in 0..3u8 {
            sender
                .send_to(&[i; 20], receiver.local_addr().unwrap())
                .unwrap();
        }
        // Loopback delivers synchronously, so all three are queued.
        assert_eq!(batch.receive(&receiver).unwrap(), 3);
        for i in 0..3 {
            let (packet, source) = batch.packet(i);
            assert_eq!(packet, &[i as u8; 20][..]);
            assert_eq!(source, Some(sender.local_addr().unwrap()));
        }
        let big = vec![7u8; MAX_DATAGRAM + 100];
        sender
            .send_to(&big, receiver.local_addr().unwrap())
            .unwrap();
        assert_eq!(batch.receive(&receiver).unwrap(), 1);
        assert!(
            batch.packet(0).0.is_empty(),
            "an oversized datagram is emptied"
        );
    }
}
