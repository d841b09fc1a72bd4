/**
 * Reference server: bare Koa + @koa/router, no auth, no logging, state in a
 * Map. It answers the same routes and bodies as the agent for the bench
 * cases, so "agent / bare Koa" isolates what hyperkern adds on top of Koa.
 *
 * usage: node dist/bench/ref-koa.js PORT GUESTS_JSON_FILE
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { koaBody } from 'koa-body';

const [port, guestsFile] = process.argv.slice(2);
const guests = new Map<string, Record<string, unknown>>();
for (const guest of JSON.parse(readFileSync(guestsFile, 'utf8')) as Array<Record<string, unknown>>) {
  guests.set(guest.id as string, guest);
}

const app = new Koa();
const router = new Router();

router.get('/guests', (ctx) => {
  ctx.body = [...guests.values()];
});

router.get('/guests/:id', (ctx) => {
  const guest = guests.get(ctx.params.id);
  if (!guest) ctx.throw(404);
  ctx.body = guest;
});

router.post('/guests', koaBody(), (ctx) => {
  const guest = { ...(ctx.request.body as Record<string, unknown>), id: randomUUID(), state: 'creating' };
  guests.set(guest.id, guest);
  ctx.set('X-Guest-Job-ID', randomUUID());
  ctx.status = 202;
  ctx.body = guest;
});

/** When each reboot was accepted (ms), so the bench can see this server's own drift. */
const acceptedAt: number[] = [];

router.post('/guests/:id/reboot', (ctx) => {
  const guest = guests.get(ctx.params.id);
  if (!guest) ctx.throw(404);
  acceptedAt.push(Date.now());
  ctx.set('X-Guest-Job-ID', randomUUID());
  ctx.status = 202;
  ctx.body = guest;
});

router.get('/_accepted', (ctx) => {
  ctx.body = acceptedAt;
});
router.delete('/_accepted', (ctx) => {
  acceptedAt.length = 0;
  ctx.status = 204;
});

app.use(router.routes());
createServer(app.callback()).listen(Number(port), '127.0.0.1');

// Exit cleanly on SIGTERM (lets --cpu-prof write its profile).
process.on('SIGTERM', () => process.exit(0));
