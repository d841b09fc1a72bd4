/**
 * Stage kinds: a handler of the wrong kind does not compile, and every
 * answer is shape-checked by its kind in-process, as isolated answers are.
 */
import { expect } from 'chai';
import { actionStage, metricsStage, vncStage, type Guest, type GuestMetricsRequest, type GuestRequest, type StageContext } from '../../core/contract/index.js';

const guest: Guest = { id: 'g1', type: '', image: '', nics: [], disks: [], state: 'off', memory: 512, cpu: 1, vnc: 0, metadata: {} };
const ctx = (stage: string): StageContext => ({
  stage,
  signal: new AbortController().signal,
  timeoutMs: 1000,
  log: { debug() {}, info() {}, warn() {}, error() {}, child: () => ctx(stage).log },
});
const actionRequest: GuestRequest = { guest, action: 'start', args: {} };
const metricsRequest: GuestMetricsRequest = { guest, type: 'cpu', args: {} };

describe('stage kinds', () => {
  it('a metrics handler is not an action stage (compile-time)', () => {
    const cpu = (request: GuestMetricsRequest) => ({ guest: request.guest, type: request.type, cpu: [] });
    // @ts-expect-error a metrics handler takes a GuestMetricsRequest, not the GuestRequest of an action stage
    const wrong = actionStage(cpu);
    expect(wrong.kind).to.equal('action');
    expect(metricsStage(cpu).kind).to.equal('metrics');
  });

  it('passes well-shaped answers through and nothing as no change', async () => {
    const running: Guest = { ...guest, state: 'running' };
    expect(await actionStage(() => ({ guest: running })).invoke(actionRequest, ctx('t.start'))).to.deep.equal({ guest: running });
    expect(await actionStage(() => undefined).invoke(actionRequest, ctx('t.start'))).to.equal(undefined);
    const metrics = await metricsStage(({ guest: g }) => ({ guest: g, type: 'cpu', cpu: [{ cpu_time: 1, vcpu_time: 1 }] })).invoke(metricsRequest, ctx('t.cpu'));
    expect(metrics).to.deep.include({ type: 'cpu' });
  });

  it('refuses an in-process answer of the wrong shape, naming what belongs there', async () => {
    const garbage = actionStage(() => JSON.parse('"not a response"'));
    const error = await garbage.invoke(actionRequest, ctx('t.start')).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.equal('the stage answered "not a response"; a lifecycle stage answers a GuestResponse map ({guest, message}) or nil');
    const noMap = metricsStage(() => JSON.parse('[1, 2]'));
    const metricsError = await noMap.invoke(metricsRequest, ctx('t.cpu')).then(() => undefined, (e: Error) => e);
    expect(metricsError?.message).to.match(/an array of 2; a metrics stage answers a GuestMetricsResponse map/);
  });

  it('refuses a request of another kind before the handler runs', async () => {
    let ran = false;
    const stage = metricsStage(({ guest: g }) => ((ran = true), { guest: g, type: 'cpu' }));
    const error = await stage.invoke(actionRequest, ctx('t.cpu')).then(() => undefined, (e: Error) => e);
    expect(error?.message).to.match(/not a metrics request/);
    expect(ran).to.equal(false);
  });

  it('takes a VNC endpoint as a unix socket, a TCP address or nothing, and refuses anything else', async () => {
    const request = { guest, args: {} };
    expect(await vncStage(() => ({ path: '/run/g/vnc.sock' })).invoke(request, ctx('t.vnc'))).to.deep.equal({ path: '/run/g/vnc.sock' });
    expect(await vncStage(() => ({ host: '127.0.0.1', port: 5901 })).invoke(request, ctx('t.vnc'))).to.deep.equal({ host: '127.0.0.1', port: 5901 });
    expect(await vncStage(() => undefined).invoke(request, ctx('t.vnc'))).to.equal(undefined);
    for (const wrong of [{ path: 'relative.sock' }, { host: '127.0.0.1', port: 70000 }, { host: '', port: 5900 }, 'vnc.sock']) {
      const error = await vncStage(() => JSON.parse(JSON.stringify(wrong))).invoke(request, ctx('t.vnc')).then(() => undefined, (e: Error) => e);
      expect(error?.message, JSON.stringify(wrong)).to.match(/a vnc stage answers \{path: "\/absolute\/unix\/socket"\}, \{host, port: 1-65535\}, or nil/);
    }
    const notVnc = await vncStage(() => undefined).invoke(actionRequest, ctx('t.vnc')).then(() => undefined, (e: Error) => e);
    expect(notVnc?.message, 'an action request is not a vnc request').to.match(/not a vnc request/);
  });
});
