-- Drop the staging table of a CSV import (see candles_import_create.sql).
DROP TABLE IF EXISTS candle_import
