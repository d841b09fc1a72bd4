/**
 * Stage answers read as Go's encoding/json reads them (core/contract/go-json.ts,
 * go-answers.ts): what a Go sub-agent leaves out because it is zero reads as
 * that zero, `null` lists and maps as empty ones, unknown fields are dropped,
 * a value Go could not hold fails naming where it is, and a lifecycle
 * answer's guest keeps what the client gave where the answer left it out.
 */
import { expect } from 'chai';
import { STAGE_KINDS, actionStage, metricsStage, type Guest, type GuestRequest, type StageContext } from '../../core/contract/index.js';
import { readGo, goZero } from '../../core/contract/go-json.js';
import { GUEST_GO_TYPE } from '../../core/contract/go-answers.js';

const sent: Guest = {
  id: 'g1',
  type: 'container',
  image: 'debian',
  nics: [{ name: 'net0', network: 'br0', model: 'virtio', mac: '52:54:00:00:00:01', address: '', netmask: '', gateway: '', device: 'hkg1n0', vlans: [] }],
  disks: [{ bus: 'virtio', device: 'vda', size: 1024, volume: '', image: '', source: '' }],
  state: 'running',
  memory: 512,
  cpu: 2,
  vnc: 5901,
  metadata: { owner: 'ops' },
};
const ctx: StageContext = {
  stage: 't.start',
  signal: new AbortController().signal,
  timeoutMs: 1000,
  log: { debug() {}, info() {}, warn() {}, error() {}, child: () => ctx.log },
};
const request: GuestRequest = { guest: sent, action: 'poweroff', args: {} };

function check<K extends 'action' | 'metrics' | 'image' | 'snapshot'>(kind: K, answer: unknown, req?: GuestRequest) {
  const checked = STAGE_KINDS[kind].checkResponse(answer, req as never);
  if (!checked.ok) throw new Error(checked.problem);
  return checked.value as never;
}

describe('stage answers read as Go reads them', () => {
  it('reads every field a Go sub-agent leaves out as its zero value, nested ones too', () => {
    const guest = readGo({ id: 'g2', nics: [{ network: 'br0', model: 'virtio', address: '', netmask: '', gateway: '', vlans: null }], disks: [{}] }, GUEST_GO_TYPE, 'guest');
    expect(guest).to.deep.equal({
      id: 'g2', type: '', image: '',
      nics: [{ name: '', network: 'br0', model: 'virtio', mac: '', address: '', netmask: '', gateway: '', device: '', vlans: [] }],
      disks: [{ bus: '', device: '', size: 0, volume: '', image: '', source: '' }],
      state: '', memory: 0, cpu: 0, vnc: 0, metadata: {},
    });
    expect(goZero(GUEST_GO_TYPE)).to.deep.include({ type: '', nics: [], metadata: {} });
  });

  it('hands back an answer that already has every field as the same object, and drops fields Go does not know', () => {
    expect(readGo(sent, GUEST_GO_TYPE, 'guest')).to.equal(sent);
    const extra = readGo({ ...sent, action: 'create', Extra: 1 }, GUEST_GO_TYPE, 'guest');
    expect(extra).to.deep.equal(sent);
  });

  it('fails a value Go could not hold, naming where it is', () => {
    const problems = [
      [{ guest: { ...sent, memory: -1 } }, /answer\.guest\.memory: -1 is not a Go uint/],
      [{ guest: { ...sent, cpu: '2' } }, /answer\.guest\.cpu: "2" is not a Go uint/],
      [{ guest: { ...sent, vnc: 1.5 } }, /answer\.guest\.vnc: 1\.5 is not a Go int/],
      [{ guest: { ...sent, metadata: { n: 1 } } }, /answer\.guest\.metadata\.n: 1 is not a Go string/],
      [{ guest: { ...sent, nics: {} } }, /answer\.guest\.nics: an object is not a Go \[\]struct/],
      [{ guest: 'g1' }, /answer\.guest: "g1" is not a Go struct/],
    ] as const;
    for (const [answer, problem] of problems) {
      const checked = STAGE_KINDS.action.checkResponse(answer, request);
      expect(checked.ok, JSON.stringify(answer)).to.equal(false);
      if (!checked.ok) expect(checked.problem).to.match(problem).and.to.match(/a lifecycle stage answers a GuestResponse map/);
    }
  });

  it('keeps what the client gave, and the state, where an answer\'s guest left them out over a value sent', () => {
    const response = check('action', { guest: { id: 'g1', state: 'off' }, message: 'powered off' }, request) as { guest: Guest; message: string };
    // vnc is the backend's: left out, it is 0 (a stopped guest has no VNC port), as in Go.
    expect(response.guest).to.deep.equal({ ...sent, state: 'off', vnc: 0 });
    expect(response.message).to.equal('powered off');
    const noState = check('action', { guest: { ...sent, state: undefined } }, request) as { guest: Guest };
    expect(noState.guest.state).to.equal('running');
    // A field the stage did send wins, an empty one over an empty one stays empty.
    const changed = check('action', { guest: { id: 'g1', state: 'off', memory: 1024, metadata: { owner: 'dev' } } }, request) as { guest: Guest };
    expect(changed.guest).to.include({ memory: 1024, cpu: 2 });
    expect(changed.guest.metadata).to.deep.equal({ owner: 'dev' });
  });

  it('leaves message, retry and a nil guest absent, and reads `null` as nothing to change', () => {
    expect(check('action', { guest: null }, request)).to.deep.equal({});
    expect(check('action', null, request)).to.equal(undefined);
    expect(check('action', { guest: sent, message: null, retry: 3 }, request)).to.deep.equal({ guest: sent, retry: 3 });
  });

  it('reads a metrics answer\'s left-out parts as empty, and its entries\' left-out numbers as 0', () => {
    const cpu = check('metrics', { guest: sent, type: 'cpu' });
    expect(cpu).to.deep.equal({ guest: sent, type: 'cpu', cpu: [], nic: {}, disk: {} });
    const nic = check('metrics', { type: 'nic', nic: { net0: { name: 'net0', rx_bytes: 7 }, net1: null } }) as { nic: Record<string, object> };
    expect(nic.nic.net0).to.deep.equal({ name: 'net0', rx_bytes: 7, rx_packets: 0, rx_errors: 0, rx_drops: 0, tx_bytes: 0, tx_packets: 0, tx_errors: 0, tx_drops: 0 });
    expect(nic.nic.net1).to.include({ name: '', rx_bytes: 0 });
  });

  it('passes a NIC entry that says why it has no counters as it is, with no zeros claiming no traffic', () => {
    const entry = { name: 'net0', counters: 'unavailable: user-mode networking has no host device to count' };
    const nic = check('metrics', { type: 'nic', nic: { net0: entry, net1: { name: 'net1', tx_bytes: 3 } } }) as { nic: Record<string, object> };
    expect(nic.nic.net0, 'an unavailable entry keeps its word and gets no numbers').to.deep.equal(entry);
    expect(nic.nic.net1).to.include({ name: 'net1', tx_bytes: 3, rx_bytes: 0 });
    expect(() => check('metrics', { type: 'nic', nic: { net0: { name: 'net0', counters: 7 } } })).to.throw(/counters/);
  });

  it('reads image and snapshot answers the same way (`images: null` is none)', () => {
    expect(check('image', { images: null })).to.deep.equal({ images: [] });
    expect(check('image', { images: [{ id: 'deb', size: 10 }] })).to.deep.equal({ images: [{ id: 'deb', type: '', volume: '', snapshot: '', size: 10, status: '' }] });
    expect(check('snapshot', { snapshots: [{ id: 's1' }] })).to.deep.equal({ snapshots: [{ id: 's1', size: 0 }] });
    expect(STAGE_KINDS.image.checkResponse({ images: [{ id: 'deb', size: -1 }] }).ok).to.equal(false);
  });

  it('reads an in-process stage\'s answer at the one place every answer is checked (Stage.invoke)', async () => {
    const stage = actionStage(({ guest }) => JSON.parse(JSON.stringify({ guest: { id: guest.id, state: 'off' } })));
    expect(await stage.invoke(request, ctx)).to.deep.equal({ guest: { ...sent, state: 'off', vnc: 0 } });
    const metrics = metricsStage(() => JSON.parse('{"type":"disk"}'));
    expect(await metrics.invoke({ guest: sent, type: 'disk', args: {} }, ctx)).to.deep.include({ disk: {} });
  });
});
