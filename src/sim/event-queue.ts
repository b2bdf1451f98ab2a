/**
 * The simulator's agenda: events by virtual time (ms), ties in the order they were scheduled, so
 * a run is deterministic. A binary heap over typed arrays: an event is a time, a sequence number
 * and an integer code. The simulator's frequent events (messages, ticks) are codes it decodes
 * itself, so they allocate nothing; any other event is a callback, held aside under a negative
 * code (`push` / `pop`).
 */
export class EventQueue {
  #time = new Float64Array(1024);
  #seq = new Float64Array(1024);
  #code = new Int32Array(1024);
  #size = 0;
  #next = 0;
  /** Callbacks by -(code + 1); freed slots are reused. */
  #fns: ((() => void) | undefined)[] = [];
  #freeFns: number[] = [];

  get size(): number {
    return this.#size;
  }

  /** Schedule a callback. */
  push(time: number, fn: () => void): void {
    const i = this.#freeFns.pop() ?? this.#fns.length;
    this.#fns[i] = fn;
    this.pushCode(time, -1 - i);
  }

  /** Schedule an integer code (0 to 2^31 - 1; what it means is the caller's business). */
  pushCode(time: number, code: number): void {
    if (this.#size === this.#time.length) this.#grow();
    const t = this.#time;
    const q = this.#seq;
    const c = this.#code;
    const seq = this.#next++;
    // Move the hole up from the end until its parent comes first, then fill it.
    let i = this.#size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const tp = t[p] as number;
      if (earlier(tp, q[p] as number, time, seq)) break;
      t[i] = tp;
      q[i] = q[p] as number;
      c[i] = c[p] as number;
      i = p;
    }
    t[i] = time;
    q[i] = seq;
    c[i] = code;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.#size > 0 ? (this.#time[0] as number) : Number.POSITIVE_INFINITY;
  }

  /**
   * Remove the earliest event and return its code: a code given to `pushCode`, or a negative
   * number for a callback (`takeFn` gives it). NaN when empty.
   */
  popCode(): number {
    if (this.#size === 0) return Number.NaN;
    const t = this.#time;
    const q = this.#seq;
    const c = this.#code;
    const top = c[0] as number;
    const n = --this.#size;
    if (n > 0) {
      // Move the hole down from the root, taking the earlier child, until the last entry fits.
      const lt = t[n] as number;
      const lq = q[n] as number;
      const lc = c[n] as number;
      let i = 0;
      for (;;) {
        let m = 2 * i + 1;
        if (m >= n) break;
        const r = m + 1;
        if (r < n) {
          const tm = t[m] as number;
          const tr = t[r] as number;
          if (earlier(tr, q[r] as number, tm, q[m] as number)) m = r;
        }
        const tm = t[m] as number;
        if (earlier(lt, lq, tm, q[m] as number)) break;
        t[i] = tm;
        q[i] = q[m] as number;
        c[i] = c[m] as number;
        i = m;
      }
      t[i] = lt;
      q[i] = lq;
      c[i] = lc;
    }
    return top;
  }

  /** The callback a negative code stands for (once: its slot is freed). */
  takeFn(code: number): () => void {
    const i = -1 - code;
    const fn = this.#fns[i] as () => void;
    this.#fns[i] = undefined;
    this.#freeFns.push(i);
    return fn;
  }

  /** Remove the earliest event, a callback, and return it (undefined when empty; a code stays queued and throws). */
  pop(): (() => void) | undefined {
    if (this.#size === 0) return undefined;
    const first = this.#code[0] as number;
    if (first >= 0) throw new TypeError(`event ${first} is a code, not a callback: use popCode`);
    return this.takeFn(this.popCode());
  }

  #grow(): void {
    const cap = this.#time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.#time);
    this.#time = t;
    const q = new Float64Array(cap);
    q.set(this.#seq);
    this.#seq = q;
    const c = new Int32Array(cap);
    c.set(this.#code);
    this.#code = c;
  }
}

/** Event (time a, sequence a) comes before (time b, sequence b): by time, ties in push order. */
function earlier(ta: number, qa: number, tb: number, qb: number): boolean {
  return ta < tb || (ta === tb && qa < qb);
}
