-- The staging table of one CSV import: a TEMP table (the connection's own, so filling it
-- never takes the data database's write lock), one row per bar time. A repeated time is
-- counted in `copies`; one with different values records its line in `conflict_line`.
CREATE TEMP TABLE candle_import (
    ts            BIGINT PRIMARY KEY,
    line          INTEGER NOT NULL,
    open          DOUBLE PRECISION NOT NULL,
    high          DOUBLE PRECISION NOT NULL,
    low           DOUBLE PRECISION NOT NULL,
    close         DOUBLE PRECISION NOT NULL,
    volume        DOUBLE PRECISION NOT NULL,
    copies        INTEGER NOT NULL DEFAULT 1,
    conflict_line INTEGER
)
