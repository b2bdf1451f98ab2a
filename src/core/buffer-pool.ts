/**
 * Buffers of one size, reused once everything cut from them is done with. Each buffer taken
 * carries a count of leases: `take` gives one, `retain` adds one for each part handed on (a block
 * cut from a read-ahead window), `release` drops one; at zero the buffer is free for the next
 * `take`. A lease never released (a block dropped unsent) only keeps its buffer from coming back:
 * it is collected like any other, so a missed release costs an allocation, never a buffer reused
 * while something still reads it.
 *
 * Why: a seed reads 256 KiB windows to serve blocks from; a new buffer per window was one
 * allocation (an mmap, its pages faulted in) per 256 KiB served, and ~25 MB of windows already sent
 * waited for the collector at any time.
 */
export class BufferPool {
  readonly size: number;
  readonly #maxFree: number;
  readonly #free: Uint8Array[] = [];
  /** Leases per buffer taken (weak: a buffer given up on is collected with its count). */
  readonly #leases = new WeakMap<ArrayBufferLike, number>();
  #made = 0;

  constructor(size: number, maxFree: number) {
    this.size = size;
    this.#maxFree = maxFree;
  }

  /** Buffers allocated so far (a measure of reuse). */
  get made(): number {
    return this.#made;
  }

  /** Buffers free for the next take. */
  get free(): number {
    return this.#free.length;
  }

  /** A buffer of `size` bytes (contents undefined) with one lease. */
  take(): Uint8Array {
    let b = this.#free.pop();
    if (b === undefined) {
      // Its own ArrayBuffer (never a slice of a shared pool): leases are counted per ArrayBuffer.
      b = new Uint8Array(new ArrayBuffer(this.size));
      this.#made++;
    }
    this.#leases.set(b.buffer, 1);
    return b;
  }

  /** One more lease on the buffer `part` is cut from (no-op for a buffer not from this pool). */
  retain(part: Uint8Array): void {
    const n = this.#leases.get(part.buffer);
    if (n !== undefined) this.#leases.set(part.buffer, n + 1);
  }

  /** Drops a lease on the buffer `part` is cut from; the last one frees the buffer for reuse. */
  release(part: Uint8Array): void {
    const n = this.#leases.get(part.buffer);
    if (n === undefined) return;
    if (n > 1) {
      this.#leases.set(part.buffer, n - 1);
      return;
    }
    this.#leases.delete(part.buffer);
    if (this.#free.length < this.#maxFree && part.buffer.byteLength === this.size)
      this.#free.push(new Uint8Array(part.buffer, 0, this.size));
  }
}
