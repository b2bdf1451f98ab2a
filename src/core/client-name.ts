/**
 * A peer's client, from its peer id (BEP 20): Azureus style `-XXvvvv-...` (two letters and four
 * version characters), aria2's `A2-a-b-c-`, Mainline's `Mvvv-`. Unknown ids show their printable
 * start.
 */

/** The two-letter codes of BEP 20 and the clients seen in the field. */
const AZUREUS: Record<string, string> = {
  AZ: 'Vuze',
  BC: 'BitComet',
  BT: 'mainline BitTorrent',
  DE: 'Deluge',
  KT: 'KTorrent',
  LT: 'libTorrent (rTorrent)',
  lt: 'libtorrent',
  qB: 'qBittorrent',
  RQ: 'rqbit',
  rQ: 'rqbit',
  SS: 'swarmshare',
  SM: 'swarmshare (simulated)',
  TR: 'Transmission',
  UT: 'µTorrent',
  UW: 'µTorrent Web',
  WW: 'WebTorrent',
  WD: 'WebTorrent Desktop',
};

export function clientName(peerId: Uint8Array | string): string {
  const id = typeof peerId === 'string' ? peerId : Buffer.from(peerId).toString('latin1');
  const az = /^-([A-Za-z]{2})([0-9A-Za-z]{4})-/.exec(id);
  if (az) {
    const name = AZUREUS[az[1] as string];
    const v = az[2] as string;
    const version = /^[0-9]+$/.test(v) ? v.replace(/^(\d)(\d)(\d)(\d)$/, '$1.$2.$3.$4') : v;
    return name === undefined ? `unknown (-${az[1]}${v}-)` : `${name} ${version}`;
  }
  const a2 = /^A2-(\d+)-(\d+)-(\d+)-/.exec(id);
  if (a2) return `aria2 ${a2[1]}.${a2[2]}.${a2[3]}`;
  const m = /^M(\d+)-(\d+)-(\d+)-/.exec(id);
  if (m) return `mainline ${m[1]}.${m[2]}.${m[3]}`;
  const printable = id.slice(0, 8).replace(/[^\x20-\x7e]/g, '.');
  return `unknown (${printable})`;
}
