import { spawn } from 'node:child_process';

/** Opens a URL with the desktop's opener, if there is one; says so when there is none. */
export function openBrowser(url: string): void {
  const opener =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => console.log(`(no browser opener here: open ${url} yourself)`));
  child.unref();
}
