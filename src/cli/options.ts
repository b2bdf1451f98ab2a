import { InvalidArgumentError } from 'commander';
import { AddressSet } from '../core/ip.js';
import { parseSize } from '../node/create-torrent.js';
import { redisUrlProblem } from '../tracker-server/redis-url.js';

/** Option parsers shared by the commands: each turns text into a value or a clear error. */

/** A whole number from min to max. */
export function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^[0-9]+$/.test(value) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

export const portOption = intOption(0, 65535);
export const positiveOption = intOption(1, Number.MAX_SAFE_INTEGER);

/** A number above `low` (or from `low`, when `fromLow`) and below `high` (or up to it, `toHigh`). */
export function numberOption(low: number, high: number, fromLow: boolean, toHigh: boolean, what: string) {
  return (value: string): number => {
    const n = Number(value);
    const ok =
      value.trim() !== '' &&
      Number.isFinite(n) &&
      (fromLow ? n >= low : n > low) &&
      (toHigh ? n <= high : n < high);
    if (!ok) throw new InvalidArgumentError(`expected ${what}`);
    return n;
  };
}

/** A share from 0 to below 1. */
export const fractionOption = numberOption(0, 1, true, false, 'a fraction from 0 to below 1');

/** A size like 256KiB, 4MiB, 1GiB; a trailing `/s` is allowed, so it also reads rates (4MiB/s). */
export function sizeOption(value: string): number {
  try {
    return parseSize(value.replace(/\/s$/i, ''));
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** `5`, `2.5s`, `1500ms` -> milliseconds. */
export function durationOption(value: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s)?$/.exec(value);
  if (!m) throw new InvalidArgumentError(`'${value}' is not a duration (e.g. 2s, 1500ms)`);
  return Math.round(Number(m[1]) * (m[2] === 'ms' ? 1 : 1000));
}

/** A repeatable option: every value, in order. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A comma-separated list of IP addresses or CIDR ranges. */
/** A shared store's URL (`redis://HOST:PORT[/DB]`). */
export function storeUrl(value: string): string {
  const bad = redisUrlProblem(value);
  if (bad !== null) throw new InvalidArgumentError(bad);
  return value;
}

export function addressList(value: string): string[] {
  const list = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (list.length === 0)
    throw new InvalidArgumentError('expected IP addresses or CIDR ranges, comma-separated');
  try {
    new AddressSet(list);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return list;
}

/** Bytes as the size options take them back: `256KiB`, `4MiB`, `1536` (exact, never rounded). */
export function sizeText(n: number): string {
  for (const [unit, mult] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (n >= mult && n % mult === 0) return `${n / mult}${unit}`;
  }
  return String(n);
}

/** Milliseconds as the duration options take them back: `120s`, `1500ms`. */
export function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

interface HelpOption {
  parseArg?: unknown;
  defaultValue?: unknown;
  defaultValueDescription?: string;
  flags: string;
}

/**
 * Help shows defaults in the form the option is written in (`256KiB`, `4MiB/s`, `120s`, `none`),
 * never the parsed value (262144, 4194304, 120000, []). Run once over the whole program, so an
 * option added later is covered too.
 */
export function describeDefaults(cmd: { options: readonly unknown[]; commands: readonly unknown[] }): void {
  for (const raw of cmd.options) {
    const o = raw as HelpOption;
    if (o.defaultValueDescription !== undefined) continue;
    const v = o.defaultValue;
    if (Array.isArray(v) && v.length === 0) o.defaultValueDescription = 'none';
    else if (typeof v === 'number' && o.parseArg === sizeOption)
      o.defaultValueDescription = `${sizeText(v)}${o.flags.includes('<rate>') ? '/s' : ''}`;
    else if (typeof v === 'number' && o.parseArg === durationOption)
      o.defaultValueDescription = durationText(v);
  }
  for (const sub of cmd.commands)
    describeDefaults(sub as { options: readonly unknown[]; commands: readonly unknown[] });
}

/** File indexes as `info` prints them: `0,2-4` (each at most 1,000,000; ranges ascending). */
export function indexListOption(value: string): number[] {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d{1,7})(?:\s*-\s*(\d{1,7}))?\s*$/.exec(part);
    const a = Number(m?.[1]);
    const b = m?.[2] === undefined ? a : Number(m[2]);
    if (m === null || b < a || b - a > 1_000_000)
      throw new InvalidArgumentError(`'${value}' is not a list of file indexes like 0,2-4`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}
