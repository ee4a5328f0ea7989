//! An attribution report (SPEC §4) from the facts of one stage and period: weights per
//! conversion, values split by largest remainder, rows grouped by campaign, channel or month.
//! Rows plus other plus the unattributed part always sum exactly to the total revenue.
#![deny(clippy::float_arithmetic, clippy::cast_possible_truncation)]

use chrono::Datelike;
use std::collections::{BTreeMap, HashMap};

use super::allocation::allocate;
use super::attribution::{weights, Conversion, Model, Params, Touch, Touches};
use super::exact::{ExactSum, Fraction};
use super::money::MoneyError;

/// One conversion with its eligible touches (sorted) and, for OPPORTUNITY, its pipeline value.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionFacts {
    pub conversion: Conversion,
    pub touches: Touches,
    pub value: Option<i64>,
}

/// A WON-stage revenue event, split with the weights of its opportunity as of its close.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueFacts {
    pub conversion: Conversion,
    pub touches: Touches,
    pub amount: i64,
    pub revenue_event_id: i64,
    pub opportunity_id: i64,
}

/// Everything a report of one stage and period needs, shared by all models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageFacts {
    pub conversions: Vec<ConversionFacts>,
    pub values: Vec<ValueFacts>,
    /// MARKOV removal effect per campaign of the period's chain.
    pub removal_effects: HashMap<i64, f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grouping {
    Campaign,
    Channel,
    Month,
    /// The credited touch's lead's account (SPEC §8).
    Account,
    /// An attribute of that account, named by the report's argument.
    Segment,
}

impl Grouping {
    /// What a tally must keep beside the campaign for this grouping.
    pub fn buckets(self) -> Buckets {
        match self {
            Grouping::Campaign | Grouping::Channel => Buckets::None,
            Grouping::Month => Buckets::Month,
            Grouping::Account | Grouping::Segment => Buckets::Account,
        }
    }
}

/// What a tally keeps per campaign besides the campaign: nothing, the month of the credited
/// touch, or the account of its lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Buckets {
    #[default]
    None,
    Month,
    Account,
}

/// The key of a row of an ACCOUNT or SEGMENT report when the lead has no account (or the
/// account lacks the attribute).
pub const NO_ACCOUNT: &str = "(none)";

#[derive(Debug, Clone)]
pub struct CampaignInfo {
    pub external_id: String,
    pub channel: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub campaign_id: Option<i64>,
    /// Conversions credited, exact.
    pub conversions: ExactSum,
    pub revenue: i64,
}

/// Rows + other + unattributed = total, for conversions and for revenue, for every caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows: Vec<Row>,
    pub total_conversions: u64,
    pub total_revenue: i64,
    pub unattributed_conversions: u64,
    pub unattributed_revenue: i64,
    /// What went to campaigns the caller may not see, aggregated (0 for a caller who sees all).
    pub other_conversions: ExactSum,
    pub other_revenue: i64,
}

/// A touch's share of one conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Credit {
    pub touch: Touch,
    /// The conversions credited: wᵢ / Σw, exact.
    pub weight: Fraction,
    pub amount: i64,
}

/// The credits of one conversion (empty when it has no eligible touch): its weights and,
/// when it carries money, the amount split by largest remainder.
pub fn credits(
    model: Model,
    conversion: &Conversion,
    touches: &[Touch],
    params: Params,
    removal_effects: &HashMap<i64, f64>,
    amount: i64,
) -> Vec<Credit> {
    let w = weights(model, conversion, touches, params, removal_effects);
    let parts = allocate(amount, &w);
    let total: u128 = w.iter().map(|x| u128::from(*x)).sum();
    touches
        .iter()
        .zip(w)
        .zip(parts)
        .map(|((t, weight), amount)| Credit {
            touch: t.clone(),
            weight: Fraction::new(u128::from(weight), total),
            amount,
        })
        .collect()
}

fn key_of(
    grouping: Grouping,
    campaign_id: i64,
    bucket: i64,
    campaigns: &HashMap<i64, CampaignInfo>,
    account_key: &dyn Fn(i64) -> Option<String>,
) -> (String, Option<i64>) {
    let month = i32::try_from(bucket).unwrap_or_default();
    match grouping {
        Grouping::Account | Grouping::Segment => (
            (bucket != 0)
                .then(|| account_key(bucket))
                .flatten()
                .unwrap_or_else(|| NO_ACCOUNT.to_string()),
            None,
        ),
        Grouping::Campaign => (
            campaigns
                .get(&campaign_id)
                .map(|c| c.external_id.clone())
                .unwrap_or_default(),
            Some(campaign_id),
        ),
        Grouping::Channel => (
            campaigns
                .get(&campaign_id)
                .map(|c| c.channel.clone())
                .unwrap_or_default(),
            None,
        ),
        // chrono's "%Y-%m", as the key always was (years outside 0..=9999 carry a sign).
        Grouping::Month => (
            u32::try_from(month.rem_euclid(12) + 1)
                .ok()
                .and_then(|m| chrono::NaiveDate::from_ymd_opt(month.div_euclid(12), m, 1))
                .map(|d| d.format("%Y-%m").to_string())
                .unwrap_or_default(),
            None,
        ),
    }
}

/// Builds the report. Only credits on campaigns `visible` accepts make rows (a marketer's
/// own); the totals and the unattributed part are always the company's.
pub fn build(
    facts: &StageFacts,
    model: Model,
    params: Params,
    grouping: Grouping,
    campaigns: &HashMap<i64, CampaignInfo>,
    visible: impl Fn(i64) -> bool,
) -> Result<Report, MoneyError> {
    Tally::of_facts(facts, model, params, grouping.buckets())?.report(grouping, campaigns, visible)
}

/// How a conversion's credits are weighed: the model, its parameters and, for MARKOV, the
/// removal effects of the period's chain.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    pub model: Model,
    pub params: Params,
    pub removal_effects: &'a HashMap<i64, f64>,
}

/// Whether a conversion is counted in or taken back out (it changed, or left the period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Add,
    Remove,
}

impl Sign {
    fn apply(self, amount: i64) -> Result<i64, MoneyError> {
        match self {
            Sign::Add => Ok(amount),
            Sign::Remove => amount.checked_neg().ok_or(MoneyError::Arithmetic),
        }
    }
}

/// An exact sum of credited conversions that can also be taken from: numerators per
/// denominator (the same reduced fractions `ExactSum` groups), signed. A conversion taken back
/// removes exactly the fractions it added, so every numerator stays ≥ 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SignedSum {
    terms: Vec<(u128, i128)>,
}

impl SignedSum {
    fn add(&mut self, f: Fraction, sign: Sign) -> Result<(), MoneyError> {
        if f.num == 0 {
            return Ok(());
        }
        let num = i128::try_from(f.num).map_err(|_| MoneyError::Arithmetic)?;
        let num = match sign {
            Sign::Add => num,
            Sign::Remove => -num,
        };
        match self.terms.iter_mut().find(|(den, _)| *den == f.den) {
            Some((_, n)) => *n = n.checked_add(num).ok_or(MoneyError::Arithmetic)?,
            None => self.terms.push((f.den, num)),
        }
        Ok(())
    }

    fn add_to(&self, sum: &mut ExactSum) -> Result<(), MoneyError> {
        for (den, num) in &self.terms {
            // Negative only if a conversion was taken back that was never added: a bug.
            let num = u128::try_from(*num).map_err(|_| MoneyError::Arithmetic)?;
            sum.add(Fraction { num, den: *den });
        }
        Ok(())
    }
}

/// What a campaign (in a month, when grouping by month) was credited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Cell {
    conversions: SignedSum,
    revenue: i64,
    /// Credits (touches of conversions and revenue events) in it, zero-weight ones too: a
    /// campaign touched shows as a row even when its model gives it nothing.
    credits: i64,
}

/// A report before it is grouped and cut to what a caller sees: credits summed per campaign
/// (and month of the touch, when `by_month`) and the company's totals. Conversions can be
/// added and taken back, so a tally is kept current by re-crediting only what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    by: Buckets,
    /// (campaign, bucket): the bucket is 0, a month (year × 12 + month0) or an account id
    /// (0: none).
    cells: HashMap<(i64, i64), Cell>,
    conversions: i64,
    revenue: i64,
    unattributed_conversions: i64,
    unattributed_revenue: i64,
}

impl Tally {
    /// An empty tally keeping `by` beside each campaign (`Grouping::buckets`).
    pub fn new(by: Buckets) -> Tally {
        Tally {
            by,
            ..Tally::default()
        }
    }

    pub fn buckets(&self) -> Buckets {
        self.by
    }

    /// The tally of a stage's facts, weighed by `model` (MARKOV by the facts' removal effects).
    pub fn of_facts(
        facts: &StageFacts,
        model: Model,
        params: Params,
        by: Buckets,
    ) -> Result<Tally, MoneyError> {
        let mut tally = Tally::new(by);
        let rule = Rule {
            model,
            params,
            removal_effects: &facts.removal_effects,
        };
        tally.facts(&rule, &facts.conversions, &facts.values, Sign::Add)?;
        Ok(tally)
    }

    /// Counts in (or takes back) conversions and revenue events.
    pub fn facts(
        &mut self,
        rule: &Rule,
        conversions: &[ConversionFacts],
        values: &[ValueFacts],
        sign: Sign,
    ) -> Result<(), MoneyError> {
        for f in conversions {
            let value = f.value.unwrap_or(0);
            self.conversion(rule, &f.conversion, &f.touches, &[], value, sign)?;
        }
        for v in values {
            self.value(rule, &v.conversion, &v.touches, &[], v.amount, sign)?;
        }
        Ok(())
    }

    /// Counts a conversion in (or takes it back): one conversion, `value` of money (0 when it
    /// carries none), both split over its eligible `touches` (sorted). `accounts` holds the
    /// account of each touch's lead (0: none) when the tally keeps accounts; else it is empty.
    pub fn conversion(
        &mut self,
        rule: &Rule,
        conversion: &Conversion,
        touches: &[Touch],
        accounts: &[i64],
        value: i64,
        sign: Sign,
    ) -> Result<(), MoneyError> {
        let one = sign.apply(1)?;
        self.conversions = add(self.conversions, one)?;
        self.credit(rule, conversion, (touches, accounts), value, sign, true)
    }

    /// Counts a revenue event in (or takes it back): money only, split with the weights of
    /// its opportunity's conversion.
    pub fn value(
        &mut self,
        rule: &Rule,
        conversion: &Conversion,
        touches: &[Touch],
        accounts: &[i64],
        amount: i64,
        sign: Sign,
    ) -> Result<(), MoneyError> {
        self.credit(rule, conversion, (touches, accounts), amount, sign, false)
    }

    fn credit(
        &mut self,
        rule: &Rule,
        conversion: &Conversion,
        (touches, accounts): (&[Touch], &[i64]),
        amount: i64,
        sign: Sign,
        counts: bool,
    ) -> Result<(), MoneyError> {
        let signed = sign.apply(amount)?;
        self.revenue = add(self.revenue, signed)?;
        if touches.is_empty() {
            if counts {
                self.unattributed_conversions = add(self.unattributed_conversions, sign.apply(1)?)?;
            }
            self.unattributed_revenue = add(self.unattributed_revenue, signed)?;
            return Ok(());
        }
        let w = weights(
            rule.model,
            conversion,
            touches,
            rule.params,
            rule.removal_effects,
        );
        let parts = allocate(amount, &w);
        let total: u128 = w.iter().map(|x| u128::from(*x)).sum();
        for (i, ((t, weight), part)) in touches.iter().zip(w).zip(parts).enumerate() {
            let month = match self.by {
                Buckets::None => 0,
                Buckets::Month => i64::from(t.at.year()) * 12 + i64::from(t.at.month0()),
                Buckets::Account => accounts.get(i).copied().unwrap_or(0),
            };
            let cell = self.cells.entry((t.campaign_id, month)).or_default();
            if counts {
                cell.conversions
                    .add(Fraction::new(u128::from(weight), total), sign)?;
            }
            cell.revenue = add(cell.revenue, sign.apply(part)?)?;
            cell.credits = add(cell.credits, sign.apply(1)?)?;
            if cell.credits == 0 {
                self.cells.remove(&(t.campaign_id, month));
            }
        }
        Ok(())
    }

    /// The report for a caller: rows grouped by `grouping` of the campaigns `visible` accepts,
    /// what went to the others aggregated, and the company's totals.
    pub fn report(
        &self,
        grouping: Grouping,
        campaigns: &HashMap<i64, CampaignInfo>,
        visible: impl Fn(i64) -> bool,
    ) -> Result<Report, MoneyError> {
        self.report_keyed(grouping, campaigns, visible, &|_| None)
    }

    /// The report, an ACCOUNT or SEGMENT row keyed by `account_key` of its account id (None:
    /// `(none)`).
    pub fn report_keyed(
        &self,
        grouping: Grouping,
        campaigns: &HashMap<i64, CampaignInfo>,
        visible: impl Fn(i64) -> bool,
        account_key: &dyn Fn(i64) -> Option<String>,
    ) -> Result<Report, MoneyError> {
        debug_assert!(self.by == grouping.buckets() || grouping.buckets() == Buckets::None);
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let mut other_conversions = ExactSum::default();
        let mut other_revenue: i64 = 0;
        // In campaign order, so a row two campaigns share (one missing from `campaigns`) keeps
        // the same campaign id on every run. A cell whose every credit was taken back is no row.
        let mut cells: Vec<(&(i64, i64), &Cell)> =
            self.cells.iter().filter(|(_, c)| c.credits != 0).collect();
        cells.sort_unstable_by_key(|(key, _)| **key);
        for ((campaign_id, month), cell) in cells {
            if !visible(*campaign_id) {
                cell.conversions.add_to(&mut other_conversions)?;
                other_revenue = add(other_revenue, cell.revenue)?;
                continue;
            }
            let (key, row_campaign) =
                key_of(grouping, *campaign_id, *month, campaigns, account_key);
            let row = rows.entry(key.clone()).or_insert(Row {
                key,
                campaign_id: row_campaign,
                conversions: ExactSum::default(),
                revenue: 0,
            });
            cell.conversions.add_to(&mut row.conversions)?;
            row.revenue = add(row.revenue, cell.revenue)?;
        }
        let count = |n: i64| u64::try_from(n).map_err(|_| MoneyError::Arithmetic);
        Ok(Report {
            rows: rows.into_values().collect(),
            total_conversions: count(self.conversions)?,
            total_revenue: self.revenue,
            unattributed_conversions: count(self.unattributed_conversions)?,
            unattributed_revenue: self.unattributed_revenue,
            other_conversions,
            other_revenue,
        })
    }
}

fn add(a: i64, b: i64) -> Result<i64, MoneyError> {
    a.checked_add(b).ok_or(MoneyError::Arithmetic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn touch(id: i64, campaign: i64, day: u32) -> Touch {
        Touch {
            id,
            external_id: format!("t{id}").into(),
            campaign_id: campaign,
            at: Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap(),
        }
    }

    fn conversion(day: u32) -> Conversion {
        Conversion {
            at: Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).unwrap(),
            mql_at: None,
            opportunity_created_at: None,
            won: true,
        }
    }

    #[test]
    fn a_month_key_is_chronos_year_and_month() {
        let key = |year: i32, month0: i32| {
            key_of(
                Grouping::Month,
                1,
                i64::from(year * 12 + month0),
                &HashMap::new(),
                &|_| None,
            )
            .0
        };
        assert_eq!(key(2026, 2), "2026-03");
        assert_eq!(key(2026, 11), "2026-12");
        assert_eq!(key(-1, 0), "-0001-01");
        assert_eq!(key(10_000, 0), "+10000-01");
    }

    fn campaigns() -> HashMap<i64, CampaignInfo> {
        HashMap::from([
            (
                1,
                CampaignInfo {
                    external_id: "c1".into(),
                    channel: "email".into(),
                },
            ),
            (
                2,
                CampaignInfo {
                    external_id: "c2".into(),
                    channel: "email".into(),
                },
            ),
            (
                3,
                CampaignInfo {
                    external_id: "c3".into(),
                    channel: "event".into(),
                },
            ),
        ])
    }

    fn facts() -> StageFacts {
        StageFacts {
            conversions: vec![
                ConversionFacts {
                    conversion: conversion(10),
                    touches: vec![touch(1, 1, 1), touch(2, 2, 2), touch(3, 3, 3)].into(),
                    value: None,
                },
                ConversionFacts {
                    conversion: conversion(11),
                    touches: vec![].into(),
                    value: None,
                },
            ],
            values: vec![
                ValueFacts {
                    conversion: conversion(10),
                    touches: vec![touch(1, 1, 1), touch(2, 2, 2), touch(3, 3, 3)].into(),
                    amount: 10_000,
                    revenue_event_id: 1,
                    opportunity_id: 1,
                },
                ValueFacts {
                    conversion: conversion(10),
                    touches: vec![touch(1, 1, 1), touch(2, 2, 2), touch(3, 3, 3)].into(),
                    amount: -1_001,
                    revenue_event_id: 2,
                    opportunity_id: 1,
                },
                ValueFacts {
                    conversion: conversion(11),
                    touches: vec![].into(),
                    amount: 555,
                    revenue_event_id: 3,
                    opportunity_id: 2,
                },
            ],
            removal_effects: HashMap::new(),
        }
    }

    #[test]
    fn rows_plus_unattributed_sum_to_the_total_to_the_cent() {
        let r = build(
            &facts(),
            Model::Linear,
            Params::default(),
            Grouping::Campaign,
            &campaigns(),
            |_| true,
        )
        .unwrap();
        assert_eq!(r.total_revenue, 9_554);
        assert_eq!(r.unattributed_revenue, 555);
        assert_eq!(
            r.rows.iter().map(|r| r.revenue).sum::<i64>() + r.unattributed_revenue,
            r.total_revenue
        );
        // 10000/3 → 3334, 3333, 3333; −1001/3 → −334, −334, −333 (ties to the earlier touch).
        let revenue: Vec<i64> = r.rows.iter().map(|r| r.revenue).collect();
        assert_eq!(revenue, vec![3000, 2999, 3000]);
        assert_eq!(r.total_conversions, 2);
        assert_eq!(r.unattributed_conversions, 1);
        let mut credited = ExactSum::default();
        r.rows.iter().for_each(|r| credited.add_sum(&r.conversions));
        assert_eq!(credited.to_f64(), 1.0);
        assert!(r.other_conversions.is_zero());
        assert_eq!(r.other_revenue, 0);
    }

    #[test]
    fn channel_and_month_grouping() {
        let r = build(
            &facts(),
            Model::Linear,
            Params::default(),
            Grouping::Channel,
            &campaigns(),
            |_| true,
        )
        .unwrap();
        let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["email", "event"]);
        assert_eq!(r.rows[0].revenue, 3000 + 2999);
        let r = build(
            &facts(),
            Model::Linear,
            Params::default(),
            Grouping::Month,
            &campaigns(),
            |_| true,
        )
        .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].key, "2026-03");
        assert_eq!(r.rows[0].revenue, 8999);
    }

    #[test]
    fn a_restricted_view_keeps_the_company_totals() {
        let r = build(
            &facts(),
            Model::Linear,
            Params::default(),
            Grouping::Campaign,
            &campaigns(),
            |c| c == 1,
        )
        .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].key, "c1");
        assert_eq!(r.total_revenue, 9_554);
        // Rows + other + unattributed = total, for revenue and conversions.
        assert_eq!(
            r.rows[0].revenue + r.other_revenue + r.unattributed_revenue,
            r.total_revenue
        );
        let mut seen = r.rows[0].conversions.clone();
        seen.add_sum(&r.other_conversions);
        assert_eq!(seen.to_f64() + r.unattributed_conversions as f64, 2.0);
    }

    #[test]
    fn a_conversion_taken_back_leaves_the_tally_of_the_others() {
        let all = facts();
        let effects = HashMap::new();
        for model in [
            Model::Linear,
            Model::FirstTouch,
            Model::TimeDecay,
            Model::WShaped,
        ] {
            for grouping in [Grouping::Campaign, Grouping::Month] {
                let rule = Rule {
                    model,
                    params: Params::default(),
                    removal_effects: &effects,
                };
                let mut tally = Tally::new(grouping.buckets());
                let (conversions, values) = (&all.conversions, &all.values);
                tally.facts(&rule, conversions, values, Sign::Add).unwrap();
                // Take back a second copy of each conversion and the first revenue event.
                tally.facts(&rule, conversions, &[], Sign::Add).unwrap();
                tally.facts(&rule, conversions, &[], Sign::Remove).unwrap();
                tally.facts(&rule, &[], &values[..1], Sign::Remove).unwrap();
                let mut rest = all.clone();
                rest.values.remove(0);
                let expected = build(
                    &rest,
                    model,
                    Params::default(),
                    grouping,
                    &campaigns(),
                    |_| true,
                );
                let got = tally.report(grouping, &campaigns(), |_| true).unwrap();
                assert_eq!(got, expected.unwrap(), "{model:?} {grouping:?}");
                // Taking back everything leaves nothing.
                let (conversions, values) = (&rest.conversions, &rest.values);
                tally
                    .facts(&rule, conversions, values, Sign::Remove)
                    .unwrap();
                assert_eq!(tally, Tally::new(grouping.buckets()));
            }
        }
    }
}
