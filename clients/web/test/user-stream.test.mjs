// Frames of the user's own stream never count in a project's sequence (its seq is the user's): a
// direct message, or the frame a server sent in its place (no project_id; with or without
// user_id), carries a seq of the user stream, which says nothing about the project's seqs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { harness, ev, P, U1 } from "./helpers.mjs";

const interleaved = {
  "a direct message": { type: "direct_message", user_id: U1, seq: 4, epoch: "u1", data: { text: "psst" }, event_id: "dm-4" },
  // What the broadcaster sent for a direct message over 128 KB (neither project_id nor user_id).
  "a frame without project_id": { type: "cache_invalidate", resource: "direct", seq: 4, epoch: "u1", event_id: "direct-4" },
  "a user-stream frame carrying user_id": { type: "cache_invalidate", resource: "direct", user_id: U1, seq: 4, epoch: "u1", event_id: "direct-u-4" },
};

for (const [name, frame] of Object.entries(interleaved)) {
  test(`project events 1..5 with ${name} of seq 4 interleaved: all five reach the app`, async () => {
    const h = harness({ recheckMs: 0 }); // counts gap re-subscribes only
    const direct = [];
    h.rt.onDirect((m) => direct.push(m));
    const project = [];
    const { ws } = await h.connect(P, { seq: 0, epoch: "e1" }, (e) => e.project_id == P && project.push(e.seq));
    ws.recv({ type: "subscribed_user", user_id: U1, seq: 3, epoch: "u1" });
    for (const seq of [1, 2, 3]) ws.recv(ev(seq));
    ws.recv(frame);
    for (const seq of [4, 5]) ws.recv(ev(seq));
    assert.deepEqual(project, [1, 2, 3, 4, 5], "every project event, once, in order");
    await h.clock.advance(5000);
    assert.deepEqual(ws.subscribes().length, 1, "no gap in the project's sequence: no re-subscribe");
    assert.deepEqual(h.resets, []);
    if (frame.type == "direct_message") assert.deepEqual(direct.map((m) => [m.seq, m.data.text]), [[4, "psst"]], "onDirect got the message");
    h.rt.close();
  });
}
