//! How a queue picks whom to ring: each strategy is a plain function over the operators
//! that are ready now. Penalty tiers are applied before (see [`tier`]); weighted random is
//! the one strategy that uses penalties itself instead of tiers.

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every ready operator at once; the first to answer takes the call.
    RingAll,
    /// The operator idle the longest since their last call (or since becoming ready).
    LongestIdle,
    /// The next member after the one offered last, in member order.
    RoundRobin,
    /// The fewest answered calls today.
    FewestCalls,
    /// The least talk time today.
    LeastTalkTime,
    Random,
    /// Always the first ready member in member order (top-down).
    Linear,
    /// Random, a lower penalty weighing more (weight 1 / (1 + penalty)); no tiers.
    WeightedRandom,
}

impl Strategy {
    pub const ALL: [Strategy; 8] = [
        Strategy::RingAll,
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::LeastTalkTime,
        Strategy::Random,
        Strategy::Linear,
        Strategy::WeightedRandom,
    ];

    /// Whether penalty tiers apply (all but weighted random, which weighs penalties).
    pub fn uses_tiers(self) -> bool {
        self != Strategy::WeightedRandom
    }
}

/// A ready member as the strategies see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index of the member in the queue's member list (its fixed order).
    pub member: usize,
    pub penalty: u32,
    /// Since when the operator has had nothing to do (end of last call or ready).
    pub idle_since: u64,
    pub calls_today: u32,
    pub talk_ms_today: u64,
}

/// Members to ring, as indexes into the member list. Empty only when `ready` is empty.
/// `last` is the round-robin memory: the member offered last.
pub fn select(
    strategy: Strategy,
    ready: &[Candidate],
    last: Option<usize>,
    rng: &mut impl Rng,
) -> Vec<usize> {
    if ready.is_empty() {
        return Vec::new();
    }
    let by_member = |c: &&Candidate| c.member;
    let pick = match strategy {
        Strategy::RingAll => return ready.iter().map(|c| c.member).collect(),
        Strategy::LongestIdle => ready.iter().min_by_key(|c| (c.idle_since, c.member)),
        Strategy::RoundRobin => {
            let after = last.map_or(0, |l| l + 1);
            ready
                .iter()
                .filter(|c| c.member >= after)
                .min_by_key(by_member)
                .or_else(|| ready.iter().min_by_key(by_member))
        }
        Strategy::FewestCalls => ready.iter().min_by_key(|c| (c.calls_today, c.member)),
        Strategy::LeastTalkTime => ready.iter().min_by_key(|c| (c.talk_ms_today, c.member)),
        Strategy::Random => ready.get(rng.gen_range(0..ready.len())),
        Strategy::Linear => ready.iter().min_by_key(by_member),
        Strategy::WeightedRandom => {
            let weight = |c: &Candidate| 1.0 / (1.0 + f64::from(c.penalty));
            let total: f64 = ready.iter().map(weight).sum();
            let mut x = rng.gen_range(0.0..total);
            ready
                .iter()
                .find(|c| {
                    x -= weight(c);
                    x < 0.0
                })
                .or(ready.last())
        }
    };
    pick.map(|c| vec![c.member]).unwrap_or_default()
}

/// Penalty tiers: of the ready candidates, those of the lowest penalty among the tiers the
/// caller may reach. With `step_ms`, the caller reaches one more tier (counting the
/// queue's distinct penalties upwards) per `step_ms` waited; without it, every tier.
pub fn tier(
    ready: Vec<Candidate>,
    penalties: &[u32],
    waited_ms: u64,
    step_ms: Option<u64>,
) -> Vec<Candidate> {
    let reachable = match step_ms {
        Some(step) if step > 0 => {
            let mut tiers: Vec<u32> = penalties.to_vec();
            tiers.sort_unstable();
            tiers.dedup();
            let n = (waited_ms / step) as usize;
            tiers.get(n).or(tiers.last()).copied().unwrap_or(u32::MAX)
        }
        _ => u32::MAX,
    };
    let Some(lowest) = ready
        .iter()
        .map(|c| c.penalty)
        .filter(|p| *p <= reachable)
        .min()
    else {
        return Vec::new();
    };
    ready.into_iter().filter(|c| c.penalty == lowest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn c(member: usize, penalty: u32, idle_since: u64, calls: u32, talk: u64) -> Candidate {
        Candidate {
            member,
            penalty,
            idle_since,
            calls_today: calls,
            talk_ms_today: talk,
        }
    }

    #[test]
    fn each_strategy_picks_by_its_own_measure() {
        let ready = [
            c(0, 0, 500, 3, 9_000),
            c(2, 0, 100, 5, 1_000),
            c(3, 0, 300, 1, 5_000),
        ];
        let mut rng = StdRng::seed_from_u64(7);
        let mut pick = |s, last| select(s, &ready, last, &mut rng);
        assert_eq!(pick(Strategy::RingAll, None), [0, 2, 3]);
        assert_eq!(pick(Strategy::LongestIdle, None), [2]);
        assert_eq!(pick(Strategy::FewestCalls, None), [3]);
        assert_eq!(pick(Strategy::LeastTalkTime, None), [2]);
        assert_eq!(pick(Strategy::Linear, None), [0]);
        assert_eq!(pick(Strategy::RoundRobin, None), [0]);
        assert_eq!(pick(Strategy::RoundRobin, Some(0)), [2]);
        assert_eq!(pick(Strategy::RoundRobin, Some(2)), [3]);
        assert_eq!(pick(Strategy::RoundRobin, Some(3)), [0], "wraps around");
        assert_eq!(
            pick(Strategy::RoundRobin, Some(1)),
            [2],
            "skips who is busy"
        );
    }

    #[test]
    fn random_strategies_spread_and_weigh_penalties() {
        let ready = [c(0, 0, 0, 0, 0), c(1, 0, 0, 0, 0), c(2, 9, 0, 0, 0)];
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0u32; 3];
        for _ in 0..3_000 {
            counts[select(Strategy::Random, &ready, None, &mut rng)[0]] += 1;
        }
        assert!(counts.iter().all(|n| (800..1200).contains(n)), "{counts:?}");
        let mut counts = [0u32; 3];
        for _ in 0..3_000 {
            counts[select(Strategy::WeightedRandom, &ready, None, &mut rng)[0]] += 1;
        }
        // Weights 1 : 1 : 0.1.
        assert!(counts[2] < 250 && counts[0] > 1_200, "{counts:?}");
    }

    #[test]
    fn higher_tiers_only_when_lower_ones_have_nobody_ready() {
        let penalties = [0, 0, 1, 2];
        let ready = vec![c(2, 1, 0, 0, 0), c(3, 2, 0, 0, 0)];
        let members = |v: Vec<Candidate>| v.iter().map(|c| c.member).collect::<Vec<_>>();
        assert_eq!(members(tier(ready.clone(), &penalties, 0, None)), [2]);
        // With a 10 s step the caller reaches tier 1 only after 10 s of waiting.
        assert!(tier(ready.clone(), &penalties, 9_999, Some(10_000)).is_empty());
        assert_eq!(
            members(tier(ready.clone(), &penalties, 10_000, Some(10_000))),
            [2]
        );
        let with_lower = vec![c(0, 0, 0, 0, 0), c(2, 1, 0, 0, 0)];
        assert_eq!(members(tier(with_lower, &penalties, 0, None)), [0]);
    }
}
