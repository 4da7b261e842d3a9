-- Every committed row change on projects, sprints, tasks, messages and project_members is
-- announced on the `cache_invalidate` channel as
--   {"resource","id","action","project_id","timestamp"}
-- (singular resource names, snake_case project_id, "<project_id>:<user_id>" for members).
-- NOTIFY is transactional: a rolled-back change announces nothing.
--
-- Older versions (camelCase "projectId", plural names, other trigger names) are replaced:
-- every trigger on these tables whose function notifies `cache_invalidate` is dropped, then
-- exactly one current trigger per table is created. Safe to run again.

CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    row_data   record;
    resource   text;
    record_id  text;
    project_id text;
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

    PERFORM pg_notify('cache_invalidate', json_build_object(
        'resource', resource,
        'id', record_id,
        'action', TG_OP,
        'project_id', project_id,
        'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    )::text);
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT tg.tgname, c.relname
        FROM pg_trigger tg
        JOIN pg_class c ON c.oid = tg.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_proc p ON p.oid = tg.tgfoid
        WHERE NOT tg.tgisinternal
          AND n.nspname = current_schema()
          AND c.relname IN ('projects', 'sprints', 'tasks', 'messages', 'project_members')
          AND (p.proname = 'notify_cache_invalidation' OR pg_get_functiondef(p.oid) ILIKE '%cache_invalidate%')
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t.tgname, t.relname);
    END LOOP;
END;
$$;

CREATE TRIGGER projects_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER sprints_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON sprints
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER tasks_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER messages_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
CREATE TRIGGER project_members_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE ON project_members
    FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();
