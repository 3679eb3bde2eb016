//! Shard placement: which shard a pod belongs to, and which spawner owns which shard.

/// Stable FNV-1a hash of the pod key; the same on every machine and release.
pub fn shard_of(tenant: &str, pod_id: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes().chain([0u8]).chain(pod_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let shards = u64::from(shards.max(1));
    // Fits in u32 because shards is a u32.
    u32::try_from(h % shards).unwrap_or(0)
}

/// Spreads `shards` over the live `members` as evenly as possible (sizes differ by at most
/// one). Every member computes the same answer from the same member list.
pub fn assign_shards(members: &[String], shards: u32) -> Vec<(u32, String)> {
    let mut sorted: Vec<&String> = members.iter().collect();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Vec::new();
    }
    (0..shards).map(|k| (k, sorted[k as usize % sorted.len()].clone())).collect()
}

/// The shards `me` should own given the live members.
pub fn shards_for(me: &str, members: &[String], shards: u32) -> Vec<u32> {
    assign_shards(members, shards).into_iter().filter(|(_, m)| m == me).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shard_is_stable() {
        assert_eq!(shard_of("dev", "mypod", 16), shard_of("dev", "mypod", 16));
        assert!(shard_of("dev", "mypod", 16) < 16);
        assert_eq!(shard_of("dev", "x", 0), 0);
    }

    proptest! {
        #[test]
        fn every_shard_has_exactly_one_owner_and_load_is_even(
            members in proptest::collection::vec("[a-z]{1,6}", 1..8), shards in 1u32..64
        ) {
            let plan = assign_shards(&members, shards);
            prop_assert_eq!(plan.len(), shards as usize);
            let mut uniq = members.clone();
            uniq.sort();
            uniq.dedup();
            let counts: Vec<usize> = uniq.iter().map(|m| shards_for(m, &members, shards).len()).collect();
            let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1);
            prop_assert_eq!(counts.iter().sum::<usize>(), shards as usize);
        }

        #[test]
        fn shard_in_range(t in ".{0,10}", p in ".{0,10}", s in 1u32..1000) {
            prop_assert!(shard_of(&t, &p, s) < s);
        }
    }
}
