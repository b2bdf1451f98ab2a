import bencode from 'bencode';
import { afterEach, describe, expect, it } from 'vitest';
import { AddressSet, parseRange } from '../../src/core/ip.js';
import { clientAddress, MAX_FORWARDED_HOPS } from '../../src/tracker/proxy.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { announceUrl, compactPeers, hashOf, peerIdOf, post, testTracker } from '../support/tracker.js';

const H = hashOf(7);

describe('client address behind trusted proxies (pure)', () => {
  const trusted = new AddressSet(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

  it('takes the rightmost forwarded address that is not itself a trusted proxy', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7', trusted)).toBe('203.0.113.7');
    expect(clientAddress('127.0.0.1', '198.51.100.1, 203.0.113.7, 10.1.2.3', trusted)).toBe('203.0.113.7');
    expect(clientAddress('::ffff:127.0.0.1', ['203.0.113.7', '10.1.2.3'], trusted)).toBe('203.0.113.7');
    expect(clientAddress('fd00::5', '[2001:db8::1]:4444', trusted)).toBe('2001:db8::1');
    expect(clientAddress('127.0.0.1', '203.0.113.7:5555', trusted)).toBe('203.0.113.7');
    expect(clientAddress('127.0.0.1', '[2001:db8::2]', trusted)).toBe('2001:db8::2');
  });

  it('ignores the header from anyone not trusted, and without one', () => {
    expect(clientAddress('198.51.100.2', '203.0.113.7', trusted)).toBe('198.51.100.2');
    expect(clientAddress('127.0.0.1', undefined, trusted)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '203.0.113.7', null)).toBe('127.0.0.1');
  });

  it('stops at a malformed entry (the request is the nearest proxy’s) and after a bounded chain', () => {
    expect(clientAddress('127.0.0.1', '203.0.113.7, not-an-ip, 10.0.0.9', trusted)).toBe('10.0.0.9');
    expect(clientAddress('127.0.0.1', 'garbage', trusted)).toBe('127.0.0.1');
    const chain = new Array(MAX_FORWARDED_HOPS + 5).fill('10.0.0.1').join(',');
    expect(clientAddress('127.0.0.1', `203.0.113.7,${chain}`, trusted)).toBe('10.0.0.1');
  });

  it('parses addresses and CIDR ranges, and refuses what is neither', () => {
    expect(parseRange('10.0.0.0/8')).toMatchObject({ family: 4, prefix: 8 });
    expect(parseRange('::1')).toMatchObject({ family: 6, prefix: 128 });
    expect(new AddressSet(['192.168.0.0/23']).has('192.168.1.200')).toBe(true);
    expect(new AddressSet(['192.168.0.0/23']).has('192.168.2.1')).toBe(false);
    expect(new AddressSet(['0.0.0.0/0']).has('8.8.8.8')).toBe(true);
    for (const bad of ['10.0.0.0/33', 'nope', '1.2.3.4/x', '::/129']) expect(parseRange(bad)).toBeNull();
    expect(() => new AddressSet(['10.0.0.1', 'proxy.local'])).toThrow(/'proxy.local' is not an IP address/);
  });
});

async function announceVia(t: ReturnType<typeof testTracker>, peer: number, from: string, xff?: string) {
  const res = await t.app.inject({
    method: 'GET',
    url: announceUrl({ infoHash: H, peerId: peerIdOf(peer), port: 6881 + peer, event: 'started' }),
    remoteAddress: from,
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
  });
  return bencode.decode(res.rawPayload) as Record<string, any>;
}

describe('the tracker behind a reverse proxy (--trust-proxy)', () => {
  it('announces a peer at its forwarded address when the request comes from a trusted proxy', async () => {
    const t = testTracker({ trustProxy: ['127.0.0.1'], trustIp: false });
    await announceVia(t, 1, '127.0.0.1', '203.0.113.7');
    const r = await announceVia(t, 2, '127.0.0.1', '203.0.113.8');
    expect(compactPeers(r.peers)).toEqual(['203.0.113.7:6882']);
  });

  it('ignores X-Forwarded-For from an untrusted address: the peer is at its socket address', async () => {
    const t = testTracker({ trustProxy: ['127.0.0.1'], trustIp: false });
    await announceVia(t, 1, '198.51.100.2', '203.0.113.7');
    const r = await announceVia(t, 2, '198.51.100.3');
    expect(compactPeers(r.peers)).toEqual(['198.51.100.2:6882']);
  });

  it('ignores X-Forwarded-For entirely without --trust-proxy', async () => {
    const t = testTracker({ trustIp: false });
    await announceVia(t, 1, '127.0.0.1', '203.0.113.7');
    const r = await announceVia(t, 2, '127.0.0.5');
    expect(compactPeers(r.peers)).toEqual(['127.0.0.1:6882']);
  });

  it('registers a JSON API peer at its forwarded address', async () => {
    const t = testTracker({ trustProxy: ['127.0.0.1'] });
    const res = await t.app.inject({
      method: 'POST',
      url: '/register',
      remoteAddress: '127.0.0.1',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
      payload: JSON.stringify({ peer_id: 'p1', port: 7000, files: { f: [0] } }),
    });
    expect(res.statusCode).toBe(200);
    const peers = await post(t, '/register', { peer_id: 'p2', port: 7001, files: { f: [] } });
    expect(peers.status).toBe(200);
    const list = await t.app.inject({ method: 'GET', url: '/get_peers?file=f', remoteAddress: '127.0.0.1' });
    expect(JSON.stringify(list.json())).toContain('203.0.113.9');
  });

  describe('rate limit over real HTTP', () => {
    let tracker: RunningTracker | undefined;
    afterEach(async () => {
      await tracker?.close();
      tracker = undefined;
    });

    const burst = async (xff: string, n: number) => {
      const codes: number[] = [];
      for (let i = 0; i < n; i++)
        codes.push((await fetch(`${tracker?.url}/health`, { headers: { 'x-forwarded-for': xff } })).status);
      return codes;
    };

    it('limits each forwarded client on its own behind a trusted proxy', async () => {
      tracker = await startTracker({ port: 0 }, { rateLimit: 5, trustProxy: ['127.0.0.1'] });
      const first = await burst('203.0.113.1', 20);
      expect(first).toContain(429);
      // Another client behind the same proxy has its own allowance.
      expect(await burst('203.0.113.2', 5)).toEqual([200, 200, 200, 200, 200]);
    });

    it('limits the connection’s own address when the proxy is not trusted, whatever the header says', async () => {
      tracker = await startTracker({ port: 0 }, { rateLimit: 5, trustProxy: ['10.9.9.9'] });
      expect(await burst('203.0.113.1', 20)).toContain(429);
      expect(await burst('203.0.113.2', 5)).toContain(429);
    });
  });
});
