// The network around a download: proxies from the environment (issue 14) through a real loopback proxy — an
// absolute-form request for http://, a CONNECT tunnel for https:// (in a real stage-runner process that trusts a
// test CA) —, Retry-After in both of its forms (issue 14), and a signed base URL that no failure ever reveals, in
// any output of `pipe run` (issue 11.21).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../stages/download/backoff.js';
import { proxyConfig, proxyFor } from '../../stages/download/proxy.js';
import { run, secretScrubber, type DownloadWith } from '../../stages/download/run.js';
import { pipeAsync, repoRoot } from '../engine/helpers.js';
import { fakeContext } from '../support/context.js';
import { downloadSuite, downloadWith } from './fixture.js';
import { startProxy, startServer } from './server.js';

const PROXY_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];
const t = downloadSuite('download-network-', PROXY_VARS);
const w = (over: Partial<DownloadWith> = {}): DownloadWith => downloadWith({ concurrency: 1, ...over });
const BODY = randomBytes(50_000);

describe('download: proxies from the environment', () => {
  it('sends http:// requests through $http_proxy (lower case wins), and NO_PROXY hosts directly', async () => {
    t.server = await startServer({ '/p.bin': { body: BODY } });
    t.proxy = await startProxy();
    process.env['http_proxy'] = t.proxy!.url;
    process.env['HTTP_PROXY'] = 'http://127.0.0.1:9'; // would fail: the lower-case variable must win
    const x = w({ url: `${t.server.url}/p.bin` });
    const ctx = fakeContext(t.dir, x);
    await run(ctx);
    expect(await readFile(join(t.dir, x.out, 'p.bin'))).toEqual(BODY);
    expect(t.proxy!.log).toEqual([{ method: 'GET', target: `${t.server.url}/p.bin`, proxyAuthorization: undefined }]);
    expect(ctx.logs).toContain(`proxies from the environment: http:// URLs through ${t.proxy!.url} ($http_proxy), https:// URLs through ${t.proxy!.url} ($http_proxy)`);

    process.env['NO_PROXY'] = 'example.org, 127.0.0.0/8';
    const y = w({ url: `${t.server.url}/p.bin` });
    await run(fakeContext(t.dir, y));
    expect(await readFile(join(t.dir, y.out, 'p.bin'))).toEqual(BODY);
    expect(t.proxy!.log).toHaveLength(1);
    expect(t.server.hits('/p.bin')).toHaveLength(2);
  });

  it('authenticates to the proxy from the credentials in its URL, never printing them; a 407 says what to set', async () => {
    t.server = await startServer({ '/a.bin': { body: BODY } });
    t.proxy = await startProxy({ auth: { user: 'proxyuser', pass: 'proxy-s3cret' } });
    const port = new URL(t.proxy!.url).port;
    process.env['HTTP_PROXY'] = `http://proxyuser:proxy-s3cret@127.0.0.1:${port}`;
    const ctx = fakeContext(t.dir, w({ url: `${t.server.url}/a.bin` }));
    await run(ctx);
    expect(t.proxy!.log[0]!.proxyAuthorization).toBe(`Basic ${Buffer.from('proxyuser:proxy-s3cret').toString('base64')}`);
    expect(JSON.stringify([ctx.logs, ctx.records, ctx.progressUpdates])).not.toContain('s3cret');

    process.env['HTTP_PROXY'] = `http://127.0.0.1:${port}`;
    await expect(run(fakeContext(t.dir, w({ url: `${t.server.url}/a.bin` }), { stage: 'dl' }))).rejects.toThrow(
      `stage dl: HTTP 407 from the proxy for ${t.server.url}/a.bin: the proxy http://127.0.0.1:${port} wants credentials; ` +
        `put them in the proxy variable's URL (http://user:password@host:port) (file a.bin).`,
    );
  });

  it('tunnels https:// through CONNECT in a real stage-runner process (TLS end to end, trusted test CA)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'download-tls-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
      if (ssl.error || ssl.status !== 0) throw new Error(`this test needs openssl on PATH to make a test certificate: ${ssl.error?.message ?? ssl.stderr}`);
      t.server = await startServer({ '/s/secure.bin': { body: BODY } }, { tls: { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') } });
      t.proxy = await startProxy();
      const x = w({ url: `${t.server.url}/s/secure.bin` });
      const spec = {
        stage: 'fetch',
        kind: 'download',
        with: x,
        params: {},
        workspace: dir,
        key: 'k',
        depHashes: {},
        upstream: [],
        pipeline: { file: 'p.yaml', name: 'p', pipeVersion: '0' },
        resources: { cpus: 1, memBytes: 2 ** 30, gpus: 0, gpuIds: [] },
        resultFile: join(dir, 'result.json'),
        tmpDir: join(dir, 'scratch'),
      };
      await writeFile(join(dir, 'spec.json'), JSON.stringify(spec));
      const env = { PATH: process.env['PATH'] ?? '', HOME: dir, HTTPS_PROXY: t.proxy!.url, NODE_EXTRA_CA_CERTS: cert };
      const child = spawn(process.execPath, [join(repoRoot, 'dist/engine/runner.js'), join(dir, 'spec.json')], { cwd: dir, env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(code, out).toBe(0);
      expect(await readFile(join(dir, x.out, 'secure.bin'))).toEqual(BODY);
      const port = new URL(t.server.url).port;
      expect(t.proxy!.log).toEqual([{ method: 'CONNECT', target: `127.0.0.1:${port}`, proxyAuthorization: undefined }]);
      expect(t.server.hits('/s/secure.bin')).toHaveLength(1);
      expect(out).toContain(`https:// URLs through ${t.proxy!.url} ($HTTPS_PROXY)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads the variables as undici EnvHttpProxyAgent and curl do (pure rules)', () => {
    const cfg = proxyConfig({ HTTP_PROXY: 'proxy.local:3128', NO_PROXY: '.internal.org, example.com, 10.0.0.0/8, [fd00::1], cache:8080' });
    const via = (u: string): string | null => proxyFor(new URL(u), cfg)?.href ?? null;
    expect(via('http://data.org/x')).toBe('http://proxy.local:3128/');
    expect(via('https://data.org/x')).toBe('http://proxy.local:3128/'); // https falls back to the http proxy
    expect(via('https://a.internal.org/x')).toBeNull();
    expect(via('https://example.com/x')).toBeNull();
    expect(via('https://sub.example.com/x')).toBeNull();
    expect(via('https://notexample.com/x')).toBe('http://proxy.local:3128/');
    expect(via('http://10.1.2.3/x')).toBeNull();
    expect(via('http://[fd00::1]/x')).toBeNull();
    expect(via('http://cache:8080/x')).toBeNull();
    expect(via('http://cache:9090/x')).toBe('http://proxy.local:3128/');
    expect(proxyFor(new URL('https://x.org'), proxyConfig({ https_proxy: 'http://s:1', HTTPS_PROXY: 'http://S:2', NO_PROXY: '' }))?.port).toBe('1');
    expect(proxyFor(new URL('https://x.org'), proxyConfig({ HTTPS_PROXY: 'http://p:1', no_proxy: '*' }))).toBeNull();
    expect(() => proxyConfig({ HTTPS_PROXY: 'socks5://p:1080' })).toThrow('the environment variable HTTPS_PROXY names a socks5:// proxy; only http:// and https:// proxies are supported');
  });
});

describe('download: Retry-After', () => {
  it('parses delta-seconds and HTTP-dates (relative to the response Date), bounded at 0 below', () => {
    const date = 'Wed, 01 Jan 2025 00:00:00 GMT';
    expect(parseRetryAfter('120', undefined)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', date)).toBe(30_000);
    expect(parseRetryAfter('Wednesday, 01-Jan-25 00:00:30 GMT', date)).toBe(30_000); // RFC 850 form
    expect(parseRetryAfter('Wed Jan  1 00:00:30 2025', date)).toBe(30_000); // asctime form, GMT though it does not say so
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', date)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:00 GMT', undefined, Date.parse(date))).toBe(60_000);
    expect(parseRetryAfter('soon', date)).toBeNull();
    expect(parseRetryAfter('-5', date)).toBeNull();
    expect(parseRetryAfter(undefined, date)).toBeNull();
  });

  it('waits as the server asks, in both forms', async () => {
    t.server = await startServer({
      '/r.bin': { body: BODY, statuses: [503, 429], retryAfter: ['1', () => new Date(Date.now() + 2000).toUTCString()] },
    });
    const ctx = fakeContext(t.dir, w({ url: `${t.server.url}/r.bin` }));
    await run(ctx);
    const waits = ctx.logs.filter((l) => l.startsWith('retrying r.bin'));
    expect(waits[0]).toBe(`retrying r.bin in 1.0s (attempt 2/4, as the server's Retry-After asks): HTTP 503 from ${t.server.url}/r.bin`);
    expect(waits[1]).toMatch(/^retrying r\.bin in [123]\.\ds \(attempt 3\/4, as the server's Retry-After asks\): HTTP 429 from /);
  });
});

describe('download: a signed base URL is never revealed (issue 11.21)', () => {
  it('no failure prints its host, path or query, in output, logs, lock file or run records of pipe run', async () => {
    const other = await startServer({});
    const closed = await startServer({});
    const closedPort = new URL(closed.url).port;
    await closed.close();
    const dir = await mkdtemp(join(tmpdir(), 'download-secret-'));
    try {
      const html = Buffer.from('<!doctype html><html><body>expired</body></html>');
      t.server = await startServer({
        '/sas-c0ntainer-x9/fine.bin': { body: BODY },
        '/sas-c0ntainer-x9/busy.bin': { body: BODY, statuses: [500, 500, 500] },
        '/sas-c0ntainer-x9/moved.bin': { body: BODY, redirect: `${other.url}/blob-hidden-path-q7/moved.bin?sig=TOPSECRET-SIG-3` },
        '/sas-c0ntainer-x9/priv.bin': { body: BODY, auth: { user: 'u', pass: 'right' } },
        '/sas-c0ntainer-x9/x.tar.gz': { body: html },
        '/sas-c0ntainer-x9/big.bin': { body: randomBytes(5000) },
      });
      const port = new URL(t.server.url).port;
      const base = `${t.server.url}/sas-c0ntainer-x9/?sv=2024-01-01&sig=TOPSECRET-SIG-1`;
      const stage = (name: string, lines: string): string => `  ${name}:\n    uses: download\n    with:\n      out: data/${name}/\n      base_url_env: SAS_URL\n      retries: 1\n      backoff_ms: 10\n${lines}`;
      await writeFile(
        join(dir, 'pipeline.yaml'),
        'name: secret\nstages:\n' +
          [
            stage('fine', '      files: [{ path: fine.bin, url: fine.bin }]\n'), // succeeds: a lock entry and a run record
            stage('missing', '      files: [{ path: gone.bin, url: gone.bin }]\n'),
            stage('busy', '      files: [{ path: busy.bin, url: busy.bin }]\n'),
            stage('moved', '      files: [{ path: moved.bin, url: moved.bin }]\n'),
            stage('auth', '      files: [{ path: priv.bin, url: priv.bin }]\n'),
            stage('manifest', '      manifest: SHA256SUMS.txt\n'),
            stage('html', '      files: [{ path: x.tar.gz, url: x.tar.gz }]\n      extract: true\n'),
            stage('big', '      files: [{ path: big.bin, url: big.bin }]\n      max_bytes: 1000\n'),
            `  down:\n    uses: download\n    with:\n      out: data/down/\n      base_url_env: SAS_DOWN\n      retries: 1\n      backoff_ms: 10\n      files: [{ path: d.bin, url: d.bin }]\n`,
          ].join(''),
      );
      const netrc = join(dir, 'netrc');
      await writeFile(netrc, 'machine 127.0.0.1 login u password wrong\n');
      const r = await pipeAsync(dir, ['run', 'pipeline.yaml', '--keep-going'], {
        SAS_URL: base,
        SAS_DOWN: `http://127.0.0.1:${closedPort}/sas-c0ntainer-x9/?sig=TOPSECRET-SIG-2`,
        NETRC: netrc,
      }).done;
      const output = r.stdout + r.stderr;
      expect(r.code, output).toBe(1);
      // Each failure is still explained, with the variable standing in for the URL.
      for (const expected of [
        'HTTP 404: $SAS_URL/gone.bin does not exist (file gone.bin).',
        'gave up on $SAS_URL/busy.bin after 2 attempt(s): HTTP 500 from $SAS_URL/busy.bin.',
        'HTTP 404: $SAS_URL/moved.bin does not exist (file moved.bin).',
        'HTTP 401 Unauthorized for $SAS_URL/priv.bin: the server refused the credentials (netrc file',
        'add "machine <the host of $SAS_URL> login <user> password <password>"',
        'HTTP 404: $SAS_URL/SHA256SUMS.txt does not exist (file SHA256SUMS.txt).',
        '$SAS_URL/x.tar.gz: x.tar.gz is not a gzip-compressed tar archive: it is an HTML page',
        '$SAS_URL/big.bin (file big.bin): the server announced 5000 bytes, more than with.max_bytes = 1000',
        'gave up on $SAS_DOWN/d.bin after 2 attempt(s): connection refused (ECONNREFUSED) ($SAS_DOWN/d.bin).',
      ])
        expect(output).toContain(expected);
      // Everything pipe wrote: stdout/stderr, and every file in the workspace (logs, run records, lock file, index).
      const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      expect(files.some((f) => f.includes(`${join('.pipe', 'logs')}`))).toBe(true);
      const texts: Array<[string, string]> = [['output', output]];
      for (const f of files) if (!f.endsWith('netrc') && !f.endsWith('pipeline.yaml') && (await stat(f)).size < 5e6) texts.push([f, await readFile(f, 'latin1')]);
      const forbidden = ['127.0.0.1', `:${port}`, `:${closedPort}`, `:${new URL(other.url).port}`, 'sas-c0ntainer-x9', 'TOPSECRET', 'blob-hidden-path-q7', '2024-01-01'];
      const found = texts.flatMap(([where, text]) =>
        forbidden.filter((s) => text.includes(s)).map((s) => `${s} in ${where.replace(dir, '')}: …${text.slice(Math.max(0, text.indexOf(s) - 150), text.indexOf(s) + 80)}…`),
      );
      expect(found).toEqual([]);
      expect(files.filter((f) => f.startsWith(join(dir, 'data')))).toEqual([join(dir, 'data/fine/fine.bin')]); // failed stages leave no outputs
      expect(files.some((f) => f.endsWith('.lock') || f.endsWith('lock.yaml'))).toBe(true);
      expect(files.some((f) => f.includes(join('.pipe', 'runs')))).toBe(true);
    } finally {
      await other.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the scrubber (second line of defence) removes every piece of the URL from any text', () => {
    const scrub = secretScrubber('https://acct.blob.core.windows.net:8443/container-z/ds?sv=2024&sig=abc%2Fdef', '$CHEXPERT_URL');
    const text = 'connect ECONNREFUSED acct.blob.core.windows.net:8443 for https://acct.blob.core.windows.net:8443/container-z/ds?sv=2024&sig=abc%2Fdef (/container-z/ds, abc/def)';
    const out = scrub(text);
    for (const s of ['acct.blob', '8443', 'container-z', 'abc', 'def']) expect(out).not.toContain(s);
    expect(out).toContain('$CHEXPERT_URL');
  });
});
