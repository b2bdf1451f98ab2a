import { createDiffieHellman, createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CRYPTO_PLAINTEXT,
  CRYPTO_RC4,
  type EncryptionMode,
  KEY_BYTES,
  MSE_PRIME,
  type MseDeps,
  MseInitiator,
  MseResponder,
  type MseStep,
  modPow,
  offered,
  selectMethod,
} from '../../src/wire/mse.js';
import { Rc4, tsRc4 } from '../../src/wire/rc4.js';

/** MSE/PE (sans I/O): known answers for RC4 and the key exchange, both roles talking, hostile bytes. */

const sha1 = (d: Uint8Array) => createHash('sha1').update(d).digest();
const deps: MseDeps = { sha1, randomBytes: (n) => randomBytes(n), rc4: tsRc4 };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('RC4 (RFC 6229 test vectors, key 0x0102030405)', () => {
  it('gives the published keystream at offsets 0, 1024 and 1536; MSE discards the first 1,024 bytes', () => {
    const key = Uint8Array.of(1, 2, 3, 4, 5);
    const stream = new Rc4(key, 0).update(new Uint8Array(1552));
    expect(hex(stream.subarray(0, 16))).toBe('b2396305f03dc027ccc3524a0a1118a8');
    expect(hex(stream.subarray(1024, 1040))).toBe('30abbcc7c20b01609f23ee2d5f6bb7df');
    expect(hex(stream.subarray(1536, 1552))).toBe('d8729db41882259bee4f825325f5a130');
    // The factory MSE uses starts at offset 1024.
    expect(hex(tsRc4(key).update(new Uint8Array(16)))).toBe('30abbcc7c20b01609f23ee2d5f6bb7df');
    // In place and copying agree, across calls of any size.
    const a = new Rc4(key);
    const b = new Rc4(key);
    const data = randomBytes(5000);
    const whole = a.update(data);
    const parts = [data.subarray(0, 1), data.subarray(1, 777), data.subarray(777)].map((p) =>
      b.updateInPlace(Uint8Array.from(p)),
    );
    expect(hex(Buffer.concat(parts))).toBe(hex(whole));
  });
});

describe('the key exchange', () => {
  it('Ya = 2^Xa mod P and S agree with an independent Diffie-Hellman (node:crypto) on the 768-bit prime', () => {
    const p = Buffer.from(MSE_PRIME.toString(16), 'hex');
    expect(p.length).toBe(KEY_BYTES);
    const dh = createDiffieHellman(p, 2);
    dh.generateKeys();
    const x = BigInt(`0x${dh.getPrivateKey('hex')}`);
    expect(modPow(2n, x, MSE_PRIME).toString(16).padStart(192, '0')).toBe(
      dh.getPublicKey('hex').padStart(192, '0'),
    );
    const other = createDiffieHellman(p, 2);
    other.generateKeys();
    const y = BigInt(`0x${other.getPublicKey('hex')}`);
    expect(modPow(y, x, MSE_PRIME).toString(16).padStart(192, '0')).toBe(
      dh.computeSecret(other.getPublicKey()).toString('hex').padStart(192, '0'),
    );
  });
});

/** Runs both machines against each other, bytes cut at random points. */
function talk(
  infoHash: Uint8Array,
  served: Uint8Array[],
  modeA: EncryptionMode,
  modeB: EncryptionMode,
  cut: number[] = [],
) {
  const a = new MseInitiator(infoHash, offered(modeA), deps);
  const req2 = new Map(served.map((h) => [hex(sha1(Buffer.concat([Buffer.from('req2'), h]))), h]));
  const b = new MseResponder(
    (r) => req2.get(hex(r)) ?? null,
    (p) => selectMethod(modeB, p),
    deps,
  );
  let toB: Uint8Array[] = [a.start()];
  let toA: Uint8Array[] = [];
  let doneA: MseStep | undefined;
  let doneB: MseStep | undefined;
  for (let round = 0; round < 10 && (doneA === undefined || doneB === undefined); round++) {
    const feed = (m: MseInitiator | MseResponder, parts: Uint8Array[]) => {
      const bytes = Buffer.concat(parts);
      const out: Uint8Array[] = [];
      let at = 0;
      let last: MseStep | undefined;
      for (const c of [...cut.filter((x) => x < bytes.length), bytes.length]) {
        if (c < at) continue;
        last = m.push(bytes.subarray(at, c));
        out.push(...last.send);
        at = c;
        if (last.done || last.error) break;
      }
      return { out, last };
    };
    const rb = feed(b, toB);
    toB = [];
    if (rb.last?.done || rb.last?.error) doneB ??= rb.last;
    toA.push(...rb.out);
    const ra = feed(a, toA);
    toA = [];
    if (ra.last?.done || ra.last?.error) doneA ??= ra.last;
    toB.push(...ra.out);
  }
  return { a: doneA, b: doneB };
}

describe('MSE/PE handshake, both roles', () => {
  const ih = randomBytes(20);
  const other = randomBytes(20);

  it('prefer meets prefer: plaintext after an obfuscated handshake; require meets anything but disable: RC4', () => {
    const pp = talk(ih, [other, ih], 'prefer', 'prefer');
    expect(pp.a?.done?.method).toBe(CRYPTO_PLAINTEXT);
    expect(pp.b?.done?.method).toBe(CRYPTO_PLAINTEXT);
    expect(hex(pp.b?.done?.infoHash as Uint8Array)).toBe(hex(ih));
    for (const [ma, mb] of [
      ['require', 'prefer'],
      ['prefer', 'require'],
      ['require', 'require'],
    ] as const) {
      const r = talk(ih, [ih], ma, mb, [1, 95, 97, 200, 640]);
      expect(r.a?.done?.method).toBe(CRYPTO_RC4);
      expect(r.b?.done?.method).toBe(CRYPTO_RC4);
      // The streams line up: what A encrypts, B decrypts, and back.
      const msg = randomBytes(3000);
      const ca = r.a?.done?.ciphers;
      const cb = r.b?.done?.ciphers;
      expect(hex(cb?.decrypt.update(ca?.encrypt.update(msg) as Uint8Array) as Uint8Array)).toBe(hex(msg));
      expect(hex(ca?.decrypt.update(cb?.encrypt.update(msg) as Uint8Array) as Uint8Array)).toBe(hex(msg));
    }
  });

  it('refuses: a torrent the responder does not serve; a dialler offering only plaintext to one that requires RC4', () => {
    expect(talk(ih, [other], 'prefer', 'prefer').b?.error?.code).toBe('ERR_WRONG_INFO_HASH');
    const a = new MseInitiator(ih, CRYPTO_PLAINTEXT, deps);
    const b = new MseResponder(
      () => ih,
      (p) => selectMethod('require', p),
      deps,
    );
    const yb = b.push(a.start());
    const step = b.push(Buffer.concat(a.push(Buffer.concat(yb.send)).send));
    expect(step.error?.code).toBe('ERR_ENCRYPTION_REQUIRED');
  });

  it('hostile bytes: random, truncated, no sync within 532 bytes, a wrong VC: an error or a wait, bounded, never a throw', () => {
    let errors = 0;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 4000, size: 'max' }),
        fc.boolean(),
        (bytes, asResponder) => {
          const m = asResponder
            ? new MseResponder(
                () => ih,
                (p) => selectMethod('prefer', p),
                deps,
              )
            : new MseInitiator(ih, offered('prefer'), deps);
          if (!asResponder) (m as MseInitiator).start();
          const r = m.push(bytes);
          if (r.error) errors++;
          // Past the key and every padding limit, random bytes can never pass as a handshake.
          if (bytes.length >= KEY_BYTES + 532 + 20) expect(r.error).toBeDefined();
          expect(r.done).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
    expect(errors).toBeGreaterThan(50);
    // A responder fed a valid start and then garbage in place of HASH('req1', S): no sync.
    const a = new MseInitiator(ih, offered('prefer'), deps);
    const b = new MseResponder(
      () => ih,
      (p) => selectMethod('prefer', p),
      deps,
    );
    b.push(a.start().subarray(0, KEY_BYTES));
    expect(b.push(randomBytes(600)).error?.message).toMatch(/no synchronisation/);
    // A wrong verification constant: the right sync and SKEY, then bytes that decrypt to non-zero.
    const a2 = new MseInitiator(ih, offered('prefer'), deps);
    const b2 = new MseResponder(
      () => ih,
      (p) => selectMethod('prefer', p),
      deps,
    );
    const ya = a2.start().subarray(0, KEY_BYTES);
    const yb = Buffer.concat(b2.push(ya).send);
    const third = Buffer.from(Buffer.concat(a2.push(yb).send));
    third[40] = (third[40] as number) ^ 0xff; // first byte after req1 and req2^req3: inside the VC
    expect(b2.push(third).error?.message).toMatch(/verification constant/);
  });
});
