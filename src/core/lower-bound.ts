/**
 * The minimum time to distribute a file of F bytes from one server to N peers (Kurose and Ross,
 * "Computer Networking", P2P file distribution):
 *   D >= max{ F/u_s, F/d_min, N*F / (u_s + sum of u_i) }
 * u_s: the origin's upload rate, u_i: each peer's upload rate, d_min: the slowest download rate
 * (bytes/s; Infinity when uncapped). Returns seconds, or null when an upload rate is unknown.
 */
export function distributionLowerBound(
  F: number,
  us: number,
  ui: readonly number[],
  dmin = Number.POSITIVE_INFINITY,
): number | null {
  if (!(us > 0) || ui.some((u) => !(u > 0)) || !Number.isFinite(us) || ui.some((u) => !Number.isFinite(u)))
    return null;
  const N = ui.length;
  const total = us + ui.reduce((a, b) => a + b, 0);
  return Math.max(F / us, F / dmin, (N * F) / total);
}
