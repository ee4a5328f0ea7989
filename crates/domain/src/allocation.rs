//! Money is never lost: an amount split by weights is allocated in minor units by largest
//! remainder (SPEC §4). Each share |amount| × wᵢ / Σw is floored, the units left over go one
//! each to the largest remainders (each remainder rounded to 9 decimal places, half-to-even;
//! equal rounded remainders are ties, won by the earlier item), and a negative amount is
//! allocated as its absolute value and negated.
//!
//! Weights are exact non-negative integers (see `attribution::weights`), so every share and
//! remainder is an exact rational: equal weights give equal remainders whatever the amount,
//! and the order of the remainders is a total order. No float is used here.
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

/// Decimal places a remainder is rounded to before remainders are compared (SPEC §4).
const REMAINDER_DIGITS: u128 = 1_000_000_000;

use super::money::div_round_half_even;

/// Splits `amount` minor units by the integer `weights` (each share is wᵢ / Σw). The parts
/// sum exactly to `amount`, whatever its size or sign. With no weight above zero the parts
/// are equal shares. Exact for any i64 amount and any number of parts below 2^34.
pub fn allocate(amount: i64, weights: &[u64]) -> Vec<i64> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if total == 0 {
        // Nothing to weigh by: equal shares.
        return allocate(amount, &vec![1; n]);
    }
    let magnitude = u128::from(amount.unsigned_abs());
    let mut parts: Vec<u128> = Vec::with_capacity(n);
    // Each remainder as a fraction of `total`, rounded to 9 decimal places half-to-even.
    let mut rounded: Vec<i128> = Vec::with_capacity(n);
    for w in weights {
        // |amount| < 2^64 and w < 2^64: the product fits in u128.
        let product = magnitude * u128::from(*w);
        parts.push(product / total);
        // remainder < total < 2^98 (n < 2^34): times 10^9 stays below 2^128, and both fit
        // i128 (below 2^127) for the one rounding rule of `money`.
        let scaled = i128::try_from((product % total) * REMAINDER_DIGITS).unwrap_or(i128::MAX);
        let of = i128::try_from(total).unwrap_or(i128::MAX);
        rounded.push(div_round_half_even(scaled, of).unwrap_or(i128::MAX));
    }
    let floors: u128 = parts.iter().sum();
    let left = magnitude - floors;
    // Largest rounded remainder first; equal ones in item order. A total order.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| rounded[*b].cmp(&rounded[*a]).then(a.cmp(b)));
    // Fewer units are left than there are parts (each remainder is below one unit).
    for i in order.iter().take(usize::try_from(left).unwrap_or(n)) {
        parts[*i] += 1;
    }
    parts
        .into_iter()
        .map(|p| {
            // |part| <= |amount| <= 2^63, and only i64::MIN's magnitude needs the full range.
            if amount < 0 {
                0i64.checked_sub_unsigned(u64::try_from(p).unwrap_or(u64::MAX))
                    .unwrap_or(i64::MIN)
            } else {
                i64::try_from(p).unwrap_or(i64::MAX)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sum(parts: &[i64]) -> i128 {
        parts.iter().map(|p| i128::from(*p)).sum()
    }

    #[test]
    fn thirds_give_the_extra_cent_to_the_earliest() {
        assert_eq!(allocate(100, &[1, 1, 1]), vec![34, 33, 33]);
        assert_eq!(allocate(200, &[1, 1, 1]), vec![67, 67, 66]);
        assert_eq!(allocate(-100, &[1, 1, 1]), vec![-34, -33, -33]);
    }

    #[test]
    fn the_largest_remainder_wins_over_order() {
        // 0.4/0.2/0.4 of 101: 40.4, 20.2, 40.4 -> floors 40, 20, 40, one left: a tie of .4s,
        // the earlier one wins.
        assert_eq!(allocate(101, &[2, 1, 2]), vec![41, 20, 40]);
        // 0.15/0.85 of 10: 1.5 and 8.5 tie; the earlier wins.
        assert_eq!(allocate(10, &[15, 85]), vec![2, 8]);
        // 0.7/0.3 of 1: 0.7 beats 0.3.
        assert_eq!(allocate(1, &[3, 7]), vec![0, 1]);
    }

    #[test]
    fn fifty_thousand_over_seven_touches_gives_the_five_cents_to_the_five_earliest() {
        // 5,000,000 / 7 = 714,285 remainder 5: five equal remainders of 5/7, five cents.
        let parts = allocate(5_000_000, &[1; 7]);
        assert_eq!(
            parts,
            vec![714_286, 714_286, 714_286, 714_286, 714_286, 714_285, 714_285]
        );
        // POSITION_BASED over 7 touches: 0.4, five middle touches sharing 0.2, 0.4
        // (integer weights 10, 1, 1, 1, 1, 1, 10 of 25).
        let parts = allocate(5_000_003, &[10, 1, 1, 1, 1, 1, 10]);
        assert_eq!(sum(&parts), 5_000_003);
        // 2,000,001.2 each end, 200,000.12 each middle: the ends' .2 ties go to the first,
        // then the middles' .12 in order.
        assert_eq!(
            parts,
            vec![2_000_002, 200_000, 200_000, 200_000, 200_000, 200_000, 2_000_001]
        );
    }

    #[test]
    fn remainders_equal_to_nine_places_are_ties() {
        // 1 unit over weights 1_000_000_000 and 1_000_000_001 (out of 2_000_000_001):
        // remainders 0.4999999998 and 0.5000000002 round to 0.500000000 and 0.500000000.
        assert_eq!(allocate(1, &[1_000_000_000, 1_000_000_001]), vec![1, 0]);
        // A larger difference is not a tie.
        assert_eq!(allocate(1, &[1_000, 1_001]), vec![0, 1]);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let parts = allocate(i64::MAX, &[1, 2, 3]);
        assert_eq!(sum(&parts), i128::from(i64::MAX));
        let parts = allocate(i64::MIN, &[1, 1]);
        assert_eq!(sum(&parts), i128::from(i64::MIN));
        assert_eq!(allocate(i64::MIN, &[1, 0]), vec![i64::MIN, 0]);
        let parts = allocate(i64::MIN, &[u64::MAX, u64::MAX, 1]);
        assert_eq!(sum(&parts), i128::from(i64::MIN));
        assert_eq!(allocate(0, &[1, 1]), vec![0, 0]);
        assert_eq!(allocate(7, &[0, 0]), vec![4, 3]);
        assert_eq!(allocate(7, &[]), Vec::<i64>::new());
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_amount(amount in any::<i64>(), weights in prop::collection::vec(any::<u64>(), 1..12)) {
            let parts = allocate(amount, &weights);
            prop_assert_eq!(parts.len(), weights.len());
            prop_assert_eq!(sum(&parts), i128::from(amount));
            for p in &parts {
                let same_sign = if amount >= 0 { *p >= 0 } else { *p <= 0 };
                prop_assert!(same_sign);
            }
        }

        #[test]
        fn equal_weights_tie_exactly_at_any_size(
            amount in -1_000_000_000_000_000i64..=1_000_000_000_000_000,
            n in 1usize..=500,
            weight in 1u64..=(1 << 53),
        ) {
            let parts = allocate(amount, &vec![weight; n]);
            prop_assert_eq!(sum(&parts), i128::from(amount));
            // Equal weights: every part is the floor or one more, and the extra units go
            // to the earliest parts.
            let base = amount / n as i64;
            let extra = usize::try_from((amount % n as i64).unsigned_abs()).unwrap();
            let step = amount.signum();
            for (i, p) in parts.iter().enumerate() {
                let want = if i < extra { base + step } else { base };
                prop_assert_eq!(*p, want, "part {} of {}", i, n);
            }
        }

        #[test]
        fn each_part_is_within_one_unit_of_its_exact_share(amount in -1_000_000_000i64..1_000_000_000, weights in prop::collection::vec(1u64..1_000_000, 1..10)) {
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            let parts = allocate(amount, &weights);
            for (p, w) in parts.iter().zip(&weights) {
                // |p·total − amount·w| < total: within one unit of the exact share.
                let diff = i128::from(*p) * total - i128::from(amount) * i128::from(*w);
                prop_assert!(diff.abs() < total, "{} vs {}/{}", p, i128::from(amount) * i128::from(*w), total);
            }
        }

        #[test]
        fn the_order_is_a_total_order(weights in prop::collection::vec(0u64..50, 2..40), amount in 0i64..10_000) {
            // Same input, same answer; permuting equal weights among themselves changes
            // nothing about who gets the units (they go in item order).
            let a = allocate(amount, &weights);
            let b = allocate(amount, &weights);
            prop_assert_eq!(&a, &b);
            // A larger weight never gets fewer units than a smaller one.
            for i in 0..weights.len() {
                for j in 0..weights.len() {
                    if weights[i] > weights[j] {
                        prop_assert!(a[i] >= a[j]);
                    }
                }
            }
        }
    }
}
