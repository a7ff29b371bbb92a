-- Audit trail, schema version 1: one row per decision (service/liveness_gateway/audit/record.py).
-- Plain SQL that SQLite and PostgreSQL both read. Times and latencies are microseconds
-- (since the Unix epoch for time_us). No column holds liveness data, a url or an image.
CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    time_us BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    client_request_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    rpc TEXT NOT NULL,
    vendor TEXT NOT NULL,
    vendor_endpoint TEXT NOT NULL,
    vendor_request_id TEXT NOT NULL,
    liveness_data_id TEXT NOT NULL,
    source TEXT NOT NULL,
    liveness_data_sha256 TEXT NOT NULL,
    score DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    verdict TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    vendor_latency_us BIGINT NOT NULL,
    total_latency_us BIGINT NOT NULL,
    gateway_version TEXT NOT NULL,
    host TEXT NOT NULL
);

-- ListDecisions pages newest first by (time_us, id); the time range and the retention purge
-- read the same index.
CREATE INDEX decisions_time ON decisions (time_us, id);
-- The filters that pick a few rows out of many: one caller's decisions over time, and the
-- lookups by an id a caller or a vendor holds.
CREATE INDEX decisions_caller_time ON decisions (caller, time_us, id);
CREATE INDEX decisions_vendor_request_id ON decisions (vendor_request_id);
CREATE INDEX decisions_request_id ON decisions (request_id);
CREATE INDEX decisions_client_request_id ON decisions (client_request_id);
