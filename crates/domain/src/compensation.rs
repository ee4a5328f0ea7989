//! Marketer pay (SPEC §5) as a pure function: from a plan, the credits of the marketer's
//! campaigns and their qualified leads, the statement's lines in order and its total. Every
//! line is basis × rate in exact decimal arithmetic, rounded half to even to the minor unit.
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

use chrono::NaiveDate;

use super::exact::ExactSum;
use super::money::{div_round_half_even, format_units, Decimal, MoneyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    Commission,
    Accelerator,
    LeadBonus,
    Cap,
    Clawback,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Commission => "COMMISSION",
            LineKind::Accelerator => "ACCELERATOR",
            LineKind::LeadBonus => "LEAD_BONUS",
            LineKind::Cap => "CAP",
            LineKind::Clawback => "CLAWBACK",
        }
    }
}

/// The money terms of a plan, in minor units and exact rates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub revenue_rate: Decimal,
    pub quota: Option<i64>,
    pub accelerator_rate: Option<Decimal>,
    pub qualified_lead_bonus: i64,
    pub cap: Option<i64>,
    pub clawback_days: i64,
}

/// One revenue event's credit to one of the marketer's campaigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCredit {
    pub booked_on: NaiveDate,
    pub revenue_external_id: String,
    pub campaign_external_id: String,
    pub opportunity_external_id: String,
    pub campaign_id: i64,
    pub opportunity_id: i64,
    pub credit: i64,
    /// Whether the event is a refund (a negative amount).
    pub refund: bool,
    /// When the opportunity's first positive revenue was booked.
    pub first_positive_booked_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: LineKind,
    pub campaign_id: Option<i64>,
    pub opportunity_id: Option<i64>,
    pub basis: Option<i64>,
    /// The rate as an exact decimal string ("0.02"), or the number of qualified leads.
    pub rate: Option<String>,
    pub amount: i64,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub attributed_revenue: i64,
    pub qualified_leads: f64,
    pub total: i64,
    pub lines: Vec<Line>,
}

/// basis × rate, rounded half to even to the minor unit.
pub fn apply_rate(basis: i64, rate: &Decimal) -> Result<i64, MoneyError> {
    let scale = 10i128
        .checked_pow(rate.scale)
        .ok_or(MoneyError::Arithmetic)?;
    let product = i128::from(basis)
        .checked_mul(rate.units)
        .ok_or(MoneyError::Arithmetic)?;
    let rounded = div_round_half_even(product, scale).ok_or(MoneyError::Arithmetic)?;
    i64::try_from(rounded).map_err(|_| MoneyError::Arithmetic)
}

/// a − b, exactly.
pub fn rate_difference(a: &Decimal, b: &Decimal) -> Decimal {
    let scale = a.scale.max(b.scale);
    let up = |d: &Decimal| d.units * 10i128.pow(scale - d.scale);
    Decimal {
        units: up(a) - up(b),
        scale,
    }
}

fn rate_text(rate: &Decimal) -> String {
    format_units(rate.units, rate.scale)
}

/// Builds a statement. `credits` are the credits of the marketer's campaigns for the revenue
/// events booked in the period, in any order; `qualified_leads` their attributed SALs.
pub fn statement(
    terms: &Terms,
    credits: &[EventCredit],
    qualified: &ExactSum,
    currency: &str,
) -> Result<Statement, MoneyError> {
    let qualified_leads = qualified.to_f64();
    let money = |cents: i64| {
        format!(
            "{} {currency}",
            super::money::Money(cents).to_decimal_string(currency)
        )
    };
    let add = |a: i64, b: i64| a.checked_add(b).ok_or(MoneyError::Arithmetic);
    let mut ordered: Vec<&EventCredit> = credits.iter().collect();
    ordered.sort_by(|a, b| {
        (a.booked_on, &a.revenue_external_id, &a.campaign_external_id).cmp(&(
            b.booked_on,
            &b.revenue_external_id,
            &b.campaign_external_id,
        ))
    });
    let rate = rate_text(&terms.revenue_rate);
    let mut lines = Vec::new();
    let mut attributed = 0i64;
    for c in ordered.iter().filter(|c| !c.refund && c.credit > 0) {
        attributed = add(attributed, c.credit)?;
        lines.push(Line {
            kind: LineKind::Commission,
            campaign_id: Some(c.campaign_id),
            opportunity_id: Some(c.opportunity_id),
            basis: Some(c.credit),
            rate: Some(rate.clone()),
            amount: apply_rate(c.credit, &terms.revenue_rate)?,
            description: format!(
                "{rate} × {} credited to {} from revenue {} on {} booked {}",
                money(c.credit),
                c.campaign_external_id,
                c.revenue_external_id,
                c.opportunity_external_id,
                c.booked_on
            ),
        });
    }
    if let (Some(quota), Some(accelerator)) = (terms.quota, &terms.accelerator_rate) {
        let above = attributed
            .checked_sub(quota)
            .ok_or(MoneyError::Arithmetic)?
            .max(0);
        if above > 0 {
            let extra = rate_difference(accelerator, &terms.revenue_rate);
            lines.push(Line {
                kind: LineKind::Accelerator,
                campaign_id: None,
                opportunity_id: None,
                basis: Some(above),
                rate: Some(rate_text(&extra)),
                amount: apply_rate(above, &extra)?,
                description: format!(
                    "({} − {rate}) × {} attributed above the quota of {}",
                    rate_text(accelerator),
                    money(above),
                    money(quota)
                ),
            });
        }
    }
    // Exact: the qualified leads are an exact sum of fractions, times the bonus, rounded
    // half-to-even once.
    let bonus = qualified
        .times(terms.qualified_lead_bonus)
        .ok_or(MoneyError::Arithmetic)?;
    if bonus > 0 {
        lines.push(Line {
            kind: LineKind::LeadBonus,
            campaign_id: None,
            opportunity_id: None,
            basis: Some(terms.qualified_lead_bonus),
            rate: Some(qualified.to_decimal_string()),
            amount: bonus,
            description: format!(
                "{} attributed qualified leads (SAL) × {}",
                qualified.to_decimal_string(),
                money(terms.qualified_lead_bonus)
            ),
        });
    }
    if let Some(cap) = terms.cap {
        let earned = lines.iter().try_fold(0i64, |acc, l| add(acc, l.amount))?;
        if earned > cap {
            lines.push(Line {
                kind: LineKind::Cap,
                campaign_id: None,
                opportunity_id: None,
                basis: None,
                rate: None,
                amount: cap - earned,
                description: format!("capped at {} (earned {})", money(cap), money(earned)),
            });
        }
    }
    for c in ordered.iter().filter(|c| c.refund && c.credit < 0) {
        let within = c
            .first_positive_booked_on
            .is_some_and(|first| (c.booked_on - first).num_days() <= terms.clawback_days);
        if !within {
            continue;
        }
        lines.push(Line {
            kind: LineKind::Clawback,
            campaign_id: Some(c.campaign_id),
            opportunity_id: Some(c.opportunity_id),
            basis: Some(c.credit),
            rate: Some(rate.clone()),
            amount: apply_rate(c.credit, &terms.revenue_rate)?,
            description: format!(
                "{rate} × {} refunded on {} via {} ({} days after its first booking, within {})",
                money(c.credit),
                c.opportunity_external_id,
                c.revenue_external_id,
                c.first_positive_booked_on
                    .map(|f| (c.booked_on - f).num_days())
                    .unwrap_or(0),
                terms.clawback_days
            ),
        });
    }
    let total = lines.iter().try_fold(0i64, |acc, l| add(acc, l.amount))?;
    Ok(Statement {
        attributed_revenue: attributed,
        qualified_leads,
        total,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Fraction;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    fn day(n: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, n).unwrap()
    }

    fn credit(ext: &str, on: u32, cents: i64, first: Option<u32>) -> EventCredit {
        EventCredit {
            booked_on: day(on),
            revenue_external_id: ext.into(),
            campaign_external_id: "c1".into(),
            opportunity_external_id: "o1".into(),
            campaign_id: 1,
            opportunity_id: 1,
            credit: cents,
            refund: cents < 0,
            first_positive_booked_on: first.map(day),
        }
    }

    fn terms() -> Terms {
        Terms {
            revenue_rate: d("0.02"),
            quota: None,
            accelerator_rate: None,
            qualified_lead_bonus: 2500,
            cap: None,
            clawback_days: 10,
        }
    }

    #[test]
    fn commission_rounds_half_to_even_both_ways() {
        // 2% of 125 cents = 2.5 → 2 (even); 2% of 175 cents = 3.5 → 4 (even).
        let s = statement(
            &terms(),
            &[credit("r1", 1, 125, None), credit("r2", 2, 175, None)],
            &ExactSum::default(),
            "USD",
        )
        .unwrap();
        let amounts: Vec<i64> = s.lines.iter().map(|l| l.amount).collect();
        assert_eq!(amounts, vec![2, 4]);
        assert_eq!(s.total, 6);
        assert_eq!(s.attributed_revenue, 300);
    }

    #[test]
    fn the_accelerator_pays_the_extra_rate_above_quota() {
        let t = Terms {
            quota: Some(100_000),
            accelerator_rate: Some(d("0.05")),
            ..terms()
        };
        let s = statement(
            &t,
            &[credit("r1", 1, 60_000, None), credit("r2", 2, 70_000, None)],
            &ExactSum::default(),
            "USD",
        )
        .unwrap();
        let acc = s
            .lines
            .iter()
            .find(|l| l.kind == LineKind::Accelerator)
            .unwrap();
        assert_eq!(acc.basis, Some(30_000));
        assert_eq!(acc.rate.as_deref(), Some("0.03"));
        assert_eq!(acc.amount, 900);
        assert_eq!(s.total, 1200 + 1400 + 900);
    }

    #[test]
    fn a_cap_brings_lines_one_to_three_down_and_clawbacks_follow_it() {
        let t = Terms {
            cap: Some(2_000),
            ..terms()
        };
        let s = statement(
            &t,
            &[
                credit("r1", 1, 100_000, None),
                credit("r2", 5, -10_000, Some(1)),
            ],
            &{
                let mut one = ExactSum::default();
                one.add(Fraction::whole(1));
                one
            },
            "USD",
        )
        .unwrap();
        let kinds: Vec<&str> = s.lines.iter().map(|l| l.kind.as_str()).collect();
        assert_eq!(kinds, vec!["COMMISSION", "LEAD_BONUS", "CAP", "CLAWBACK"]);
        // 2000 + 2500 = 4500 earned, capped to 2000, then the clawback of 200.
        assert_eq!(s.lines[2].amount, -2_500);
        assert_eq!(s.total, 2_000 - 200);
    }

    #[test]
    fn a_clawback_counts_only_inside_the_window() {
        let s = statement(
            &terms(),
            &[
                credit("r1", 1, 10_000, None),
                credit("r2", 11, -1_000, Some(1)),
            ],
            &ExactSum::default(),
            "USD",
        )
        .unwrap();
        assert_eq!(
            s.lines.last().unwrap().kind,
            LineKind::Clawback,
            "10 days after: inside"
        );
        let s = statement(
            &terms(),
            &[
                credit("r1", 1, 10_000, None),
                credit("r2", 12, -1_000, Some(1)),
            ],
            &ExactSum::default(),
            "USD",
        )
        .unwrap();
        assert!(
            s.lines.iter().all(|l| l.kind != LineKind::Clawback),
            "11 days after: outside"
        );
    }

    #[test]
    fn the_lead_bonus_multiplies_fractional_leads() {
        // 5 + 1/3 leads × 25.00 = 133.333… → 133.33.
        let mut leads = ExactSum::default();
        leads.add(Fraction::whole(5));
        leads.add(Fraction::new(1, 3));
        let s = statement(&terms(), &[], &leads, "USD").unwrap();
        assert_eq!(s.lines[0].amount, 13_333);
        assert_eq!(s.lines[0].rate.as_deref(), Some("5.333333333333"));
    }

    #[test]
    fn a_lead_bonus_landing_exactly_on_a_half_cent_rounds_to_even() {
        // 0.3 + 0.2 + 1/6 + 1/3 = 1 lead... plus 1/2: 1.5 leads × 0.01 = 1.5¢ → 2¢;
        // 1/2 lead × 0.05 = 2.5¢ → 2¢ (half to even, not up, and not truncated).
        let mut t = terms();
        t.qualified_lead_bonus = 1;
        let mut leads = ExactSum::default();
        for (n, d) in [(3, 10), (1, 5), (1, 6), (1, 3), (1, 2)] {
            leads.add(Fraction::new(n, d));
        }
        let s = statement(&t, &[], &leads, "USD").unwrap();
        assert_eq!(s.lines[0].amount, 2);
        assert_eq!(s.qualified_leads, 1.5);
        t.qualified_lead_bonus = 5;
        let mut half = ExactSum::default();
        half.add(Fraction::new(1, 2));
        let s = statement(&t, &[], &half, "USD").unwrap();
        assert_eq!(s.lines[0].amount, 2);
        // 1/6 lead × 3¢ = 0.5¢ → 0¢: no line at all.
        t.qualified_lead_bonus = 3;
        let mut sixth = ExactSum::default();
        sixth.add(Fraction::new(1, 6));
        let s = statement(&t, &[], &sixth, "USD").unwrap();
        assert!(s.lines.is_empty());
    }
}
