// React Query binding. Imports nothing at runtime: the QueryClient is duck-typed.
import type { Realtime, RealtimeEvent } from "./index.js";

/** The part of @tanstack/react-query's QueryClient the binding calls. */
export interface QueryClientLike {
  invalidateQueries(filters?: { queryKey?: readonly unknown[]; predicate?: (query: { queryKey: readonly unknown[] }) => boolean }): unknown;
}

export interface BindOptions {
  /**
   * The query key to invalidate for an event, or null/undefined to invalidate nothing.
   * Replaces the default mapping (`defaultKeyFor`) for every event except `resync`.
   */
  keyFor?: (event: RealtimeEvent) => readonly unknown[] | null | undefined;
}

/** Event type → the resource of DESIGN "Client protocol" (`cache_invalidate` names its own). */
export const RESOURCES: Readonly<Record<string, string>> = {
  message_created: "message",
  member_added: "project_members",
  member_removed: "project_members",
  task_created: "task",
  task_updated: "task",
  task_deleted: "task",
  sprint_created: "sprint",
  sprint_updated: "sprint",
  sprint_deleted: "sprint",
  project_updated: "project",
  project_deleted: "project",
  direct_message: "direct_message",
};

const resourceOf = (e: RealtimeEvent): string | undefined =>
  e.type == "cache_invalidate" ? e.resource ?? (e.data && e.data.resource) : RESOURCES[e.type];

/**
 * The default key: `[resource, project_id]` (`["direct_message"]` for direct messages, which have
 * no project). Null for frames that change no data: `typing`, `presence`, unknown types.
 */
export function defaultKeyFor(e: RealtimeEvent): unknown[] | null {
  const r = resourceOf(e);
  if (!r) return null;
  return e.project_id == null ? [r] : [r, e.project_id];
}

const containsProject = (p: string) => (q: { queryKey: readonly unknown[] }) =>
  JSON.stringify(q.queryKey).includes(JSON.stringify(p));

/**
 * Invalidates React Query queries from realtime events. Returns a function that unbinds.
 * - events: the key of `keyFor` (default `[resource, project_id]`); for the default mapping,
 *   every record id the event names (`id`, `data.id`, `ids`, `data.ids`) also invalidates
 *   `[resource, project_id, id]` (prefix matching already covers it; explicit for exact-key users);
 * - `resync`: every query (`"project_id":"*"`) or every query whose key contains the project id;
 * - onReset, onRevoked and onSubscribed: every query whose key contains the project id (on the
 *   first `subscribed` that is the one refetch of DESIGN "Sequence and recovery": data fetched
 *   before the subscription held, e.g. at mount, may have missed an event).
 */
export function bindQueryClient(rt: Realtime, queryClient: QueryClientLike, options: BindOptions = {}): () => void {
  const { keyFor } = options;
  const inv = (queryKey: readonly unknown[]) => queryClient.invalidateQueries({ queryKey });
  const project = (p: string) => queryClient.invalidateQueries({ predicate: containsProject(p) });
  const offs = [
    rt.onEvent((e) => {
      if (e.type == "resync") {
        const p = e.project_id;
        return p == null || p == "*" ? queryClient.invalidateQueries({}) : project(p);
      }
      if (keyFor) {
        const k = keyFor(e);
        return k && inv(k);
      }
      const k = defaultKeyFor(e);
      if (!k) return;
      inv(k);
      const d = e.data || {};
      const ids = new Set<unknown>(
        [e.id, d.id, ...(Array.isArray(e.ids) ? e.ids : []), ...(Array.isArray(d.ids) ? d.ids : [])].filter((x) => x != null),
      );
      ids.forEach((id) => inv([...k, id]));
    }),
    rt.onReset(project),
    rt.onSubscribed(project),
    rt.onRevoked(project),
  ];
  return () => offs.forEach((off) => off());
}
