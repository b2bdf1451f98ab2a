/**
 * The shared store's URL, checked without loading the Redis client (the CLI checks `--store` as it
 * parses; the client is loaded only when a tracker uses it).
 */

/** Why a `--store` URL cannot be used, or null. */
export function redisUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `'${url}' is not a URL (expected redis://HOST:PORT[/DB])`;
  }
  if (u.protocol !== 'redis:') return `'${url}': only redis:// stores are supported`;
  if (u.hostname === '') return `'${url}' names no host`;
  if (u.pathname !== '' && u.pathname !== '/' && !/^\/[0-9]{1,2}$/.test(u.pathname))
    return `'${url}': the path must be a database number (/0 to /15)`;
  return null;
}

/** The URL as it may be shown (in logs): any password replaced by `***`. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
