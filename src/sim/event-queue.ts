/**
 * The simulator's agenda: events by virtual time (ms), ties in the order they were scheduled, so
 * a run is deterministic. A binary heap over parallel arrays (no object per entry but the callback).
 */
export class EventQueue {
  #time: number[] = [];
  #seq: number[] = [];
  #fn: (() => void)[] = [];
  #next = 0;

  get size(): number {
    return this.#time.length;
  }

  push(time: number, fn: () => void): void {
    const t = this.#time;
    const q = this.#seq;
    const f = this.#fn;
    let i = t.length;
    t.push(time);
    q.push(this.#next++);
    f.push(fn);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.#less(p, i)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.#time.length > 0 ? (this.#time[0] as number) : Number.POSITIVE_INFINITY;
  }

  pop(): (() => void) | undefined {
    const t = this.#time;
    if (t.length === 0) return undefined;
    const top = this.#fn[0] as () => void;
    const last = t.length - 1;
    this.#swap(0, last);
    t.pop();
    this.#seq.pop();
    this.#fn.pop();
    let i = 0;
    const n = t.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#less(l, m)) m = l;
      if (r < n && this.#less(r, m)) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
    return top;
  }

  #less(a: number, b: number): boolean {
    const ta = this.#time[a] as number;
    const tb = this.#time[b] as number;
    return ta < tb || (ta === tb && (this.#seq[a] as number) < (this.#seq[b] as number));
  }

  #swap(a: number, b: number): void {
    const t = this.#time;
    const q = this.#seq;
    const f = this.#fn;
    const ta = t[a] as number;
    t[a] = t[b] as number;
    t[b] = ta;
    const qa = q[a] as number;
    q[a] = q[b] as number;
    q[b] = qa;
    const fa = f[a] as () => void;
    f[a] = f[b] as () => void;
    f[b] = fa;
  }
}
