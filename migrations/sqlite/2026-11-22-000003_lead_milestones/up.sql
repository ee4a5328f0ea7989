-- When each lead first reached each funnel stage (SPEC §3: the first move into it or into a
-- later funnel stage; LOST counts as OPPORTUNITY), kept on the lead as moves are written so
-- reports find a period's conversions through an index instead of re-reading the history.
ALTER TABLE leads ADD COLUMN mql_at TIMESTAMP;
ALTER TABLE leads ADD COLUMN sal_at TIMESTAMP;
ALTER TABLE leads ADD COLUMN sql_at TIMESTAMP;
ALTER TABLE leads ADD COLUMN opportunity_at TIMESTAMP;
ALTER TABLE leads ADD COLUMN won_at TIMESTAMP;

UPDATE leads SET
    mql_at = (SELECT MIN(occurred_at) FROM stage_transitions t WHERE t.lead_id = leads.id
              AND t.to_stage IN ('MQL', 'SAL', 'SQL', 'OPPORTUNITY', 'WON', 'LOST')),
    sal_at = (SELECT MIN(occurred_at) FROM stage_transitions t WHERE t.lead_id = leads.id
              AND t.to_stage IN ('SAL', 'SQL', 'OPPORTUNITY', 'WON', 'LOST')),
    sql_at = (SELECT MIN(occurred_at) FROM stage_transitions t WHERE t.lead_id = leads.id
              AND t.to_stage IN ('SQL', 'OPPORTUNITY', 'WON', 'LOST')),
    opportunity_at = (SELECT MIN(occurred_at) FROM stage_transitions t WHERE t.lead_id = leads.id
              AND t.to_stage IN ('OPPORTUNITY', 'WON', 'LOST')),
    won_at = (SELECT MIN(occurred_at) FROM stage_transitions t WHERE t.lead_id = leads.id
              AND t.to_stage = 'WON');

CREATE INDEX leads_mql_at ON leads (mql_at);
CREATE INDEX leads_sal_at ON leads (sal_at);
CREATE INDEX leads_sql_at ON leads (sql_at);
CREATE INDEX leads_opportunity_at ON leads (opportunity_at);
CREATE INDEX leads_won_at ON leads (won_at);
