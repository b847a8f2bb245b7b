-- One version per (name, code): the registry's existence check and its insert now run in
-- one transaction, and this unique index makes a concurrent second insert of the same
-- code a conflict (the writer then returns the existing version) instead of `@2`.
--
-- Versions that repeat an earlier version's code under the same name (made by the race
-- this closes) keep their rows, status and results; their hash is marked with their
-- version and the version they duplicate so the index can hold.
UPDATE strategies
SET code_hash = code_hash || '#v' || CAST(version AS TEXT) || '-duplicates-v' || CAST((
        SELECT MIN(o.version) FROM strategies o
        WHERE o.name = strategies.name AND o.code_hash = strategies.code_hash) AS TEXT)
WHERE EXISTS (SELECT 1 FROM strategies o
              WHERE o.name = strategies.name AND o.code_hash = strategies.code_hash
                AND o.version < strategies.version);

CREATE UNIQUE INDEX IF NOT EXISTS ux_strategies_name_code_hash ON strategies (name, code_hash);
