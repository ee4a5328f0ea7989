//! Money is never lost: an amount split by weights is allocated in minor units by largest
//! remainder (SPEC §4). Each share |amount| × wᵢ is floored, the units left over go one each
//! to the largest remainders (remainders within 1e-9 are ties, won by the earlier item), and
//! a negative amount is allocated as its absolute value and negated.

/// Remainders closer than this are equal.
pub const TIE: f64 = 1e-9;

/// Fixed-point scale of the weights: products stay exact in i128 for any i64 amount.
const SCALE: i128 = 1 << 53;

/// Splits `amount` minor units by `weights` (non-negative, not all zero; they are
/// normalised). The parts sum exactly to `amount`, whatever its size or sign.
pub fn allocate(amount: i64, weights: &[f64]) -> Vec<i64> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        // Nothing to weigh by: equal shares.
        return allocate(amount, &vec![1.0; n]);
    }
    // Integer weights summing exactly to SCALE; the rounding slack goes to the heaviest.
    let mut fixed: Vec<i128> = weights
        .iter()
        .map(|w| {
            if w.is_finite() && *w > 0.0 {
                ((w / total) * SCALE as f64).round() as i128
            } else {
                0
            }
        })
        .collect();
    let slack = SCALE - fixed.iter().sum::<i128>();
    if let Some(heaviest) = (0..n).max_by(|a, b| fixed[*a].cmp(&fixed[*b]).then(b.cmp(a))) {
        fixed[heaviest] += slack;
    }
    let magnitude = i128::from(amount).abs();
    let mut parts: Vec<i128> = Vec::with_capacity(n);
    let mut remainders: Vec<f64> = Vec::with_capacity(n);
    for w in &fixed {
        let product = magnitude * w;
        parts.push(product / SCALE);
        remainders.push((product % SCALE) as f64 / SCALE as f64);
    }
    let mut left = magnitude - parts.iter().sum::<i128>();
    // Largest remainder first; within TIE the earlier item first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| {
        let (ra, rb) = (remainders[*a], remainders[*b]);
        if (ra - rb).abs() <= TIE {
            a.cmp(b)
        } else {
            rb.total_cmp(&ra)
        }
    });
    let mut k = 0;
    while left > 0 {
        parts[order[k % n]] += 1;
        left -= 1;
        k += 1;
    }
    parts
        .into_iter()
        .map(|p| {
            // |part| <= |amount| <= 2^63, and only i64::MIN's magnitude needs the full range.
            let signed = if amount < 0 { -p } else { p };
            i64::try_from(signed).unwrap_or(if amount < 0 { i64::MIN } else { i64::MAX })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn thirds_give_the_extra_cent_to_the_earliest() {
        assert_eq!(allocate(100, &[1.0, 1.0, 1.0]), vec![34, 33, 33]);
        assert_eq!(allocate(200, &[1.0, 1.0, 1.0]), vec![67, 67, 66]);
        assert_eq!(allocate(-100, &[1.0, 1.0, 1.0]), vec![-34, -33, -33]);
    }

    #[test]
    fn the_largest_remainder_wins_over_order() {
        // 0.4/0.2/0.4 of 101: 40.4, 20.2, 40.4 -> floors 40, 20, 40, one left: a tie of .4s,
        // the earlier one wins.
        assert_eq!(allocate(101, &[0.4, 0.2, 0.4]), vec![41, 20, 40]);
        // 0.15/0.85 of 10: 1.5 and 8.5 tie; the earlier wins.
        assert_eq!(allocate(10, &[0.15, 0.85]), vec![2, 8]);
        // 0.7/0.3 of 1: 0.7 beats 0.3.
        assert_eq!(allocate(1, &[0.3, 0.7]), vec![0, 1]);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let parts = allocate(i64::MAX, &[1.0, 2.0, 3.0]);
        assert_eq!(
            parts.iter().map(|p| i128::from(*p)).sum::<i128>(),
            i128::from(i64::MAX)
        );
        let parts = allocate(i64::MIN, &[1.0, 1.0]);
        assert_eq!(
            parts.iter().map(|p| i128::from(*p)).sum::<i128>(),
            i128::from(i64::MIN)
        );
        assert_eq!(allocate(0, &[0.5, 0.5]), vec![0, 0]);
        assert_eq!(allocate(7, &[]), Vec::<i64>::new());
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_amount(amount in any::<i64>(), weights in prop::collection::vec(0.0f64..1000.0, 1..12)) {
            let parts = allocate(amount, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(parts.iter().map(|p| i128::from(*p)).sum::<i128>(), i128::from(amount));
            for p in &parts {
                let same_sign = if amount >= 0 { *p >= 0 } else { *p <= 0 };
                prop_assert!(same_sign);
            }
        }

        #[test]
        fn each_part_is_within_one_unit_of_its_exact_share(amount in -1_000_000_000i64..1_000_000_000, weights in prop::collection::vec(0.01f64..100.0, 1..10)) {
            let total: f64 = weights.iter().sum();
            let parts = allocate(amount, &weights);
            for (p, w) in parts.iter().zip(&weights) {
                let exact = amount as f64 * w / total;
                prop_assert!((*p as f64 - exact).abs() < 1.0 + 1e-6, "{} vs {}", p, exact);
            }
        }
    }
}
