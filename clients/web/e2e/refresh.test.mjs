// A token that expires in 5 s: the client sends `refresh` with a new token ahead of `exp`, so the
// same connection keeps receiving events after the original exp. Without the refresh, the
// server's next broadcast past exp would answer `token_expired` and close the socket (it checks
// exp at every delivery, without leeway).
import { test } from "node:test";
import assert from "node:assert/strict";
import { setUp, mintToken, jwtExp, broadcast, openPage, startClient, waitSubscribed, uuid } from "./harness.mjs";

const TTL_S = 5;

const env = setUp();

test("a 5 s token is refreshed ahead of exp and events keep arriving after it", async () => {
  const { server, browser, site } = env;
  const user = uuid();
  const project = uuid();
  const tokens = [];
  const getToken = async () => {
    const t = await mintToken(user, TTL_S);
    tokens.push(t);
    return t;
  };
  const { page, errors } = await openPage(browser, site.origin, { getToken });
  await startClient(page, { url: server.url }, [project]);
  await waitSubscribed(page, [project]);
  const exp = jwtExp(tokens[0]);

  assert.equal((await broadcast(server, { project_id: project, type: "message_created", data: { n: 0 } })).delivered, 1);
  await page.waitForFunction((p) => window.log.events[p].length == 1, project, { polling: 20 });

  // The server accepted a refresh on the socket before the first token's exp...
  await page.waitForFunction(() => window.wire.sockets[0].got.some((f) => f.type == "refreshed"), null, {
    timeout: TTL_S * 1000 + 2000,
    polling: 20,
  });
  const refreshed = await page.evaluate(() => {
    const s = window.wire.sockets[0];
    return { at: Date.now(), sent: s.sent.filter((f) => f.action == "refresh"), got: s.got.find((f) => f.type == "refreshed") };
  });
  assert.ok(refreshed.at < exp * 1000, "refreshed before exp");
  assert.equal(refreshed.sent[0].token, tokens[1]);
  assert.equal(refreshed.got.expires_at, jwtExp(tokens[1]));
  assert.ok(jwtExp(tokens[1]) > exp);

  // ...so once the first token is past its exp (on the server's clock too: same machine), an
  // event still reaches the same socket.
  await page.waitForFunction((ms) => Date.now() >= ms, exp * 1000 + 200, { timeout: TTL_S * 1000 + 2000, polling: 50 });
  const r = await broadcast(server, { project_id: project, type: "message_created", data: { n: 1 } });
  assert.deepEqual([r.delivered, r.expired], [1, 0], JSON.stringify(r));
  await page.waitForFunction((p) => window.log.events[p].length == 2, project, { polling: 20 });

  const { log, wire } = await page.evaluate(() => ({ log: window.log, wire: window.wire }));
  assert.deepEqual(log.events[project].map((e) => [e.seq, e.data.n]), [[1, 0], [2, 1]]);
  assert.equal(wire.sockets.length, 1, "no reconnect");
  assert.equal(wire.sockets[0].closed, null);
  assert.ok(!wire.sockets[0].got.some((f) => f.type == "error"), JSON.stringify(wire.sockets[0].got));
  assert.deepEqual(log.resets, []);
  assert.deepEqual(errors, []);
  await page.close();
});
