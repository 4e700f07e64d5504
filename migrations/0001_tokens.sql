-- ingest-edge's PostgreSQL token store (SPEC §16): one row per token, an append-only audit
-- trail, and a trigger that numbers every change and tells every edge about it.
-- Applied by the edge at start (src/token/store/pg.rs), inside one transaction holding an
-- advisory lock, so edges starting together on an empty database do not race.

CREATE SEQUENCE IF NOT EXISTS ingest_edge_token_revision;

CREATE TABLE IF NOT EXISTS ingest_edge_tokens (
    id         text PRIMARY KEY,
    -- The whole TokenRecord as the file store writes it (secret digests only, never secrets).
    record     jsonb NOT NULL,
    -- Set by the trigger from the sequence: edges catch up with "revision > last seen".
    revision   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ingest_edge_tokens_revision ON ingest_edge_tokens (revision);
CREATE INDEX IF NOT EXISTS ingest_edge_tokens_updated_at ON ingest_edge_tokens (updated_at);

CREATE TABLE IF NOT EXISTS ingest_edge_audit (
    seq   bigserial PRIMARY KEY,
    -- The event's own id (AuditEvent.id), named by a record's last_event.
    id    bigint NOT NULL,
    -- server.name of the edge that wrote it.
    edge  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT now(),
    event jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_edge_audit_edge ON ingest_edge_audit (edge, seq);

-- A new revision for every change except a last_used_at write (usage, written in batches by
-- every edge): that one neither renumbers nor notifies, so usage does not flood the channel.
CREATE OR REPLACE FUNCTION ingest_edge_token_revise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.record - 'last_used_at') = (OLD.record - 'last_used_at') THEN
        NEW.revision := OLD.revision;
        NEW.updated_at := OLD.updated_at;
    ELSE
        NEW.revision := nextval('ingest_edge_token_revision');
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ingest_edge_token_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.revision <> OLD.revision THEN
        PERFORM pg_notify('ingest_edge_tokens', NEW.id || ':' || NEW.revision);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ingest_edge_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ingest_edge_audit is append-only';
END $$;

DROP TRIGGER IF EXISTS ingest_edge_tokens_revise ON ingest_edge_tokens;
CREATE TRIGGER ingest_edge_tokens_revise BEFORE INSERT OR UPDATE ON ingest_edge_tokens
    FOR EACH ROW EXECUTE FUNCTION ingest_edge_token_revise();
DROP TRIGGER IF EXISTS ingest_edge_tokens_notify ON ingest_edge_tokens;
CREATE TRIGGER ingest_edge_tokens_notify AFTER INSERT OR UPDATE ON ingest_edge_tokens
    FOR EACH ROW EXECUTE FUNCTION ingest_edge_token_notify();
DROP TRIGGER IF EXISTS ingest_edge_audit_append_only ON ingest_edge_audit;
CREATE TRIGGER ingest_edge_audit_append_only BEFORE UPDATE OR DELETE ON ingest_edge_audit
    FOR EACH ROW EXECUTE FUNCTION ingest_edge_audit_append_only();
