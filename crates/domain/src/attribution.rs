//! Attribution models of SPEC §4 as pure functions: given a conversion and its eligible
//! touchpoints (sorted by time, then externalId), the weight of each touch.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    FirstTouch,
    LastTouch,
    Linear,
    PositionBased,
    WShaped,
    FullPath,
    TimeDecay,
    /// MARKOV of an order 1 ..= 3 (SPEC §4, §4b: `markov::MAX_ORDER`).
    Markov(u8),
    /// SPEC §4b: first 0.2, last 0.6, the middle share 0.2 (n=2: 0.25 / 0.75).
    JShaped,
    /// SPEC §4b: first 0.6, last 0.2, the middle share 0.2 (n=2: 0.75 / 0.25).
    InverseJ,
    /// Channel-level Shapley values of a conversion-rate game (SPEC §4b, `shapley`).
    Shapley,
    /// A custom model as data (SPEC §4b): one version of its role weights.
    Custom(RoleWeights),
}

/// The fraction digits a custom model's role weight may have.
pub const ROLE_DIGITS: u32 = 9;
const ROLE_ONE: u64 = 1_000_000_000;

/// One version of a custom model: role weights in units of 10^-9, summing to 10^9 (= 1).
/// `version` is the version's id, so two versions are two models to every cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoleWeights {
    pub version: i64,
    pub first: u64,
    pub last: u64,
    pub mql: u64,
    pub opportunity: u64,
    pub close: u64,
    pub middle: u64,
}

/// The role names of a custom model, in the order `RoleWeights::parse` takes them.
pub const ROLES: [&str; 6] = ["first", "last", "mql", "opportunity", "close", "middle"];

impl RoleWeights {
    /// Parses the six weights (first, last, mql, opportunity, close, middle) as decimal
    /// strings: each ≥ 0 with at most 9 fraction digits, summing exactly to 1.
    pub fn parse(version: i64, texts: [&str; 6]) -> Result<RoleWeights, String> {
        let mut units = [0u64; 6];
        for (i, text) in texts.iter().enumerate() {
            let bad = || {
                format!(
                    "{} = \"{text}\": a weight is a decimal from 0 to 1 with at most {ROLE_DIGITS} fraction digits",
                    ROLES[i]
                )
            };
            let d = crate::money::Decimal::parse(text).map_err(|_| bad())?;
            if d.units < 0 {
                return Err(bad());
            }
            let v = d.rescale(ROLE_DIGITS).ok_or_else(bad)?;
            units[i] = u64::try_from(v)
                .ok()
                .filter(|v| *v <= ROLE_ONE)
                .ok_or_else(bad)?;
        }
        let sum: u64 = units.iter().sum();
        if sum != ROLE_ONE {
            return Err(format!(
                "the weights sum to {}, not exactly 1",
                crate::money::format_units(i128::from(sum), ROLE_DIGITS)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
            ));
        }
        let [first, last, mql, opportunity, close, middle] = units;
        Ok(RoleWeights {
            version,
            first,
            last,
            mql,
            opportunity,
            close,
            middle,
        })
    }

    /// The weights as the shortest decimal strings, in `ROLES` order.
    pub fn texts(&self) -> [String; 6] {
        [
            self.first,
            self.last,
            self.mql,
            self.opportunity,
            self.close,
            self.middle,
        ]
        .map(|u| {
            let text = crate::money::format_units(i128::from(u), ROLE_DIGITS);
            let text = text.trim_end_matches('0');
            text.strip_suffix('.').unwrap_or(text).to_string()
        })
    }
}

pub const MODELS: [Model; 11] = [
    Model::FirstTouch,
    Model::LastTouch,
    Model::Linear,
    Model::PositionBased,
    Model::JShaped,
    Model::InverseJ,
    Model::WShaped,
    Model::FullPath,
    Model::TimeDecay,
    Model::Markov(1),
    Model::Shapley,
];

impl Model {
    pub fn as_str(self) -> &'static str {
        match self {
            Model::FirstTouch => "FIRST_TOUCH",
            Model::LastTouch => "LAST_TOUCH",
            Model::Linear => "LINEAR",
            Model::PositionBased => "POSITION_BASED",
            Model::WShaped => "W_SHAPED",
            Model::FullPath => "FULL_PATH",
            Model::TimeDecay => "TIME_DECAY",
            Model::Markov(_) => "MARKOV",
            Model::JShaped => "J_SHAPED",
            Model::InverseJ => "INVERSE_J",
            Model::Shapley => "SHAPLEY",
            Model::Custom(_) => "CUSTOM",
        }
    }

    /// Whether its weights come from the period's paths (MARKOV's removal effects, SHAPLEY's
    /// values), made per version rather than brought forward.
    /// MARKOV at `order` (1 ..= `markov::MAX_ORDER`); an order with another model, or out of
    /// range, is the message of a caller's mistake.
    pub fn at_order(self, order: i64) -> Result<Model, String> {
        let max = i64::from(crate::markov::MAX_ORDER);
        match self {
            Model::Markov(_) if (1..=max).contains(&order) => Ok(Model::Markov(order as u8)),
            Model::Markov(_) => Err(format!("markovOrder is 1, 2 or 3, not {order}")),
            _ => Err("markovOrder goes with model: MARKOV".into()),
        }
    }

    /// MARKOV's order; None for the other models.
    pub fn markov_order(self) -> Option<u8> {
        match self {
            Model::Markov(order) => Some(order),
            _ => None,
        }
    }

    pub fn data_driven(self) -> bool {
        matches!(self, Model::Markov(_) | Model::Shapley)
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MODELS
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown attribution model {s}"))
    }
}

/// One touchpoint as attribution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touch {
    pub id: i64,
    /// Inline up to 24 bytes (no allocation per touch: the journey index holds millions, and
    /// every report copies the ones it reads).
    pub external_id: compact_str::CompactString,
    pub campaign_id: i64,
    pub at: DateTime<Utc>,
}

/// What a model needs to know about a conversion besides its touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversion {
    /// The instant of the conversion.
    pub at: DateTime<Utc>,
    /// When the lead (an opportunity's primary contact) first reached MQL, if ever.
    pub mql_at: Option<DateTime<Utc>>,
    /// When the opportunity was created (OPPORTUNITY and WON conversions only).
    pub opportunity_created_at: Option<DateTime<Utc>>,
    /// Whether this is a WON conversion (FULL_PATH's CLOSE role).
    pub won: bool,
}

/// Sorts touches the way SPEC §4 orders them: by time, then externalId.
pub fn sort_touches(touches: &mut [Touch]) {
    touches.sort_by(|a, b| (a.at, &a.external_id).cmp(&(b.at, &b.external_id)));
}

/// A run of sorted touches shared with whatever holds them: facts point into a lead's touches
/// in the journey index instead of copying them (a quarter's facts name ~600k touches).
#[derive(Debug, Clone)]
pub struct Touches {
    all: std::sync::Arc<[Touch]>,
    from: usize,
    to: usize,
}

impl Touches {
    /// The touches of sorted `all` with `at − lookback ≤ time ≤ at` (a contiguous run, as
    /// `all` is in time order), shared, not copied.
    pub fn eligible(
        all: &std::sync::Arc<[Touch]>,
        at: DateTime<Utc>,
        lookback_days: i64,
    ) -> Touches {
        let (from, to) = eligible_bounds(all, at, lookback_days);
        Touches {
            all: all.clone(),
            from,
            to,
        }
    }
}

/// Where the touches of sorted `all` with `at − lookback ≤ time ≤ at` begin and end.
fn eligible_bounds(all: &[Touch], at: DateTime<Utc>, lookback_days: i64) -> (usize, usize) {
    let from = at - Duration::days(lookback_days);
    let start = all.partition_point(|t| t.at < from);
    (start, all.partition_point(|t| t.at <= at).max(start))
}

/// The eligible touches of sorted `all` (as `Touches::eligible`), borrowed.
pub fn eligible_run(all: &[Touch], at: DateTime<Utc>, lookback_days: i64) -> &[Touch] {
    let (from, to) = eligible_bounds(all, at, lookback_days);
    all.get(from..to).unwrap_or_default()
}

impl std::ops::Deref for Touches {
    type Target = [Touch];
    fn deref(&self) -> &[Touch] {
        self.all.get(self.from..self.to).unwrap_or_default()
    }
}

impl PartialEq for Touches {
    fn eq(&self, other: &Touches) -> bool {
        **self == **other
    }
}

impl From<Vec<Touch>> for Touches {
    fn from(touches: Vec<Touch>) -> Touches {
        let to = touches.len();
        Touches {
            all: touches.into(),
            from: 0,
            to,
        }
    }
}

/// The touches of sorted `touches` with `at − lookback ≤ time ≤ at`.
pub fn eligible(touches: &[Touch], at: DateTime<Utc>, lookback_days: i64) -> Vec<Touch> {
    let from = at - Duration::days(lookback_days);
    touches
        .iter()
        .filter(|t| t.at >= from && t.at <= at)
        .cloned()
        .collect()
}

/// Parameters that only some models use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub half_life_days: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            half_life_days: 7.0,
        }
    }
}

/// The weight of each eligible touch as exact non-negative integers: touch i's share of the
/// conversion is wᵢ / Σw (empty for no touches; never all zero otherwise).
///
/// The models whose weights are rational (FIRST_TOUCH, LAST_TOUCH, LINEAR, POSITION_BASED,
/// W_SHAPED, FULL_PATH) give small integers in exactly the SPEC's proportions, so money splits
/// and credited conversions are exact. TIME_DECAY and MARKOV weights are real numbers, computed
/// in floating point and then fixed as integers summing to 2^62 (see `quantize`): from there
/// on everything is exact (equal real weights differ by at most one unit in 2^62, the earlier
/// touch never getting less).
pub fn weights(
    model: Model,
    conversion: &Conversion,
    touches: &[Touch],
    params: Params,
    removal_effects: &HashMap<i64, f64>,
) -> Vec<u64> {
    let n = touches.len();
    if n == 0 {
        return Vec::new();
    }
    let mut w = vec![0u64; n];
    match model {
        Model::FirstTouch => w[0] = 1,
        Model::LastTouch => w[n - 1] = 1,
        Model::Linear => w.iter_mut().for_each(|x| *x = 1),
        Model::PositionBased => match n {
            1 | 2 => w.iter_mut().for_each(|x| *x = 1),
            _ => {
                // 0.4 : 0.2/(n−2) = 2(n−2) : 1.
                let end = 2 * (n as u64 - 2);
                w.iter_mut().for_each(|x| *x = 1);
                w[0] = end;
                w[n - 1] = end;
            }
        },
        Model::JShaped | Model::InverseJ => {
            // (first, last) in units where the middle touches share 1 each: 0.2 : 0.6 : 0.2/(n−2)
            // = (n−2) : 3(n−2) : 1; for n = 2, 1 : 3.
            let (first, last) = match n {
                1 => (1, 1),
                2 => (1, 3),
                _ => (n as u64 - 2, 3 * (n as u64 - 2)),
            };
            let (first, last) = if model == Model::JShaped {
                (first, last)
            } else {
                (last, first)
            };
            w.iter_mut().for_each(|x| *x = 1);
            w[0] = first;
            w[n - 1] = last;
        }
        Model::Custom(roles) => w = custom_weights(&roles, conversion, touches),
        Model::WShaped => w = role_weights(conversion, touches, false),
        Model::FullPath => w = role_weights(conversion, touches, true),
        Model::TimeDecay => {
            let raw: Vec<f64> = touches
                .iter()
                .map(|t| {
                    let days = (conversion.at - t.at).num_milliseconds() as f64 / 86_400_000.0;
                    (-days / params.half_life_days).exp2()
                })
                .collect();
            w = quantize(&raw);
        }
        Model::Markov(_) => w = quantize(&markov_weights(touches, removal_effects)),
        Model::Shapley => w = quantize(&crate::shapley::encoded_weights(touches, removal_effects)),
    }
    w
}

/// The sum of quantized weights.
pub const QUANTUM: u64 = 1 << 62;

/// Real weights as integers summing to exactly 2^62: each is floored at that scale and the
/// units left go to the largest fractions, ties to the earlier touch, so equal real weights
/// differ by at most one unit in 2^62 and the earlier never gets less.
pub fn quantize(raw: &[f64]) -> Vec<u64> {
    let n = raw.len();
    let clean: Vec<f64> = raw
        .iter()
        .map(|x| if x.is_finite() && *x > 0.0 { *x } else { 0.0 })
        .collect();
    // Relative to the largest, so the sum stays finite whatever the magnitudes.
    let largest = clean.iter().copied().fold(0.0, f64::max);
    if n == 0 || largest <= 0.0 {
        return vec![1; n];
    }
    let relative: Vec<f64> = clean.iter().map(|x| x / largest).collect();
    let total: f64 = relative.iter().sum();
    let scale = QUANTUM as f64;
    let scaled: Vec<f64> = relative.iter().map(|x| x / total * scale).collect();
    let mut q: Vec<u64> = scaled.iter().map(|x| x.floor() as u64).collect();
    let sum: u128 = q.iter().map(|x| u128::from(*x)).sum();
    let target = u128::from(QUANTUM);
    let mut order: Vec<usize> = (0..n).collect();
    if sum > target {
        // Float rounding overshot (by a few units at most): take them from the smallest
        // fractions, the later touch first.
        order.sort_by(|a, b| {
            let (fa, fb) = (
                scaled[*a] - scaled[*a].floor(),
                scaled[*b] - scaled[*b].floor(),
            );
            fa.total_cmp(&fb).then(b.cmp(a))
        });
        let mut excess = sum - target;
        for i in order.iter().cycle().take(n * 64) {
            if excess == 0 {
                break;
            }
            if q[*i] > 0 {
                q[*i] -= 1;
                excess -= 1;
            }
        }
        return q;
    }
    // Units left: the same number to every part, and one more to the largest fractions,
    // ties to the earlier touch.
    let left = target - sum;
    let n128 = n as u128;
    let each = (left / n128) as u64;
    let extra = (left % n128) as usize;
    order.sort_by(|a, b| {
        let (fa, fb) = (
            scaled[*a] - scaled[*a].floor(),
            scaled[*b] - scaled[*b].floor(),
        );
        fb.total_cmp(&fa).then(a.cmp(b))
    });
    for x in q.iter_mut() {
        *x += each;
    }
    for i in order.iter().take(extra) {
        q[*i] += 1;
    }
    q
}

/// Each touch's share of its conversion, wᵢ / Σw, as a float (for tests).
#[cfg(test)]
pub fn shares(w: &[u64]) -> Vec<f64> {
    let total: u128 = w.iter().map(|x| u128::from(*x)).sum();
    w.iter()
        .map(|x| {
            if total == 0 {
                0.0
            } else {
                *x as f64 / total as f64
            }
        })
        .collect()
}

/// Index of the last touch at or before `at`, if any.
fn last_at_or_before(touches: &[Touch], at: DateTime<Utc>) -> Option<usize> {
    touches.iter().rposition(|t| t.at <= at)
}

/// W_SHAPED (FIRST, MQL, OPPORTUNITY at 0.3 each) and FULL_PATH (plus CLOSE, 0.225 each):
/// a touch's raw weight is the role weight times the roles it holds; touches holding none
/// share 0.1; absent roles are simply absent; then everything is scaled to sum to 1.
/// In integers, with k touches holding no role: 0.3·r : 0.1/k = 3rk : 1, and
/// 0.225·r : 0.1/k = 9rk : 4.
fn role_weights(conversion: &Conversion, touches: &[Touch], full_path: bool) -> Vec<u64> {
    let n = touches.len();
    let mut roles = vec![0u64; n];
    roles[0] += 1;
    if let Some(mql) = conversion.mql_at.filter(|m| *m <= conversion.at) {
        if let Some(i) = last_at_or_before(touches, mql) {
            roles[i] += 1;
        }
    }
    if let Some(created) = conversion.opportunity_created_at {
        if let Some(i) = last_at_or_before(touches, created) {
            roles[i] += 1;
        }
    }
    if full_path && conversion.won {
        roles[n - 1] += 1;
    }
    let k = roles.iter().filter(|r| **r == 0).count().max(1) as u64;
    let (per_role, rest) = if full_path { (9 * k, 4) } else { (3 * k, 1) };
    roles
        .iter()
        .map(|r| if *r > 0 { per_role * r } else { rest })
        .collect()
}

/// A custom model (SPEC §4b): FIRST = t1, LAST = tn, MQL and OPPORTUNITY as in §4, CLOSE = tn
/// at WON only; a role weighted 0 is absent. A touch's raw weight is the sum of its roles'
/// weights, or `middle` shared equally by the touches holding no role; scaled to sum to 1 (all
/// raw weights 0: equal shares). Integers: role touches × k (k = touches holding no role).
fn custom_weights(roles: &RoleWeights, conversion: &Conversion, touches: &[Touch]) -> Vec<u64> {
    let n = touches.len();
    let mut held = vec![0u64; n];
    let mut hold = |i: Option<usize>, weight: u64| {
        if let (Some(i), true) = (i, weight > 0) {
            held[i] += weight;
        }
    };
    hold(Some(0), roles.first);
    hold(Some(n - 1), roles.last);
    if let Some(mql) = conversion.mql_at.filter(|m| *m <= conversion.at) {
        hold(last_at_or_before(touches, mql), roles.mql);
    }
    if let Some(created) = conversion.opportunity_created_at {
        hold(last_at_or_before(touches, created), roles.opportunity);
    }
    if conversion.won {
        hold(Some(n - 1), roles.close);
    }
    let k = held.iter().filter(|h| **h == 0).count().max(1) as u64;
    let raw: Vec<u64> = held
        .iter()
        .map(|h| if *h > 0 { h * k } else { roles.middle })
        .collect();
    if raw.iter().all(|w| *w == 0) {
        return vec![1; n];
    }
    // The same proportions in the smallest integers (weights like 0.123456789 would otherwise
    // give exact sums large denominators).
    let divisor = raw.iter().fold(0u64, |g, w| gcd(g, *w)).max(1);
    raw.iter().map(|w| w / divisor).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// MARKOV: each distinct campaign on the touches gets RE(c) / Σ RE over those campaigns
/// (equal shares when that sum is 0), spread equally over that campaign's touches.
fn markov_weights(touches: &[Touch], removal_effects: &HashMap<i64, f64>) -> Vec<f64> {
    let mut campaigns: Vec<i64> = touches.iter().map(|t| t.campaign_id).collect();
    campaigns.sort_unstable();
    campaigns.dedup();
    let effect = |c: &i64| removal_effects.get(c).copied().unwrap_or(0.0).max(0.0);
    let total: f64 = campaigns.iter().map(effect).sum();
    let share = |c: &i64| {
        if total > 0.0 {
            effect(c) / total
        } else {
            1.0 / campaigns.len() as f64
        }
    };
    let count = |c: i64| touches.iter().filter(|t| t.campaign_id == c).count() as f64;
    touches
        .iter()
        .map(|t| share(&t.campaign_id) / count(t.campaign_id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0).unwrap()
    }

    fn touches(days: &[(u32, i64)]) -> Vec<Touch> {
        days.iter()
            .enumerate()
            .map(|(i, (d, c))| Touch {
                id: i as i64,
                external_id: format!("t{i}").into(),
                campaign_id: *c,
                at: day(*d),
            })
            .collect()
    }

    #[test]
    fn a_shared_run_of_touches_is_the_eligible_copy() {
        let all = touches(&[(1, 1), (3, 2), (3, 3), (5, 4), (9, 5), (12, 6)]);
        let shared: std::sync::Arc<[Touch]> = all.clone().into();
        for at in 0..15 {
            for lookback in [0, 1, 2, 5, 30] {
                let conversion = day(at.max(1));
                assert_eq!(
                    &*Touches::eligible(&shared, conversion, lookback),
                    eligible(&all, conversion, lookback).as_slice(),
                    "at day {at}, lookback {lookback}"
                );
            }
        }
        assert!(Touches::eligible(&shared, day(2), 0).is_empty());
    }

    fn conv(at: u32) -> Conversion {
        Conversion {
            at: day(at),
            mql_at: None,
            opportunity_created_at: None,
            won: false,
        }
    }

    fn w(model: Model, c: &Conversion, t: &[Touch]) -> Vec<f64> {
        shares(&weights(model, c, t, Params::default(), &HashMap::new()))
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn single_touch_models_credit_one_end() {
        let t = touches(&[(1, 1), (2, 2), (3, 3)]);
        assert_eq!(w(Model::FirstTouch, &conv(9), &t), vec![1.0, 0.0, 0.0]);
        assert_eq!(w(Model::LastTouch, &conv(9), &t), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn custom_models_weigh_roles_and_share_the_middle() {
        let roles = |t: [&str; 6]| RoleWeights::parse(1, t).map(Model::Custom);
        let t3 = touches(&[(1, 1), (2, 1), (3, 1)]);
        let t4 = touches(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
        // W_SHAPED as data: first, mql and opportunity 0.3, middle 0.1 → the same shares.
        let w_shaped = roles(["0.3", "0", "0.3", "0.3", "0", "0.1"]).unwrap();
        let mut c = conv(9);
        c.mql_at = Some(day(2));
        c.opportunity_created_at = Some(day(3));
        assert_eq!(
            shares(&weights(
                w_shaped,
                &c,
                &t4,
                Params::default(),
                &HashMap::new()
            )),
            shares(&weights(
                Model::WShaped,
                &c,
                &t4,
                Params::default(),
                &HashMap::new()
            ))
        );
        // first 0.5, last 0.3, middle 0.2 on three touches: 0.5 / 0.2 / 0.3.
        let m = roles(["0.5", "0.3", "0", "0", "0", "0.2"]).unwrap();
        assert!(close(&w(m, &conv(9), &t3), &[0.5, 0.2, 0.3]));
        // One touch holds first and last: 0.8 of 0.8 → everything.
        assert!(close(&w(m, &conv(9), &touches(&[(1, 1)])), &[1.0]));
        // An absent role (no MQL before the conversion): first 0.5 and mql 0.5 with no middle →
        // only the first touch weighs, and it takes everything after scaling.
        let m = roles(["0.5", "0", "0.5", "0", "0", "0"]).unwrap();
        assert!(close(&w(m, &conv(9), &t3), &[1.0, 0.0, 0.0]));
        // CLOSE only at WON: elsewhere nothing weighs, so equal shares.
        let m = roles(["0", "0", "0", "0", "1", "0"]).unwrap();
        assert!(close(
            &w(m, &conv(9), &t3),
            &[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]
        ));
        let mut won = conv(9);
        won.won = true;
        assert!(close(&w(m, &won, &t3), &[0.0, 0.0, 1.0]));
        // Validation: a sum other than 1, a negative, too many digits, junk.
        assert_eq!(
            roles(["0.5", "0.4", "0", "0", "0", "0"]).err(),
            Some("the weights sum to 0.9, not exactly 1".to_string())
        );
        assert!(roles(["1.5", "-0.5", "0", "0", "0", "0"]).is_err());
        assert!(roles(["0.1234567891", "0.8765432109", "0", "0", "0", "0"]).is_err());
        assert!(roles(["one", "0", "0", "0", "0", "0"]).is_err());
        assert_eq!(
            RoleWeights::parse(1, ["0.25", "0.75", "0", "0", "0", "0.000"])
                .map(|r| r.texts())
                .ok(),
            Some(["0.25", "0.75", "0", "0", "0", "0"].map(String::from))
        );
    }

    #[test]
    fn j_shaped_and_inverse_j_for_one_two_three_and_four_touches() {
        let t1 = touches(&[(1, 1)]);
        let t2 = touches(&[(1, 1), (2, 1)]);
        let t3 = touches(&[(1, 1), (2, 1), (3, 1)]);
        let t4 = touches(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
        // Exact integer weights: n=2 1:3; n=3 1:1:3 (0.2, 0.2, 0.6); n=4 2:1:1:6 (0.2, 0.1, 0.1, 0.6).
        let raw =
            |m: Model, t: &[Touch]| weights(m, &conv(9), t, Params::default(), &HashMap::new());
        assert_eq!(raw(Model::JShaped, &t1), vec![1]);
        assert_eq!(raw(Model::JShaped, &t2), vec![1, 3]);
        assert_eq!(raw(Model::JShaped, &t3), vec![1, 1, 3]);
        assert_eq!(raw(Model::JShaped, &t4), vec![2, 1, 1, 6]);
        assert_eq!(raw(Model::InverseJ, &t1), vec![1]);
        assert_eq!(raw(Model::InverseJ, &t2), vec![3, 1]);
        assert_eq!(raw(Model::InverseJ, &t3), vec![3, 1, 1]);
        assert_eq!(raw(Model::InverseJ, &t4), vec![6, 1, 1, 2]);
        assert!(close(&w(Model::JShaped, &conv(9), &t2), &[0.25, 0.75]));
        assert!(close(
            &w(Model::JShaped, &conv(9), &t4),
            &[0.2, 0.1, 0.1, 0.6]
        ));
        assert!(close(&w(Model::InverseJ, &conv(9), &t3), &[0.6, 0.2, 0.2]));
    }

    #[test]
    fn position_based_for_one_two_three_and_four_touches() {
        assert_eq!(
            w(Model::PositionBased, &conv(9), &touches(&[(1, 1)])),
            vec![1.0]
        );
        assert_eq!(
            w(Model::PositionBased, &conv(9), &touches(&[(1, 1), (2, 1)])),
            vec![0.5, 0.5]
        );
        assert!(close(
            &w(
                Model::PositionBased,
                &conv(9),
                &touches(&[(1, 1), (2, 1), (3, 1)])
            ),
            &[0.4, 0.2, 0.4]
        ));
        assert!(close(
            &w(
                Model::PositionBased,
                &conv(9),
                &touches(&[(1, 1), (2, 1), (3, 1), (4, 1)])
            ),
            &[0.4, 0.1, 0.1, 0.4]
        ));
    }

    #[test]
    fn w_shaped_with_all_three_roles_on_distinct_touches() {
        // t1 FIRST, t2 MQL (last touch at or before MQL on day 2), t4 OPPORTUNITY (last touch
        // at or before creation on day 4); t3 and t5 share 0.1. Total 1.0 already.
        let t = touches(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
        let c = Conversion {
            at: day(6),
            mql_at: Some(day(2)),
            opportunity_created_at: Some(day(4)),
            won: true,
        };
        assert!(close(
            &w(Model::WShaped, &c, &t),
            &[0.3, 0.3, 0.05, 0.3, 0.05]
        ));
        // FULL_PATH adds CLOSE on t5: 0.225 × 4 + 0.1 for t3 alone.
        assert!(close(
            &w(Model::FullPath, &c, &t),
            &[0.225, 0.225, 0.1, 0.225, 0.225]
        ));
    }

    #[test]
    fn roles_that_coincide_add_up_and_absent_roles_vanish() {
        // One touch holds FIRST and MQL: raw 0.6, the other touch 0.1: scaled 6/7 and 1/7.
        let t = touches(&[(1, 1), (3, 2)]);
        let c = Conversion {
            at: day(4),
            mql_at: Some(day(2)),
            opportunity_created_at: None,
            won: false,
        };
        assert!(close(&w(Model::WShaped, &c, &t), &[6.0 / 7.0, 1.0 / 7.0]));
        // MQL reached after the conversion: the role is absent.
        let c = Conversion {
            at: day(4),
            mql_at: Some(day(5)),
            opportunity_created_at: None,
            won: false,
        };
        assert!(close(&w(Model::WShaped, &c, &t), &[0.75, 0.25]));
        // A single touch holding every role gets everything.
        let t = touches(&[(1, 1)]);
        let c = Conversion {
            at: day(4),
            mql_at: Some(day(2)),
            opportunity_created_at: Some(day(3)),
            won: true,
        };
        assert_eq!(w(Model::FullPath, &c, &t), vec![1.0]);
    }

    #[test]
    fn time_decay_halves_every_half_life() {
        let t = touches(&[(1, 1), (8, 1), (15, 1)]);
        let got = w(Model::TimeDecay, &conv(15), &t);
        // raw 1/4, 1/2, 1 -> 1/7, 2/7, 4/7
        assert!(close(&got, &[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0]));
    }

    #[test]
    fn markov_spreads_each_campaign_share_over_its_touches() {
        let t = touches(&[(1, 1), (2, 2), (3, 1)]);
        let effects = HashMap::from([(1, 0.3), (2, 0.1)]);
        let got = shares(&weights(
            Model::Markov(1),
            &conv(9),
            &t,
            Params::default(),
            &effects,
        ));
        assert!(close(&got, &[0.375, 0.25, 0.375]));
        let got = shares(&weights(
            Model::Markov(1),
            &conv(9),
            &t,
            Params::default(),
            &HashMap::new(),
        ));
        assert!(
            close(&got, &[0.25, 0.5, 0.25]),
            "equal campaign shares when effects are all 0"
        );
    }

    #[test]
    fn the_lookback_edge_is_inclusive() {
        let t = touches(&[(1, 1), (2, 2), (10, 3), (11, 4)]);
        let got: Vec<i64> = eligible(&t, day(10), 8)
            .iter()
            .map(|t| t.campaign_id)
            .collect();
        assert_eq!(
            got,
            vec![2, 3],
            "day 2 is exactly 8 days before; day 11 is after"
        );
        assert!(eligible(&t, day(10), 0).iter().all(|t| t.at == day(10)));
    }

    #[test]
    fn rational_models_give_exact_integer_proportions() {
        let t = touches(&[(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7)]);
        let none = HashMap::new();
        let p = Params::default();
        assert_eq!(weights(Model::Linear, &conv(9), &t, p, &none), vec![1; 7]);
        assert_eq!(
            weights(Model::PositionBased, &conv(9), &t, p, &none),
            vec![10, 1, 1, 1, 1, 1, 10]
        );
        // W_SHAPED with FIRST and MQL on t1 and t2 and five roleless touches: 0.3 : 0.02
        // = 15 : 1.
        let c = Conversion {
            at: day(9),
            mql_at: Some(day(2)),
            opportunity_created_at: None,
            won: false,
        };
        assert_eq!(
            weights(Model::WShaped, &c, &t, p, &none),
            vec![15, 15, 1, 1, 1, 1, 1]
        );
    }

    #[test]
    fn quantized_weights_sum_to_the_quantum_and_keep_equal_ones_equal_or_earlier() {
        let q = quantize(&[1.0, 1.0, 1.0]);
        assert_eq!(
            q.iter().map(|x| u128::from(*x)).sum::<u128>(),
            u128::from(QUANTUM)
        );
        assert!(q[0] >= q[1] && q[1] >= q[2] && q[0] - q[2] <= 1);
        let q = quantize(&[0.25, 0.5, 1.0]);
        assert_eq!(
            q.iter().map(|x| u128::from(*x)).sum::<u128>(),
            u128::from(QUANTUM)
        );
        assert!((2 * q[0]).abs_diff(q[1]) < 4096 && (2 * q[1]).abs_diff(q[2]) < 4096);
        assert_eq!(quantize(&[0.0, f64::NAN]), vec![1, 1]);
        // Weights whose sum overflows a float still quantize, at once.
        let q = quantize(&[f64::MAX, f64::MAX, f64::MAX]);
        assert_eq!(
            q.iter().map(|x| u128::from(*x)).sum::<u128>(),
            u128::from(QUANTUM)
        );
        assert!(q[0] - q[2] <= 1);
        let q = quantize(&[1e-300, 1.0]);
        assert_eq!(
            q.iter().map(|x| u128::from(*x)).sum::<u128>(),
            u128::from(QUANTUM)
        );
    }

    #[test]
    fn no_touch_means_no_weights() {
        assert!(w(Model::Linear, &conv(9), &[]).is_empty());
    }

    mod properties {
        use super::super::*;
        use chrono::TimeZone;
        use proptest::prelude::*;

        fn arb_touches() -> impl Strategy<Value = Vec<Touch>> {
            prop::collection::vec((0i64..60 * 24, 1i64..6), 1..12).prop_map(|raw| {
                raw.into_iter()
                    .enumerate()
                    .map(|(i, (minutes, campaign))| Touch {
                        id: i as i64,
                        external_id: format!("t{i:02}").into(),
                        campaign_id: campaign,
                        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                            + Duration::minutes(minutes * 60),
                    })
                    .collect()
            })
        }

        proptest! {
            #[test]
            fn weights_are_non_negative_and_sum_to_one(
                mut touches in arb_touches(),
                model in 0usize..MODELS.len(),
                mql in prop::option::of(0i64..60),
                created in prop::option::of(0i64..60),
                effects in prop::collection::vec(0.0f64..1.0, 6),
            ) {
                sort_touches(&mut touches);
                let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
                let conversion = Conversion {
                    at: base + Duration::days(61),
                    mql_at: mql.map(|d| base + Duration::days(d)),
                    opportunity_created_at: created.map(|d| base + Duration::days(d)),
                    won: true,
                };
                let effects: HashMap<i64, f64> = effects.iter().enumerate().map(|(i, e)| (i as i64, *e)).collect();
                let w = weights(MODELS[model], &conversion, &touches, Params::default(), &effects);
                prop_assert_eq!(w.len(), touches.len());
                prop_assert!(w.iter().any(|x| *x > 0));
                prop_assert!((shares(&w).iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }

            #[test]
            fn weights_do_not_depend_on_input_order(touches in arb_touches(), model in 0usize..MODELS.len(), seed in any::<u64>()) {
                let mut sorted = touches.clone();
                sort_touches(&mut sorted);
                let mut shuffled = touches;
                let len = shuffled.len();
                for i in 0..len {
                    let j = (seed.wrapping_mul(i as u64 + 7) % len as u64) as usize;
                    shuffled.swap(i, j);
                }
                sort_touches(&mut shuffled);
                let conversion = Conversion { at: Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap(), mql_at: None, opportunity_created_at: None, won: false };
                let a = weights(MODELS[model], &conversion, &sorted, Params::default(), &HashMap::new());
                let b = weights(MODELS[model], &conversion, &shuffled, Params::default(), &HashMap::new());
                prop_assert_eq!(a, b);
            }
        }
    }
}
