/**
 * A UDP tracker load generator (BEP 15), run by bench/tracker.ts in its own process:
 *   node --import tsx bench/udp-load.ts --port P --hash HEX [--swarm 10000 --duration 10 --window 64]
 * Connects, announces --swarm distinct peers once (the swarm), then keeps --window announces in
 * flight for --duration seconds, each as a random one of the swarm's peers (numwant 50). Prints
 * one JSON line: announces answered, seconds, announces per second, requests lost (no answer in 1 s).
 */
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    port: { type: 'string' },
    hash: { type: 'string' },
    swarm: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '10' },
    window: { type: 'string', default: '64' },
  },
});
const PORT = Number(a.port);
const HASH = Buffer.from(a.hash as string, 'hex');
const SWARM = Number(a.swarm);
const DURATION_MS = Number(a.duration) * 1000;
const WINDOW = Number(a.window);
if (!(PORT > 0) || HASH.length !== 20) {
  console.error('usage: udp-load.ts --port P --hash HEX40 [--swarm N --duration S --window W]');
  process.exit(2);
}

const socket = createSocket('udp4');
let cid = Buffer.alloc(8);
/** Pending requests by transaction id: when sent. */
const pending = new Map<number, number>();
let nextTid = 1;
let answered = 0;
let lost = 0;
let onAnswer: (() => void) | null = null;

socket.on('message', (msg) => {
  if (msg.length < 8) return;
  const action = msg.readUInt32BE(0);
  const tid = msg.readUInt32BE(4);
  if (!pending.delete(tid)) return;
  if (action === 0 && msg.length >= 16) cid = Buffer.from(msg.subarray(8, 16));
  if (action === 1) answered++;
  onAnswer?.();
});

function send(b: Buffer): void {
  socket.send(b, PORT, '127.0.0.1');
}

function connectPacket(tid: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(0x417, 0);
  b.writeUInt32BE(0x27101980, 4);
  b.writeUInt32BE(0, 8);
  b.writeUInt32BE(tid, 12);
  return b;
}

const peerIds = Array.from({ length: SWARM }, (_, i) =>
  Buffer.from(`-BN0001-${String(i).padStart(12, '0')}`),
);
function announcePacket(tid: number, peer: number): Buffer {
  const b = Buffer.alloc(98);
  cid.copy(b, 0);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(tid, 12);
  HASH.copy(b, 16);
  (peerIds[peer] as Buffer).copy(b, 36);
  b.writeUInt32BE(peer % 3 === 0 ? 0 : 1000, 68); // left: a third are seeds
  b.writeUInt32BE(peer % 7 === 0 ? 2 : 0, 80);
  b.writeUInt32BE(peer, 88); // a peer keeps its key
  b.writeInt32BE(50, 92);
  b.writeUInt16BE(10000 + (peer % 50000), 96);
  return b;
}

async function connect(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const tid = nextTid++;
    pending.set(tid, Date.now());
    send(connectPacket(tid));
    await new Promise((r) => setTimeout(r, 100));
    if (!pending.has(tid)) return;
    pending.delete(tid);
  }
  throw new Error('the tracker does not answer connect');
}

/** Keeps `window` announces in flight until `until`; `peerOf(k)` names the k-th announce's peer. */
function run(window: number, until: () => boolean, peerOf: (k: number) => number): Promise<void> {
  return new Promise((resolve) => {
    let k = 0;
    const fill = () => {
      while (pending.size < window && !until()) {
        const tid = nextTid++;
        pending.set(tid, Date.now());
        send(announcePacket(tid, peerOf(k++)));
      }
      if (until() && pending.size === 0) {
        onAnswer = null;
        clearInterval(sweep);
        resolve();
      }
    };
    // Requests unanswered for a second are counted lost and replaced.
    const sweep = setInterval(() => {
      const now = Date.now();
      for (const [tid, at] of pending) {
        if (now - at > 1000) {
          pending.delete(tid);
          lost++;
        }
      }
      fill();
    }, 200);
    onAnswer = fill;
    fill();
  });
}

async function main(): Promise<void> {
  await connect();
  // The swarm: every peer once.
  let populated = 0;
  await run(
    WINDOW,
    () => populated >= SWARM,
    (k) => {
      populated = k + 1;
      return k % SWARM;
    },
  );
  await connect();
  answered = 0;
  lost = 0;
  const t0 = Date.now();
  const end = t0 + DURATION_MS;
  let refresh = t0 + 50_000;
  await run(
    WINDOW,
    () => Date.now() >= end,
    () => {
      if (Date.now() > refresh) {
        refresh = Date.now() + 50_000;
        void connect();
      }
      return Math.floor(Math.random() * SWARM);
    },
  );
  const seconds = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ answered, seconds, rps: answered / seconds, lost }));
  socket.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
