import type { SimReport } from './simulator.js';

/**
 * A self-contained SVG of a simulation: the share of peers complete over time (a CDF of
 * completion times) with the lower bound marked, and the rarest piece's copies over time.
 */
export function plotSvg(r: SimReport): string {
  const W = 720;
  const H = 360;
  const m = { l: 60, r: 20, t: 30, b: 50 };
  const times = r.completionMs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  const tMax = Math.max(1, times[times.length - 1] ?? 1, r.lowerBoundMs ?? 0) * 1.05;
  const x = (t: number) => m.l + ((W - m.l - m.r) * t) / tMax;
  const y = (f: number) => H - m.b - (H - m.t - m.b) * f;
  const n = r.completionMs.length;
  const cdf = times.map((t, i) => `${x(t).toFixed(1)},${y((i + 1) / n).toFixed(1)}`).join(' ');
  const maxAvail = Math.max(1, ...r.availability.map((a) => a.min));
  const avail = r.availability
    .map((a) => `${x(a.timeMs).toFixed(1)},${y(a.min / maxAvail).toFixed(1)}`)
    .join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const t = f * tMax;
    return `<text x="${x(t).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${(t / 1000).toFixed(0)} s</text>`;
  });
  const s = r.scenario;
  // The bound's label sits below the legend (top right), left of its line when there is room.
  const bx = r.lowerBoundMs === null ? 0 : x(r.lowerBoundMs);
  const label =
    bx - m.l > 90
      ? `<text x="${(bx - 4).toFixed(1)}" y="${m.t + 60}" text-anchor="end" fill="#d55e00">lower bound</text>`
      : `<text x="${(bx + 4).toFixed(1)}" y="${m.t + 60}" fill="#d55e00">lower bound</text>`;
  const bound =
    r.lowerBoundMs === null
      ? ''
      : `<line x1="${bx.toFixed(1)}" y1="${m.t}" x2="${bx.toFixed(1)}" y2="${H - m.b}" stroke="#d55e00" stroke-dasharray="4 3"/>${label}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${m.l}" y="18" font-weight="bold">${s.peers} peers, ${s.seeds} seed(s), ${s.pieces} pieces, ${s.strategy}, seed ${s.seed}</text>
<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="#222"/>
<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#222"/>
${ticks.join('\n')}
<text x="${m.l - 8}" y="${y(1) + 4}" text-anchor="end">100%</text>
<text x="${m.l - 8}" y="${y(0.5) + 4}" text-anchor="end">50%</text>
<text x="${m.l - 8}" y="${y(0) + 4}" text-anchor="end">0</text>
<text x="${(W / 2).toFixed(0)}" y="${H - 12}" text-anchor="middle">virtual time</text>
${bound}
<polyline points="${cdf}" fill="none" stroke="#0072b2" stroke-width="2"/>
<polyline points="${avail}" fill="none" stroke="#009e73" stroke-width="1.5" stroke-dasharray="2 2"/>
<text x="${W - m.r}" y="${m.t + 12}" text-anchor="end" fill="#0072b2">peers complete</text>
<text x="${W - m.r}" y="${m.t + 28}" text-anchor="end" fill="#009e73">copies of the rarest piece (max ${maxAvail})</text>
</svg>
`;
}

/** One row per peer: its index and completion time (empty when it never completed). */
export function completionCsv(r: SimReport): string {
  return `peer,completion_ms\n${r.completionMs.map((t, i) => `${i},${t === null ? '' : t.toFixed(3)}`).join('\n')}\n`;
}
