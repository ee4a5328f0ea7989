//! An opportunity's status, as a typed state: OPEN until it is closed WON or LOST, once.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DealStatus {
    Open,
    Won,
    Lost,
}

impl DealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Open => "OPEN",
            DealStatus::Won => "WON",
            DealStatus::Lost => "LOST",
        }
    }

    /// What closing with `won` makes of a deal.
    pub fn closed(won: bool) -> DealStatus {
        if won {
            DealStatus::Won
        } else {
            DealStatus::Lost
        }
    }
}

impl fmt::Display for DealStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DealStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OPEN" => Ok(DealStatus::Open),
            "WON" => Ok(DealStatus::Won),
            "LOST" => Ok(DealStatus::Lost),
            other => Err(format!("unknown opportunity status {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [DealStatus::Open, DealStatus::Won, DealStatus::Lost] {
            assert_eq!(s.as_str().parse::<DealStatus>(), Ok(s));
        }
        assert!("won".parse::<DealStatus>().is_err());
        assert_eq!(DealStatus::closed(true), DealStatus::Won);
    }
}
