/**
 * Snapshot download tickets over real HTTP (an in-process agent on the
 * simulator backend, with a token configured): a ticket from
 * POST …/snapshots/{name}/download/ticket opens exactly one GET of that
 * snapshot's download route without the header (what a browser's plain
 * link needs), once; every refusal is a JSON 401 (used, another snapshot,
 * disk, scope or guest, a console ticket, a route that takes no ticket),
 * and what would refuse the download is answered when the ticket is asked
 * for. The clock (30 s) is tested in test/console/console-tickets.test.ts.
 */
import { expect } from 'chai';
import { suiteAgent } from '../support/agent-hooks.js';
import { simulatorConfig } from '../support/configs.js';
import { checkResponse } from '../support/contract.js';
import { attemptWebSocket } from '../support/websocket-attempt.js';

const TOKEN = 'download-ticket-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const DOWNLOAD_BYTES = 200 * 1024;
const GO_EMPTY = { id: '', dest: '', recursive: false, destroyMoreRecent: false };

describe('snapshot download tickets', function () {
  this.timeout(60_000);
  const agent = suiteAgent(() => ({ config: simulatorConfig({ auth: { tokens: [TOKEN] }, simulator: { snapshotDownloadBytes: DOWNLOAD_BYTES } }) }));

  /** An off guest with `disks` disks and the snapshots named. */
  async function guestWith(snapshots: string[], disks = 2): Promise<string> {
    const res = await agent.request('POST', '/guests?wait=10&start=false', { memory: 64, cpu: 1, disks: Array.from({ length: disks }, () => ({ size: 8 })), nics: null, metadata: null }, auth);
    expect(res.status, res.text).to.equal(200);
    for (const dest of snapshots) {
      const taken = await agent.request('POST', `/guests/${res.body.id}/snapshots?wait=10`, { ...GO_EMPTY, dest }, auth);
      expect(taken.status, taken.text).to.equal(200);
    }
    return res.body.id;
  }

  async function ticketFor(path: string): Promise<{ ticket: string; url: string; expiresAt: string }> {
    const res = await agent.request('POST', `${path}/download/ticket`, undefined, auth);
    expect(res.status, res.text).to.equal(200);
    return res.body;
  }

  /** A GET as a browser's link makes it: no Authorization header; the JSON body of a refusal. */
  async function follow(url: string): Promise<{ status: number; bytes: Buffer; json?: { message: string; code: number; error: string }; headers: Headers }> {
    const res = await fetch(agent.url + url);
    const bytes = Buffer.from(await res.arrayBuffer());
    const json = res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(bytes.toString()) : undefined;
    await checkResponse({ method: 'GET', url: agent.url + url, status: res.status, headers: res.headers, body: json });
    return { status: res.status, bytes, json, headers: res.headers };
  }

  it('opens one download of that snapshot without the header, once', async () => {
    const id = await guestWith(['s1']);
    expect((await agent.request('POST', `/guests/${id}/disks/vda/snapshots/s1/download/ticket`)).status, 'asking for a ticket needs the token').to.equal(401);
    const asked = Date.now();
    const issued = await ticketFor(`/guests/${id}/disks/vda/snapshots/s1`);
    const answered = Date.now();
    expect(issued.url).to.equal(`/guests/${id}/disks/vda/snapshots/s1/download?ticket=${issued.ticket}`);
    // 30 s from its issue, which lies between the request and its answer (however slow the machine).
    expect(Date.parse(issued.expiresAt)).to.be.within(asked + 30_000 - 1, answered + 30_000 + 1);
    const withToken = await fetch(`${agent.url}/guests/${id}/disks/vda/snapshots/s1/download`, { headers: auth });
    const expected = Buffer.from(await withToken.arrayBuffer());

    const first = await follow(issued.url);
    expect(first.status).to.equal(200);
    expect(first.headers.get('content-disposition')).to.equal('attachment; filename="s1.qcow2"');
    expect(first.bytes.length).to.equal(DOWNLOAD_BYTES);
    expect(first.bytes.equals(expected), 'the same image as with the token').to.equal(true);

    const again = await follow(issued.url);
    expect(again.status).to.equal(401);
    expect(again.json?.message).to.match(/^ticket unknown, already used or expired, or issued for another route/);
    expect(again.json?.code).to.equal(401);
  });

  it('is bound to its guest, its snapshot, its disk and its scope: any other use is a 401 that uses it up', async () => {
    const id = await guestWith(['a', 'b']);
    const other = await guestWith(['a']);
    const refusedOn = async (path: string, why: string) => {
      const { ticket, url } = await ticketFor(`/guests/${id}/disks/vda/snapshots/a`);
      const wrong = await follow(`${path}?ticket=${ticket}`);
      expect(wrong.status, why).to.equal(401);
      expect(wrong.json?.message, why).to.match(/ticket unknown, already used or expired/);
      expect((await follow(url)).status, `${why}: the wrong try used the ticket up`).to.equal(401);
    };
    await refusedOn(`/guests/${id}/disks/vda/snapshots/b/download`, 'another snapshot');
    await refusedOn(`/guests/${id}/disks/vdb/snapshots/a/download`, 'another disk');
    await refusedOn(`/guests/${id}/snapshots/a/download`, 'the guest-wide route');
    await refusedOn(`/guests/${other}/disks/vda/snapshots/a/download`, 'another guest');
    // A download ticket is no console ticket, nor the other way round.
    const download = await ticketFor(`/guests/${id}/disks/vda/snapshots/a`);
    const socket = await attemptWebSocket(`${agent.url}/guests/${id}/console?ticket=${download.ticket}`);
    expect(socket.upgraded, 'a download ticket opens no console').to.equal(false);
    if (!socket.upgraded) expect(socket.status).to.equal(401);
    const consoleTicket = await agent.request('POST', `/guests/${id}/console/ticket`, undefined, auth);
    expect((await follow(`/guests/${id}/disks/vda/snapshots/a/download?ticket=${consoleTicket.body.ticket}`)).status, 'a console ticket opens no download').to.equal(401);
  });

  it('is no credential on any route that takes none: the token is asked for, and the ticket stays good', async () => {
    const id = await guestWith(['s']);
    const { ticket, url } = await ticketFor(`/guests/${id}/disks/vda/snapshots/s`);
    for (const path of [`/guests/${id}`, `/guests/${id}/disks/vda/snapshots/s`, `/guests/${id}/disks/vda/snapshots`, '/guests']) {
      const res = await follow(`${path}?ticket=${ticket}`);
      expect(res.status, path).to.equal(401);
      expect(res.json?.message, path).to.match(/^authentication required/);
    }
    const deleted = await fetch(`${agent.url}/guests/${id}/disks/vda/snapshots/s/download?ticket=${ticket}`, { method: 'DELETE' });
    expect(deleted.status, 'only a GET takes a ticket').to.equal(401);
    expect((await follow(url)).status, 'never presented on its route, the ticket still opens it').to.equal(200);
  });

  it('guest-wide: a one-disk guest downloads through the guest route', async () => {
    const id = await guestWith(['whole'], 1);
    const { url } = await ticketFor(`/guests/${id}/snapshots/whole`);
    expect(url).to.match(new RegExp(`^/guests/${id}/snapshots/whole/download\\?ticket=`));
    const res = await follow(url);
    expect(res.status).to.equal(200);
    expect(res.bytes.length).to.equal(DOWNLOAD_BYTES);
  });

  it('answers what would refuse the download when the ticket is asked for; a download refused later is JSON', async () => {
    const id = await guestWith(['kept']);
    const none = await agent.request('POST', `/guests/${id}/disks/vda/snapshots/nope/download/ticket`, undefined, auth);
    expect(none.status).to.equal(404);
    expect(none.body.error).to.equal('HK_ERR_SNAPSHOT_NOT_FOUND');
    const noDisk = await agent.request('POST', `/guests/${id}/disks/vdz/snapshots/kept/download/ticket`, undefined, auth);
    expect(noDisk.status).to.equal(404);
    expect(noDisk.body.error).to.equal('HK_ERR_DISK_NOT_FOUND');
    const noGuest = await agent.request('POST', '/guests/no-such-guest/snapshots/kept/download/ticket', undefined, auth);
    expect(noGuest.status).to.equal(404);
    const badName = await agent.request('POST', `/guests/${id}/snapshots/..%2Fx/download/ticket`, undefined, auth);
    expect(badName.status).to.equal(400);
    // Guest-wide on a guest of two disks: two images, no one download (as the download itself answers).
    const severalDisks = await agent.request('POST', `/guests/${id}/snapshots/kept/download/ticket`, undefined, auth);
    expect(severalDisks.status, severalDisks.text).to.equal(409);
    expect(severalDisks.body.message).to.match(/has 2 disks.*download each from/);
    // Issued, then the snapshot is deleted before the link is followed: a JSON 404, never a file.
    const { url } = await ticketFor(`/guests/${id}/disks/vda/snapshots/kept`);
    expect((await agent.request('DELETE', `/guests/${id}/snapshots/kept?wait=10`, undefined, auth)).status).to.equal(200);
    const gone = await follow(url);
    expect(gone.status).to.equal(404);
    expect(gone.json?.error).to.equal('HK_ERR_SNAPSHOT_NOT_FOUND');
  });
});
