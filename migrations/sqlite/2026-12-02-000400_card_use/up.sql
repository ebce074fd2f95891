-- Card-use monitoring: the step of care of each verification, and daily
-- counts kept in the transaction that appends the log rows (see
-- docs/monitoring.md), so the dashboard never reads the raw log.
ALTER TABLE access_log ADD COLUMN step TEXT;

-- One row per monitoring day (China Standard Time), clinic, channel, step
-- and outcome. '' stands for "not given" (channel, step): key columns are
-- never NULL, so the upsert's conflict target matches.
CREATE TABLE card_use_daily (
    day       DATE NOT NULL,
    clinic_id TEXT NOT NULL,
    channel   TEXT NOT NULL,
    step      TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    uses      BIGINT NOT NULL,
    PRIMARY KEY (day, clinic_id, channel, step, outcome)
) WITHOUT ROWID;

-- The rows logged before this migration (none of them has a step).
INSERT INTO card_use_daily (day, clinic_id, channel, step, outcome, uses)
SELECT date(at, '+8 hours'), clinic_id, COALESCE(channel, ''), COALESCE(step, ''),
       COALESCE(outcome, ''), COUNT(*)
FROM access_log
WHERE action IN ('verify', 'identify') AND clinic_id IS NOT NULL
GROUP BY 1, 2, 3, 4, 5;
