//! Overload control at the door: how long datagrams waited in the kernel before SIP read
//! them tells how far behind kolokol is. While that wait is over the limit, new calls are
//! refused at once with 503 and Retry-After — before authentication, routing or media —
//! and everything belonging to calls already accepted is served as usual, so the calls
//! kept stay healthy and the backlog drains by itself.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Admission {
    /// Smoothed wait of the datagrams read lately, in microseconds.
    wait_us: AtomicU64,
    /// Above this smoothed wait new calls are refused; 0: never.
    limit_us: u64,
}

impl Admission {
    pub fn new(limit_ms: u64) -> Self {
        Admission {
            wait_us: AtomicU64::new(0),
            limit_us: limit_ms * 1000,
        }
    }

    /// One datagram waited `wait_us` between the kernel receiving it and SIP reading it.
    /// An exponential average over about the last 16 keeps one late packet from
    /// tripping the door, and follows a building backlog within a few milliseconds.
    pub fn observe(&self, wait_us: u64) {
        let old = self.wait_us.load(Ordering::Relaxed);
        let new = old - old / 16 + wait_us / 16;
        self.wait_us.store(new, Ordering::Relaxed);
    }

    pub fn wait_us(&self) -> u64 {
        self.wait_us.load(Ordering::Relaxed)
    }

    /// Whether a new call should be refused now.
    pub fn overloaded(&self) -> bool {
        self.limit_us > 0 && self.wait_us() > self.limit_us
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_closes_the_door_and_draining_it_opens_it() {
        let a = Admission::new(50);
        for _ in 0..1000 {
            a.observe(200);
        }
        assert!(!a.overloaded(), "a fraction of a millisecond is no backlog");
        // One late datagram is not overload.
        a.observe(400_000);
        assert!(!a.overloaded());
        // A backlog that persists is.
        for _ in 0..32 {
            a.observe(200_000);
        }
        assert!(a.overloaded());
        // Once datagrams are read as they come the door opens again.
        for _ in 0..64 {
            a.observe(100);
        }
        assert!(!a.overloaded());
    }

    #[test]
    fn a_zero_limit_never_refuses() {
        let a = Admission::new(0);
        for _ in 0..100 {
            a.observe(10_000_000);
        }
        assert!(!a.overloaded());
    }
}
