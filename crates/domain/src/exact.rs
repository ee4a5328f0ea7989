//! Exact fractional quantities: a conversion credited to a touch is wᵢ / Σw of one conversion,
//! a campaign's conversions are a sum of such fractions, and money that depends on them
//! (a lead bonus per qualified lead, a cost per conversion, a cost per sourced lead) is
//! computed from the exact sum and rounded once, half-to-even. Floats appear only at the
//! edge, when a count of conversions is printed (rounded to `DISPLAY_DIGITS` places).
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

use std::collections::BTreeMap;

use num_bigint::BigUint;
use num_integer::Integer;
use num_traits::{ToPrimitive, Zero};

/// Decimal places a fractional count (conversions, qualified leads) is printed with.
pub const DISPLAY_DIGITS: u32 = 12;

/// A non-negative fraction `num / den`, `den > 0`, kept in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    pub num: u128,
    pub den: u128,
}

impl Fraction {
    pub fn new(num: u128, den: u128) -> Fraction {
        let den = den.max(1);
        let g = num.gcd(&den).max(1);
        Fraction {
            num: num / g,
            den: den / g,
        }
    }

    #[cfg(test)]
    pub fn whole(n: u128) -> Fraction {
        Fraction { num: n, den: 1 }
    }

    /// The value rounded half-to-even to `DISPLAY_DIGITS` places, as the nearest float.
    pub fn to_f64(self) -> f64 {
        let mut sum = ExactSum::default();
        sum.add(self);
        sum.to_f64()
    }
}

/// An exact sum of fractions. Terms are grouped by denominator (models give few distinct
/// ones: small integers for the rational models, 2^62 for the quantized ones), so adding is
/// cheap and the big-number work happens once, when the sum is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExactSum {
    by_den: BTreeMap<u128, BigUint>,
}

impl ExactSum {
    pub fn add(&mut self, f: Fraction) {
        if f.num == 0 {
            return;
        }
        *self.by_den.entry(f.den).or_default() += f.num;
    }

    pub fn add_sum(&mut self, other: &ExactSum) {
        for (den, num) in &other.by_den {
            *self.by_den.entry(*den).or_default() += num;
        }
    }

    pub fn is_zero(&self) -> bool {
        self.by_den.values().all(|n| n.is_zero())
    }

    /// The sum as one fraction (numerator, denominator) in lowest terms.
    pub fn fraction(&self) -> (BigUint, BigUint) {
        let mut den = BigUint::from(1u32);
        for d in self.by_den.keys() {
            den = den.lcm(&BigUint::from(*d));
        }
        let mut num = BigUint::zero();
        for (d, n) in &self.by_den {
            num += n * (&den / BigUint::from(*d));
        }
        let g = num.gcd(&den);
        if g > BigUint::from(1u32) {
            (num / &g, den / g)
        } else {
            (num, den)
        }
    }

    /// The sum rounded half-to-even to `DISPLAY_DIGITS` places, as the nearest float.
    pub fn to_f64(&self) -> f64 {
        self.to_decimal_string().parse().unwrap_or(f64::MAX)
    }

    /// The sum rounded half-to-even to `DISPLAY_DIGITS` places, scaled by 10^DISPLAY_DIGITS,
    /// in machine integers when everything fits (a report prints thousands of rows).
    fn scaled_u128(&self) -> Option<u128> {
        let mut den: u128 = 1;
        for d in self.by_den.keys() {
            den = (den / den.gcd(d)).checked_mul(*d)?;
        }
        let mut num: u128 = 0;
        for (d, n) in &self.by_den {
            num = num.checked_add(n.to_u128()?.checked_mul(den / d)?)?;
        }
        let num = num.checked_mul(10u128.pow(DISPLAY_DIGITS))?;
        let (q, r) = (num / den, num % den);
        let twice = r.checked_mul(2)?;
        Some(if twice > den || (twice == den && q % 2 == 1) {
            q + 1
        } else {
            q
        })
    }

    /// `scaled_u128` without a common denominator, for sums whose denominators' LCM passes
    /// 128 bits (an account's deal split over 1…200 touches has ~200 of them): each term's
    /// whole part exactly, its remainder as a fraction of 2^64 rounded down (an error under 1
    /// per term, so the true fractional part lies in [f, f + terms)). When that interval does
    /// not contain ½ (nor reach 1) the rounding is decided exactly; else None, and the caller
    /// computes the exact fraction.
    fn scaled_by_terms(&self) -> Option<u128> {
        const ONE: u128 = 1 << 64;
        let scale = 10u128.pow(DISPLAY_DIGITS);
        // frac in units of 2^-64; err bounds how far below the true fractional part it is.
        let (mut whole, mut frac, mut err): (u128, u128, u128) = (0, 0, 0);
        for (d, n) in &self.by_den {
            if *d >= ONE {
                return None;
            }
            let x = n.to_u128()?.checked_mul(scale)?;
            match (u64::try_from(x), u32::try_from(*d)) {
                // Most terms: machine words (u128 division is ten times slower).
                (Ok(x), Ok(d)) => {
                    let d = u64::from(d);
                    whole = whole.checked_add(u128::from(x / d))?;
                    frac = frac.checked_add(u128::from(((x % d) << 32) / d) << 32)?;
                    err += 1 << 32;
                }
                _ => {
                    whole = whole.checked_add(x / d)?;
                    frac = frac.checked_add(((x % d) << 64) / d)?;
                    err += 1;
                }
            }
        }
        whole = whole.checked_add(frac >> 64)?;
        let f = frac & (ONE - 1);
        let half = ONE / 2;
        if f.checked_add(err)? >= ONE {
            return None;
        }
        if f + err <= half {
            Some(whole)
        } else if f > half {
            whole.checked_add(1)
        } else {
            None
        }
    }

    /// The sum rounded half-to-even to `DISPLAY_DIGITS` places, printed without trailing
    /// zeros ("2.55", "1", "0.333333333333").
    pub fn to_decimal_string(&self) -> String {
        let text = match self.scaled_by_terms().or_else(|| self.scaled_u128()) {
            Some(scaled) => scaled.to_string(),
            None => {
                let (num, den) = self.fraction();
                round_half_even(num * BigUint::from(10u32).pow(DISPLAY_DIGITS), &den).to_string()
            }
        };
        display(&text)
    }

    /// `amount × sum`, rounded half-to-even to the minor unit; None when it does not fit.
    pub fn times(&self, amount: i64) -> Option<i64> {
        let (num, den) = self.fraction();
        let magnitude = round_half_even(num * BigUint::from(amount.unsigned_abs()), &den);
        signed(magnitude, amount < 0)
    }

    /// `amount / sum`, rounded half-to-even to the minor unit; None when the sum is 0 or the
    /// quotient does not fit.
    pub fn divide(&self, amount: i64) -> Option<i64> {
        let (num, den) = self.fraction();
        if num.is_zero() {
            return None;
        }
        let magnitude = round_half_even(den * BigUint::from(amount.unsigned_abs()), &num);
        signed(magnitude, amount < 0)
    }
}

/// A sum scaled by 10^DISPLAY_DIGITS (decimal digits), printed without trailing zeros.
fn display(text: &str) -> String {
    let digits = DISPLAY_DIGITS as usize;
    let padded = format!("{text:0>width$}", width = digits + 1);
    let (int, frac) = padded.split_at(padded.len() - digits);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

fn signed(magnitude: BigUint, negative: bool) -> Option<i64> {
    let m = magnitude.to_u64()?;
    if negative {
        0i64.checked_sub_unsigned(m)
    } else {
        i64::try_from(m).ok()
    }
}

/// `num / den` rounded to the nearest integer, ties to even.
fn round_half_even(num: BigUint, den: &BigUint) -> BigUint {
    let (q, r) = num.div_rem(den);
    let twice: BigUint = r << 1u32;
    if twice > *den || (twice == *den && q.is_odd()) {
        q + 1u32
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(parts: &[(u128, u128)]) -> ExactSum {
        let mut s = ExactSum::default();
        for (n, d) in parts {
            s.add(Fraction::new(*n, *d));
        }
        s
    }

    #[test]
    fn thirds_add_up_to_one_exactly() {
        let s = sum(&[(1, 3), (1, 3), (1, 3)]);
        assert_eq!(s.fraction(), (BigUint::from(1u32), BigUint::from(1u32)));
        assert_eq!(s.to_f64(), 1.0);
        assert_eq!(sum(&[(1, 3)]).to_f64(), 0.333_333_333_333);
        assert_eq!(sum(&[(2, 3)]).to_f64(), 0.666_666_666_667);
        assert_eq!(sum(&[(2, 3)]).to_decimal_string(), "0.666666666667");
        // 0.3 + 0.25 + 2 = 2.55, not 2.5500000000000003.
        assert_eq!(sum(&[(3, 10), (1, 4), (2, 1)]).to_decimal_string(), "2.55");
        assert_eq!(ExactSum::default().to_decimal_string(), "0");
    }

    #[test]
    fn money_from_fractions_rounds_once_half_to_even() {
        // 1/6 of a lead × 3¢ = 0.5¢ exactly: half to even is 0¢; 1/2 × 3¢ = 1.5¢ → 2¢.
        assert_eq!(sum(&[(1, 6)]).times(3), Some(0));
        assert_eq!(sum(&[(1, 2)]).times(3), Some(2));
        assert_eq!(sum(&[(1, 2)]).times(5), Some(2));
        assert_eq!(sum(&[(1, 2)]).times(-3), Some(-2));
        // 0.3 + 0.2 leads × 5¢ = 2.5¢ → 2¢.
        assert_eq!(sum(&[(3, 10), (1, 5)]).times(5), Some(2));
        // A cost of 10¢ per 3 conversions: 3.33…¢ → 3¢; per 4 → 2.5¢ → 2¢; per 0: none.
        assert_eq!(sum(&[(1, 1), (2, 1)]).divide(10), Some(3));
        assert_eq!(sum(&[(4, 1)]).divide(10), Some(2));
        assert_eq!(sum(&[(4, 1)]).divide(14), Some(4));
        assert_eq!(ExactSum::default().divide(10), None);
        // 10¢ over 2/3 of a conversion: 15¢.
        assert_eq!(sum(&[(2, 3)]).divide(10), Some(15));
    }

    #[test]
    fn wasted_spend_case_from_the_audit() {
        // 2¢ over 3 leads plus 5¢ over 6 leads = 2/3 + 5/6 = 1.5¢ exactly → 2¢.
        assert_eq!(sum(&[(2, 3), (5, 6)]).times(1), Some(2));
    }

    #[test]
    fn many_denominators_stay_exact() {
        let mut s = ExactSum::default();
        for n in 1..=200u128 {
            for _ in 0..n {
                s.add(Fraction::new(1, n));
            }
        }
        assert_eq!(s.to_f64(), 200.0);
        assert_eq!(s.times(1), Some(200));
        let q = 1u128 << 62;
        let s = sum(&[(q / 3, q), (q / 3, q), (q - 2 * (q / 3), q)]);
        assert_eq!(s.to_f64(), 1.0);
    }

    #[test]
    fn overflow_is_none() {
        assert_eq!(sum(&[(2, 1)]).times(i64::MAX), None);
        assert_eq!(sum(&[(1, 2)]).divide(i64::MAX), None);
        assert_eq!(sum(&[(1, 1)]).times(i64::MIN), Some(i64::MIN));
    }

    #[test]
    fn the_machine_integer_printing_agrees_with_the_big_one() {
        let big = |s: &ExactSum| {
            let (num, den) = s.fraction();
            round_half_even(num * BigUint::from(10u32).pow(DISPLAY_DIGITS), &den)
        };
        let q = 1u128 << 62;
        let mut cases = vec![
            sum(&[(1, 3), (1, 7), (5, 11)]),
            sum(&[(1, 2), (1, 8)]),
            sum(&[(q / 3, q), (q - 1, q), (7, 9)]),
            ExactSum::default(),
        ];
        let mut many = ExactSum::default();
        for n in 1..=60u128 {
            many.add(Fraction::new(n, n + 1));
        }
        cases.push(many);
        for s in &cases {
            if let Some(fast) = s.scaled_u128() {
                assert_eq!(BigUint::from(fast), big(s), "{s:?}");
            }
        }
        // Beyond u128 the big path prints it.
        let mut huge = ExactSum::default();
        for p in [(1u128 << 100) + 1, (1u128 << 101) + 3, (1u128 << 102) + 5] {
            huge.add(Fraction::new(1, p));
        }
        assert_eq!(huge.scaled_u128(), None);
        assert_eq!(huge.to_decimal_string(), "0");
    }

    #[test]
    fn the_term_by_term_printing_agrees_with_the_exact_one() {
        let big = |s: &ExactSum| {
            let (num, den) = s.fraction();
            round_half_even(num * BigUint::from(10u32).pow(DISPLAY_DIGITS), &den)
        };
        // Denominators 1…200 (an account's splits): their LCM passes 128 bits.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut decided = 0;
        for _ in 0..300 {
            let mut s = ExactSum::default();
            for _ in 0..(1 + next(400)) {
                let den = 1 + next(200);
                s.add(Fraction::new(1 + u128::from(next(den)), u128::from(den)));
            }
            if let Some(fast) = s.scaled_by_terms() {
                decided += 1;
                assert_eq!(BigUint::from(fast), big(&s), "{s:?}");
            }
            assert_eq!(s.to_decimal_string(), display(&big(&s).to_string()));
        }
        assert!(
            decided > 290,
            "the fast path decides almost every sum: {decided}"
        );
        // Exactly a half at the 13th place: undecidable by terms, printed exactly.
        let mut tie = ExactSum::default();
        tie.add(Fraction::new(1, 2 * 10u128.pow(DISPLAY_DIGITS)));
        assert_eq!(tie.scaled_by_terms(), None);
        assert_eq!(tie.to_decimal_string(), "0");
    }
}
