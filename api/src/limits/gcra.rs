//! GCRA: the decision of one check, in process and as the Redis script that mirrors it.

/// The answer of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the burst after this one.
    pub remaining: u64,
    /// Milliseconds until a denied request would be allowed (0 when allowed).
    pub retry_ms: u64,
    /// Milliseconds until the budget is whole again.
    pub reset_ms: u64,
}

/// GCRA over a stored theoretical arrival time `tat` (ms): returns the decision and the new
/// `tat` (unchanged when denied). `interval` = ms per request, `burst` = requests at once.
#[must_use]
pub fn gcra(tat: Option<u64>, now: u64, interval: u64, burst: u64) -> (Decision, u64) {
    let tat = tat.unwrap_or(now).max(now);
    let allow_at = (tat + interval).saturating_sub(burst * interval);
    if now < allow_at {
        let decision = Decision {
            allowed: false,
            remaining: 0,
            retry_ms: allow_at - now,
            reset_ms: tat - now,
        };
        return (decision, tat);
    }
    let new_tat = tat + interval;
    let decision = Decision {
        allowed: true,
        remaining: (now + burst * interval).saturating_sub(new_tat) / interval,
        retry_ms: 0,
        reset_ms: new_tat - now,
    };
    (decision, new_tat)
}

/// The same GCRA as [`gcra`], on Redis' clock. KEYS[1] the client's key; ARGV interval, burst.
pub(super) const GCRA: &str = r"
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
return {1, math.floor((now + burst * interval - new_tat) / interval), 0, new_tat - now}
";

#[cfg(test)]
mod tests {
    use super::gcra;

    #[test]
    fn a_burst_then_one_per_interval_and_the_right_waits() {
        // 3 per minute: 20 s apart, 3 at once.
        let (interval, burst) = (20_000, 3);
        let mut tat = None;
        let mut remaining = Vec::new();
        for _ in 0..3 {
            let (d, t) = gcra(tat, 1_000, interval, burst);
            assert!(d.allowed);
            remaining.push(d.remaining);
            tat = Some(t);
        }
        assert_eq!(remaining, [2, 1, 0]);
        let (d, t) = gcra(tat, 1_000, interval, burst);
        assert_eq!((d.allowed, d.retry_ms, d.reset_ms), (false, 20_000, 60_000));
        assert_eq!(Some(t), tat, "a denied request spends nothing");
        // 20 s later exactly one more is allowed.
        let (d, t) = gcra(tat, 21_000, interval, burst);
        assert_eq!((d.allowed, d.remaining), (true, 0));
        let (d, _) = gcra(Some(t), 21_000, interval, burst);
        assert!(!d.allowed);
        // After a full minute idle the whole burst is back.
        let (d, _) = gcra(Some(t), 200_000, interval, burst);
        assert_eq!((d.allowed, d.remaining), (true, 2));
    }
}
