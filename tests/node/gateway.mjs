// Starts the real psp-gateway binary as the embedded default (sandbox Hantera, mock PSP
// and gateway in one process) for the Node and browser tests, as a new user would run
// it: no configuration, a fresh working folder, the address read from its first line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The binary under test: `PSP_GATEWAY_BIN`, or the debug build of this checkout (in
 * `CARGO_TARGET_DIR` when cargo was told to build elsewhere).
 */
export function binary() {
  const target = resolve(repo, process.env.CARGO_TARGET_DIR ?? 'target');
  const path = process.env.PSP_GATEWAY_BIN ?? join(target, 'debug', 'psp-gateway');
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`cargo build -p gateway\` first (scripts/test.sh does)`);
  }
  return path;
}

/**
 * Starts `psp-gateway` with no configuration file (the embedded default) on a free port, in a temporary working
 * folder (where its SQLite file goes). Resolves to `{ url, stop }`.
 */
export async function startGateway() {
  const cwd = mkdtempSync(join(tmpdir(), 'psp-gateway-node-'));
  const child = spawn(binary(), [], {
    cwd,
    env: {
      ...process.env,
      // Configured from the environment, the embedded default is asked for explicitly.
      PSP_SANDBOX__ENABLED: 'true',
      PSP_SERVER__LISTEN: '127.0.0.1:0',
      RUST_LOG: process.env.E2E_LOG ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error('psp-gateway did not print its address within 30 s')),
      30_000,
    );
    // Keeps reading stdout to the end, so the gateway never blocks on a full pipe.
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = line.match(/^psp-gateway listening on (\S+)/);
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`psp-gateway exited (${code}) before it listened`));
    });
  });
  return {
    url,
    /** SIGTERM, then SIGKILL if it has not stopped within 10 s; removes its folder. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value, which it resolves to; no fixed sleeps. */
export async function eventually(what, check, { timeoutMs = 20_000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** GETs JSON, failing on a non-2xx answer. */
export async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}
