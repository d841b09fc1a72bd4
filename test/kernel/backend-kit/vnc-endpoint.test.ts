/** vncTcpEndpoint: a VNC server on every address is reached on loopback; others where they listen. */
import { expect } from 'chai';
import { vncTcpEndpoint } from '../../../core/contract/index.js';

describe('backend kit: VNC endpoint on TCP', () => {
  it('connects to loopback for a server listening on every address', () => {
    expect(vncTcpEndpoint('0.0.0.0', 5901)).to.deep.equal({ host: '127.0.0.1', port: 5901 });
    expect(vncTcpEndpoint('', 5901), 'virsh vncdisplay ":1"').to.deep.equal({ host: '127.0.0.1', port: 5901 });
    expect(vncTcpEndpoint('[::]', 5902)).to.deep.equal({ host: '::1', port: 5902 });
  });
  it('keeps a specific address, without IPv6 brackets', () => {
    expect(vncTcpEndpoint('127.0.0.1', 5900)).to.deep.equal({ host: '127.0.0.1', port: 5900 });
    expect(vncTcpEndpoint('[::1]', 5900)).to.deep.equal({ host: '::1', port: 5900 });
    expect(vncTcpEndpoint('10.0.0.5', 5999)).to.deep.equal({ host: '10.0.0.5', port: 5999 });
  });
});
