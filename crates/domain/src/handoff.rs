//! The hand-off between marketing and sales, from a lead's moves (SPEC §3): how it left the
//! funnel, and each move into MQL with the first decision sales made after it.

use chrono::{DateTime, Utc};

/// What counts as sales deciding on an MQL.
pub const DECISIONS: [&str; 7] = [
    "SAL",
    "SQL",
    "OPPORTUNITY",
    "WON",
    "LOST",
    "RECYCLED",
    "DISQUALIFIED",
];

/// A stage `hand_offs` reads (MQL or a decision), as its static name; None for the others.
pub fn stage_read(stage: &str) -> Option<&'static str> {
    std::iter::once("MQL")
        .chain(DECISIONS)
        .find(|s| *s == stage)
}

/// How a lead left the funnel, from its moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exits {
    /// Its first move to LOST.
    pub lost_at: Option<DateTime<Utc>>,
    pub recycled: bool,
    pub disqualified: bool,
    pub lost: bool,
}

/// A move into MQL with the first decision sales made after it (whenever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqlMove {
    pub at: DateTime<Utc>,
    pub decision: Option<(DateTime<Utc>, &'static str)>,
}

/// A lead's exits and its moves into MQL with their decisions, from all its moves as
/// (time, move id, to stage) in any order. Moves are taken in (time, id) order, so the
/// decision of an MQL is the first decision after it in that order.
pub fn hand_offs(moves: &mut [(chrono::NaiveDateTime, i64, &str)]) -> (Exits, Vec<MqlMove>) {
    moves.sort_unstable();
    let mut exits = Exits::default();
    let mut mqls = Vec::new();
    for (i, (at, _, stage)) in moves.iter().enumerate() {
        match *stage {
            "LOST" => {
                let when = at.and_utc();
                exits.lost = true;
                exits.lost_at = Some(exits.lost_at.map_or(when, |w| w.min(when)));
            }
            "RECYCLED" => exits.recycled = true,
            "DISQUALIFIED" => exits.disqualified = true,
            "MQL" => mqls.push(MqlMove {
                at: at.and_utc(),
                decision: moves[i + 1..].iter().find_map(|(at, _, to)| {
                    DECISIONS
                        .iter()
                        .find(|d| *d == to)
                        .map(|d| (at.and_utc(), *d))
                }),
            }),
            _ => {}
        }
    }
    (exits, mqls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(day: u32, hour: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 3, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .unwrap_or_default()
    }

    #[test]
    fn each_mql_gets_the_first_decision_after_it_and_exits_are_remembered() {
        // Given out of order; equal times are ordered by move id.
        let mut moves = vec![
            (at(5, 0), 6, "LOST"),
            (at(1, 0), 1, "MQL"),
            (at(2, 0), 3, "RECYCLED"),
            (at(2, 0), 2, "NURTURE"),
            (at(3, 0), 4, "MQL"),
            (at(4, 0), 5, "LOST"),
        ];
        let (exits, mqls) = hand_offs(&mut moves);
        assert_eq!(
            mqls.iter().map(|m| (m.at, m.decision)).collect::<Vec<_>>(),
            vec![
                (at(1, 0).and_utc(), Some((at(2, 0).and_utc(), "RECYCLED"))),
                (at(3, 0).and_utc(), Some((at(4, 0).and_utc(), "LOST"))),
            ]
        );
        assert!(exits.recycled && exits.lost && !exits.disqualified);
        assert_eq!(exits.lost_at, Some(at(4, 0).and_utc()), "the first LOST");
    }
}
