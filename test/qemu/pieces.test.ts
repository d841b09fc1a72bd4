/**
 * The QEMU plugin's pieces on their own: options and the accelerator
 * override, the command line, disk creation with real qemu-img, and the QMP
 * client against a real QEMU (no guest OS needed).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StageRejection } from '../../core/contract/index.js';
import { buildCommandLine } from '../../plugins/qemu/command-line.js';
import { createDisks, findImage } from '../../plugins/qemu/disk-images.js';
import { qemuOptionsSchema, resolveOptions } from '../../plugins/qemu/options.js';
import { findGuestProcess, launchQemu, terminate } from '../../plugins/qemu/qemu-process.js';
import { QmpClient, QmpCommandError } from '../../plugins/qemu/qmp-client.js';
import { RunDir } from '../../plugins/qemu/run-dir.js';
import { kernelShapedGuest } from '../support/backend-testing.js';
import { watchOpens } from '../support/file-watch.js';

describe('QEMU plugin pieces', function () {
  this.timeout(30000);
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'hkp-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  describe('options', () => {
    it('defaults to auto acceleration and resolves imagesDir against the working directory', () => {
      const options = resolveOptions(qemuOptionsSchema.parse({}), {});
      expect(options.accel).to.equal('auto');
      expect(options.accelSource).to.equal('config');
      expect(options.imagesDir).to.equal(path.resolve('images'));
    });
    it('lets HYPERKERN_QEMU_ACCEL override the config, and rejects a value QEMU would not take', () => {
      const options = resolveOptions(qemuOptionsSchema.parse({ accel: 'kvm' }), { HYPERKERN_QEMU_ACCEL: 'tcg' });
      expect(options.accel).to.equal('tcg');
      expect(options.accelSource).to.equal('HYPERKERN_QEMU_ACCEL');
      expect(() => resolveOptions(qemuOptionsSchema.parse({}), { HYPERKERN_QEMU_ACCEL: 'hvf' })).to.throw(/HYPERKERN_QEMU_ACCEL="hvf" is not one of kvm, tcg, auto/);
    });
    it('refuses an unknown accelerator in config', () => {
      expect(qemuOptionsSchema.safeParse({ accel: 'xen' }).success).to.equal(false);
    });
  });

  describe('command line', () => {
    const options = (extra = {}) => resolveOptions(qemuOptionsSchema.parse({ accel: 'tcg', ...extra }), {});
    it('puts each disk on its bus, taps and user-mode NICs, kernel boot and VNC where the guest asks', () => {
      const guest = kernelShapedGuest({ diskSizes: [8, 8, 8], nicNetworks: ['br0', ''], metadata: { 'qemu.cmdline': 'console=ttyS0' } });
      guest.disks[0].source = '/d/vda.qcow2';
      Object.assign(guest.disks[1], { bus: 'scsi', device: 'sda', source: '/d/sda.qcow2' });
      Object.assign(guest.disks[2], { bus: 'sata', device: 'sdb', source: '/d/sd,b.qcow2' });
      const runDir = new RunDir('/data', guest.id);
      const args = buildCommandLine(guest, runDir, options({ vnc: true }), {
        taps: new Map([['net0', guest.nics[0].device]]),
        kernel: '/images/vmlinuz',
        vncPort: 5903,
      }).join(' ');
      expect(args).to.include('-accel tcg');
      expect(args).to.include(`virtio-blk-pci,drive=drive-vda,id=vda,bootindex=1`);
      expect(args).to.include('virtio-scsi-pci,id=scsi0');
      expect(args).to.include('scsi-hd,drive=drive-sda,bus=scsi0.0,scsi-id=0,id=sda');
      expect(args).to.include('ide-hd,drive=drive-sdb,bus=ide.1,id=sdb');
      expect(args, 'commas in paths are doubled').to.include('file=/d/sd,,b.qcow2');
      expect(args).to.include(`tap,id=netdev-net0,ifname=${guest.nics[0].device},script=no,downscript=no`);
      expect(args).to.include('user,id=netdev-net1');
      expect(args).to.include(`mac=${guest.nics[1].mac},id=net1`);
      expect(args).to.include('-kernel /images/vmlinuz -append console=ttyS0');
      expect(args).to.include('-vnc 127.0.0.1:3');
      expect(args).to.include(`-pidfile ${runDir.pidFile}`);
    });
    it('puts VNC on a unix socket in the run dir when vncSocket is on', () => {
      const guest = kernelShapedGuest();
      guest.disks[0].source = '/d/vda.qcow2';
      const runDir = new RunDir('/da,ta', guest.id);
      const args = buildCommandLine(guest, runDir, options({ vnc: true, vncSocket: true }), { taps: new Map(), vncPort: 0, vncSocket: runDir.vncSocket }).join(' ');
      expect(args).to.include(`-device VGA -vnc unix:/da,,ta/${guest.id}/vnc.sock`);
    });
    it('asks QEMU to fall back from KVM to TCG under auto', () => {
      const guest = kernelShapedGuest();
      guest.disks[0].source = '/d/vda.qcow2';
      const args = buildCommandLine(guest, new RunDir('/data', guest.id), options({ accel: 'auto' }), { taps: new Map(), vncPort: 0 }).join(' ');
      expect(args).to.include('-accel kvm -accel tcg');
    });
    it('refuses NIC models that are not NIC models', () => {
      const guest = kernelShapedGuest({ nicNetworks: [''] });
      guest.disks[0].source = '/d/vda.qcow2';
      guest.nics[0].model = 'e1000,romfile=/etc/shadow';
      expect(() => buildCommandLine(guest, new RunDir('/data', guest.id), options(), { taps: new Map(), vncPort: 0 }))
        .to.throw(StageRejection, /unknown model/);
    });
  });

  describe('disks', () => {
    it('creates blank qcow2 disks of the asked size and overlays of a named image', async () => {
      const images = path.join(root, 'images');
      await mkdir(images);
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(images, 'base.qcow2'), '100M']);
      const guest = kernelShapedGuest({ image: 'base', diskSizes: [50, 20] });
      const runDir = new RunDir(root, guest.id);
      await mkdir(runDir.dir);
      const disks = await createDisks(guest, runDir, { qemuImg: 'qemu-img', imagesDir: images, dataDir: root });
      const info = (f: string) => JSON.parse(execFileSync('qemu-img', ['info', '--output=json', f], { encoding: 'utf8' }));
      const overlay = info(disks[0].source);
      expect(overlay['backing-filename'], 'first disk backed by the guest image').to.equal(path.join(images, 'base.qcow2'));
      expect(overlay['virtual-size'], 'an overlay is never smaller than its base').to.equal(100 * 1024 * 1024);
      expect(disks[0]).to.include({ image: 'base', size: 100, volume: `${guest.id}/vda.qcow2` });
      expect(info(disks[1].source)['virtual-size']).to.equal(20 * 1024 * 1024);
      expect(info(disks[1].source)).to.not.have.property('backing-filename');
    });
    it('says which image is missing and which names it tried, never the host folder; refuses paths', async () => {
      const guest = kernelShapedGuest({ image: 'nope', diskSizes: [10] });
      const runDir = new RunDir(root, guest.id);
      await mkdir(runDir.dir);
      const error = await createDisks(guest, runDir, { qemuImg: 'qemu-img', imagesDir: root, dataDir: root }).catch((e) => e);
      expect(error).to.be.instanceOf(StageRejection);
      expect(error.status).to.equal(400);
      expect(error.message).to.equal(`image "nope" not found in the images folder (the qemu plugin's imagesDir; tried nope, nope.qcow2, nope.img, nope.raw)`);
      expect(error.message, 'no host path').to.not.include(root);
      const kernel = await findImage(root, 'vmlinuz-nope', 'kernel').catch((e) => e);
      expect(kernel.message, 'a kernel is called a kernel').to.match(/^kernel "vmlinuz-nope" not found in the images folder/);
      const traversal = await findImage(root, '../etc/passwd').catch((e) => e);
      expect(traversal.message).to.match(/must be a file name in the images folder/);
    });
    it('refuses an image in the folder that is not raw or a self-contained qcow2, opening nothing it names', async () => {
      const images = path.join(root, 'vmdk-images');
      await mkdir(images);
      const secret = path.join(root, 'secret');
      await writeFile(secret, 'root:$6$hash\n');
      await writeFile(path.join(images, 'desc.vmdk'), `# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "${secret}" 0\n`);
      const guest = kernelShapedGuest({ image: 'desc.vmdk', diskSizes: [10] });
      const runDir = new RunDir(root, guest.id);
      await mkdir(runDir.dir);
      const watch = await watchOpens([secret]);
      const error = await createDisks(guest, runDir, { qemuImg: 'qemu-img', imagesDir: images, dataDir: root }).catch((e) => e);
      expect(await watch.stop(), 'the extent is never opened').to.deep.equal([]);
      expect(error).to.be.instanceOf(StageRejection);
      expect(error.message).to.match(/image "desc.vmdk": image format "vmdk" is not accepted/);
      expect(error.message).to.not.include(root);
    });
    it('refuses a disk without size or image, and a client-chosen source file', async () => {
      const guest = kernelShapedGuest({ diskSizes: [0] });
      const runDir = new RunDir(root, guest.id);
      await mkdir(runDir.dir);
      const noSize = await createDisks(guest, runDir, { qemuImg: 'qemu-img', imagesDir: root, dataDir: root }).catch((e) => e);
      expect(noSize.message).to.equal('disk vda needs a size in MiB or an image');
      guest.disks[0] = { ...guest.disks[0], size: 10, source: '/etc/passwd' };
      const source = await createDisks(guest, runDir, { qemuImg: 'qemu-img', imagesDir: root, dataDir: root }).catch((e) => e);
      expect(source.message).to.match(/source is assigned by the agent/);
    });
  });

  describe('QMP client and process', () => {
    it('talks to a real QEMU, reports QMP errors by class, and finds the process by its pidfile', async () => {
      const runDir = new RunDir(root, 'machine');
      await mkdir(runDir.dir);
      const pid = await launchQemu('qemu-system-x86_64', [
        '-machine', 'q35', '-accel', 'tcg', '-m', '64', '-nodefaults', '-display', 'none', '-S',
        '-daemonize', '-pidfile', runDir.pidFile, '-qmp', `unix:${runDir.qmpSocket},server=on,wait=off`,
      ], runDir);
      try {
        expect(await findGuestProcess(runDir)).to.equal(pid);
        const qmp = await QmpClient.connect(runDir.qmpSocket);
        const status = await qmp.execute<{ status: string }>('query-status');
        expect(status.status).to.equal('prelaunch');
        const error = await qmp.execute('no-such-command').catch((e: QmpCommandError) => e);
        expect(error).to.be.instanceOf(QmpCommandError);
        expect((error as QmpCommandError).errorClass).to.equal('CommandNotFound');
        const events: string[] = [];
        qmp.on('event', (e) => events.push(e.event));
        const closed = new Promise((r) => qmp.once('close', () => r(undefined)));
        await qmp.execute('quit').catch(() => {});
        await closed;
        expect(events).to.include('SHUTDOWN');
        const afterClose = await qmp.execute('query-status').catch((e: Error) => e);
        expect((afterClose as Error).message).to.match(/is closed/);
      } finally {
        await terminate(pid, 1000);
      }
      expect(await findGuestProcess(runDir), 'gone').to.equal(undefined);
    });
    it('says so when QEMU refuses its arguments, quoting QEMU', async () => {
      const runDir = new RunDir(root, 'bad');
      await mkdir(runDir.dir);
      const error = await launchQemu('qemu-system-x86_64', ['-machine', 'no-such-machine', '-daemonize', '-pidfile', runDir.pidFile], runDir).catch((e) => e);
      expect(error.message).to.match(/^qemu-system-x86_64 failed to start \(exit 1\): qemu-system-x86_64: unsupported machine type/);
    });
    it('rejects a socket that is not QMP, naming it', async () => {
      const socketPath = path.join(root, 'not-qmp.sock');
      const server = net.createServer((c) => c.end('hello\n'));
      await new Promise<void>((r) => server.listen(socketPath, r));
      try {
        const error = await QmpClient.connect(socketPath).catch((e) => e);
        expect(error.message).to.equal(`unexpected QMP greeting on ${socketPath}: Unexpected token 'h', "hello" is not valid JSON`);
      } finally {
        server.close();
      }
      const missing = await QmpClient.connect(path.join(root, 'missing.sock')).catch((e) => e);
      expect(missing.message).to.match(/cannot connect to QMP socket .*missing.sock: connect ENOENT/);
    });
  });
});
