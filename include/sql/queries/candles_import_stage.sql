-- Stage one CSV row. A repeated bar time is counted; the first repeat with different
-- values records its line (a conflicting duplicate, refused before anything is stored).
INSERT INTO candle_import (ts, line, open, high, low, close, volume)
VALUES (:ts, :line, :open, :high, :low, :close, :volume)
ON CONFLICT (ts) DO UPDATE SET
    copies = candle_import.copies + 1,
    conflict_line = COALESCE(candle_import.conflict_line,
        CASE WHEN candle_import.open <> excluded.open OR candle_import.high <> excluded.high
                  OR candle_import.low <> excluded.low OR candle_import.close <> excluded.close
                  OR candle_import.volume <> excluded.volume
             THEN excluded.line END)
