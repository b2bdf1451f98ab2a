import type { PeerAddress } from '../core/ip.js';
import type { NodeId, NodeInfo, Response } from './krpc.js';
import { compareDistance, K } from './routing-table.js';

/**
 * An iterative lookup (BEP 5, Kademlia): ask the ALPHA closest nodes not yet asked for the nodes
 * closest to `target` (find_node) or for its peers (get_peers), and go on with what they answer,
 * until the K closest nodes seen have all answered or failed. A state machine: `next` says whom
 * to ask, `answered` and `failed` feed it; no sockets, no clock.
 */

export const ALPHA = 3;
/** Candidates kept at most (the closest; farther ones are forgotten). */
export const MAX_CANDIDATES = 64;
/** Peers a get_peers lookup collects at most. */
export const MAX_LOOKUP_PEERS = 500;

/** `slow`: asked, no answer yet after SLOW_MS: its slot goes to another node, its answer is still taken. */
type State = 'new' | 'asked' | 'slow' | 'answered' | 'failed';

interface Candidate {
  node: NodeInfo;
  state: State;
  /** Lookup steps from the start (the starting nodes are 1). */
  hop: number;
  token?: Uint8Array;
}

const addrOf = (n: { ip: string; port: number }) => `${n.ip}:${n.port}`;

export class Lookup {
  readonly target: NodeId;
  readonly kind: 'find_node' | 'get_peers';
  readonly #cands: Candidate[] = [];
  readonly #byAddr = new Map<string, Candidate>();
  readonly #peers = new Map<string, PeerAddress>();
  readonly #alpha: number;
  readonly #k: number;
  #inflight = 0;
  /** Queries sent in all. */
  queries = 0;

  constructor(
    target: NodeId,
    kind: 'find_node' | 'get_peers',
    start: readonly NodeInfo[],
    alpha = ALPHA,
    k = K,
  ) {
    this.target = target;
    this.kind = kind;
    this.#alpha = alpha;
    this.#k = k;
    for (const n of start) this.#add(n, 1);
  }

  #add(n: NodeInfo, hop: number): void {
    const a = addrOf(n);
    if (this.#byAddr.has(a)) return;
    const c: Candidate = { node: n, state: 'new', hop };
    // Sorted insert by distance; past MAX_CANDIDATES the farthest not yet asked is dropped.
    let i = this.#cands.length;
    while (i > 0 && compareDistance(n.id, (this.#cands[i - 1] as Candidate).node.id, this.target) < 0) i--;
    if (i >= MAX_CANDIDATES) return;
    this.#cands.splice(i, 0, c);
    this.#byAddr.set(a, c);
    if (this.#cands.length > MAX_CANDIDATES) {
      for (let j = this.#cands.length - 1; j >= 0; j--) {
        const far = this.#cands[j] as Candidate;
        if (far.state === 'new') {
          this.#cands.splice(j, 1);
          this.#byAddr.delete(addrOf(far.node));
          break;
        }
      }
    }
  }

  /** The nodes to ask now (marked asked): up to ALPHA in flight, among the K closest still unasked. */
  next(): NodeInfo[] {
    const out: NodeInfo[] = [];
    let live = 0;
    for (const c of this.#cands) {
      if (this.#inflight >= this.#alpha) break;
      if (c.state === 'failed' || c.state === 'slow') continue;
      if (live++ >= this.#k) break;
      if (c.state === 'new') {
        c.state = 'asked';
        this.#inflight++;
        this.queries++;
        out.push(c.node);
      }
    }
    return out;
  }

  /** The node at `from` answered: its nodes become candidates, its peers and token are kept. */
  answered(from: { ip: string; port: number }, r: Response, self: NodeId | null = null): void {
    const c = this.#byAddr.get(addrOf(from));
    if (c === undefined || (c.state !== 'asked' && c.state !== 'slow')) return;
    if (c.state === 'asked') this.#inflight--;
    c.state = 'answered';
    c.node = { ...c.node, id: r.id };
    if (r.token !== undefined) c.token = r.token;
    for (const n of r.nodes ?? []) {
      if (self !== null && compareDistance(n.id, self, self) === 0) continue;
      this.#add(n, c.hop + 1);
    }
    for (const p of r.values ?? []) {
      if (this.#peers.size >= MAX_LOOKUP_PEERS) break;
      this.#peers.set(addrOf(p), p);
    }
  }

  /** The node at `from` did not answer in time (or answered with an error). */
  failed(from: { ip: string; port: number }): void {
    const c = this.#byAddr.get(addrOf(from));
    if (c === undefined || (c.state !== 'asked' && c.state !== 'slow')) return;
    if (c.state === 'asked') this.#inflight--;
    c.state = 'failed';
  }

  /**
   * The node at `from` has not answered for a while: its slot goes to the next candidate (a
   * departed node then costs SLOW_MS, not the whole query timeout); a late answer still counts.
   */
  slow(from: { ip: string; port: number }): void {
    const c = this.#byAddr.get(addrOf(from));
    if (c === undefined || c.state !== 'asked') return;
    c.state = 'slow';
    this.#inflight--;
  }

  /**
   * Over: the K closest candidates not known to have failed have all answered (queries still out
   * to farther nodes do not hold it up: their answers could only bring nodes farther still, or a
   * closer one, which the K closest would have named), or nothing is left to ask or wait for.
   */
  get done(): boolean {
    let live = 0;
    for (const c of this.#cands) {
      if (c.state === 'failed' || c.state === 'slow') continue;
      if (c.state !== 'answered') return false;
      if (++live >= this.#k) return true;
    }
    return this.#inflight === 0;
  }

  get peers(): PeerAddress[] {
    return [...this.#peers.values()];
  }

  /** The K closest nodes that answered, with the tokens they gave (announce_peer goes to these). */
  closest(): { node: NodeInfo; token?: Uint8Array; hop: number }[] {
    const out: { node: NodeInfo; token?: Uint8Array; hop: number }[] = [];
    for (const c of this.#cands) {
      if (c.state !== 'answered') continue;
      out.push({ node: c.node, token: c.token, hop: c.hop });
      if (out.length >= this.#k) break;
    }
    return out;
  }
}
