//! Duration statistics of the two timeframes (SPEC §3): count, median, p90 and mean in days,
//! percentiles by linear interpolation between closest ranks (numpy's default).

/// The `p`-th quantile (0..=1) of `sorted` values, or None when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

#[derive(Debug, Clone, PartialEq)]
pub struct DurationStats {
    pub count: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub mean: Option<f64>,
}

pub fn duration_stats(mut days: Vec<f64>) -> DurationStats {
    days.sort_by(f64::total_cmp);
    DurationStats {
        count: days.len(),
        median: percentile(&days, 0.5),
        p90: percentile(&days, 0.9),
        mean: (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64),
    }
}

/// Days (fractional) between two instants.
pub fn days_between(from: chrono::DateTime<chrono::Utc>, to: chrono::DateTime<chrono::Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 86_400_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_numpy_linear_interpolation() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(2.5));
        assert!((percentile(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 0.9), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
        let s = duration_stats(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!((s.count, s.median, s.mean), (4, Some(2.5), Some(2.5)));
    }

    proptest! {
        #[test]
        fn a_percentile_lies_between_min_and_max_and_grows_with_p(mut v in prop::collection::vec(-1e6f64..1e6, 1..50), p in 0.0f64..1.0, q in 0.0f64..1.0) {
            v.sort_by(f64::total_cmp);
            let x = percentile(&v, p).unwrap();
            prop_assert!(x >= v[0] && x <= v[v.len() - 1]);
            let (lo, hi) = if p <= q { (p, q) } else { (q, p) };
            prop_assert!(percentile(&v, lo).unwrap() <= percentile(&v, hi).unwrap() + 1e-9);
        }
    }
}
