// Compiled (not run) by `npm test`: the published types accept a real QueryClient and the README's usage.
import { createRealtime, type RealtimeEvent, type Status, type Typing, type UserSet } from "@devhive/realtime";
import { bindQueryClient } from "@devhive/realtime/react-query";
import { QueryClient } from "@tanstack/react-query";

const queryClient = new QueryClient();
const rt = createRealtime({ url: "wss://example/dev", getToken: async () => "jwt" });
const sub = rt.subscribe("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", (event: RealtimeEvent) => {
  const t: string = event.type;
  void t;
});
const offStatus: () => void = rt.onStatus((s: Status) => void s);
rt.onReset((projectId: string) => void projectId);
const offSubscribed: () => void = rt.onSubscribed((projectId: string) => void projectId);
rt.onRevoked((projectId: string, reason: string) => void [projectId, reason]);
const online: UserSet = rt.presence("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
const ids: string[] = online.users();
const offPresence: () => void = online.onChange((users: string[]) => void users);
const typing: Typing = rt.typing("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa");
typing.notify();
typing.onChange((users: string[]) => void [users, typing.users(), ids]);
const offDirect: () => void = rt.onDirect((message: RealtimeEvent) => void message.data);
rt.onDirectReset(() => {});
offPresence();
offDirect();
const unbind: () => void = bindQueryClient(rt, queryClient);
bindQueryClient(rt, queryClient, { keyFor: (e) => ["x", e.project_id] });
sub.unsubscribe();
offStatus();
offSubscribed();
unbind();
rt.close();
createRealtime({ url: "wss://example/dev", getToken: async () => "jwt", recheckMs: 0, presenceDebounceMs: 3000 }).close();
// @ts-expect-error: the token getter must return a promise
createRealtime({ url: "wss://example/dev", getToken: () => "jwt" });
