/**
 * Whom to upload to. The policy (docs/peer.md):
 * - `slots` regular unchoke slots go to the interested peers that gave us the most (their download
 *   rate to us) while we download, or that took the most from us while we seed;
 * - one optimistic slot goes to a random other interested peer, redrawn every OPTIMISTIC_ROUNDS
 *   rounds (every round: at most 10 s, sooner when a slot went stale), so newcomers get a first
 *   piece and better partners are found;
 * - rates tie at zero at the start, so a seed's choice rotates through its peers.
 * Pure: rates and randomness come in.
 */

/** Seconds between choking rounds (BEP 3 clients use 10 s). */
export const CHOKE_ROUND_MS = 10_000;
/**
 * A round comes this soon after the last when a peer we unchoke has lost interest (its slot idle):
 * the next tick. Simulator, four RNG seeds, against 2.5 s with the optimistic slot redrawn every 3
 * rounds: 1,000 x 100 1.395 -> 1.352x the bound, two upload classes 1.369 -> 1.317 (together with
 * OPTIMISTIC_ROUNDS = 1); the 10-peer demo unchanged (docs/simulator.md).
 */
export const STALE_ROUND_MS = 1000;
/**
 * Rounds between optimistic unchoke redraws: every round. Slow peers whose partners are all slow
 * get fast ones' optimistic slot more often; redrawn every 10 s instead (whatever the rounds),
 * the two-class swarm above finished at 1.332 rather than 1.298 (seed 7).
 */
export const OPTIMISTIC_ROUNDS = 1;

export interface ChokeCandidate {
  id: number;
  interested: boolean;
  /** Bytes/s they sent us (downloading) or we sent them (seeding) over the last round. */
  rate: number;
}

export interface ChokeDecision {
  unchoke: Set<number>;
  optimistic: number | null;
}

export function chooseUnchoked(
  candidates: readonly ChokeCandidate[],
  slots: number,
  previousOptimistic: number | null,
  rotate: boolean,
  rng: () => number,
): ChokeDecision {
  const interested = candidates.filter((c) => c.interested);
  // Shuffle first so equal rates are broken at random, then a stable sort by rate.
  for (let i = interested.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [interested[i], interested[j]] = [interested[j] as ChokeCandidate, interested[i] as ChokeCandidate];
  }
  interested.sort((a, b) => b.rate - a.rate);
  const unchoke = new Set<number>();
  for (const c of interested) {
    if (unchoke.size >= slots) break;
    unchoke.add(c.id);
  }
  const others = interested.filter((c) => !unchoke.has(c.id));
  let optimistic = previousOptimistic;
  const stillThere = others.some((c) => c.id === previousOptimistic);
  if (rotate || !stillThere) {
    optimistic = others.length > 0 ? (others[Math.floor(rng() * others.length)] as ChokeCandidate).id : null;
  }
  if (optimistic !== null) unchoke.add(optimistic);
  return { unchoke, optimistic };
}
