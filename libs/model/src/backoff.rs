//! Retry delays: exponential with a cap, deterministic (jitter is added by callers that
//! have a random source).

/// Delay before retry `attempt` (1-based): `base * 2^(attempt-1)`, capped at `max`.
pub fn delay_ms(attempt: u32, base_ms: u64, max_ms: u64) -> u64 {
    let exp = attempt.saturating_sub(1).min(32);
    base_ms.saturating_mul(1u64 << exp).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases = [
            (1, 100, 1000, 100),
            (2, 100, 1000, 200),
            (3, 100, 1000, 400),
            (5, 100, 1000, 1000),
            (80, 100, 1000, 1000),
            (0, 100, 1000, 100),
        ];
        for (attempt, base, max, want) in cases {
            assert_eq!(delay_ms(attempt, base, max), want, "attempt {attempt}");
        }
    }

    proptest! {
        #[test]
        fn monotone_and_capped(a in 0u32..100, base in 1u64..10_000, max in 1u64..1_000_000) {
            prop_assert!(delay_ms(a, base, max) <= max);
            prop_assert!(delay_ms(a, base, max) <= delay_ms(a + 1, base, max));
        }
    }
}
