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

/// The absorbing chain: transient states 0 = START, 1..=k the campaigns.
struct Chain {
    campaigns: Vec<i64>,
    /// I − Q, n × n with n = k + 1.
    a: faer::Mat<f64>,
    /// One-step conversion probabilities.
    r: Vec<f64>,
}

/// The counts a chain is made of, from paths that can also be taken back (a lead's path
/// changed): of a first-order chain (SPEC §4), dense, solved by one LU; or of order 2 or 3
/// (SPEC §4b), sparse, solved block by block (`higher`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainCounts {
    First(FirstOrder),
    Higher(crate::markov_higher::HigherOrder),
}

impl Default for ChainCounts {
    fn default() -> Self {
        ChainCounts::First(FirstOrder::default())
    }
}

/// The highest MARKOV order (SPEC §4b).
pub const MAX_ORDER: u8 = 3;

impl ChainCounts {
    /// No paths yet, of a chain of `order` (1 ..= `MAX_ORDER`; anything else is order 1's
    /// caller's mistake and counted as the nearest order).
    pub fn new(order: u8) -> ChainCounts {
        match order {
            0 | 1 => ChainCounts::default(),
            k => ChainCounts::Higher(crate::markov_higher::HigherOrder::new(k.min(MAX_ORDER))),
        }
    }

    /// The first-order chain of some paths.
    pub fn of(paths: &[Path]) -> ChainCounts {
        ChainCounts::of_order(paths, 1)
    }

    pub fn of_order(paths: &[Path], order: u8) -> ChainCounts {
        let mut counts = ChainCounts::new(order);
        for p in paths {
            counts.add(p, 1);
        }
        counts
    }

    /// Counts a path in (`sign` 1) or takes it back (−1).
    pub fn add(&mut self, path: &Path, sign: i32) {
        match self {
            ChainCounts::First(c) => c.add(path, sign),
            ChainCounts::Higher(c) => c.add(path, sign),
        }
    }

    /// The removal effect RE(c) of every campaign on the paths (0 for all when nothing
    /// converts).
    pub fn removal_effects(&self) -> HashMap<i64, f64> {
        match self {
            ChainCounts::First(c) => c.removal_effects(),
            ChainCounts::Higher(c) => c.removal_effects(),
        }
    }
}

/// The counts of a first-order chain: steps between states, steps to CONVERSION, every step
/// out of a state and the visits of each campaign (the chain's states are the campaigns
/// visited). Dense over every campaign ever seen, slot 0 being START: 4 bytes per pair of
/// campaigns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstOrder {
    /// The campaign of each slot (slot 0, START, has none: 0).
    campaigns: Vec<i64>,
    slot_of: HashMap<i64, usize>,
    /// Slots the arrays below are laid out for.
    capacity: usize,
    /// `steps[from * capacity + to]`.
    steps: Vec<u32>,
    to_conversion: Vec<u32>,
    out: Vec<u32>,
    visits: Vec<u32>,
}

impl FirstOrder {
    fn slot(&mut self, campaign: i64) -> usize {
        if let Some(s) = self.slot_of.get(&campaign) {
            return *s;
        }
        if self.campaigns.is_empty() {
            self.campaigns.push(0);
        }
        let slot = self.campaigns.len();
        self.campaigns.push(campaign);
        self.slot_of.insert(campaign, slot);
        if slot >= self.capacity {
            // Grow by doubling, moving each row to its new place.
            let capacity = (2 * self.capacity).max(slot + 1).max(16);
            let mut steps = vec![0u32; capacity * capacity];
            for row in 0..self.capacity {
                let from = &self.steps[row * self.capacity..(row + 1) * self.capacity];
                steps[row * capacity..row * capacity + self.capacity].copy_from_slice(from);
            }
            self.steps = steps;
            self.to_conversion.resize(capacity, 0);
            self.out.resize(capacity, 0);
            self.visits.resize(capacity, 0);
            self.capacity = capacity;
        }
        slot
    }

    /// Counts a path in (`sign` 1) or takes it back (−1).
    pub fn add(&mut self, path: &Path, sign: i32) {
        if path.campaigns.is_empty() {
            return;
        }
        let bump = |n: &mut u32| *n = n.saturating_add_signed(sign);
        let mut from = 0usize;
        for c in &path.campaigns {
            let to = self.slot(*c);
            bump(&mut self.steps[from * self.capacity + to]);
            bump(&mut self.out[from]);
            bump(&mut self.visits[to]);
            from = to;
        }
        if path.converted {
            bump(&mut self.to_conversion[from]);
        }
        bump(&mut self.out[from]);
    }

    /// The chain of the campaigns visited, in campaign order.
    fn chain(&self) -> Chain {
        let mut visited: Vec<(i64, usize)> = (1..self.campaigns.len())
            .filter(|s| self.visits[*s] > 0)
            .map(|s| (self.campaigns[s], s))
            .collect();
        visited.sort_unstable();
        let n = visited.len() + 1;
        // Chain state i is slot slots[i].
        let slots: Vec<usize> = std::iter::once(0)
            .chain(visited.iter().map(|v| v.1))
            .collect();
        let mut a = faer::Mat::<f64>::zeros(n, n);
        let mut r = vec![0.0f64; n];
        for (i, from) in slots.iter().enumerate() {
            // No slot at all when no path was ever counted.
            let out = f64::from(self.out.get(*from).copied().unwrap_or(0));
            if out > 0.0 {
                let counts = &self.steps[from * self.capacity..(from + 1) * self.capacity];
                for (j, to) in slots.iter().enumerate() {
                    let count = counts[*to];
                    if count > 0 {
                        a[(i, j)] = -f64::from(count) / out;
                    }
                }
                r[i] = f64::from(self.to_conversion[*from]) / out;
            }
            a[(i, i)] += 1.0;
        }
        Chain {
            campaigns: visited.into_iter().map(|v| v.0).collect(),
            a,
            r,
        }
    }

    /// The removal effect RE(c) of every campaign visited (see `removal_effects`).
    pub fn removal_effects(&self) -> HashMap<i64, f64> {
        solve(self.chain())
    }
}

/// The removal effect RE(c) of every campaign on the paths (0 for all when nothing converts).
///
/// One LU factorisation of I − Q (faer's blocked partial-pivoting LU, P·A = L·U) serves
/// everything; N = (I − Q)⁻¹ = U⁻¹·L⁻¹·P is never formed. From the two triangular inverses
/// (computed side by side on two threads): x = N r (P(conversion) = x[START]), the row
/// N[START][·] and the diagonal N[c][c], each entry a dot product, for the hitting
/// probabilities h(c) = N[START][c] / N[c][c]; then P(conversion without c) = x[START] −
/// h(c)·x(c) for every campaign without refactorising. That is 4/3·n³ flops where a full
/// inverse takes 2·n³.
pub fn removal_effects(paths: &[Path]) -> HashMap<i64, f64> {
    ChainCounts::of(paths).removal_effects()
}

/// The removal effects of the chain of `order` (SPEC §4b).
pub fn removal_effects_of_order(paths: &[Path], order: u8) -> HashMap<i64, f64> {
    ChainCounts::of_order(paths, order).removal_effects()
}

fn solve(chain: Chain) -> HashMap<i64, f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
    use faer::linalg::triangular_inverse::{invert_unit_lower_triangular, invert_upper_triangular};
    use faer::Par;
    let Chain { campaigns, a, r } = chain;
    let n = campaigns.len() + 1;
    let mut result: HashMap<i64, f64> = campaigns.iter().map(|c| (*c, 0.0)).collect();
    if r.iter().all(|x| *x == 0.0) {
        return result;
    }
    let mut lu = a;
    let mut forward = vec![0usize; n];
    let mut backward = vec![0usize; n];
    lu_in_place(
        lu.as_mut(),
        &mut forward,
        &mut backward,
        Par::Seq,
        MemStack::new(&mut MemBuffer::new(lu_in_place_scratch::<usize, f64>(
            n,
            n,
            Par::Seq,
            Default::default(),
        ))),
        Default::default(),
    );
    // Row i of P·A is row forward[i] of A. L⁻¹ (unit lower) and U⁻¹ (upper), apart.
    let mut li = faer::Mat::<f64>::zeros(n, n);
    let mut ui = faer::Mat::<f64>::zeros(n, n);
    std::thread::scope(|s| {
        let lower = s.spawn(|| invert_unit_lower_triangular(li.as_mut(), lu.as_ref(), Par::Seq));
        invert_upper_triangular(ui.as_mut(), lu.as_ref(), Par::Seq);
        lower
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
    });
    let l = |k: usize, j: usize| match k.cmp(&j) {
        std::cmp::Ordering::Less => 0.0,
        std::cmp::Ordering::Equal => 1.0,
        std::cmp::Ordering::Greater => li[(k, j)],
    };
    // M = U⁻¹·L⁻¹ and N = M·P: N[i][j] = M[i][backward[j]].
    let m = |i: usize, j: usize| (i.max(j)..n).map(|k| ui[(i, k)] * l(k, j)).sum::<f64>();
    // x = U⁻¹·(L⁻¹·(P·r)).
    let pr: Vec<f64> = forward.iter().map(|f| r[*f]).collect();
    let lr: Vec<f64> = (0..n)
        .map(|k| (0..=k).map(|j| l(k, j) * pr[j]).sum())
        .collect();
    let x: Vec<f64> = (0..n)
        .map(|i| (i..n).map(|k| ui[(i, k)] * lr[k]).sum())
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
        let diagonal = m(s, backward[s]);
        let hit = if diagonal > 0.0 {
            m(0, backward[s]) / diagonal
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
    let mut counts = FirstOrder::default();
    for p in paths {
        counts.add(p, 1);
    }
    let Chain { campaigns, a, r } = counts.chain();
    let n = campaigns.len() + 1;
    let mut result: HashMap<i64, f64> = campaigns.iter().map(|c| (*c, 0.0)).collect();
    if r.iter().all(|x| *x == 0.0) {
        return result;
    }
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| a[(i, j)]).collect())
        .collect();
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

    /// The 5-channel first-order transition matrix printed in the public notebook
    /// `Attribution_Markov_Chain.ipynb` (GitHub: Iskriyana/attribution-markov-chains), rounded
    /// there to 6 decimals; its removal effects are Facebook 0.354760, Paid Search 0.331104,
    /// Instagram 0.217314, Online Video 0.206914, Online Display 0.154355 and P(conversion)
    /// 0.0734627, which the solver reproduces to 1e-5.
    #[test]
    fn the_published_five_channel_matrix() {
        // States: START, then campaigns 1 Online Video, 2 Paid Search, 3 Facebook,
        // 4 Online Display, 5 Instagram. Columns: OV, PS, FB, OD, IG, then CONVERSION.
        let rows: [[f64; 6]; 6] = [
            [0.142361, 0.317399, 0.278408, 0.142644, 0.119188, 0.0],
            [0.0, 0.047947, 0.059323, 0.018920, 0.031908, 0.078146],
            [0.029221, 0.0, 0.064442, 0.048053, 0.034196, 0.053309],
            [0.025577, 0.050655, 0.0, 0.024352, 0.173072, 0.053220],
            [0.017299, 0.092386, 0.053986, 0.0, 0.029363, 0.050324],
            [0.024118, 0.045809, 0.218777, 0.023531, 0.0, 0.057979],
        ];
        let n = 6;
        let mut a = faer::Mat::<f64>::zeros(n, n);
        let mut r = vec![0.0; n];
        for (i, row) in rows.iter().enumerate() {
            a[(i, i)] = 1.0;
            for (j, q) in row[..5].iter().enumerate() {
                a[(i, j + 1)] -= q;
            }
            r[i] = row[5];
        }
        // P(conversion) = x[START] with (I − Q) x = r, by the reference inversion.
        let dense: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| a[(i, j)]).collect())
            .collect();
        let fundamental = invert(dense).unwrap_or_default();
        let p: f64 = (0..n).map(|j| fundamental[0][j] * r[j]).sum();
        assert!((p - 0.0734627).abs() < 1e-5, "P(conversion) {p}");
        let re = solve(Chain {
            campaigns: vec![1, 2, 3, 4, 5],
            a,
            r,
        });
        for (campaign, published) in [
            (3, 0.354760),
            (2, 0.331104),
            (5, 0.217314),
            (1, 0.206914),
            (4, 0.154355),
        ] {
            assert!(
                (re[&campaign] - published).abs() < 1e-5,
                "{campaign}: {} vs {published}",
                re[&campaign]
            );
        }
    }

    #[test]
    fn the_lu_solver_agrees_with_the_gauss_jordan_one_on_random_chains() {
        let mut below = xorshift();
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

    #[test]
    fn no_paths_no_effects() {
        assert!(removal_effects(&[]).is_empty());
        let mut counts = ChainCounts::of(&[path(&[5], true)]);
        counts.add(&path(&[5], true), -1);
        assert!(counts.removal_effects().is_empty());
    }

    #[test]
    fn a_path_taken_back_leaves_the_chain_of_the_others() {
        let paths = [
            path(&[1, 2, 3], true),
            path(&[1], false),
            path(&[2, 3], false),
            path(&[40, 2], true),
        ];
        let mut counts = ChainCounts::of(&paths);
        for extra in [
            path(&[3, 1, 2], true),
            path(&[70], false),
            path(&[2, 70, 3], true),
        ] {
            counts.add(&extra, 1);
        }
        assert_ne!(counts.removal_effects(), removal_effects(&paths));
        for extra in [
            path(&[70], false),
            path(&[3, 1, 2], true),
            path(&[2, 70, 3], true),
        ] {
            counts.add(&extra, -1);
        }
        // Campaign 70 is no state any more; the effects are the same numbers.
        assert_eq!(counts.removal_effects(), removal_effects(&paths));
    }

    /// A small xorshift drawing below n, so a failure can be replayed from its seed.
    fn xorshift() -> impl FnMut(u64) -> u64 {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        }
    }

    /// `cargo test -p funnelgraph-domain --release -- --ignored --nocapture markov_timing`
    #[test]
    #[ignore]
    fn markov_timing() {
        let mut below = xorshift();
        let n = 2000u64;
        let paths: Vec<Path> = (0..125_000)
            .map(|_| {
                let len = 1 + below(9);
                Path {
                    campaigns: collapse((0..len).map(|_| ((below(n) * below(n)) / n) as i64)),
                    converted: below(5) == 0,
                }
            })
            .collect();
        let counts = ChainCounts::of(&paths);
        let t = std::time::Instant::now();
        let re = counts.removal_effects();
        eprintln!("solve: {:?} for {} campaigns", t.elapsed(), re.len());
    }
}
