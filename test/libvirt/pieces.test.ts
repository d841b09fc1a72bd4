/**
 * The libvirt plugin's parts on their own: parsing what virsh prints, the
 * domain XML, option resolution, and the virsh shell (on the test driver,
 * which needs no daemon) including its reconnect after virsh dies.
 */
import { expect } from 'chai';
import { parseDomState, guestStateOf } from '../../plugins/libvirt/domain-state.js';
import { cpuMetricsOf, diskMetricsOf, nicCountersOf, parseDomStats, BulkStats } from '../../plugins/libvirt/domain-stats.js';
import { parseEventLine } from '../../plugins/libvirt/domain-events.js';
import { isLocalSystemUri, parseStatusXml } from '../../plugins/libvirt/proc-cpu.js';
import { buildDomainXml } from '../../plugins/libvirt/domain-xml.js';
import { libvirtOptionsSchema, resolveOptions } from '../../plugins/libvirt/options.js';
import { quoteArg, VirshError, VirshShell } from '../../plugins/libvirt/virsh-shell.js';
import { kernelShapedGuest, MemoryLogger } from '../support/backend-testing.js';

const DOMSTATS = `Domain: 'hk-a'
  state.state=1
  state.reason=1
  cpu.time=3311069000
  vcpu.current=2
  vcpu.maximum=2
  vcpu.0.state=1
  vcpu.0.time=2920000000
  vcpu.1.state=1
  vcpu.1.time=150000000
  net.count=1
  net.0.name=hkaaaaaaaan0
  net.0.rx.bytes=1000
  net.0.rx.pkts=10
  net.0.rx.errs=1
  net.0.rx.drop=2
  net.0.tx.bytes=500
  net.0.tx.pkts=5
  net.0.tx.errs=0
  net.0.tx.drop=3
  block.count=2
  block.0.name=vda
  block.0.rd.reqs=2
  block.0.rd.bytes=4608
  block.0.rd.times=4079057
  block.0.wr.reqs=7
  block.0.wr.bytes=28672
  block.0.wr.times=2000000000
  block.0.fl.reqs=1
  block.0.fl.times=500000
  block.1.name=vda
  block.1.backingIndex=1
  block.1.rd.reqs=99

Domain: 'hk-b'
  state.state=5
  state.reason=1
`;

/** The shape of libvirt 9's status file (/run/libvirt/qemu/NAME.xml), cut down. */
const STATUS_XML = `<!--
WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE
-->
<domstatus state='running' reason='booted' pid='4242'>
  <taint flag='custom-argv'/>
  <monitor path='/var/lib/libvirt/qemu/domain-1-hk-a/monitor.sock' type='unix'/>
  <vcpus>
    <vcpu id='1' pid='4251'/>
    <vcpu id='0' pid='4250'/>
  </vcpus>
  <qemuCaps/>
  <domain type='qemu' id='1'>
    <name>hk-a</name>
    <vcpu placement='static'>2</vcpu>
    <vcpus>
      <vcpu id='0' enabled='yes' hotpluggable='no' order='1'/>
      <vcpu id='1' enabled='yes' hotpluggable='no' order='2'/>
    </vcpus>
  </domain>
</domstatus>
`;

describe('libvirt plugin pieces', () => {
  describe('what virsh prints', () => {
    it('maps domain states and reasons to guest states', () => {
      const cases: [string, string][] = [
        ['running (booted)', 'running'],
        ['paused (user)', 'suspended'],
        ['shut off (shutdown)', 'shutdown'],
        ['shut off (destroyed)', 'off'],
        ['shut off (crashed)', 'off'],
        ['in shutdown (user)', 'running'],
        ['crashed (panicked)', 'crashed'],
        ['pmsuspended (unknown)', 'suspended'],
      ];
      for (const [text, state] of cases) expect(guestStateOf(parseDomState(text)), text).to.equal(state);
      expect(parseDomState('shut off (shutdown)\n')).to.deep.equal({ state: 'shut off', reason: 'shutdown' });
    });

    it('reads bulk domain statistics into the mistify shapes, in seconds', () => {
      const domains = parseDomStats(DOMSTATS);
      expect([...domains.keys()]).to.deep.equal(['hk-a', 'hk-b']);
      const a = domains.get('hk-a')!;
      expect(cpuMetricsOf(a)).to.deep.equal([
        { cpu_time: 3.311069, vcpu_time: 2.92 },
        { cpu_time: 3.311069, vcpu_time: 0.15 },
      ]);
      expect(diskMetricsOf(a), 'the backing-chain entry of vda is not a second disk').to.deep.equal({
        vda: { disk: 'vda', read_ops: 2, read_bytes: 4608, read_time: 0.004079057, write_ops: 7, write_bytes: 28672, write_time: 2, flush_ops: 1, flush_time: 0.0005 },
      });
      expect(Object.fromEntries(nicCountersOf(a)!)).to.deep.equal({
        hkaaaaaaaan0: { rx_bytes: 1000, rx_packets: 10, rx_errors: 1, rx_drops: 2, tx_bytes: 500, tx_packets: 5, tx_errors: 0, tx_drops: 3 },
      });
      const b = domains.get('hk-b')!;
      expect(cpuMetricsOf(b), 'no vcpu group: the caller falls back').to.equal(undefined);
      expect(diskMetricsOf(b)).to.equal(undefined);
    });

    it('finds QEMU\'s pid and vCPU threads in libvirt\'s status file, in vCPU order', () => {
      expect(parseStatusXml(STATUS_XML)).to.deep.equal({ pid: 4242, vcpus: [4250, 4251] });
      expect(parseStatusXml(STATUS_XML.replace(/<vcpus>[^]*?<\/vcpus>/, '')), 'no vCPU threads yet: ask libvirt').to.equal(undefined);
      expect(parseStatusXml(STATUS_XML.replace(" pid='4242'", '')), 'no pid: ask libvirt').to.equal(undefined);
      expect(parseStatusXml('<domain type="qemu"/>')).to.equal(undefined);
    });

    it('reads /proc only for the local system daemon', () => {
      for (const uri of ['qemu:///system', 'qemu+unix:///system']) expect(isLocalSystemUri(uri), uri).to.equal(true);
      for (const uri of ['qemu:///session', 'qemu+ssh://host/system', 'qemu:///system?socket=/tmp/s', 'test:///default', 'qemu://host/system', 'nonsense']) {
        expect(isLocalSystemUri(uri), uri).to.equal(false);
      }
    });

    it('reads lifecycle event lines', () => {
      expect(parseEventLine("event 'lifecycle' for domain 'hk-x y': Stopped Shutdown")).to.deep.equal({ kind: 'lifecycle', domain: 'hk-x y', detail: 'Stopped Shutdown' });
      expect(parseEventLine("event 'reboot' for domain 'hk-x'")).to.deep.equal({ kind: 'reboot', domain: 'hk-x', detail: '' });
      expect(parseEventLine('events received: 3')).to.equal(undefined);
    });

    it('quotes arguments for virsh\'s parser and refuses line breaks', () => {
      expect(quoteArg('hk-1234')).to.equal('hk-1234');
      expect(quoteArg('/tmp/a b')).to.equal("'/tmp/a b'");
      expect(quoteArg("it's")).to.equal("'it'\\''s'");
      expect(() => quoteArg('a\ndestroy x')).to.throw(/line break/);
    });
  });

  describe('domain XML', () => {
    it('puts disks on pool volumes, NICs on their bridge or network with fixed host devices, and escapes text', () => {
      const guest = kernelShapedGuest({ nicNetworks: ['br0', 'default', ''], diskSizes: [64] });
      guest.disks[0].volume = 'pool/hk-x-vda.qcow2';
      const xml = buildDomainXml(guest, {
        name: 'hk-x',
        uuid: guest.id,
        type: 'qemu',
        machine: '',
        nics: new Map([
          ['net0', { kind: 'bridge', bridge: 'br0' }],
          ['net1', { kind: 'network', network: 'default' }],
          ['net2', { kind: 'user' }],
        ]),
        kernel: '/img/vmlinuz',
        cmdline: "console=ttyS0 x='<&>'",
        serialSocket: '/run/s.sock',
        consoleSocket: "/run/g'/console.sock",
        consoleLog: '/run/g/console.log',
      });
      expect(xml).to.contain(`<domain type='qemu'>`);
      expect(xml).to.contain(`<uuid>${guest.id}</uuid>`);
      expect(xml).to.contain(`<source pool='pool' volume='hk-x-vda.qcow2'/>`);
      expect(xml).to.contain(`<target dev='vda' bus='virtio'/>`);
      expect(xml).to.contain(`<source bridge='br0'/>`);
      expect(xml).to.contain(`<target dev='${guest.nics[0].device}'/>`);
      expect(xml).to.contain(`<source network='default'/>`);
      expect(xml).to.contain(`<interface type='user'>`);
      expect(xml, 'no host device for user-mode NICs').to.not.contain(`<target dev='${guest.nics[2].device}'/>`);
      expect(xml).to.contain('<cmdline>console=ttyS0 x=&apos;&lt;&amp;&gt;&apos;</cmdline>');
      expect(xml).to.contain('<acpi/>');
      expect(xml, 'ttyS0 on a socket QEMU listens on, its output logged').to.contain(
        "<serial type='unix'><source mode='bind' path='/run/g&apos;/console.sock'/><log file='/run/g/console.log' append='on'/><target port='0'/></serial>",
      );
      expect(xml).to.contain("<serial type='unix'><source mode='bind' path='/run/s.sock'/><target port='1'/></serial>");
    });

    it('refuses NIC models that are not NIC models', () => {
      const guest = kernelShapedGuest({ nicNetworks: [''], diskSizes: [] });
      guest.nics[0].model = "virtio'/><evil";
      expect(() => buildDomainXml(guest, { name: 'n', uuid: guest.id, type: 'qemu', machine: '', nics: new Map([['net0', { kind: 'user' }]]) })).to.throw(/unknown model/);
    });
  });

  describe('options', () => {
    it('defaults to qemu:///system and lets HYPERKERN_LIBVIRT_URI override it', () => {
      const parsed = libvirtOptionsSchema.parse({});
      expect(resolveOptions(parsed, {})).to.include({ uri: 'qemu:///system', uriSource: 'config', storagePool: 'default', domainPrefix: 'hk-' });
      expect(resolveOptions(parsed, { HYPERKERN_LIBVIRT_URI: 'test:///default' })).to.include({ uri: 'test:///default', uriSource: 'HYPERKERN_LIBVIRT_URI', storagePool: 'default-pool' });
      expect(() => resolveOptions(parsed, { HYPERKERN_LIBVIRT_DOMAIN_TYPE: 'xen' })).to.throw(/not one of/);
      expect(libvirtOptionsSchema.safeParse({ domainPrefix: 'a b' }).success).to.equal(false);
      expect(libvirtOptionsSchema.safeParse({ urI: 'x' }).success, 'unknown keys are refused').to.equal(false);
    });
  });

  describe('virsh shell (test driver)', () => {
    it('answers commands in order, reports errors with virsh\'s words, and reconnects after virsh dies', async () => {
      const shell = new VirshShell('virsh', 'test:///default', new MemoryLogger(), 10000);
      try {
        const answers = await Promise.all([shell.run(['list', '--all', '--name']), shell.run(['domstate', 'test']), shell.run(['echo', "it's"])]);
        expect(answers.map((a) => a.trim())).to.deep.equal(['test', 'running', "it's"]);
        const failure = await shell.run(['domstate', 'nosuch']).catch((e) => e);
        expect(failure).to.be.instanceOf(VirshError);
        expect(failure.message).to.equal("virsh domstate nosuch: failed to get domain 'nosuch'");
        const pid = shell.pid!;
        process.kill(pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 100));
        // The test driver's state was per connection: a fresh one has "test" running again.
        expect((await shell.run(['domstate', 'test'], { readOnly: true })).trim()).to.equal('running');
        expect(shell.pid).to.not.equal(pid);
        expect(shell.spawned).to.equal(2);
      } finally {
        await shell.close();
      }
    });

    it('reads concurrent requests for many domains in one call, and one domain alone at once', async () => {
      const shell = new VirshShell('virsh', 'test:///default', new MemoryLogger(), 10000);
      try {
        const stats = new BulkStats(shell, 0, ['--block']);
        // The first request goes out alone; the 19 that arrive meanwhile share the next call.
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stats.of('test')));
        expect(stats.reads, 'two domstats calls for 20 concurrent readers').to.equal(2);
        for (const r of results) expect(r?.get('state.state')).to.equal('1');
        // A domain libvirt does not have fails only its own readers.
        const [ok, missing] = await Promise.allSettled([stats.of('test'), stats.of('no-such-domain'), stats.of('test')]);
        expect(ok.status).to.equal('fulfilled');
        expect(missing.status).to.equal('rejected');
        expect(String((missing as PromiseRejectedResult).reason)).to.contain("failed to get domain 'no-such-domain'");
        await shell.run(['destroy', 'test']);
        expect(await stats.of('test'), 'a domain that does not run has no statistics').to.equal(undefined);
      } finally {
        await shell.close();
      }
    });
  });
});
