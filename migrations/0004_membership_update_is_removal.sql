-- A `project_members` UPDATE that changes the pair (project_id, user_id) ends the old
-- membership as surely as a DELETE does: it is announced as a DELETE of the old pair (which
-- the relay turns into a revocation, DESIGN "Connection life") followed by an INSERT of the
-- new pair. Until this migration such an UPDATE was announced as one UPDATE of the new pair,
-- and the old member kept receiving the old project's events.
-- Every other change is announced exactly as 0003 does. Safe to run again.

CREATE OR REPLACE FUNCTION realtime_announce(resource text, record_id text, action text, project_id text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    payload   jsonb;
    outbox_id bigint;
BEGIN
    payload := jsonb_build_object(
        'resource', resource,
        'id', record_id,
        'action', action,
        'project_id', project_id,
        'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    );
    INSERT INTO realtime_outbox (payload) VALUES (payload) RETURNING id INTO outbox_id;
    PERFORM pg_notify('cache_invalidate', (payload || jsonb_build_object('outbox_id', outbox_id))::text);
END;
$$;

CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_data   record;
    resource   text;
    record_id  text;
    project_id text;
BEGIN
    -- Nested, not one AND: PL/pgSQL does not promise to skip OLD's fields on other tables
    -- and operations, where OLD has none.
    IF TG_TABLE_NAME = 'project_members' AND TG_OP = 'UPDATE' THEN
        IF (OLD.project_id, OLD.user_id) IS DISTINCT FROM (NEW.project_id, NEW.user_id) THEN
            PERFORM realtime_announce('project_members', OLD.project_id::text || ':' || OLD.user_id::text,
                                      'DELETE', OLD.project_id::text);
            PERFORM realtime_announce('project_members', NEW.project_id::text || ':' || NEW.user_id::text,
                                      'INSERT', NEW.project_id::text);
            RETURN NULL;
        END IF;
    END IF;

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

    PERFORM realtime_announce(resource, record_id, TG_OP, project_id);
    RETURN NULL;
END;
$$;
