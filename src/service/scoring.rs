//! The shared lead definition: scoring rules as data, scores kept current, and the automatic
//! move to MQL when a lead's score reaches the threshold (SPEC §3).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::moves::{apply_steps, stage_of};
use super::{check_external_id, check_non_empty, AppError, AppResult, Ctx, Outcome};
use crate::auth::Write;
use crate::db::AnyConnection;
use crate::domain::scoring::{self, Kind, Operator, Profile, Rule};
use crate::domain::stage::{self, LeadStage};
use crate::repo::leads::{self as leads_repo, LeadRow};
use crate::repo::scoring::{self as repo, RuleRow, RuleValues};
use crate::repo::settings;

pub const DEFAULT_THRESHOLD: i32 = 100;
const THRESHOLD_KEY: &str = "mql_threshold";

#[derive(Debug, Clone)]
pub struct RuleInput {
    pub external_id: String,
    pub name: String,
    pub kind: Kind,
    pub field: Option<String>,
    pub operator: Option<Operator>,
    pub value: Option<String>,
    pub touch_kind: Option<String>,
    pub points: i32,
    pub max_points: Option<i32>,
    pub active: bool,
}

/// A lead's score broken down by the active rules that give it points, in rule order.
pub fn breakdown<'a>(
    rules: &'a [RuleRow],
    lead: &LeadRow,
    attributes: &[(String, String)],
    touch_kinds: &[&str],
) -> AppResult<Vec<(&'a RuleRow, i32)>> {
    let profile = profile(lead, attributes);
    let mut out = Vec::new();
    for row in rules.iter().filter(|r| r.active) {
        let points = scoring::points(&to_rule(row)?, &profile, touch_kinds);
        if points != 0 {
            out.push((row, points));
        }
    }
    Ok(out)
}

pub fn kind_str(kind: Kind) -> &'static str {
    match kind {
        Kind::Attribute => "ATTRIBUTE",
        Kind::Behavior => "BEHAVIOR",
    }
}

pub fn to_rule(row: &RuleRow) -> AppResult<Rule> {
    Ok(Rule {
        id: row.id,
        kind: match row.kind.as_str() {
            "ATTRIBUTE" => Kind::Attribute,
            "BEHAVIOR" => Kind::Behavior,
            other => return Err(AppError::Internal(format!("unknown rule kind {other}"))),
        },
        field: row.field.clone(),
        operator: row.operator.as_deref().and_then(Operator::parse),
        value: row.value.clone(),
        touch_kind: row.touch_kind.clone(),
        points: row.points,
        max_points: row.max_points,
    })
}

/// The active rules.
pub fn active_rules(conn: &mut AnyConnection) -> AppResult<Vec<Rule>> {
    repo::all(conn)?
        .iter()
        .filter(|r| r.active)
        .map(to_rule)
        .collect()
}

pub fn threshold(conn: &mut AnyConnection) -> AppResult<i32> {
    Ok(settings::get(conn, THRESHOLD_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_THRESHOLD))
}

/// What scoring reads of a lead: its fields (email, fullName, company, title) and attributes.
pub fn profile(lead: &LeadRow, attributes: &[(String, String)]) -> Profile {
    let mut fields: HashMap<String, String> = attributes.iter().cloned().collect();
    for (name, value) in [
        ("email", &lead.email),
        ("fullName", &lead.full_name),
        ("company", &lead.company),
        ("title", &lead.title),
    ] {
        if let Some(v) = value {
            fields.insert(name.to_string(), v.clone());
        }
    }
    Profile { fields }
}

/// Re-scores some leads with the given rules; moves to MQL the ones in INQUIRY or RECYCLED
/// whose score reached the threshold while there. Returns how many scores changed.
pub fn rescore(
    conn: &mut AnyConnection,
    lead_ids: &[i64],
    rules: &[Rule],
    threshold: i32,
) -> AppResult<usize> {
    let leads = leads_repo::by_ids(conn, lead_ids)?;
    let mut attributes: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for a in leads_repo::attributes_of(conn, lead_ids)? {
        attributes
            .entry(a.lead_id)
            .or_default()
            .push((a.key, a.value));
    }
    let mut touches: HashMap<i64, Vec<(DateTime<Utc>, String)>> = HashMap::new();
    for t in leads_repo::touchpoints_of(conn, lead_ids)? {
        touches
            .entry(t.lead_id)
            .or_default()
            .push((t.occurred_at.and_utc(), t.kind));
    }
    let mut last_move: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for t in leads_repo::transitions_of(conn, lead_ids)? {
        let at = t.occurred_at.and_utc();
        let slot = last_move.entry(t.lead_id).or_insert(at);
        *slot = (*slot).max(at);
    }
    let mut changed = 0;
    for id in lead_ids {
        let Some(lead) = leads.get(id) else { continue };
        let timeline: Vec<(DateTime<Utc>, &str)> = touches
            .get(id)
            .map(|ts| ts.iter().map(|(at, k)| (*at, k.as_str())).collect())
            .unwrap_or_default();
        let attrs = attributes.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let decided = decide(
            rules,
            threshold,
            lead,
            attrs,
            &timeline,
            last_move.get(id).copied(),
        )?;
        if decided.score != lead.score {
            leads_repo::set_score(conn, *id, decided.score)?;
            changed += 1;
        }
        if let Some(mql) = decided.mql {
            apply_steps(
                conn,
                *id,
                &mql.steps,
                mql.at,
                "system",
                Some(&mql.reason),
                None,
            )?;
        }
    }
    Ok(changed)
}

/// What re-scoring decides for one lead.
pub struct Rescored {
    pub score: i32,
    /// The automatic move to MQL, when the score reached the threshold while the lead was in
    /// INQUIRY or RECYCLED.
    pub mql: Option<AutoMql>,
}

pub struct AutoMql {
    pub at: DateTime<Utc>,
    pub steps: Vec<stage::Step>,
    pub reason: String,
}

/// Scores a lead from its fields, attributes and touches (in time order, then externalId),
/// and decides its automatic MQL: shared by the one-by-one path and the batched import, so
/// both decide alike. `last_move` is the time of its latest stage row (None: its creation).
pub fn decide(
    rules: &[Rule],
    threshold: i32,
    lead: &LeadRow,
    attributes: &[(String, String)],
    timeline: &[(DateTime<Utc>, &str)],
    last_move: Option<DateTime<Utc>>,
) -> AppResult<Rescored> {
    let profile = profile(lead, attributes);
    let kinds: Vec<&str> = timeline.iter().map(|(_, k)| *k).collect();
    let (score, _) = scoring::score(rules, &profile, &kinds);
    let current = stage_of(lead)?;
    let none = Rescored { score, mql: None };
    if !matches!(current, LeadStage::Inquiry | LeadStage::Recycled) || score < threshold {
        return Ok(none);
    }
    let created = lead.created_at.and_utc();
    let Some(reached) = scoring::reached_at(rules, threshold, &profile, created, timeline) else {
        return Ok(none);
    };
    let last = last_move.unwrap_or(created);
    // A recycled lead moves only when its score reached the threshold after it was recycled.
    let at = match current {
        LeadStage::Recycled if reached <= last => return Ok(none),
        _ => reached.max(last),
    };
    let steps =
        stage::plan_move(current, LeadStage::Mql).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(Rescored {
        score,
        mql: Some(AutoMql {
            at,
            steps,
            reason: format!("score {score} reached the MQL threshold {threshold}"),
        }),
    })
}

/// Re-scores one lead with the current rules (after a fact about it changed).
pub fn rescore_lead(conn: &mut AnyConnection, lead_id: i64) -> AppResult<()> {
    let rules = active_rules(conn)?;
    if rules.is_empty() {
        return Ok(());
    }
    let threshold = threshold(conn)?;
    rescore(conn, &[lead_id], &rules, threshold).map(|_| ())
}

/// Re-scores every lead in one pass, a chunk of leads at a time.
pub fn rescore_all(conn: &mut AnyConnection) -> AppResult<usize> {
    let rules = active_rules(conn)?;
    let threshold = threshold(conn)?;
    let ids = leads_repo::all_ids(conn)?;
    let mut changed = 0;
    for chunk in ids.chunks(crate::repo::CHUNK) {
        changed += rescore(conn, chunk, &rules, threshold)?;
    }
    Ok(changed)
}

pub async fn upsert_rule(ctx: &Ctx, input: RuleInput) -> AppResult<RuleRow> {
    ctx.require_write(Write::Scoring, "change scoring rules")?;
    check_external_id("scoring rule", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    let candidate = Rule {
        id: 0,
        kind: input.kind,
        field: input.field.clone(),
        operator: input.operator,
        value: input.value.clone(),
        touch_kind: input.touch_kind.clone(),
        points: input.points,
        max_points: input.max_points,
    };
    scoring::validate(&candidate).map_err(|e| AppError::BadInput(e.0))?;
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            let values = RuleValues {
                external_id: &input.external_id,
                name: &input.name,
                kind: kind_str(input.kind),
                field: input.field.as_deref(),
                operator: input.operator.map(Operator::as_str),
                value: input.value.as_deref(),
                touch_kind: input.touch_kind.as_deref(),
                points: input.points,
                max_points: input.max_points,
                active: input.active,
            };
            let outcome = match repo::by_external_id(conn, &input.external_id)? {
                None => {
                    repo::insert(conn, &values)?;
                    Outcome::Created
                }
                Some(row) => {
                    repo::update(conn, row.id, &values)?;
                    Outcome::Updated
                }
            };
            let changed = rescore_all(conn)?;
            ctx2.audit(
                conn,
                "upsertScoringRule",
                Some(&input.external_id),
                &format!("{}; {changed} lead scores changed", outcome.as_str()),
            )?;
            repo::by_external_id(conn, &input.external_id)?
                .ok_or_else(|| AppError::Internal("rule vanished after upsert".into()))
        })
        .await
}

pub async fn set_threshold(ctx: &Ctx, points: i32) -> AppResult<i32> {
    ctx.require_write(Write::Scoring, "change the MQL threshold")?;
    if points <= 0 {
        return Err(AppError::BadInput(
            "the MQL threshold must be positive".into(),
        ));
    }
    let ctx2 = ctx.clone();
    ctx.db
        .write(move |conn| {
            settings::set(conn, THRESHOLD_KEY, &points.to_string())?;
            rescore_all(conn)?;
            ctx2.audit(conn, "setMqlThreshold", None, &points.to_string())?;
            Ok(points)
        })
        .await
}

pub async fn rules(ctx: &Ctx) -> AppResult<Vec<RuleRow>> {
    ctx.db.run(|conn| Ok(repo::all(conn)?)).await
}

pub async fn current_threshold(ctx: &Ctx) -> AppResult<i32> {
    ctx.db.run(threshold).await
}
