-- The member a call acted for, when the request names one (approver,
-- requested_by, set_by): a member's own id from its token, or the member an
-- operator or a family's service account named on its behalf.
ALTER TABLE audit_log ADD COLUMN acting_for uuid;
CREATE INDEX audit_log_acting_for_idx ON audit_log (acting_for, id DESC)
    WHERE acting_for IS NOT NULL;
