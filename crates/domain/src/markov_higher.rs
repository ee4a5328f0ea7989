//! MARKOV of order 2 and 3 (SPEC §4b): a state is the last k campaigns of the collapsed path
//! (a shorter prefix until k have been seen), and removing campaign c redirects every
//! transition into a state holding c to NULL.
//!
//! There is a state per distinct run of k campaigns on the paths (hundreds of thousands at
//! `large`), so the chain is counted sparsely and never held as a matrix. It is solved exactly,
//! block by block: the strongly connected components of the state graph, taken sinks first,
//! are the diagonal blocks of I − Q in block-triangular form; a block of one state is one
//! division, a small block a dense elimination, a large one Gauss–Seidel sweeps run until
//! they change nothing at double precision (a solve of the linear system, not a simulation).
//!
//! Removal effects: for campaign c, Δc(s) = P(convert, visiting c | s) is 0 on states that
//! cannot reach c, x(s) (the chain's P(convert | s)) on states holding c, and on the others
//! Δc(s) = Σ q(s, t)·Δc(t). So only the ancestors of c's states are solved, in the same block
//! order, and RE(c) = Δc(START) / x(START). The first state holding c on any trajectory is
//! one whose last campaign is c (a step appends one campaign), so the ancestors are sought
//! from those.

use std::collections::HashMap;

use crate::markov::Path;

/// A state's campaigns, oldest first, padded with `PAD` (START is all `PAD`).
type Key = [i64; 3];
const PAD: i64 = i64::MIN;

/// The counts of a chain of order 2 or 3, from paths that can be taken back (sign −1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HigherOrder {
    order: usize,
    /// State 0 is START.
    keys: Vec<Key>,
    state_of: HashMap<Key, u32>,
    /// Steps between states, by (from, to); a count back to 0 is removed.
    steps: HashMap<(u32, u32), u32>,
    to_conversion: Vec<u32>,
    out: Vec<u32>,
    visits: Vec<u32>,
}

impl HigherOrder {
    pub fn new(order: u8) -> HigherOrder {
        let start = [PAD; 3];
        HigherOrder {
            order: usize::from(order.clamp(1, 3)),
            keys: vec![start],
            state_of: HashMap::from([(start, 0)]),
            steps: HashMap::new(),
            to_conversion: vec![0],
            out: vec![0],
            visits: vec![0],
        }
    }

    fn state(&mut self, key: Key) -> u32 {
        if let Some(s) = self.state_of.get(&key) {
            return *s;
        }
        let s = self.keys.len() as u32;
        self.keys.push(key);
        self.state_of.insert(key, s);
        self.to_conversion.push(0);
        self.out.push(0);
        self.visits.push(0);
        s
    }

    /// Counts a path in (`sign` 1) or takes it back (−1).
    pub fn add(&mut self, path: &Path, sign: i32) {
        if path.campaigns.is_empty() {
            return;
        }
        let bump = |n: &mut u32| *n = n.saturating_add_signed(sign);
        let mut from = 0u32;
        let mut key = [PAD; 3];
        let mut seen = 0usize;
        for c in &path.campaigns {
            if seen < self.order {
                key[seen] = *c;
                seen += 1;
            } else {
                key.copy_within(1..self.order, 0);
                key[self.order - 1] = *c;
            }
            let to = self.state(key);
            let step = self.steps.entry((from, to)).or_insert(0);
            bump(step);
            if *step == 0 {
                self.steps.remove(&(from, to));
            }
            bump(&mut self.out[from as usize]);
            bump(&mut self.visits[to as usize]);
            from = to;
        }
        if path.converted {
            bump(&mut self.to_conversion[from as usize]);
        }
        bump(&mut self.out[from as usize]);
    }

    /// The removal effect of every campaign on the paths.
    pub fn removal_effects(&self) -> HashMap<i64, f64> {
        Graph::of(self).removal_effects()
    }
}

/// A chain laid out to be solved. States are numbered in solving order: the strongly
/// connected components of the state graph sinks first (the diagonal blocks of I − Q in
/// block-triangular form), each block's states contiguous and in the order the search finished
/// them (a state's successors along the search before it). The layout is made from the
/// states in key order and the steps sorted, so two instances with the same counts sum in
/// the same order and agree to the bit.
struct Graph {
    keys: Vec<Key>,
    order: usize,
    /// START's number (the last: it reaches every state).
    start: u32,
    /// Row s: successors `to[row[s]..row[s + 1]]` with probabilities `q[..]`.
    row: Vec<usize>,
    to: Vec<u32>,
    q: Vec<f64>,
    /// One-step conversion probabilities.
    r: Vec<f64>,
    /// Predecessors, for the ancestor search.
    pred_row: Vec<usize>,
    pred: Vec<u32>,
    pred_q: Vec<f64>,
    /// Each state's block, and the first state of each block (`first[b]..first[b + 1]`).
    block: Vec<u32>,
    first: Vec<u32>,
}

/// Blocks up to this many states are eliminated densely; larger ones swept.
const DENSE_BLOCK: usize = 48;

/// Compressed rows from (from, to, value) triples sorted by from.
fn rows_of<T: Copy>(n: usize, edges: &[(u32, u32, T)]) -> (Vec<usize>, Vec<u32>, Vec<T>) {
    let mut row = vec![0usize; n + 1];
    for (from, _, _) in edges {
        row[*from as usize + 1] += 1;
    }
    for i in 0..n {
        row[i + 1] += row[i];
    }
    (
        row,
        edges.iter().map(|e| e.1).collect(),
        edges.iter().map(|e| e.2).collect(),
    )
}

impl Graph {
    fn of(c: &HigherOrder) -> Graph {
        // Canonical numbering first: START, then the states visited in key order.
        let mut live: Vec<u32> = (1..c.keys.len() as u32)
            .filter(|s| c.visits[*s as usize] > 0)
            .collect();
        live.sort_unstable_by_key(|s| c.keys[*s as usize]);
        let mut index = vec![u32::MAX; c.keys.len()];
        index[0] = 0;
        for (i, s) in live.iter().enumerate() {
            index[*s as usize] = i as u32 + 1;
        }
        let old: Vec<u32> = std::iter::once(0).chain(live).collect();
        let n = old.len();
        let mut edges: Vec<(u32, u32, u32)> = c
            .steps
            .iter()
            .filter(|(_, count)| **count > 0)
            .map(|((from, to), count)| (index[*from as usize], index[*to as usize], *count))
            .filter(|(from, to, _)| *from != u32::MAX && *to != u32::MAX)
            .collect();
        edges.sort_unstable();
        let (row, to, _) = rows_of(n, &edges);
        let (members, first) = components(n, &row, &to);
        // Then the solving order: state i of the layout is canonical state members[i].
        let mut place = vec![0u32; n];
        for (i, s) in members.iter().enumerate() {
            place[*s as usize] = i as u32;
        }
        let out = |canonical: u32| f64::from(c.out[old[canonical as usize] as usize]);
        let mut laid: Vec<(u32, u32, f64)> = edges
            .iter()
            .map(|(from, to, count)| {
                (
                    place[*from as usize],
                    place[*to as usize],
                    f64::from(*count) / out(*from),
                )
            })
            .collect();
        laid.sort_unstable_by_key(|(from, to, _)| (*from, *to));
        let (row, to, q) = rows_of(n, &laid);
        let r: Vec<f64> = members
            .iter()
            .map(|canonical| {
                let o = out(*canonical);
                if o > 0.0 {
                    f64::from(c.to_conversion[old[*canonical as usize] as usize]) / o
                } else {
                    0.0
                }
            })
            .collect();
        let mut back: Vec<(u32, u32, f64)> = laid.iter().map(|(f, t, q)| (*t, *f, *q)).collect();
        back.sort_unstable_by_key(|(t, f, _)| (*t, *f));
        let (pred_row, pred, pred_q) = rows_of(n, &back);
        let keys: Vec<Key> = members
            .iter()
            .map(|canonical| c.keys[old[*canonical as usize] as usize])
            .collect();
        let mut block = vec![0u32; n];
        for b in 0..first.len() - 1 {
            for s in first[b]..first[b + 1] {
                block[s as usize] = b as u32;
            }
        }
        Graph {
            keys,
            order: c.order,
            start: place[0],
            row,
            to,
            q,
            r,
            pred_row,
            pred,
            pred_q,
            block,
            first,
        }
    }

    fn holds(&self, s: u32, campaign: i64) -> bool {
        self.keys[s as usize][..self.order].contains(&campaign)
    }

    fn last(&self, s: u32) -> i64 {
        let key = &self.keys[s as usize];
        key[..self.order]
            .iter()
            .rev()
            .find(|c| **c != PAD)
            .copied()
            .unwrap_or(PAD)
    }

    fn states(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.keys.len() as u32).filter(|s| *s != self.start)
    }

    /// P(convert | s) for every state, block by block, sinks first.
    fn conversion(&self) -> Vec<f64> {
        let n = self.keys.len();
        let mut x = vec![0.0f64; n];
        let mut block = Block::default();
        let all: Vec<u32> = (0..n as u32).collect();
        for b in 0..self.first.len() - 1 {
            let states = &all[self.first[b] as usize..self.first[b + 1] as usize];
            block.solve(self, states, &mut x, &|t, x| x[t as usize], &|s| {
                self.r[s as usize]
            });
        }
        x
    }

    fn removal_effects(&self) -> HashMap<i64, f64> {
        let mut campaigns: Vec<i64> = self.states().map(|s| self.last(s)).collect();
        campaigns.sort_unstable();
        campaigns.dedup();
        let mut result: HashMap<i64, f64> = campaigns.iter().map(|c| (*c, 0.0)).collect();
        if self.r.iter().all(|r| *r == 0.0) {
            return result;
        }
        let x = self.conversion();
        let p = x[self.start as usize];
        if !p.is_finite() || p <= 0.0 {
            return result;
        }
        let split = Split::of(self, &x);
        // The states holding c, and those whose last campaign is c, for each c.
        let mut holding: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut entries: HashMap<i64, Vec<u32>> = HashMap::new();
        for s in self.states() {
            entries.entry(self.last(s)).or_default().push(s);
            let key = &self.keys[s as usize][..self.order];
            for (i, c) in key.iter().enumerate() {
                if *c != PAD && !key[..i].contains(c) {
                    holding.entry(*c).or_default().push(s);
                }
            }
        }
        let none = Vec::new();
        let work = |part: &[i64]| -> Vec<(i64, f64)> {
            let mut scratch = Scratch::new(self.keys.len());
            let mut found = Vec::new();
            for batch in part.chunks(LANES) {
                let lanes: Vec<Lane> = batch
                    .iter()
                    .map(|c| Lane {
                        campaign: *c,
                        entries: &entries[c],
                        holding: holding.get(c).unwrap_or(&none),
                    })
                    .collect();
                let through = scratch.through(self, &split, &x, &lanes);
                for (c, t) in batch.iter().zip(through) {
                    found.push((*c, (t / p).clamp(0.0, 1.0)));
                }
            }
            found
        };
        let (left, right) = campaigns.split_at(campaigns.len() / 2);
        let found = if campaigns.len() < 64 {
            work(&campaigns)
        } else {
            std::thread::scope(|s| {
                let other = s.spawn(|| work(right));
                let mut found = work(left);
                found.extend(
                    other
                        .join()
                        .unwrap_or_else(|e| std::panic::resume_unwind(e)),
                );
                found
            })
        };
        for (c, re) in found {
            result.insert(c, re);
        }
        result
    }
}

/// The chain cut at its largest block H (where the paths' cycles meet): U, the states that
/// reach H without being in it (START among them), is left by every trajectory for good once
/// it steps out. What U does is the same for every campaign and is worked out once: each U
/// state's expected visits u(s) from START, its value ŵ(s) = r(s) + Σ over steps out of U of
/// q(s, t)·x(t), and each outside state's inflow ω(t) = Σ over U of u(s)·q(s, t). A campaign
/// then only solves the states outside U that reach it (H at most, and the few after H) and
/// corrects U where it holds c or follows c:
///
/// Δc(START) = Σ_{U ∋ s holds c} u(s)·(ŵ(s) − Bc(s)) + Σ_{t ∉ U} ω(t)·Δc(t)
///           + Σ_{U ∋ p holds c} u(p)·Σ_{U ∋ s free} q(p, s)·φc(s),
///
/// where Bc(s) = Σ over steps out of U of q(s, t)·Δc(t), and φc(s) = ŵ(s) − Bc(s) + Σ over U's
/// free successors of q(s, t)·φc(t) (U's free states after c, solved backwards). It is
/// Δc(START) = x(START) − P(convert without c) with P(convert without c) = Σ over U's free
/// states of their visits not after c times their value without c, expanded so that every
/// term is a non-negative sum of the part that c changes (nothing is cancelled).
struct Split {
    upstream: Vec<bool>,
    u: Vec<f64>,
    what: Vec<f64>,
    omega: Vec<f64>,
    /// H: states `hub..hub_end`, and its steps inside as compressed rows in local numbers.
    hub: usize,
    hub_end: usize,
    hub_row: Vec<usize>,
    hub_to: Vec<u32>,
    hub_q: Vec<f64>,
}

impl Split {
    fn of(g: &Graph, x: &[f64]) -> Split {
        let n = g.keys.len();
        let hub = (0..g.first.len() - 1)
            .max_by_key(|b| (g.first[b + 1] - g.first[*b], std::cmp::Reverse(*b)))
            .unwrap_or(0);
        let mut upstream = vec![false; n];
        let mut seen = vec![false; n];
        let mut stack: Vec<u32> = (g.first[hub]..g.first[hub + 1]).collect();
        for s in &stack {
            seen[*s as usize] = true;
        }
        while let Some(s) = stack.pop() {
            for p in &g.pred[g.pred_row[s as usize]..g.pred_row[s as usize + 1]] {
                if !seen[*p as usize] {
                    seen[*p as usize] = true;
                    upstream[*p as usize] = true;
                    stack.push(*p);
                }
            }
        }
        // Forward: u(s) = [s = START] + Σ q(p, s)·u(p), sources first (the blocks backwards).
        let mut u = vec![0.0f64; n];
        let mut local: Vec<usize> = Vec::new();
        for b in (0..g.first.len() - 1).rev() {
            let (lo, hi) = (g.first[b] as usize, g.first[b + 1] as usize);
            if !upstream[lo] {
                continue;
            }
            let inflow = |s: usize, u: &[f64], inside: bool| -> f64 {
                let mut sum = if s == g.start as usize { 1.0 } else { 0.0 };
                for k in g.pred_row[s]..g.pred_row[s + 1] {
                    let p = g.pred[k] as usize;
                    if !(inside && (lo..hi).contains(&p)) {
                        sum += g.pred_q[k] * u[p];
                    }
                }
                sum
            };
            if hi - lo == 1 {
                u[lo] = inflow(lo, &u, false);
                continue;
            }
            local.clear();
            local.extend(lo..hi);
            let b: Vec<f64> = local.iter().map(|s| inflow(*s, &u, true)).collect();
            let mut inner = Vec::new();
            for (i, s) in local.iter().enumerate() {
                for k in g.pred_row[*s]..g.pred_row[*s + 1] {
                    let p = g.pred[k] as usize;
                    if (lo..hi).contains(&p) {
                        inner.push((i, p - lo, g.pred_q[k]));
                    }
                }
            }
            let values = if hi - lo <= DENSE_BLOCK {
                dense(hi - lo, &inner, &b)
            } else {
                swept(hi - lo, &inner, &b)
            };
            u[lo..hi].copy_from_slice(&values);
        }
        let mut what = vec![0.0f64; n];
        let mut omega = vec![0.0f64; n];
        for s in 0..n {
            if !upstream[s] {
                continue;
            }
            let mut w = g.r[s];
            for k in g.row[s]..g.row[s + 1] {
                let t = g.to[k] as usize;
                if !upstream[t] {
                    w += g.q[k] * x[t];
                    omega[t] += u[s] * g.q[k];
                }
            }
            what[s] = w;
        }
        let (lo, hi) = (g.first[hub] as usize, g.first[hub + 1] as usize);
        let mut hub_row = vec![0usize; hi - lo + 1];
        let mut hub_to = Vec::new();
        let mut hub_q = Vec::new();
        for s in lo..hi {
            for k in g.row[s]..g.row[s + 1] {
                let t = g.to[k] as usize;
                if (lo..hi).contains(&t) {
                    hub_to.push((t - lo) as u32);
                    hub_q.push(g.q[k]);
                }
            }
            hub_row[s - lo + 1] = hub_to.len();
        }
        Split {
            upstream,
            u,
            what,
            omega,
            hub: lo,
            hub_end: hi,
            hub_row,
            hub_to,
            hub_q,
        }
    }

    fn in_hub(&self, s: u32) -> bool {
        (self.hub..self.hub_end).contains(&(s as usize))
    }
}

/// Per-thread room for one campaign's Δ at a time.
struct Scratch {
    delta: Vec<f64>,
    phi: Vec<f64>,
    /// `mark[s] == stamp`: s is outside U, reaches c's first states and does not hold c
    /// (Δ solved for it); `after[s] == stamp`: s is in U, free, and follows a state of U
    /// holding c (φ solved for it).
    mark: Vec<u32>,
    after: Vec<u32>,
    stamp: u32,
    /// Marked states as bits, read back in solving order.
    bits: Vec<u64>,
    found: Vec<u32>,
    stack: Vec<u32>,
    block: Block,
    /// H's values for a batch (state-major, a lane per campaign), what steps out of H bring
    /// in, and which lanes hold each state.
    hub_v: Vec<f64>,
    hub_b: Vec<f64>,
    hub_held: Vec<u32>,
}

/// Campaigns solved together over H (a bit each in a u32 mask).
const LANES: usize = 8;
const _: () = assert!(LANES <= 32);

/// One campaign of a batch: its states whose last campaign it is, and all that hold it.
struct Lane<'a> {
    campaign: i64,
    entries: &'a [u32],
    holding: &'a [u32],
}

impl Scratch {
    fn new(n: usize) -> Scratch {
        Scratch {
            delta: vec![0.0; n],
            phi: vec![0.0; n],
            mark: vec![0; n],
            after: vec![0; n],
            stamp: 0,
            bits: vec![0; n / 64 + 1],
            found: Vec::new(),
            stack: Vec::new(),
            block: Block::default(),
            hub_v: Vec::new(),
            hub_b: Vec::new(),
            hub_held: Vec::new(),
        }
    }

    /// Marks what `next` leads to from `from` (seeds not marked), and lists it in solving order.
    fn search<'g>(
        &mut self,
        from: &[u32],
        next: impl Fn(u32) -> &'g [u32],
        take: impl Fn(u32) -> bool,
        marks: impl Fn(&mut Scratch) -> &mut Vec<u32>,
    ) -> Vec<u32> {
        let stamp = self.stamp;
        self.stack.clear();
        self.stack.extend_from_slice(from);
        let mut lowest = usize::MAX;
        while let Some(s) = self.stack.pop() {
            for p in next(s) {
                if marks(self)[*p as usize] != stamp && take(*p) {
                    marks(self)[*p as usize] = stamp;
                    self.bits[*p as usize / 64] |= 1 << (*p % 64);
                    lowest = lowest.min(*p as usize / 64);
                    self.stack.push(*p);
                }
            }
        }
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        if lowest != usize::MAX {
            for w in lowest..self.bits.len() {
                let mut word = std::mem::take(&mut self.bits[w]);
                while word != 0 {
                    let bit = word.trailing_zeros();
                    found.push((w * 64) as u32 + bit);
                    word &= word - 1;
                }
            }
        }
        found
    }

    /// Solves `states` (in solving order) block by block into `v`.
    fn solve_blocks(
        &mut self,
        g: &Graph,
        states: &[u32],
        into_phi: bool,
        outside: impl Fn(u32, &[f64]) -> f64,
        base: impl Fn(u32) -> f64,
    ) {
        let v = if into_phi {
            &mut self.phi
        } else {
            &mut self.delta
        };
        let mut i = 0;
        while i < states.len() {
            let b = g.block[states[i] as usize];
            let mut j = i + 1;
            while j < states.len() && g.block[states[j] as usize] == b {
                j += 1;
            }
            self.block.solve(g, &states[i..j], v, &outside, &base);
            i = j;
        }
    }

    /// Δc(START) = P(convert, visiting c) (see `Split`) for up to `LANES` campaigns at once:
    /// what lies outside U and H is solved per campaign, H for all of them in one set of
    /// sweeps (each step of H read once for every campaign of the batch).
    fn through(&mut self, g: &Graph, split: &Split, x: &[f64], lanes: &[Lane]) -> Vec<f64> {
        let width = lanes.len();
        let h = split.hub_end - split.hub;
        self.hub_b.clear();
        self.hub_b.resize(h * width, 0.0);
        let mut totals = vec![0.0f64; width];
        let mut outside: Vec<Vec<(u32, f64)>> = Vec::with_capacity(width);
        for (lane, l) in lanes.iter().enumerate() {
            self.stamp += 1;
            let stamp = self.stamp;
            let c = l.campaign;
            // Outside U and H: the free states reaching c's first states, and their Δ.
            let seeds: Vec<u32> = l
                .entries
                .iter()
                .copied()
                .filter(|s| !split.upstream[*s as usize] && !split.in_hub(*s))
                .collect();
            let found = self.search(
                &seeds,
                |s| &g.pred[g.pred_row[s as usize]..g.pred_row[s as usize + 1]],
                |p| !split.upstream[p as usize] && !split.in_hub(p) && !g.holds(p, c),
                |me| &mut me.mark,
            );
            let mark = std::mem::take(&mut self.mark);
            let delta_of = |t: u32, delta: &[f64]| {
                if g.holds(t, c) {
                    x[t as usize]
                } else if mark[t as usize] == stamp {
                    delta[t as usize]
                } else {
                    0.0
                }
            };
            self.solve_blocks(g, &found, false, delta_of, |_| 0.0);
            // What steps out of H bring in, and the inflow from U onto these states.
            let mut values: Vec<(u32, f64)> = Vec::with_capacity(found.len());
            let mut scatter = |t: u32, value: f64, hub_b: &mut [f64]| {
                totals[lane] += split.omega[t as usize] * value;
                for k in g.pred_row[t as usize]..g.pred_row[t as usize + 1] {
                    let s = g.pred[k];
                    if split.in_hub(s) {
                        hub_b[(s as usize - split.hub) * width + lane] += g.pred_q[k] * value;
                    }
                }
            };
            for t in &found {
                let value = self.delta[*t as usize];
                scatter(*t, value, &mut self.hub_b);
                values.push((*t, value));
            }
            for t in l.holding {
                if !split.upstream[*t as usize] && !split.in_hub(*t) {
                    scatter(*t, x[*t as usize], &mut self.hub_b);
                }
            }
            self.mark = mark;
            self.found = found;
            outside.push(values);
        }
        // H, every campaign of the batch in one set of sweeps.
        self.sweep_hub(split, x, lanes);
        for (lane, total) in totals.iter_mut().enumerate() {
            for i in 0..h {
                *total += split.omega[split.hub + i] * self.hub_v[i * width + lane];
            }
        }
        // U: where it holds c, and what follows c there.
        for (lane, l) in lanes.iter().enumerate() {
            self.stamp += 1;
            let stamp = self.stamp;
            let c = l.campaign;
            let hub_v = std::mem::take(&mut self.hub_v);
            let values = &outside[lane];
            let delta_of = |t: u32| -> f64 {
                if split.in_hub(t) {
                    hub_v[(t as usize - split.hub) * width + lane]
                } else if g.holds(t, c) {
                    x[t as usize]
                } else {
                    values
                        .binary_search_by_key(&t, |v| v.0)
                        .map_or(0.0, |i| values[i].1)
                }
            };
            let out_of_u = |s: u32| -> f64 {
                let mut sum = 0.0;
                for k in g.row[s as usize]..g.row[s as usize + 1] {
                    let t = g.to[k];
                    if !split.upstream[t as usize] {
                        sum += g.q[k] * delta_of(t);
                    }
                }
                sum
            };
            let mut seeds_in_u = Vec::new();
            for s in l.holding {
                if split.upstream[*s as usize] {
                    totals[lane] += split.u[*s as usize] * (split.what[*s as usize] - out_of_u(*s));
                    seeds_in_u.push(*s);
                }
            }
            if !seeds_in_u.is_empty() {
                // U's free states after c, and φ on them (sinks first).
                let after_c = self.search(
                    &seeds_in_u,
                    |s| &g.to[g.row[s as usize]..g.row[s as usize + 1]],
                    |t| split.upstream[t as usize] && !g.holds(t, c),
                    |me| &mut me.after,
                );
                let after = std::mem::take(&mut self.after);
                let phi_of = |t: u32, phi: &[f64]| {
                    if after[t as usize] == stamp {
                        phi[t as usize]
                    } else {
                        0.0
                    }
                };
                self.solve_blocks(g, &after_c, true, phi_of, |s| {
                    split.what[s as usize] - out_of_u(s)
                });
                for p in &seeds_in_u {
                    let mut sum = 0.0;
                    for k in g.row[*p as usize]..g.row[*p as usize + 1] {
                        sum += g.q[k] * phi_of(g.to[k], &self.phi);
                    }
                    totals[lane] += split.u[*p as usize] * sum;
                }
                self.after = after;
                self.found = after_c;
            }
            self.hub_v = hub_v;
        }
        totals
    }

    /// Δ on H for every campaign of the batch: v = b + Q·v on its free states, x on those
    /// holding the lane's campaign, swept in H's order until no lane moves by more than 1e-15
    /// of its largest value (or 100,000 sweeps).
    fn sweep_hub(&mut self, split: &Split, x: &[f64], lanes: &[Lane]) {
        let width = lanes.len();
        let h = split.hub_end - split.hub;
        self.hub_v.clear();
        self.hub_v.resize(h * width, 0.0);
        // Which lanes hold each state of H (a bit per lane).
        self.hub_held.clear();
        self.hub_held.resize(h, 0);
        for (lane, l) in lanes.iter().enumerate() {
            for s in l.holding {
                if split.in_hub(*s) {
                    let i = *s as usize - split.hub;
                    self.hub_held[i] |= 1 << lane;
                    self.hub_v[i * width + lane] = x[*s as usize];
                }
            }
        }
        let live: u32 = (0..width)
            .filter(|lane| {
                (0..h).any(|i| {
                    self.hub_held[i] & (1 << lane) != 0 || self.hub_b[i * width + lane] != 0.0
                })
            })
            .fold(0, |m, lane| m | (1 << lane));
        if live == 0 {
            return;
        }
        let mut acc = [0.0f64; LANES];
        for _ in 0..100_000 {
            let mut change = [0.0f64; LANES];
            let mut largest = [0.0f64; LANES];
            for i in 0..h {
                acc[..width].copy_from_slice(&self.hub_b[i * width..(i + 1) * width]);
                for k in split.hub_row[i]..split.hub_row[i + 1] {
                    let j = split.hub_to[k] as usize;
                    let q = split.hub_q[k];
                    let from = &self.hub_v[j * width..(j + 1) * width];
                    for (a, v) in acc[..width].iter_mut().zip(from) {
                        *a += q * v;
                    }
                }
                let held = self.hub_held[i];
                let own = &mut self.hub_v[i * width..(i + 1) * width];
                for lane in 0..width {
                    if held & (1 << lane) != 0 {
                        continue;
                    }
                    change[lane] = change[lane].max((acc[lane] - own[lane]).abs());
                    largest[lane] = largest[lane].max(acc[lane].abs());
                    own[lane] = acc[lane];
                }
            }
            if (0..width).all(|lane| change[lane] <= largest[lane] * 1e-15) {
                break;
            }
        }
    }
}

/// One block's solve: v(s) = b(s) + Σ q(s, t)·v(t) over `states` (some or all of one
/// block's, in solving order), b(s) being `base(s)` plus the steps to states not among them
/// (`outside(t)`). Scratch kept between blocks.
#[derive(Default)]
struct Block {
    /// Local index of each state of the block's range, `usize::MAX` if not among `states`.
    local: Vec<usize>,
    b: Vec<f64>,
    /// Steps inside: (row, column, q) in local indices.
    inner: Vec<(usize, usize, f64)>,
}

impl Block {
    fn solve(
        &mut self,
        g: &Graph,
        states: &[u32],
        v: &mut [f64],
        outside: &impl Fn(u32, &[f64]) -> f64,
        base: &impl Fn(u32) -> f64,
    ) {
        if let [s] = states {
            // One state: no step to itself once paths are collapsed, but divide if there is.
            let (mut sum, mut own) = (base(*s), 0.0);
            for k in g.row[*s as usize]..g.row[*s as usize + 1] {
                let t = g.to[k];
                if t == *s {
                    own += g.q[k];
                } else {
                    sum += g.q[k] * outside(t, v);
                }
            }
            v[*s as usize] = if own > 0.0 { sum / (1.0 - own) } else { sum };
            return;
        }
        let b = g.block[states[0] as usize] as usize;
        let (lo, hi) = (g.first[b] as usize, g.first[b + 1] as usize);
        self.local.clear();
        self.local.resize(hi - lo, usize::MAX);
        for (i, s) in states.iter().enumerate() {
            self.local[*s as usize - lo] = i;
        }
        self.b.clear();
        self.inner.clear();
        for (i, s) in states.iter().enumerate() {
            let mut sum = base(*s);
            for k in g.row[*s as usize]..g.row[*s as usize + 1] {
                let t = g.to[k] as usize;
                match (lo..hi).contains(&t).then(|| self.local[t - lo]) {
                    Some(j) if j != usize::MAX => self.inner.push((i, j, g.q[k])),
                    _ => sum += g.q[k] * outside(t as u32, v),
                }
            }
            self.b.push(sum);
        }
        let values = if states.len() <= DENSE_BLOCK {
            dense(states.len(), &self.inner, &self.b)
        } else {
            swept(states.len(), &self.inner, &self.b)
        };
        for (s, value) in states.iter().zip(values) {
            v[*s as usize] = value;
        }
    }
}

/// (I − Q)·v = b by Gaussian elimination with partial pivoting (I − Q is diagonally dominant
/// by rows: Q is substochastic).
fn dense(n: usize, inner: &[(usize, usize, f64)], b: &[f64]) -> Vec<f64> {
    let mut a = vec![0.0f64; n * n];
    for i in 0..n {
        a[i * n + i] = 1.0;
    }
    for (i, j, q) in inner {
        a[i * n + j] -= q;
    }
    let mut rhs = b.to_vec();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|x, y| a[x * n + col].abs().total_cmp(&a[y * n + col].abs()))
            .unwrap_or(col);
        if pivot != col {
            for j in 0..n {
                a.swap(col * n + j, pivot * n + j);
            }
            rhs.swap(col, pivot);
        }
        let p = a[col * n + col];
        if p == 0.0 {
            continue;
        }
        for row in col + 1..n {
            let f = a[row * n + col] / p;
            if f != 0.0 {
                for j in col..n {
                    a[row * n + j] -= f * a[col * n + j];
                }
                rhs[row] -= f * rhs[col];
            }
        }
    }
    let mut v = vec![0.0f64; n];
    for i in (0..n).rev() {
        let p = a[i * n + i];
        let s: f64 = (i + 1..n).map(|j| a[i * n + j] * v[j]).sum();
        v[i] = if p == 0.0 { 0.0 } else { (rhs[i] - s) / p };
    }
    v
}

/// v = b + Q·v by Gauss–Seidel sweeps from v = b, in the block's order (successors along the
/// search first), until a sweep changes no value by more than 1e-15 of the largest (a few
/// units in the last place) or 100,000 sweeps. Q is substochastic with every state able to
/// leave the block (each path ends), so the sweeps converge, and from below: every term is
/// non-negative and v only grows towards the solution.
fn swept(n: usize, inner: &[(usize, usize, f64)], b: &[f64]) -> Vec<f64> {
    let mut row = vec![0usize; n + 1];
    for (i, _, _) in inner {
        row[*i + 1] += 1;
    }
    for i in 0..n {
        row[i + 1] += row[i];
    }
    let mut cols = vec![(0usize, 0.0f64); inner.len()];
    let mut fill = row.clone();
    for (i, j, q) in inner {
        cols[fill[*i]] = (*j, *q);
        fill[*i] += 1;
    }
    let mut v = b.to_vec();
    for _ in 0..100_000 {
        let mut change = 0.0f64;
        let mut largest = 0.0f64;
        for i in 0..n {
            let value = b[i]
                + cols[row[i]..row[i + 1]]
                    .iter()
                    .map(|(j, q)| q * v[*j])
                    .sum::<f64>();
            change = change.max((value - v[i]).abs());
            largest = largest.max(value.abs());
            v[i] = value;
        }
        if change <= largest * 1e-15 {
            break;
        }
    }
    v
}

/// Tarjan's strongly connected components, without recursion: the states in solving order
/// (components in the order they complete, sinks first; each component's states in the
/// order the search finished them) and where each component starts in that list.
fn components(n: usize, row: &[usize], to: &[u32]) -> (Vec<u32>, Vec<u32>) {
    const NONE: u32 = u32::MAX;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut first = vec![0u32];
    let mut members: Vec<u32> = Vec::with_capacity(n);
    let mut next = 0u32;
    let mut post = vec![0u32; n];
    let mut finished = 0u32;
    // (state, next successor position)
    let mut calls: Vec<(u32, usize)> = Vec::new();
    for root in 0..n as u32 {
        if index[root as usize] != NONE {
            continue;
        }
        calls.push((root, row[root as usize]));
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        while let Some((s, k)) = calls.last_mut() {
            let s = *s;
            if *k < row[s as usize + 1] {
                let t = to[*k];
                *k += 1;
                if index[t as usize] == NONE {
                    index[t as usize] = next;
                    low[t as usize] = next;
                    next += 1;
                    stack.push(t);
                    on_stack[t as usize] = true;
                    calls.push((t, row[t as usize]));
                } else if on_stack[t as usize] {
                    low[s as usize] = low[s as usize].min(index[t as usize]);
                }
                continue;
            }
            calls.pop();
            post[s as usize] = finished;
            finished += 1;
            if let Some((parent, _)) = calls.last() {
                low[*parent as usize] = low[*parent as usize].min(low[s as usize]);
            }
            if low[s as usize] == index[s as usize] {
                let start = members.len();
                while let Some(t) = stack.pop() {
                    on_stack[t as usize] = false;
                    members.push(t);
                    if t == s {
                        break;
                    }
                }
                members[start..].sort_unstable_by_key(|t| post[*t as usize]);
                first.push(members.len() as u32);
            }
        }
    }
    (members, first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markov::{collapse, removal_effects, removal_effects_of_order};

    fn path(c: &[i64], converted: bool) -> Path {
        Path {
            campaigns: c.to_vec(),
            converted,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// The order-2 chain derived by hand, whose removal effects differ from order 1's.
    ///
    /// Paths: A→B→C converts, D→B→E does not, A→B→E does not, D→B→C converts.
    /// Order 1: START→A ½, START→D ½; A→B 1, D→B 1; B→C ½, B→E ½; C→CONV 1, E→NULL 1.
    ///   P(conv) = ½. Without A: START→D→B→… = ½·½ = ¼ → RE(A) = ½; likewise RE(D) = ½;
    ///   RE(B) = 1, RE(C) = 1, RE(E) = 0.
    /// Order 2 (states: (A), (D), (A,B), (D,B), (B,C), (B,E)):
    ///   (A)→(A,B) 1, (D)→(D,B) 1; (A,B)→(B,C) ½, (A,B)→(B,E) ½; (D,B)→(B,C) ½,
    ///   (D,B)→(B,E) ½; (B,C)→CONV 1; (B,E)→NULL 1. P(conv) = ½ again, and the effects are
    ///   the same as order 1's: this memory adds nothing. So change one path:
    /// Paths: A→B→C converts, D→B→E does not, A→B→C converts, D→B→E does not.
    /// Order 1: START→A ½, START→D ½; A→B 1, D→B 1; B→C ½, B→E ½; C→CONV, E→NULL.
    ///   P(conv) = ½; RE(A) = ½, RE(D) = ½, RE(B) = 1, RE(C) = 1, RE(E) = 0.
    /// Order 2: (A,B)→(B,C) 1 (both A paths went on to C), (D,B)→(B,E) 1.
    ///   P(conv) = ½·1 = ½. Without A: only D's paths, which never convert: RE(A) = 1.
    ///   Without D: A's paths still convert: RE(D) = 0. RE(B) = 1, RE(C) = 1, RE(E) = 0.
    #[test]
    fn an_order_two_chain_by_hand() {
        let paths = [
            path(&[1, 2, 3], true),
            path(&[4, 2, 5], false),
            path(&[1, 2, 3], true),
            path(&[4, 2, 5], false),
        ];
        let first = removal_effects(&paths);
        assert!(close(first[&1], 0.5) && close(first[&4], 0.5), "{first:?}");
        let second = removal_effects_of_order(&paths, 2);
        let expected = [(1, 1.0), (2, 1.0), (3, 1.0), (4, 0.0), (5, 0.0)];
        for (c, re) in expected {
            assert!(close(second[&c], re), "campaign {c}: {second:?}");
        }
        // Order 3 remembers the same here.
        let third = removal_effects_of_order(&paths, 3);
        for (c, re) in expected {
            assert!(close(third[&c], re), "campaign {c}: {third:?}");
        }
    }

    /// A revisit at order 2. Paths: A→B→A converts, B→A does not.
    /// Order 1: START→A ½, START→B ½; A's out-count is 3 (A→B, A→CONV, A→NULL), so A→B ⅓,
    /// A→CONV ⅓, A→NULL ⅓; B→A 1. x_A = ⅓ + ⅓·x_B, x_B = x_A → x_A = x_B = ½, P = ½.
    /// Without A: nothing converts, RE(A) = 1. Without B (A→B and START→B to NULL):
    /// P = ½·⅓ = ⅙, RE(B) = 1 − ⅙/½ = ⅔.
    /// Order 2: states (A), (B), (A,B), (B,A). START→(A) ½, START→(B) ½; (A)→(A,B) 1;
    /// (A,B)→(B,A) 1; (B)→(B,A) 1; (B,A)→CONV ½, (B,A)→NULL ½. P = ½·½ + ½·½ = ½. Without A:
    /// (B) steps into (B,A), which holds A: RE(A) = 1. Without B: (A) steps into (A,B), which
    /// holds B, and START into (B): RE(B) = 1, where order 1 said ⅔ (A→CONV directly was
    /// the NULL path's end, which order 2 tells apart).
    #[test]
    fn a_revisit_at_order_two() {
        let paths = [path(&[1, 2, 1], true), path(&[2, 1], false)];
        let first = removal_effects(&paths);
        assert!(
            close(first[&1], 1.0) && close(first[&2], 2.0 / 3.0),
            "{first:?}"
        );
        let second = removal_effects_of_order(&paths, 2);
        assert!(
            close(second[&1], 1.0) && close(second[&2], 1.0),
            "{second:?}"
        );
    }

    /// Bryl's toy example (C1→C2→C3 converts, C1 and C2→C3 do not) at each order.
    /// Order 2: START→(1) ⅔, START→(2) ⅓; (1)→(1,2) ½, (1)→NULL ½; (1,2)→(2,3) 1;
    /// (2)→(2,3) 1; (2,3)→CONV ½, (2,3)→NULL ½. P = ⅔·½·½ + ⅓·½ = ⅓. Without C1:
    /// ⅓·½ = ⅙, RE 0.5; without C2 or C3 nothing converts: 1, 1 (as at order 1).
    /// Order 3 tells the converting (1,2,3) from the NULL path's (2,3): P = ⅔·½·1 = ⅓, and
    /// without C1 only the path ending in NULL is left: RE(C1) = 1.
    #[test]
    fn the_published_toy_example_at_every_order() {
        let paths = [
            path(&[1, 2, 3], true),
            path(&[1], false),
            path(&[2, 3], false),
        ];
        for (order, first) in [(1, 0.5), (2, 0.5), (3, 1.0)] {
            let re = removal_effects_of_order(&paths, order);
            assert!(close(re[&1], first), "order {order}: {re:?}");
            assert!(
                close(re[&2], 1.0) && close(re[&3], 1.0),
                "order {order}: {re:?}"
            );
        }
    }

    fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        }
    }

    fn random_paths(below: &mut impl FnMut(u64) -> u64, campaigns: u64, count: u64) -> Vec<Path> {
        (0..count)
            .map(|_| {
                let len = 1 + below(8);
                Path {
                    campaigns: collapse((0..len).map(|_| below(campaigns) as i64)),
                    converted: below(3) == 0,
                }
            })
            .collect()
    }

    /// The block solver at order 1 (a state per campaign, the same chain) agrees with the
    /// dense LU of the first-order solver: blocks dense and swept, cycles everywhere.
    #[test]
    fn the_block_solver_agrees_with_the_lu_at_order_one() {
        let mut below = xorshift(0x9E37_79B9_7F4A_7C15);
        for round in 0..30 {
            let campaigns = 2 + below(if round % 3 == 0 { 120 } else { 30 });
            let count = 5 + below(600);
            let paths = random_paths(&mut below, campaigns, count);
            let lu = removal_effects(&paths);
            let mut higher = HigherOrder::new(1);
            for p in &paths {
                higher.add(p, 1);
            }
            let blocks = higher.removal_effects();
            assert_eq!(lu.len(), blocks.len());
            for (c, v) in &lu {
                assert!(
                    (blocks[c] - v).abs() < 1e-10,
                    "round {round}, campaign {c}: {} vs {v}",
                    blocks[c]
                );
            }
        }
    }

    /// At order 2 against a direct dense solve per campaign of the chain with c's states
    /// made NULL (the definition, by the book).
    #[test]
    fn order_two_agrees_with_the_definition_solved_densely() {
        let mut below = xorshift(0x2545_F491_4F6C_DD1D);
        for round in 0..20 {
            let campaigns = 2 + below(12);
            let count = 5 + below(200);
            let paths = random_paths(&mut below, campaigns, count);
            for order in [2u8, 3] {
                let fast = removal_effects_of_order(&paths, order);
                let reference = by_definition(&paths, order);
                assert_eq!(fast.len(), reference.len());
                for (c, v) in &reference {
                    assert!(
                        (fast[c] - v).abs() < 1e-10,
                        "round {round}, order {order}, campaign {c}: {} vs {v}",
                        fast[c]
                    );
                }
            }
        }
    }

    /// RE(c) = 1 − P(conv without c) / P(conv), each by a dense elimination of the whole
    /// chain (c's states' inbound steps to NULL).
    fn by_definition(paths: &[Path], order: u8) -> HashMap<i64, f64> {
        let mut counts = HigherOrder::new(order);
        for p in paths {
            counts.add(p, 1);
        }
        let g = Graph::of(&counts);
        let n = g.keys.len();
        let solve = |removed: Option<i64>| {
            let mut inner = Vec::new();
            for s in 0..n {
                for k in g.row[s]..g.row[s + 1] {
                    let t = g.to[k];
                    if removed.is_some_and(|c| g.holds(t, c)) {
                        continue;
                    }
                    inner.push((s, t as usize, g.q[k]));
                }
            }
            dense(n, &inner, &g.r)[g.start as usize]
        };
        let p = solve(None);
        g.states()
            .map(|s| g.last(s))
            .map(|c| {
                let re = if p > 0.0 {
                    (1.0 - solve(Some(c)) / p).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                (c, re)
            })
            .collect()
    }

    #[test]
    fn a_path_taken_back_leaves_the_chain_of_the_others() {
        let paths = [path(&[1, 2, 3], true), path(&[2, 3, 1], false)];
        let mut counts = HigherOrder::new(2);
        for p in &paths {
            counts.add(p, 1);
        }
        let before = counts.removal_effects();
        counts.add(&path(&[9, 1, 2], true), 1);
        assert!(counts.removal_effects().contains_key(&9));
        counts.add(&path(&[9, 1, 2], true), -1);
        assert_eq!(counts.removal_effects(), before);
    }

    /// `cargo test -p funnelgraph-domain --release -- --ignored --nocapture higher_timing`
    #[test]
    #[ignore]
    fn higher_timing() {
        let mut below = xorshift(0x9E37_79B9_7F4A_7C15);
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
        for order in [2u8, 3] {
            let t = std::time::Instant::now();
            let mut counts = HigherOrder::new(order);
            for p in &paths {
                counts.add(p, 1);
            }
            let counted = t.elapsed();
            let g = Graph::of(&counts);
            let laid = t.elapsed();
            let sizes = (0..g.first.len() - 1).map(|i| g.first[i + 1] - g.first[i]);
            let largest = sizes.max().unwrap_or(0);
            let re = g.removal_effects();
            eprintln!(
                "order {order}: {} states, {} steps, largest block {largest}; counted {counted:?}, laid out {:?}, solved {:?} for {} campaigns",
                g.keys.len(),
                g.to.len(),
                laid - counted,
                t.elapsed() - laid,
                re.len()
            );
        }
    }
}
