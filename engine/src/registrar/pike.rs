//! Bans source addresses that keep failing authentication (the idea of Kamailio's pike,
//! counted on failures so that a busy but honest PBX behind one address is never banned).
//! Keyed by anything: source addresses, connections, web logins.

use dashmap::DashMap;
use std::hash::Hash;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct PikeConfig {
    /// Failures tolerated within `window_ms`; one more bans the source.
    pub max_failures: u32,
    pub window_ms: u64,
    pub ban_ms: u64,
}

impl Default for PikeConfig {
    fn default() -> Self {
        PikeConfig {
            max_failures: 16,
            window_ms: 2_000,
            ban_ms: 300_000,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Record {
    window_start_ms: u64,
    failures: u32,
    banned_until_ms: u64,
}

/// What recording a failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Counted,
    /// This failure crossed the threshold: the source is banned from now on.
    Banned,
}

pub struct Pike<K: Hash + Eq = IpAddr> {
    config: PikeConfig,
    sources: DashMap<K, Record>,
}

impl<K: Hash + Eq> Pike<K> {
    pub fn new(config: PikeConfig) -> Self {
        Pike {
            config,
            sources: DashMap::new(),
        }
    }

    pub fn is_banned(&self, key: &K, now_ms: u64) -> bool {
        // Most sources never failed: a read lookup and no allocation on the hot path.
        self.banned_until(key, now_ms).is_some()
    }

    /// When the key's ban ends, if it is banned now.
    pub fn banned_until(&self, key: &K, now_ms: u64) -> Option<u64> {
        self.sources
            .get(key)
            .map(|r| r.banned_until_ms)
            .filter(|until| *until > now_ms)
    }

    pub fn record_failure(&self, key: K, now_ms: u64) -> Verdict {
        let mut r = self.sources.entry(key).or_default();
        if now_ms.saturating_sub(r.window_start_ms) >= self.config.window_ms {
            r.window_start_ms = now_ms;
            r.failures = 0;
        }
        r.failures += 1;
        if r.failures > self.config.max_failures && r.banned_until_ms <= now_ms {
            r.banned_until_ms = now_ms + self.config.ban_ms;
            return Verdict::Banned;
        }
        Verdict::Counted
    }

    /// Forgets the key's failures (a connection that closed, a login that succeeded).
    pub fn forget(&self, key: &K) {
        self.sources.remove(key);
    }

    /// Forgets sources whose window and ban are both over.
    pub fn sweep(&self, now_ms: u64) {
        let window = self.config.window_ms;
        self.sources.retain(|_, r| {
            r.banned_until_ms > now_ms || now_ms.saturating_sub(r.window_start_ms) < window
        });
    }

    pub fn banned_count(&self, now_ms: u64) -> usize {
        self.sources
            .iter()
            .filter(|r| r.banned_until_ms > now_ms)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn bans_after_the_threshold_within_the_window_and_lifts_later() {
        let pike = Pike::new(PikeConfig::default());
        for i in 0..16 {
            assert_eq!(pike.record_failure(IP, 1_000 + i * 10), Verdict::Counted);
        }
        assert!(!pike.is_banned(&IP, 1_200));
        assert_eq!(pike.record_failure(IP, 1_200), Verdict::Banned);
        assert!(pike.is_banned(&IP, 1_201));
        assert!(pike.is_banned(&IP, 1_200 + 299_999));
        assert!(!pike.is_banned(&IP, 1_200 + 300_000));
    }

    #[test]
    fn slow_failures_never_ban() {
        let pike = Pike::new(PikeConfig::default());
        for i in 0..100 {
            assert_eq!(pike.record_failure(IP, i * 500), Verdict::Counted);
        }
        assert!(!pike.is_banned(&IP, 50_000));
        pike.sweep(1_000_000);
        assert_eq!(pike.sources.len(), 0);
    }
}
