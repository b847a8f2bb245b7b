-- Insert one strategy version. Nothing is written when the (name, version) or the
-- (name, code_hash) is already taken, e.g. by a concurrent writer: the caller reads again.
INSERT INTO strategies (name, version, category, params, param_space, code, code_hash, status, origin,
                        parent, rationale, created_at, created_run_date, archived_at, archive_reason,
                        fitted_until)
VALUES (:name, :version, :category, :params, :param_space, :code, :code_hash, :status, :origin,
        :parent, :rationale, :created_at, :created_run_date, :archived_at, :archive_reason,
        :fitted_until)
ON CONFLICT DO NOTHING
