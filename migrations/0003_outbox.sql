-- The outbox: every change the triggers announce is also written, in the writing transaction,
-- to `realtime_outbox`, so that a relay that was down, restarting or failing over loses
-- nothing: it drains the rows in id order and deletes each once its broadcaster invocation
-- was accepted (DESIGN "Outbox relay"). NOTIFY still goes out, with the same payload plus
-- "outbox_id", so listeners written for the old payload keep working; for the relay it is
-- only a wake-up.
--
-- Rows the broadcaster would refuse (invalid, or over Lambda's 1 MiB asynchronous limit) move
-- to `realtime_outbox_dead` with the error, and never block the rows behind them.
-- The outbox also accepts any broadcaster invocation payload written by the application in
-- its own transaction (transactional publishing). Safe to run again.

CREATE TABLE IF NOT EXISTS realtime_outbox (
    id         bigserial PRIMARY KEY,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS realtime_outbox_dead (
    id         bigint PRIMARY KEY,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    error      text NOT NULL
);

CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_data   record;
    resource   text;
    record_id  text;
    project_id text;
    payload    jsonb;
    outbox_id  bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := OLD;
    ELSE
        row_data := NEW;
    END IF;

    CASE TG_TABLE_NAME
        WHEN 'projects' THEN
            resource := 'project';
            record_id := row_data.id::text;
            project_id := row_data.id::text;
        WHEN 'sprints' THEN
            resource := 'sprint';
            record_id := row_data.id::text;
            project_id := row_data.project_id::text;
        WHEN 'tasks' THEN
            resource := 'task';
            record_id := row_data.id::text;
            project_id := row_data.project_id::text;
        WHEN 'messages' THEN
            resource := 'message';
            record_id := row_data.id::text;
            project_id := row_data.project_id::text;
        WHEN 'project_members' THEN
            resource := 'project_members';
            record_id := row_data.project_id::text || ':' || row_data.user_id::text;
            project_id := row_data.project_id::text;
        ELSE
            RETURN NULL;
    END CASE;

    payload := jsonb_build_object(
        'resource', resource,
        'id', record_id,
        'action', TG_OP,
        'project_id', project_id,
        'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    );
    INSERT INTO realtime_outbox (payload) VALUES (payload) RETURNING id INTO outbox_id;
    PERFORM pg_notify('cache_invalidate', (payload || jsonb_build_object('outbox_id', outbox_id))::text);
    RETURN NULL;
END;
$$;
