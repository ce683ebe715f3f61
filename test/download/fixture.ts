// What every download suite sets up: a temp workspace, the loopback server/proxy of the current test (closed after
// it), environment variables a test set (removed after it), and a `with:` holding the kind's real defaults (from its
// manifest, as the engine applies them) with fast retries for tests.
import { afterAll, afterEach, beforeAll } from 'vitest';
import { manifest } from '../../stages/download/manifest.js';
import type { DownloadWith } from '../../stages/download/run.js';
import { workspace, type Ws } from '../support/workspace.js';
import type { TestProxy, TestServer } from './server.js';

let counter = 0;

/** The manifest's defaults, a fresh `out`, quick retries; then `over`. */
export function downloadWith(over: Partial<DownloadWith> = {}): DownloadWith {
  const defaults = Object.fromEntries(Object.entries(manifest.with).flatMap(([k, spec]) => (spec.default === undefined ? [] : [[k, spec.default]])));
  return { ...defaults, out: `dl/${++counter}/`, retries: 3, backoff_ms: 20, timeout_s: 10, concurrency: 2, ...over } as DownloadWith;
}

export interface DownloadSuite {
  /** The workspace of this test file. */
  readonly dir: string;
  /** The server of the current test (set it; it is closed after the test). */
  get server(): TestServer;
  set server(s: TestServer);
  proxy: TestProxy | null;
}

/** Registers the hooks; `env` names variables a test may set, removed after each test. */
export function downloadSuite(prefix: string, env: string[] = []): DownloadSuite {
  let ws: Ws | null = null;
  let server: TestServer | null = null;
  const suite: DownloadSuite = {
    get dir() {
      if (!ws) throw new Error('the workspace exists only inside tests');
      return ws.dir;
    },
    get server(): TestServer {
      if (!server) throw new Error('this test started no server');
      return server;
    },
    set server(s: TestServer) {
      server = s;
    },
    proxy: null,
  };
  beforeAll(async () => {
    ws = workspace({}, prefix);
  });
  afterAll(async () => ws?.cleanup());
  afterEach(async () => {
    await server?.close();
    await suite.proxy?.close();
    server = null;
    suite.proxy = null;
    for (const v of env) delete process.env[v];
  });
  return suite;
}
