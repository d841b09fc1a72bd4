/**
 * The stage runner on real timers and real AbortSignals: a stage's timeout
 * fails the call with a message naming the stage and aborts the stage's
 * signal, whether the stage looked at its signal before the timeout, after
 * it or never; the agent's shutdown and a job's cancel reach the signal; a
 * call leaves no listener behind; failures and rejections keep their codes.
 */
import { expect } from 'chai';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { runStage, stageShutdownController, type PlannedStage } from '../../core/plugins/stage-runner.js';
import { HyperkernError } from '../../core/errors.js';
import { StageRejection, type Logger, type StageContext } from '../../core/contract/plugin-api.js';

const silent = { child: () => silent, info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const request = { guest: { id: 'guest-1' }, type: 'cpu', args: {} } as never;

function stage(call: (ctx: StageContext) => Promise<unknown>, timeoutMs = 200): PlannedStage {
  return { handle: { name: 'test.read', plugin: 'test', kind: 'metrics', call: (_request, ctx) => call(ctx) as never }, args: {}, timeoutMs };
}

/** Settles when the signal aborts, with its reason. */
const aborted = (signal: AbortSignal) => new Promise<unknown>((resolve) => signal.addEventListener('abort', () => resolve(signal.reason), { once: true }));

describe('stage runner', () => {
  it('times out a stage that never looks at its signal, with the stage named, as HK_ERR_STAGE_TIMEOUT (504)', async () => {
    const failed = await runStage(stage(() => new Promise(() => {})), request, { log: silent }).catch((e: unknown) => e);
    expect(failed).to.be.instanceOf(HyperkernError);
    expect((failed as HyperkernError).message).to.equal('stage test.read did not finish within 0.2 s');
    expect((failed as HyperkernError).code).to.equal('HK_ERR_STAGE_TIMEOUT');
    expect((failed as HyperkernError).status).to.equal(504);
  });

  it('aborts the signal of a timed-out stage with the timeout error, read before the timeout or after it', async () => {
    let early: Promise<unknown> | undefined;
    const before = await runStage(stage((ctx) => (early = aborted(ctx.signal)).then(() => new Promise(() => {}))), request, { log: silent }).catch((e: unknown) => e);
    expect(await early).to.equal(before);
    let late: StageContext | undefined;
    const after = await runStage(stage((ctx) => ((late = ctx), new Promise(() => {}))), request, { log: silent }).catch((e: unknown) => e);
    expect(late!.signal.aborted, 'a signal first read after the timeout is made aborted').to.equal(true);
    expect(late!.signal.reason).to.equal(after);
    expect((after as Error).message).to.equal('stage test.read did not finish within 0.2 s');
  });

  it("a request's timeout argument lengthens the stage's bound", async () => {
    const answer = await runStage(stage(() => sleep(400, { cpu: [] }), 200), { ...(request as object), args: { timeout: '1' } } as never, { log: silent });
    expect(answer).to.deep.equal({ cpu: [] });
  });

  it("aborts the signal at the agent's shutdown, also when the stage reads it after the shutdown", async () => {
    const shutdown = stageShutdownController();
    let reason: Promise<unknown> | undefined;
    const reading = runStage(stage((ctx) => (reason = aborted(ctx.signal)), 10_000), request, { log: silent, shutdown: shutdown.signal });
    let late: StageContext | undefined;
    let finish: (() => void) | undefined;
    const lateCall = runStage(stage((ctx) => ((late = ctx), new Promise<void>((resolve) => (finish = resolve))), 10_000), request, { log: silent, shutdown: shutdown.signal });
    await sleep(10);
    shutdown.abort(new Error('agent is shutting down'));
    expect(((await reason) as Error).message).to.equal('agent is shutting down');
    expect(await reading).to.be.instanceOf(Error);
    expect(late!.signal.aborted).to.equal(true);
    expect((late!.signal.reason as Error).message).to.equal('agent is shutting down');
    finish!();
    await lateCall;
  });

  it("aborts the signal with the job's cancel reason, cancelled before the call or during it", async () => {
    const cancelled = new AbortController();
    cancelled.abort(new Error('cancelled'));
    const seen = await runStage(stage(async (ctx) => ({ aborted: ctx.signal.aborted, reason: (ctx.signal.reason as Error).message })), request, { log: silent, cancel: cancelled.signal });
    expect(seen).to.deep.equal({ aborted: true, reason: 'cancelled' });
    const cancel = new AbortController();
    const call = runStage(stage((ctx) => aborted(ctx.signal), 10_000), request, { log: silent, cancel: cancel.signal });
    await sleep(10);
    cancel.abort(new Error('cancelled by DELETE'));
    expect(((await call) as Error).message).to.equal('cancelled by DELETE');
  });

  it('leaves no listener on the shutdown and cancel signals once a call ended, whether it read its signal or not', async () => {
    const shutdown = stageShutdownController();
    const cancel = new AbortController();
    const run = { log: silent, shutdown: shutdown.signal, cancel: cancel.signal };
    await runStage(stage(async (ctx) => ({ aborted: ctx.signal.aborted })), request, run);
    await runStage(stage(async () => ({})), request, run);
    await runStage(stage(() => new Promise(() => {}), 50), request, run).catch(() => undefined);
    expect(getEventListeners(shutdown.signal, 'abort')).to.have.length(0);
    expect(getEventListeners(cancel.signal, 'abort')).to.have.length(0);
  });

  it('turns a rejection into its status and any other failure into HK_ERR_STAGE_FAILED (502) naming the stage', async () => {
    const rejected = await runStage(stage(async () => { throw new StageRejection(409, 'guest is busy'); }), request, { log: silent }).catch((e: unknown) => e);
    expect((rejected as HyperkernError).status).to.equal(409);
    expect((rejected as HyperkernError).message).to.equal('guest is busy');
    const failed = await runStage(stage(async () => { throw new Error('monitor socket closed'); }), request, { log: silent }).catch((e: unknown) => e);
    expect((failed as HyperkernError).code).to.equal('HK_ERR_STAGE_FAILED');
    expect((failed as HyperkernError).status).to.equal(502);
    expect((failed as HyperkernError).message).to.equal('stage test.read failed: monitor socket closed');
    const thrown = await runStage(stage(() => { throw new Error('thrown before any promise'); }), request, { log: silent }).catch((e: unknown) => e);
    expect((thrown as HyperkernError).message).to.equal('stage test.read failed: thrown before any promise');
  });
});

describe('stage runner: the context a stage gets', () => {
  it('names the stage and its time, makes the signal and a child logger on first read, each once', async () => {
    let children = 0;
    const log = { ...silent, child: () => (children++, silent) } as unknown as Logger;
    const seen = await runStage(
      stage(async (ctx) => {
        const first = { stage: ctx.stage, timeoutMs: ctx.timeoutMs, jobId: ctx.jobId, children };
        const same = ctx.signal === ctx.signal && ctx.log === ctx.log;
        return { ...first, same, childrenAfter: children, aborted: ctx.signal.aborted };
      }),
      request,
      { log, jobId: 'job-1' },
    );
    expect(seen).to.deep.equal({ stage: 'test.read', timeoutMs: 200, jobId: 'job-1', children: 0, same: true, childrenAfter: 1, aborted: false });
  });
});
