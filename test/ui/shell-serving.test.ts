/**
 * How the agent serves the web console (core/http/ui-routes.ts) and the
 * capacity it shows (GET /host), over real HTTP: the page is open even with
 * tokens, carries its CSP and is revalidated; assets are the build's files
 * only, by exact name, gzipped when accepted, cached for a year; a path
 * that is not a built asset's name is a JSON 404 and opens no file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { distRoot } from '../support/agent.js';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';

const TOKEN = 'ui-serving-token-0123456789';
const auth = { Authorization: `Bearer ${TOKEN}` };

describe('GET /ui and its assets', () => {
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [TOKEN] } }) }));

  it('serves the page without a token, with its CSP, naming only its own assets', async () => {
    const page = await agent.request('GET', '/ui');
    expect(page.status, page.text).to.equal(200);
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).to.equal('no-cache');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).to.include("default-src 'self'").and.include("script-src 'self'").and.include("frame-ancestors 'none'");
    expect(csp, 'no inline script').not.to.match(/script-src[^;]*unsafe-inline/);
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]).filter((s) => s !== 'data:,' && s !== '/docs');
    expect(sources.length, page.text).to.be.greaterThanOrEqual(2);
    expect(sources.every((s) => /^\/ui\/assets\/[A-Za-z0-9-]+\.(js|css)$/.test(s)), `local, hashed assets: ${sources}`).to.equal(true);
  });

  it('serves each asset gzipped when accepted, plain otherwise, with its type, cached for a year', async () => {
    const page = await agent.request('GET', '/ui');
    const script = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(page.text)![1];
    const style = /href="(\/ui\/assets\/[^"]+\.css)"/.exec(page.text)![1];
    const built = await readFile(path.join(distRoot, 'ui/assets', path.basename(script)));
    for (const [asset, type] of [
      [script, 'text/javascript; charset=utf-8'],
      [style, 'text/css; charset=utf-8'],
    ]) {
      const plain = await agent.request('GET', asset, undefined, { 'Accept-Encoding': 'identity' });
      expect(plain.status, asset).to.equal(200);
      expect(plain.headers.get('content-type')).to.equal(type);
      expect(plain.headers.get('content-encoding')).to.equal(null);
      expect(plain.headers.get('cache-control')).to.equal('public, max-age=31536000, immutable');
      expect(plain.headers.get('vary')).to.match(/accept-encoding/i);
      // Raw bytes, so the gzip is seen as sent (fetch would inflate it).
      const zipped = await rawGet(agent.url + asset, { 'Accept-Encoding': 'gzip, deflate' });
      expect(zipped.headers.get('content-encoding')).to.equal('gzip');
      expect(gunzipSync(zipped.bytes).toString()).to.equal(plain.text);
      expect(zipped.bytes.length, 'compressed').to.be.lessThan(Buffer.byteLength(plain.text));
    }
    const plainScript = await agent.request('GET', script, undefined, { 'Accept-Encoding': 'identity' });
    expect(plainScript.text).to.equal(built.toString());
    // The asset route is documented and checked like every other.
    const checked = await agent.request('GET', script);
    expect(checked.status).to.equal(200);
  });

  it('answers a JSON 404 for any name the build did not make, opening no file', async () => {
    for (const name of ['nope.js', '..%2F..%2Fpackage.json', '..%2Findex.html', 'manifest.json', '%2Fetc%2Fpasswd', 'app.js.gz']) {
      const res = await agent.request('GET', `/ui/assets/${name}`);
      expect(res.status, name).to.equal(404);
      expect(res.body.error, name).to.equal('HK_ERR_ROUTE_NOT_FOUND');
      expect(res.text, name).not.to.include(distRoot);
    }
  });

  it('GET /host needs the token and counts the guests the registry holds', async () => {
    const refused = await agent.request('GET', '/host');
    expect(refused.status).to.equal(401);
    const before = await agent.request('GET', '/host', undefined, auth);
    expect(before.status, before.text).to.equal(200);
    const created = await agent.request('POST', '/guests?wait=10&start=false', { memory: 300, cpu: 3, disks: [{ size: 8 }] }, auth);
    expect(created.status, created.text).to.equal(200);
    const after = await agent.request('GET', '/host', undefined, auth);
    expect(after.body.cpus.allotted - before.body.cpus.allotted).to.equal(3);
    expect(after.body.memoryMiB.allotted - before.body.memoryMiB.allotted).to.equal(300);
    expect(after.body.cpus.free).to.equal(after.body.cpus.total - after.body.cpus.allotted);
    expect(after.body.memoryMiB.total).to.be.greaterThan(0);
    expect(after.body.guests.off).to.equal((before.body.guests.off ?? 0) + 1);
  });
});

async function rawGet(url: string, headers: Record<string, string>): Promise<{ headers: Headers; bytes: Buffer }> {
  const { request } = await import('undici');
  const res = await request(url, { headers });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const out = new Headers();
  for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') out.set(name, value);
  return { headers: out, bytes };
}
