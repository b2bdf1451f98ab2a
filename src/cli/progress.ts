import cliProgress from 'cli-progress';
import type { PeerNode } from '../node/peer-node.js';

/** Human units: 1.5 MiB, 12.0 KiB. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** Bytes/s over a sliding window of samples. */
export class RateMeter {
  #samples: [number, number][] = [];
  constructor(readonly windowMs = 5000) {}
  add(now: number, total: number): number {
    this.#samples.push([now, total]);
    while (this.#samples.length > 2 && now - (this.#samples[0] as [number, number])[0] > this.windowMs)
      this.#samples.shift();
    const [t0, b0] = this.#samples[0] as [number, number];
    return now > t0 ? ((total - b0) * 1000) / (now - t0) : 0;
  }
}

/** The trackers still silent, for the status line: a UDP tracker may take 105 s to give up on. */
export function waitingFor(urls: readonly string[]): string {
  if (urls.length === 0) return '';
  const shown = urls.slice(0, 2).join(', ');
  return ` | no answer yet from ${shown}${urls.length > 2 ? ` and ${urls.length - 2} more` : ''}`;
}

/** Verified pieces among the wanted ones (all of them without file selection). */
export function heldWanted(node: PeerNode): number {
  const have = node.core.have;
  const wanted = node.wanted;
  if (wanted === null) return have.count;
  let n = 0;
  for (let i = 0; i < have.length; i++) if (wanted.has(i) && have.has(i)) n++;
  return n;
}

/**
 * Download progress: a live bar in a terminal (percent, rate, peers, ETA), plain lines every
 * `everyMs` otherwise. Returns a function that stops it.
 */
export function showProgress(
  node: PeerNode,
  out: NodeJS.WriteStream = process.stdout,
  everyMs = 2000,
): () => void {
  // With file selection, the pieces that touch a wanted file.
  const total = node.core.picker.wantedCount;
  const held = () => heldWanted(node);
  const meter = new RateMeter();
  const tty = out.isTTY === true;
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format:
            '{bar} {percentage}% | {value}/{total} pieces | {rate} | {peers} peers{web} | ETA {eta_formatted}{waiting}',
          hideCursor: true,
          stream: out,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(total, held(), { rate: '0 B/s', peers: 0, waiting: '', web: '' });
  // Bytes from web seeds (BEP 19), once there are some.
  const fromWeb = () =>
    node.webSeedDownloaded > 0 ? `, ${formatBytes(node.webSeedDownloaded)} from web seeds` : '';
  const update = () => {
    const rate = meter.add(Date.now(), node.downloaded);
    const have = held();
    const waiting = waitingFor(node.unansweredTrackers());
    const web = fromWeb();
    if (bar) bar.update(have, { rate: `${formatBytes(rate)}/s`, peers: node.connections, waiting, web });
    else {
      const pct = ((have / Math.max(total, 1)) * 100).toFixed(1);
      const eta = rate > 0 ? `${Math.ceil(((total - have) * node.meta.pieceLength) / rate)}s` : '?';
      out.write(
        `${pct}% ${have}/${total} pieces, ${formatBytes(rate)}/s, ${node.connections} peers${web}, ETA ${eta}${waiting}\n`,
      );
    }
  };
  const timer = setInterval(update, tty ? 250 : everyMs);
  return () => {
    clearInterval(timer);
    update();
    bar?.stop();
  };
}
