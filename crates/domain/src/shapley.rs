//! SHAPLEY (SPEC §4b): channel-level Shapley values of a conversion-rate game over the MARKOV
//! paths, computed over every coalition (no sampling), and a conversion's weights from them.
//!
//! Players are the channels on the paths (at most 16, so 2^16 coalitions). v(S) is the share of
//! converting paths among the paths whose channel set lies within S (0 when there is none);
//! φ(c) = Σ_{S ⊆ N∖{c}} |S|!(n−|S|−1)!/n! · (v(S ∪ {c}) − v(S)). The path counts per coalition
//! are exact integers (a subset-sum transform); the values are real numbers, like MARKOV's
//! removal effects, and Σφ = v(N) up to rounding.

use std::collections::HashMap;

/// (channel, φ) of the channels on the paths, by channel.
pub type ChannelValues = Vec<(String, f64)>;

/// The largest number of channels an exact Shapley game is computed over.
pub const MAX_PLAYERS: usize = 16;

/// The Shapley value of each of `n` channels for `paths`, each the bit set of its channels
/// (bit i: channel i) and whether it converted. None when `n` exceeds `MAX_PLAYERS`.
pub fn shapley_values(paths: &[(u32, bool)], n: usize) -> Option<Vec<f64>> {
    let counted: Vec<(u32, u64, u64)> = paths
        .iter()
        .map(|(mask, conv)| (*mask, 1, u64::from(*conv)))
        .collect();
    shapley_of_counts(&counted, n)
}

/// `shapley_values` over counted paths: (channel bit set, paths, converting paths).
pub fn shapley_of_counts(paths: &[(u32, u64, u64)], n: usize) -> Option<Vec<f64>> {
    if n > MAX_PLAYERS {
        return None;
    }
    let size = 1usize << n;
    let mut all = vec![0u64; size];
    let mut converted = vec![0u64; size];
    for (mask, count, conv) in paths {
        let m = *mask as usize;
        debug_assert!(m < size, "a path names a channel beyond the {n} players");
        if m == 0 || m >= size {
            continue;
        }
        all[m] += count;
        converted[m] += conv;
    }
    // Paths whose set lies within each coalition: sum over subsets, one channel at a time.
    for i in 0..n {
        let bit = 1usize << i;
        for m in 0..size {
            if m & bit != 0 {
                all[m] += all[m ^ bit];
                converted[m] += converted[m ^ bit];
            }
        }
    }
    let v = |m: usize| {
        if all[m] == 0 {
            0.0
        } else {
            converted[m] as f64 / all[m] as f64
        }
    };
    // |S|!(n−|S|−1)!/n!, exact in f64 for n ≤ 16 (16! < 2^53).
    let factorial = |k: usize| (1..=k).map(|x| x as f64).product::<f64>();
    let weight: Vec<f64> = (0..n)
        .map(|s| factorial(s) * factorial(n - s - 1) / factorial(n))
        .collect();
    Some(
        (0..n)
            .map(|c| {
                let bit = 1usize << c;
                (0..size)
                    .filter(|m| m & bit == 0)
                    .map(|m| weight[m.count_ones() as usize] * (v(m | bit) - v(m)))
                    .sum()
            })
            .collect(),
    )
}

/// A conversion's weights: each channel on its touches gets max(φ, 0) normalised over those
/// channels (equal shares when they are all 0), spread equally over that channel's touches.
/// `channel_of` maps each touch's campaign to its channel's φ index; a campaign it does not
/// know is a channel of its own with φ = 0.
pub fn weights(touch_campaigns: &[i64], channel_of: &HashMap<i64, usize>, phi: &[f64]) -> Vec<f64> {
    // A known channel by index, an unknown campaign by its id: never merged.
    let group = |c: &i64| channel_of.get(c).map_or(Err(*c), |i| Ok(*i));
    let mut on: Vec<Result<usize, i64>> = touch_campaigns.iter().map(group).collect();
    on.sort_unstable();
    on.dedup();
    let value = |g: Result<usize, i64>| {
        g.ok()
            .and_then(|i| phi.get(i))
            .copied()
            .unwrap_or(0.0)
            .max(0.0)
    };
    let total: f64 = on.iter().map(|g| value(*g)).sum();
    let share = |g: Result<usize, i64>| {
        if total > 0.0 {
            value(g) / total
        } else {
            1.0 / on.len() as f64
        }
    };
    touch_campaigns
        .iter()
        .map(|c| {
            let g = group(c);
            let count = touch_campaigns.iter().filter(|d| group(d) == g).count() as f64;
            share(g) / count
        })
        .collect()
}

/// The Shapley game of some paths, encoded in the map the reports carry a data-driven model's
/// figures in: for each campaign id c, `c` → φ of its channel and `−c` → that channel's index
/// (campaign ids are positive). Also the φ of each channel on the paths, by name. Channels are
/// the campaigns' (`channel_of`); one on no path has φ = 0. More than `MAX_PLAYERS` channels on
/// the paths: an error naming them.
pub fn effects(
    paths: &[crate::markov::Path],
    channel_of: &HashMap<i64, String>,
) -> Result<(HashMap<i64, f64>, ChannelValues), String> {
    let mut sets = PathSets::default();
    for p in paths {
        sets.add(p, 1);
    }
    sets.effects(channel_of)
}

/// The paths of a Shapley game as counts per set of campaigns (a path taken as the set of its
/// campaigns), so a lead's changed path can be taken back and counted in again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSets {
    /// Sorted distinct campaigns → (paths, converting paths).
    counts: HashMap<Vec<i64>, (i64, i64)>,
}

impl PathSets {
    /// Counts a path in (`sign` 1) or takes it back (−1).
    pub fn add(&mut self, path: &crate::markov::Path, sign: i32) {
        let mut set = path.campaigns.clone();
        set.sort_unstable();
        set.dedup();
        if set.is_empty() {
            return;
        }
        let entry = self.counts.entry(set).or_insert((0, 0));
        entry.0 += i64::from(sign);
        if path.converted {
            entry.1 += i64::from(sign);
        }
    }

    /// The game's encoded figures and the channels' values, as `effects`.
    pub fn effects(
        &self,
        channel_of: &HashMap<i64, String>,
    ) -> Result<(HashMap<i64, f64>, ChannelValues), String> {
        effects_of_sets(
            self.counts
                .iter()
                .filter(|(_, (n, _))| *n > 0)
                .map(|(set, (n, c))| (set.as_slice(), *n, *c)),
            channel_of,
        )
    }
}

fn effects_of_sets<'a>(
    sets: impl Iterator<Item = (&'a [i64], i64, i64)> + Clone,
    channel_of: &HashMap<i64, String>,
) -> Result<(HashMap<i64, f64>, ChannelValues), String> {
    // The campaigns on the paths, then their channels: one lookup per distinct campaign.
    let mut on_paths: std::collections::HashSet<i64> = std::collections::HashSet::new();
    for (set, ..) in sets.clone() {
        on_paths.extend(set.iter().copied());
    }
    let mut players: Vec<&str> = on_paths
        .iter()
        .filter_map(|c| channel_of.get(c).map(String::as_str))
        .collect();
    players.sort_unstable();
    players.dedup();
    if players.len() > MAX_PLAYERS {
        return Err(format!(
            "SHAPLEY is computed exactly over at most {MAX_PLAYERS} channels; the period's paths have {}",
            players.len()
        ));
    }
    let player_of: HashMap<i64, usize> = on_paths
        .iter()
        .filter_map(|c| {
            let channel = channel_of.get(c)?;
            Some((*c, players.binary_search(&channel.as_str()).ok()?))
        })
        .collect();
    let games: Vec<(u32, u64, u64)> = sets
        .map(|(set, n, converted)| {
            let mask = set
                .iter()
                .filter_map(|c| player_of.get(c))
                .fold(0u32, |m, i| m | (1 << i));
            (mask, n.unsigned_abs(), converted.unsigned_abs())
        })
        .collect();
    let phi = shapley_of_counts(&games, players.len()).unwrap_or_default();
    // Channels on no path get indices after the players, with φ = 0.
    let mut others: Vec<&str> = channel_of
        .values()
        .map(String::as_str)
        .filter(|ch| players.binary_search(ch).is_err())
        .collect();
    others.sort_unstable();
    others.dedup();
    let mut encoded = HashMap::new();
    for (campaign, channel) in channel_of {
        let index = match players.binary_search(&channel.as_str()) {
            Ok(i) => i,
            Err(_) => players.len() + others.binary_search(&channel.as_str()).unwrap_or(0),
        };
        encoded.insert(*campaign, phi.get(index).copied().unwrap_or(0.0));
        encoded.insert(-*campaign, index as f64);
    }
    let values = players
        .iter()
        .zip(&phi)
        .map(|(ch, v)| (ch.to_string(), *v))
        .collect();
    Ok((encoded, values))
}

/// `weights` for touches, from the map `effects` encodes.
pub fn encoded_weights(
    touches: &[crate::attribution::Touch],
    encoded: &HashMap<i64, f64>,
) -> Vec<f64> {
    let campaigns: Vec<i64> = touches.iter().map(|t| t.campaign_id).collect();
    let mut channel_of = HashMap::new();
    let mut phi: Vec<f64> = Vec::new();
    for c in &campaigns {
        if let (Some(index), Some(value)) = (encoded.get(&-*c), encoded.get(c)) {
            let index = *index as usize;
            if phi.len() <= index {
                phi.resize(index + 1, 0.0);
            }
            phi[index] = *value;
            channel_of.insert(*c, index);
        }
    }
    weights(&campaigns, &channel_of, &phi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channels A (bit 0), B (bit 1), C (bit 2); paths {A} converting, {A} not, {B} not, {A,B}
    /// converting, {B,C} converting, {C} not.
    ///
    /// v(∅) = 0, v(A) = 1/2, v(B) = 0, v(C) = 0, v(AB) = 2/4, v(AC) = 1/3, v(BC) = 1/3,
    /// v(ABC) = 3/6. Weights for n = 3: |S| = 0 → 1/3, 1 → 1/6, 2 → 1/3.
    /// φ(A) = 1/3·(1/2) + 1/6·(1/2 − 0) + 1/6·(1/3 − 0) + 1/3·(1/2 − 1/3) = 13/36
    /// φ(B) = 1/3·0 + 1/6·(1/2 − 1/2) + 1/6·(1/3 − 0) + 1/3·(1/2 − 1/3) = 4/36
    /// φ(C) = 1/3·0 + 1/6·(1/3 − 1/2) + 1/6·(1/3 − 0) + 1/3·(1/2 − 1/2) = 1/36
    /// and Σφ = 18/36 = v(N).
    #[test]
    fn a_three_channel_game_worked_by_hand() {
        let paths = [
            (0b001, true),
            (0b001, false),
            (0b010, false),
            (0b011, true),
            (0b110, true),
            (0b100, false),
        ];
        let phi = shapley_values(&paths, 3).unwrap_or_default();
        let expected = [13.0 / 36.0, 4.0 / 36.0, 1.0 / 36.0];
        for (got, want) in phi.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{phi:?}");
        }
        assert!((phi.iter().sum::<f64>() - 0.5).abs() < 1e-15);
    }

    #[test]
    fn a_value_may_be_negative_and_a_conversion_ignores_it() {
        // {A} converts, {A,B} does not: B only lowers the rate. v(A) = 1, v(B) = 0, v(AB) = 1/2.
        // φ(A) = 1/2·1 + 1/2·(1/2 − 0) = 3/4; φ(B) = 1/2·0 + 1/2·(1/2 − 1) = −1/4.
        let phi = shapley_values(&[(0b01, true), (0b11, false)], 2).unwrap_or_default();
        assert!(
            (phi[0] - 0.75).abs() < 1e-15 && (phi[1] + 0.25).abs() < 1e-15,
            "{phi:?}"
        );
        // Campaigns 10 and 11 are channel A, 20 channel B: A's share spread over its two touches.
        let channel_of = HashMap::from([(10, 0), (11, 0), (20, 1)]);
        assert_eq!(
            weights(&[10, 20, 11], &channel_of, &phi),
            vec![0.5, 0.0, 0.5]
        );
        // All non-positive: equal shares per channel.
        assert_eq!(weights(&[20, 20], &channel_of, &phi), vec![0.5, 0.5]);
    }

    #[test]
    fn sixteen_channels_are_exact_and_seventeen_refused() {
        let paths: Vec<(u32, bool)> = (1..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) & 0xFFFF | 1, i % 7 == 0))
            .collect();
        let phi = shapley_values(&paths, 16).unwrap_or_default();
        let all = paths.len() as f64;
        let converted = paths.iter().filter(|p| p.1).count() as f64;
        assert!((phi.iter().sum::<f64>() - converted / all).abs() < 1e-12);
        assert!(shapley_values(&paths, 17).is_none());
    }
}

#[cfg(test)]
mod encoded {
    use super::*;
    use crate::markov::Path;

    #[test]
    fn the_encoded_game_gives_the_same_weights() {
        // Campaigns 1, 2 are channel "a"; 3 is "b"; 4 is "c"; 5 is "d" (on no path).
        let channel_of: HashMap<i64, String> = [(1, "a"), (2, "a"), (3, "b"), (4, "c"), (5, "d")]
            .into_iter()
            .map(|(c, ch)| (c, ch.to_string()))
            .collect();
        let path = |cs: &[i64], converted| Path {
            campaigns: cs.to_vec(),
            converted,
        };
        let paths = [
            path(&[1], true),
            path(&[2], false),
            path(&[3], false),
            path(&[1, 3], true),
            path(&[3, 4], true),
            path(&[4], false),
        ];
        let (encoded, values) = effects(&paths, &channel_of).unwrap_or_default();
        let names: Vec<&str> = values.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!((values[0].1 - 13.0 / 36.0).abs() < 1e-15);
        assert_eq!(encoded.get(&5), Some(&0.0));
        let touch = |id: i64, c: i64| crate::attribution::Touch {
            id,
            external_id: id.to_string().into(),
            campaign_id: c,
            at: chrono::DateTime::UNIX_EPOCH,
        };
        // a (two campaigns, one channel) and b: 13/17 spread over a's two touches, 4/17 to b.
        let w = encoded_weights(&[touch(1, 1), touch(2, 2), touch(3, 3)], &encoded);
        assert!(
            (w[0] - 13.0 / 34.0).abs() < 1e-12
                && (w[1] - 13.0 / 34.0).abs() < 1e-12
                && (w[2] - 4.0 / 17.0).abs() < 1e-12,
            "{w:?}"
        );
        // Only the off-path channel and an unknown campaign: equal shares, never merged.
        let w = encoded_weights(&[touch(1, 5), touch(2, 99)], &encoded);
        assert_eq!(w, vec![0.5, 0.5]);
        // Seventeen channels on the paths are refused.
        let many: HashMap<i64, String> = (1..=17).map(|c| (c, format!("ch{c}"))).collect();
        let paths: Vec<Path> = (1..=17).map(|c| path(&[c], c % 2 == 0)).collect();
        assert!(effects(&paths, &many).is_err());
    }
}
