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
}

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
    month: i32,
    campaigns: &HashMap<i64, CampaignInfo>,
) -> (String, Option<i64>) {
    match grouping {
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
    // Credits add up per (campaign, month) first, with no string per credit; rows are keyed
    // by name once per campaign (and month) at the end. Sums are exact, so order is free.
    #[derive(Default)]
    struct Acc {
        conversions: ExactSum,
        revenue: i64,
    }
    let mut by_campaign: HashMap<(i64, i32), Acc> = HashMap::new();
    let mut total_revenue: i64 = 0;
    let mut unattributed_conversions = 0u64;
    let mut unattributed_revenue: i64 = 0;
    let add = |a: i64, b: i64| a.checked_add(b).ok_or(MoneyError::Arithmetic);
    let month = |t: &Touch| match grouping {
        Grouping::Month => t.at.year() * 12 + t.at.month0() as i32,
        _ => 0,
    };
    let mut credit = |c: &Credit, conversions: bool| -> Result<(), MoneyError> {
        let acc = by_campaign
            .entry((c.touch.campaign_id, month(&c.touch)))
            .or_default();
        if conversions {
            acc.conversions.add(c.weight);
        }
        acc.revenue = add(acc.revenue, c.amount)?;
        Ok(())
    };
    for f in &facts.conversions {
        let value = f.value.unwrap_or(0);
        total_revenue = add(total_revenue, value)?;
        let cs = credits(
            model,
            &f.conversion,
            &f.touches,
            params,
            &facts.removal_effects,
            value,
        );
        if cs.is_empty() {
            unattributed_conversions += 1;
            unattributed_revenue = add(unattributed_revenue, value)?;
        }
        for c in &cs {
            credit(c, true)?;
        }
    }
    for v in &facts.values {
        total_revenue = add(total_revenue, v.amount)?;
        let cs = credits(
            model,
            &v.conversion,
            &v.touches,
            params,
            &facts.removal_effects,
            v.amount,
        );
        if cs.is_empty() {
            unattributed_revenue = add(unattributed_revenue, v.amount)?;
        }
        for c in &cs {
            credit(c, false)?;
        }
    }
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut other_conversions = ExactSum::default();
    let mut other_revenue: i64 = 0;
    // In campaign order, so a row two campaigns share (one missing from `campaigns`) keeps
    // the same campaign id on every run.
    let mut by_campaign: Vec<((i64, i32), Acc)> = by_campaign.into_iter().collect();
    by_campaign.sort_unstable_by_key(|(key, _)| *key);
    for ((campaign_id, month), acc) in by_campaign {
        if !visible(campaign_id) {
            other_conversions.add_sum(&acc.conversions);
            other_revenue = add(other_revenue, acc.revenue)?;
            continue;
        }
        let (key, row_campaign) = key_of(grouping, campaign_id, month, campaigns);
        let row = rows.entry(key.clone()).or_insert(Row {
            key,
            campaign_id: row_campaign,
            conversions: ExactSum::default(),
            revenue: 0,
        });
        row.conversions.add_sum(&acc.conversions);
        row.revenue = add(row.revenue, acc.revenue)?;
    }
    Ok(Report {
        rows: rows.into_values().collect(),
        total_conversions: facts.conversions.len() as u64,
        total_revenue,
        unattributed_conversions,
        unattributed_revenue,
        other_conversions,
        other_revenue,
    })
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
            key_of(Grouping::Month, 1, year * 12 + month0, &HashMap::new()).0
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
}
