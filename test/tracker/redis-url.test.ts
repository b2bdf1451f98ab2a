import { describe, expect, it } from 'vitest';
import { redisUrlProblem, shownRedisUrl } from '../../src/tracker-server/redis-url.js';

describe('--store URLs', () => {
  it('takes redis://HOST:PORT[/DB] (with a password too) and names what is wrong otherwise', () => {
    expect(redisUrlProblem('redis://127.0.0.1:6379')).toBeNull();
    expect(redisUrlProblem('redis://:pw@10.0.0.5:6379/3')).toBeNull();
    expect(redisUrlProblem('127.0.0.1:6379')).toMatch(/not a URL/);
    expect(redisUrlProblem('http://127.0.0.1:6379')).toMatch(/only redis:\/\//);
    expect(redisUrlProblem('redis://127.0.0.1:6379/cache')).toMatch(/database number/);
  });

  it('never shows a password', () => {
    expect(shownRedisUrl('redis://:secret@10.0.0.5:6379/3')).toBe('redis://:***@10.0.0.5:6379/3');
    expect(shownRedisUrl('redis://user:secret@h:1')).not.toContain('secret');
    expect(shownRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
