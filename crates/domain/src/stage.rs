//! The lead lifecycle of SPEC §3: stages, which moves are allowed, and the rows a move writes
//! (a forward skip records every skipped stage at the same instant).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeadStage {
    Inquiry,
    Mql,
    Sal,
    Sql,
    Opportunity,
    Won,
    Lost,
    Recycled,
    Disqualified,
}

use LeadStage::*;

/// The funnel stages in order; LOST, RECYCLED and DISQUALIFIED are off the main line.
pub const FUNNEL: [LeadStage; 6] = [Inquiry, Mql, Sal, Sql, Opportunity, Won];

pub const ALL: [LeadStage; 9] = [
    Inquiry,
    Mql,
    Sal,
    Sql,
    Opportunity,
    Won,
    Lost,
    Recycled,
    Disqualified,
];

impl LeadStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Inquiry => "INQUIRY",
            Mql => "MQL",
            Sal => "SAL",
            Sql => "SQL",
            Opportunity => "OPPORTUNITY",
            Won => "WON",
            Lost => "LOST",
            Recycled => "RECYCLED",
            Disqualified => "DISQUALIFIED",
        }
    }

    /// Position on the funnel line; LOST counts as having reached OPPORTUNITY.
    pub fn funnel_rank(self) -> Option<usize> {
        match self {
            Inquiry => Some(0),
            Mql => Some(1),
            Sal => Some(2),
            Sql => Some(3),
            Opportunity | Lost => Some(4),
            Won => Some(5),
            Recycled | Disqualified => None,
        }
    }

    /// Whether reaching `self` means having reached funnel stage `stage`.
    pub fn implies_reached(self, stage: LeadStage) -> bool {
        match (self.funnel_rank(), stage.funnel_rank()) {
            (Some(mine), Some(theirs)) => mine >= theirs && stage != Lost,
            _ => false,
        }
    }
}

impl fmt::Display for LeadStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LeadStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter()
            .copied()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown lead stage {s}"))
    }
}

/// The stages a lead in `from` may move to (SPEC §3).
pub fn allowed_targets(from: LeadStage) -> Vec<LeadStage> {
    let forward_from = |rank: usize| -> Vec<LeadStage> {
        let mut v: Vec<LeadStage> = FUNNEL[rank..].to_vec();
        v.push(Lost);
        v
    };
    let mut targets = match from {
        Inquiry => forward_from(1),
        Mql => forward_from(2),
        Sal => forward_from(3),
        Sql => forward_from(4),
        Opportunity => vec![Won, Lost],
        Won | Disqualified => vec![],
        Lost => vec![],
        Recycled => forward_from(1),
    };
    if matches!(from, Inquiry | Mql | Sal | Sql | Recycled) {
        targets.push(Disqualified);
    }
    if matches!(from, Mql | Sal | Sql | Lost) {
        targets.push(Recycled);
    }
    targets
}

/// One row of a lead's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub from: LeadStage,
    pub to: LeadStage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a lead in {from} cannot move to {to}; allowed from {from}: {}", allowed_list(*.from))]
pub struct MoveNotAllowed {
    pub from: LeadStage,
    pub to: LeadStage,
}

fn allowed_list(from: LeadStage) -> String {
    let targets = allowed_targets(from);
    if targets.is_empty() {
        "none (it is final)".to_string()
    } else {
        targets
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The steps of a move from `from` to `to`: one per stage passed through, so that a skip
/// from INQUIRY to SQL writes INQUIRY→MQL, MQL→SAL, SAL→SQL.
pub fn plan_move(from: LeadStage, to: LeadStage) -> Result<Vec<Step>, MoveNotAllowed> {
    if !allowed_targets(from).contains(&to) {
        return Err(MoveNotAllowed { from, to });
    }
    Ok(path(from, to))
}

/// The steps of a forced forward move (an opportunity created or closed moves its primary
/// contact whatever its stage; from a side stage the path re-enters the funnel at MQL).
pub fn plan_forced(from: LeadStage, to: LeadStage) -> Vec<Step> {
    if from == to {
        return vec![];
    }
    path(from, to)
}

fn path(from: LeadStage, to: LeadStage) -> Vec<Step> {
    let Some(target_rank) = to.funnel_rank() else {
        return vec![Step { from, to }];
    };
    // Where on the funnel line the walk starts: side stages re-enter at MQL.
    let start_rank = match from.funnel_rank() {
        Some(r) if from != Lost => r + 1,
        _ => 1,
    };
    let last_funnel_rank = if to == Lost { 4 } else { target_rank };
    let mut steps = Vec::new();
    let mut current = from;
    for stage in FUNNEL.iter().copied().filter(|s| {
        s.funnel_rank()
            .is_some_and(|r| r >= start_rank && r <= last_funnel_rank)
    }) {
        steps.push(Step {
            from: current,
            to: stage,
        });
        current = stage;
    }
    if to == Lost {
        steps.push(Step {
            from: current,
            to: Lost,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tos(steps: &[Step]) -> Vec<LeadStage> {
        steps.iter().map(|s| s.to).collect()
    }

    #[test]
    fn a_forward_skip_records_every_stage_passed() {
        let steps = plan_move(Inquiry, Sql).unwrap();
        assert_eq!(tos(&steps), vec![Mql, Sal, Sql]);
        assert_eq!(steps[0].from, Inquiry);
        assert_eq!(steps[2].from, Sal);
    }

    #[test]
    fn recycled_re_enters_the_funnel_at_mql() {
        assert_eq!(tos(&plan_move(Recycled, Sal).unwrap()), vec![Mql, Sal]);
        assert_eq!(tos(&plan_move(Recycled, Mql).unwrap()), vec![Mql]);
    }

    #[test]
    fn lost_passes_through_opportunity() {
        assert_eq!(tos(&plan_move(Sql, Lost).unwrap()), vec![Opportunity, Lost]);
        assert_eq!(tos(&plan_move(Opportunity, Lost).unwrap()), vec![Lost]);
    }

    #[test]
    fn side_moves_are_single_steps() {
        assert_eq!(tos(&plan_move(Sal, Recycled).unwrap()), vec![Recycled]);
        assert_eq!(
            tos(&plan_move(Inquiry, Disqualified).unwrap()),
            vec![Disqualified]
        );
        assert_eq!(tos(&plan_move(Lost, Recycled).unwrap()), vec![Recycled]);
    }

    #[test]
    fn forbidden_moves_name_the_allowed_targets() {
        let err = plan_move(Inquiry, Recycled).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a lead in INQUIRY cannot move to RECYCLED; allowed from INQUIRY: MQL, SAL, SQL, OPPORTUNITY, WON, LOST, DISQUALIFIED"
        );
        assert!(plan_move(Won, Lost).is_err());
        assert!(plan_move(Disqualified, Mql).is_err());
        assert!(plan_move(Opportunity, Disqualified).is_err());
        assert!(plan_move(Sal, Mql).is_err());
        assert!(plan_move(Mql, Mql).is_err());
    }

    #[test]
    fn forced_moves_walk_from_side_stages() {
        assert_eq!(
            tos(&plan_forced(Disqualified, Opportunity)),
            vec![Mql, Sal, Sql, Opportunity]
        );
        assert_eq!(tos(&plan_forced(Opportunity, Won)), vec![Won]);
        assert!(plan_forced(Won, Won).is_empty());
    }

    #[test]
    fn lost_counts_as_reaching_opportunity() {
        assert!(Lost.implies_reached(Opportunity));
        assert!(Lost.implies_reached(Mql));
        assert!(!Lost.implies_reached(Won));
        assert!(Won.implies_reached(Opportunity));
        assert!(!Recycled.implies_reached(Mql));
    }
}
