/**
 * The OpenAPI document says exactly what the agent accepts: the Go client's
 * traffic (test/go-client, as mistify's clients send it: `null` action
 * bodies, every zero value) goes through Prism, a proxy that enforces the
 * document the agent serves (`prism proxy --errors`: a request or response
 * that breaks it is answered with an error instead), unchanged, and every
 * step gets the answer it expects. Once with an agent without tokens (the
 * document must then require none) and once with tokens (every route but
 * the open ones requires the bearer scheme).
 *
 * Left out, because Prism cannot carry them:
 * - DELETE with a `null` body (what the Go client sends on DELETE
 *   /guests/{id}): Prism validates it (the document allows it), then
 *   forwards the DELETE without its body but with the client's
 *   Content-Length: 4, so the agent waits for 4 bytes that never come
 *   (prism-http's forwarder drops a parsed `null`; node-fetch sets a
 *   Content-Length of its own only for POST and PUT). That one step goes to
 *   the agent directly; the same route without a body, and POST
 *   /guests/{id}/delete with `null`, are checked through Prism below.
 * - GET /events (Server-Sent Events: Prism waits for the end of a response
 *   to validate it, and the stream never ends) and the snapshot download
 *   stream; the Go client uses neither.
 */
import { expect } from 'chai';
import { suiteAgent } from '../support/agent-hooks.js';
import type { TestAgent } from '../support/agent.js';
import { simulatorConfig } from '../support/configs.js';
import { goFlow, type FlowBackend } from '../support/conformance-flows.js';
import { buildGoClient, goClient, removeGoClient, setGoClientToken } from '../support/go-client.js';
import { startPrismProxy, type PrismProxy } from '../support/prism.js';

const simulator: FlowBackend = { guest: {}, jobTimeoutSeconds: 10, booted: async () => undefined };
const TOKEN = 'prism-test-token-0123456789';

for (const tokens of [[], [TOKEN]]) {
  describe(`conformance: the Go client through a validating proxy (Prism), ${tokens.length ? 'tokens configured' : 'no tokens'}`, function () {
    this.timeout(300_000);
    const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens } }) }));
    let prism: PrismProxy | undefined;

    before(async function () {
      // A first go build on a cold cache, and Prism's start on a loaded machine.
      this.timeout(600_000);
      await buildGoClient();
      prism = await startPrismProxy(`${agent.url}/openapi.json`, agent.url);
      setGoClientToken(tokens[0]);
    });
    after(async () => {
      setGoClientToken(undefined);
      await prism?.stop();
      await removeGoClient();
    });

    /** The agent as the Go client sees it: its URL is Prism's (the flows reach the agent only through the Go client). */
    const proxied = (): TestAgent => ({
      url: prism!.url,
      dataDir: agent.dataDir,
      logs: agent.logs,
      stop: (ms) => agent.stop(ms),
      request: (method, path, body, headers) => agent.request(method, path, body, headers),
    });

    it('the document the agent serves says which routes need a token, as configured', async () => {
      const document = (await agent.request('GET', '/openapi.json')).body;
      if (tokens.length === 0) {
        expect(document.security, 'nothing required').to.equal(undefined);
        expect(document.paths['/guests/{id}/start'].post.responses).to.not.have.property('401');
      } else {
        expect(document.security).to.deep.equal([{ bearerAuth: [] }]);
        expect(document.paths['/guests/{id}/start'].post.responses).to.have.property('401');
      }
    });

    it("passes the Go client's whole flow unchanged: create, get, list, metadata, metrics, every action with a null body, jobs, delete", async () => {
      // The final DELETE (null body) past Prism: see the top of the file.
      await goFlow(proxied(), simulator, agent.url);
    });

    it("passes the Go client's snapshot flow: create and roll back with a SnapshotRequest body, delete with none", async () => {
      const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 64, disks: [{ size: 8 }] }, tokens.length ? { authorization: `Bearer ${TOKEN}` } : {});
      expect(created.status, created.text).to.equal(200);
      const out = await goClient(prism!.url, 'snapshots', created.body.id, 'go-snap');
      const one = [{ id: 'go-snap', size: 0 }];
      expect(out).to.deep.equal({ created: one, listed: one, got: one, rolledBack: one, deleted: one, after: [] });
    });

    it('passes DELETE /guests/{id} without a body and its POST alias with a null body, as the Go client sends it', async () => {
      const headers: Record<string, string> = tokens.length ? { authorization: `Bearer ${TOKEN}` } : {};
      for (const [method, suffix, body] of [['DELETE', '', undefined], ['POST', '/delete', 'null']] as const) {
        const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 64 }, headers);
        const res = await fetch(`${prism!.url}/guests/${created.body.id}${suffix}?wait=10`, { method, body, headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) } });
        const text = await res.text();
        expect(res.status, `${method} ${suffix}: ${text}`).to.equal(200);
        expect(res.headers.get('x-guest-job-status')).to.equal('Complete');
      }
    });

    it('refuses what the document does not allow (the proxy validates): an array action body, and with tokens a request without one', async () => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(tokens.length ? { authorization: `Bearer ${TOKEN}` } : {}) };
      const res = await fetch(`${prism!.url}/guests/00000000-0000-4000-8000-000000000000/start`, { method: 'POST', body: '[1]', headers });
      const text = await res.text();
      expect(res.status, text).to.equal(422);
      expect(res.headers.get('x-request-id'), 'answered by Prism, not the agent').to.equal(null);
      if (tokens.length) {
        const bare = await fetch(`${prism!.url}/guests`);
        await bare.text();
        expect(bare.status).to.equal(401);
        expect(bare.headers.get('x-request-id'), 'answered by Prism, not the agent').to.equal(null);
      }
    });
  });
}
