-- Settled days of card use, summed per dashboard dimension (see
-- docs/monitoring.md): the dashboard and one-dimension reports read these few
-- rows for every day older than yesterday instead of every combination of
-- card_use_daily. Filled by housekeeping, a day at a time; a day's `day` row
-- (value '') is written first and marks the day as settled.
CREATE TABLE card_use_rollup (
    dimension TEXT NOT NULL,
    day       DATE NOT NULL,
    value     TEXT NOT NULL,
    uses      BIGINT NOT NULL,
    PRIMARY KEY (dimension, day, value)
);
