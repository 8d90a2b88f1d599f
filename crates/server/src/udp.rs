//! Batched UDP receive: one `recvmmsg` call takes up to [`BATCH`] datagrams, each with the
//! kernel's receive timestamp (SO_TIMESTAMPNS), so the receive loop knows how long every
//! datagram waited in the socket queue — the signal for overload shedding — and pays one
//! system call per batch instead of one per datagram.

use std::net::SocketAddr;
use std::time::Duration;

/// Datagrams taken per system call.
pub const BATCH: usize = 16;
/// Largest datagram received whole (a larger one is cut and answered 513 by the core).
const SLOT: usize = 65536;

/// Reusable buffers for [`recv_batch`].
pub struct RecvBatch {
    bufs: Vec<u8>,
    pub(crate) meta: Vec<Received>,
    #[cfg(target_os = "linux")]
    sys: linux::Sys,
}

/// One datagram of a batch: its length in the batch's buffer, sender and time in queue.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub len: usize,
    pub remote: SocketAddr,
    /// How long the datagram waited in the kernel's queue (zero when unknown).
    pub queued: Duration,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![0; BATCH * SLOT],
            meta: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            sys: linux::Sys::default(),
        }
    }
}

impl RecvBatch {
    /// The payload of datagram `i` of the last batch.
    pub fn data(&self, i: usize) -> &[u8] {
        &self.bufs[i * SLOT..i * SLOT + self.meta[i].len]
    }
}

/// Asks the kernel to timestamp received datagrams (read back by [`recv_batch`]).
pub fn enable_timestamps(sock: &socket2::Socket) {
    #[cfg(target_os = "linux")]
    linux::enable_timestamps(sock);
    #[cfg(not(target_os = "linux"))]
    let _ = sock;
}

/// Receives what is queued on `sock` (at most [`BATCH`] datagrams) without blocking;
/// `WouldBlock` when nothing is.
pub fn recv_batch(sock: &tokio::net::UdpSocket, b: &mut RecvBatch) -> std::io::Result<usize> {
    b.meta.clear();
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // through try_io, so tokio clears the socket's readiness on WouldBlock
        sock.try_io(tokio::io::Interest::READABLE, || {
            linux::recv(sock.as_raw_fd(), b)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (len, remote) = sock.try_recv_from(&mut b.bufs[..SLOT])?;
        b.meta.push(Received {
            len,
            remote,
            queued: Duration::ZERO,
        });
        Ok(1)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::{Received, RecvBatch, BATCH, SLOT};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Room for one SCM_TIMESTAMPNS control message (and slack), 8-byte aligned.
    const CONTROL: usize = 64;

    pub struct Sys {
        names: Box<[libc::sockaddr_storage; BATCH]>,
        control: Box<[[u64; CONTROL / 8]; BATCH]>,
    }

    impl Default for Sys {
        fn default() -> Self {
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            let zero: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            Sys {
                names: Box::new([zero; BATCH]),
                control: Box::new([[0; CONTROL / 8]; BATCH]),
            }
        }
    }

    pub fn enable_timestamps(sock: &socket2::Socket) {
        let on: libc::c_int = 1;
        // SAFETY: a valid socket and a c_int option value of the right size.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                &on as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            tracing::debug!("SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        }
    }

    pub fn recv(fd: i32, b: &mut RecvBatch) -> std::io::Result<usize> {
        // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below points into
        // buffers owned by `b`, which outlive the call.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let base = b.bufs.as_mut_ptr();
        for i in 0..BATCH {
            iov[i] = libc::iovec {
                iov_base: unsafe { base.add(i * SLOT) } as *mut libc::c_void,
                iov_len: SLOT,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = &mut b.sys.names[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_control = b.sys.control[i].as_mut_ptr() as *mut libc::c_void;
            h.msg_controllen = CONTROL as _;
        }
        // SAFETY: hdrs describes BATCH valid, writable buffers.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        for h in hdrs.iter().take(n as usize) {
            // slot i holds datagram i; one without an address (never on UDP) reads as empty
            let (len, remote) = match sockaddr(&h.msg_hdr) {
                Some(a) => ((h.msg_len as usize).min(SLOT), a),
                None => (0, SocketAddr::from(([0, 0, 0, 0], 0))),
            };
            let queued = timestamp(&h.msg_hdr)
                .map(|t| now.saturating_sub(t))
                .unwrap_or_default();
            b.meta.push(Received {
                len,
                remote,
                queued,
            });
        }
        Ok(b.meta.len())
    }

    fn sockaddr(h: &libc::msghdr) -> Option<SocketAddr> {
        // SAFETY: msg_name points at a sockaddr_storage the kernel filled for its family.
        unsafe {
            let ss = &*(h.msg_name as *const libc::sockaddr_storage);
            match ss.ss_family as i32 {
                libc::AF_INET => {
                    let a = &*(h.msg_name as *const libc::sockaddr_in);
                    Some(SocketAddr::V4(SocketAddrV4::new(
                        u32::from_be(a.sin_addr.s_addr).into(),
                        u16::from_be(a.sin_port),
                    )))
                }
                libc::AF_INET6 => {
                    let a = &*(h.msg_name as *const libc::sockaddr_in6);
                    Some(SocketAddr::V6(SocketAddrV6::new(
                        a.sin6_addr.s6_addr.into(),
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )))
                }
                _ => None,
            }
        }
    }

    /// The SCM_TIMESTAMPNS receive time (wall clock since the epoch), if present.
    fn timestamp(h: &libc::msghdr) -> Option<Duration> {
        // SAFETY: the CMSG_* walk stays within msg_control/msg_controllen set by the kernel.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    return Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batch_receives_each_datagram_with_sender_and_queue_time() {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        std_sock.set_nonblocking(true).unwrap();
        let s2 = socket2::Socket::from(std_sock);
        enable_timestamps(&s2);
        let rx = tokio::net::UdpSocket::from_std(s2.into()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let sent = std::time::Instant::now();
        for i in 0..20u8 {
            tx.send_to(&[b'a' + i; 3], to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
        let mut b = RecvBatch::default();
        let mut got = vec![];
        loop {
            rx.readable().await.unwrap();
            match recv_batch(&rx, &mut b) {
                Ok(n) => {
                    for i in 0..n {
                        assert_eq!(b.meta[i].remote, tx.local_addr().unwrap());
                        // stamped by the kernel when it reached the socket: after it was
                        // sent (usually at once; later when the machine is loaded)
                        let q = b.meta[i].queued;
                        assert!(
                            q > Duration::ZERO && q <= sent.elapsed() + Duration::from_millis(2),
                            "{q:?}"
                        );
                        got.push(b.data(i).to_vec());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() == 20 {
                break;
            }
        }
        assert_eq!(got[0], b"aaa");
        assert_eq!(got[19], [b'a' + 19; 3]);
    }
}
