-- Who did what to which customer: one row per call with effects (and per
-- refused attempt), written by the api after the call ends. Ids only: no
-- personal data of family members is stored here.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    caller_kind     text NOT NULL,
    caller_subject  text NOT NULL,
    -- The family an app caller acted for.
    caller_family   uuid,
    method          text NOT NULL,
    customer_id     uuid,
    family_id       uuid,
    -- The gRPC status code name the call ended with (OK, PERMISSION_DENIED, ...).
    outcome         text NOT NULL,
    request_id      text
);
CREATE INDEX audit_log_customer_idx ON audit_log (customer_id, id DESC)
    WHERE customer_id IS NOT NULL;
CREATE INDEX audit_log_time_idx ON audit_log (occurred_at);
