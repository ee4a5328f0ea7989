//! The MARKOV model's removal effects (SPEC §4), solved exactly from the absorbing chain.
//!
//! States: START, one per campaign, CONVERSION, NULL. Removing campaign c redirects its
//! inbound transitions to NULL, so the paths that still convert are exactly those that never
//! visit c: P(conv without c) = P(conv) − h(c)·x(c), where h(c) is the probability of ever
//! visiting c from START and x(c) the probability of converting from c. With N = (I − Q)⁻¹
//! the fundamental matrix over the transient states, h(c) = N[START][c] / N[c][c], and x
//! solves (I − Q)x = r (r the one-step conversion probabilities). One inversion serves every
//! campaign; nothing is simulated.

use std::collections::HashMap;

/// A lead's campaign path (consecutive repeats collapsed) and whether it converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub campaigns: Vec<i64>,
    pub converted: bool,
}

/// Collapses consecutive repeats: [a, a, b, a] → [a, b, a].
pub fn collapse(campaigns: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for c in campaigns {
        if out.last() != Some(&c) {
            out.push(c);
        }
    }
    out
}

/// The absorbing chain of some paths: transient states 0 = START, 1..=k the campaigns.
struct Chain {
    campaigns: Vec<i64>,
    /// I − Q, row-major, n × n with n = k + 1.
    a: Vec<f64>,
    /// One-step conversion probabilities.
    r: Vec<f64>,
}

fn chain(paths: &[Path]) -> Chain {
    let mut campaigns: Vec<i64> = paths
        .iter()
        .flat_map(|p| p.campaigns.iter().copied())
        .collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    let n = campaigns.len() + 1;
    let index: HashMap<i64, usize> = campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| (*c, i + 1))
        .collect();
    // Counts to transient states, to CONVERSION, and of every step out of a state.
    let mut counts = vec![0.0f64; n * n];
    let mut to_conversion = vec![0.0f64; n];
    let mut out_count = vec![0.0f64; n];
    for path in paths.iter().filter(|p| !p.campaigns.is_empty()) {
        let mut from = 0usize;
        for c in &path.campaigns {
            let to = index[c];
            counts[from * n + to] += 1.0;
            out_count[from] += 1.0;
            from = to;
        }
        if path.converted {
            to_conversion[from] += 1.0;
        }
        out_count[from] += 1.0;
    }
    let mut a = counts;
    let mut r = vec![0.0f64; n];
    for i in 0..n {
        let row = &mut a[i * n..(i + 1) * n];
        if out_count[i] > 0.0 {
            for v in row.iter_mut() {
                *v = -*v / out_count[i];
            }
            r[i] = to_conversion[i] / out_count[i];
        }
        row[i] += 1.0;
    }
    Chain { campaigns, a, r }
}

/// The removal effect RE(c) of every campaign on the paths (0 for all when nothing converts).
///
/// One LU factorisation of I − Q (faer's blocked partial-pivoting LU) serves everything:
/// x = N r (P(conversion) = x[START]), and N = (I − Q)⁻¹ from the same factors for the hitting
/// probabilities h(c) = N[START][c] / N[c][c]; then P(conversion without c) = x[START] −
/// h(c)·x(c) for every campaign without refactorising.
pub fn removal_effects(paths: &[Path]) -> HashMap<i64, f64> {
    use faer::linalg::solvers::DenseSolveCore;
    let Chain { campaigns, a, r } = chain(paths);
    let n = campaigns.len() + 1;
    let mut result: HashMap<i64, f64> = campaigns.iter().map(|c| (*c, 0.0)).collect();
    if r.iter().all(|x| *x == 0.0) {
        return result;
    }
    let matrix = faer::Mat::<f64>::from_fn(n, n, |i, j| a[i * n + j]);
    let fundamental = matrix.partial_piv_lu().inverse();
    let x: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| fundamental[(i, j)] * r[j]).sum())
        .collect();
    if x.iter().any(|v| !v.is_finite()) {
        return result;
    }
    let p_conversion = x[0];
    if p_conversion <= 0.0 {
        return result;
    }
    for (i, c) in campaigns.iter().enumerate() {
        let s = i + 1;
        let hit = if fundamental[(s, s)] > 0.0 {
            fundamental[(0, s)] / fundamental[(s, s)]
        } else {
            0.0
        };
        let without = (p_conversion - hit * x[s]).max(0.0);
        result.insert(*c, (1.0 - without / p_conversion).clamp(0.0, 1.0));
    }
    result
}

/// The removal effects by the first solver (a dense Gauss-Jordan inversion): the reference
/// the LU solver is checked against.
#[cfg(test)]
fn removal_effects_by_gauss_jordan(paths: &[Path]) -> HashMap<i64, f64> {
    let Chain { campaigns, a, r } = chain(paths);
    let n = campaigns.len() + 1;
    let mut result: HashMap<i64, f64> = campaigns.iter().map(|c| (*c, 0.0)).collect();
    if r.iter().all(|x| *x == 0.0) {
        return result;
    }
    let rows: Vec<Vec<f64>> = (0..n).map(|i| a[i * n..(i + 1) * n].to_vec()).collect();
    let Some(fundamental) = invert(rows) else {
        return result;
    };
    let x: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| fundamental[i][j] * r[j]).sum())
        .collect();
    let p_conversion = x[0];
    if p_conversion <= 0.0 {
        return result;
    }
    for (i, c) in campaigns.iter().enumerate() {
        let s = i + 1;
        let hit = if fundamental[s][s] > 0.0 {
            fundamental[0][s] / fundamental[s][s]
        } else {
            0.0
        };
        let without = (p_conversion - hit * x[s]).max(0.0);
        result.insert(*c, (1.0 - without / p_conversion).clamp(0.0, 1.0));
    }
    result
}

/// Gauss-Jordan inversion with partial pivoting; None when singular.
#[cfg(test)]
fn invert(mut a: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut inv: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|x, y| a[*x][col].abs().total_cmp(&a[*y][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for j in 0..n {
            a[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col && a[row][col] != 0.0 {
                let f = a[row][col];
                for j in 0..n {
                    a[row][j] -= f * a[col][j];
                    inv[row][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(c: &[i64], converted: bool) -> Path {
        Path {
            campaigns: c.to_vec(),
            converted,
        }
    }

    #[test]
    fn removal_effects_of_a_hand_worked_chain() {
        // Paths: A→B conv, A null, B conv.
        // START→A 2/3, START→B 1/3; A→B 1/2, A→NULL 1/2; B→CONV 1.
        // P(conv) = 2/3·1/2·1 + 1/3·1 = 2/3.
        // Without A: only START→B→CONV: 1/3 → RE(A) = 1 − (1/3)/(2/3) = 1/2.
        // Without B: nothing converts → RE(B) = 1.
        let re = removal_effects(&[path(&[1, 2], true), path(&[1], false), path(&[2], true)]);
        assert!((re[&1] - 0.5).abs() < 1e-12, "{re:?}");
        assert!((re[&2] - 1.0).abs() < 1e-12, "{re:?}");
    }

    #[test]
    fn revisits_are_counted_once_in_the_hitting_probability() {
        // A→B→A conv, B null. START→A 1/2, START→B 1/2; A→B 1/2, A→CONV 1/2; B→A 1/2, B→NULL 1/2.
        // x_A = 1/2 + 1/2·x_B, x_B = 1/2·x_A → x_A = 2/3, x_B = 1/3; P = 1/2·2/3 + 1/2·1/3 = 1/2.
        // Without A: nothing converts → RE(A) = 1. Without B: START→A→CONV: 1/2·1/2 = 1/4 →
        // RE(B) = 1 − (1/4)/(1/2) = 1/2.
        let re = removal_effects(&[path(&[1, 2, 1], true), path(&[2], false)]);
        assert!((re[&1] - 1.0).abs() < 1e-12, "{re:?}");
        assert!((re[&2] - 0.5).abs() < 1e-12, "{re:?}");
    }

    #[test]
    fn nothing_converting_gives_zero_effects() {
        let re = removal_effects(&[path(&[1, 2], false)]);
        assert_eq!(re[&1], 0.0);
        assert_eq!(re[&2], 0.0);
    }

    #[test]
    fn the_published_toy_example() {
        // C1→C2→C3 converts; C1 and C2→C3 do not. Removal effects 0.5, 1, 1; shares 0.2, 0.4, 0.4.
        let re = removal_effects(&[
            path(&[1, 2, 3], true),
            path(&[1], false),
            path(&[2, 3], false),
        ]);
        assert!((re[&1] - 0.5).abs() < 1e-12, "{re:?}");
        assert!((re[&2] - 1.0).abs() < 1e-12, "{re:?}");
        assert!((re[&3] - 1.0).abs() < 1e-12, "{re:?}");
        let total: f64 = re.values().sum();
        let share = |c: i64| re[&c] / total;
        assert!((share(1) - 0.2).abs() < 1e-12);
        assert!((share(2) - 0.4).abs() < 1e-12);
        assert!((share(3) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn the_lu_solver_agrees_with_the_gauss_jordan_one_on_random_chains() {
        // A small xorshift, so a failure can be replayed from its seed.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..40 {
            let campaigns = 2 + below(40) as i64;
            let paths: Vec<Path> = (0..(5 + below(400)))
                .map(|_| {
                    let len = 1 + below(8);
                    Path {
                        campaigns: collapse((0..len).map(|_| below(campaigns as u64) as i64)),
                        converted: below(3) == 0,
                    }
                })
                .collect();
            let lu = removal_effects(&paths);
            let reference = removal_effects_by_gauss_jordan(&paths);
            assert_eq!(lu.len(), reference.len());
            for (c, v) in &reference {
                assert!(
                    (lu[c] - v).abs() < 1e-12,
                    "round {round}, campaign {c}: {} vs {v}",
                    lu[c]
                );
            }
        }
    }

    #[test]
    fn consecutive_repeats_collapse() {
        assert_eq!(collapse([1, 1, 2, 2, 1]), vec![1, 2, 1]);
    }
}
