/**
 * Proxies from the environment, with the semantics of undici's EnvHttpProxyAgent (and curl) for the variables it
 * reads — `http_proxy`/`HTTP_PROXY` for http:// URLs, `https_proxy`/`HTTPS_PROXY` for https:// URLs (falling back to
 * the http proxy when unset), `no_proxy`/`NO_PROXY` for exceptions; the lower-case spelling wins — and the two ways
 * through a proxy: an absolute-form request for http:// targets, a CONNECT tunnel (then TLS end to end) for https://.
 *
 * Node 20's http/https modules ignore these variables, and undici's EnvHttpProxyAgent only serves undici's own
 * fetch/request; this kind streams through node:http (idle timeouts, Range resume), so it routes by itself.
 */
import http, { type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type Socket } from 'node:net';
import tls from 'node:tls';

/** The proxy variables this kind reads (the engine must pass these through to it). */
export const PROXY_ENV_VARS = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'] as const;

export interface ProxyConfig {
  http: URL | null;
  https: URL | null;
  /** The variable each proxy came from, for messages. */
  httpVar?: string;
  httpsVar?: string;
  noProxy: NoProxyRule[];
}

type NoProxyRule = { all: true } | { host: string; port: number | null } | { cidr: BlockList; port: number | null };

export class ProxyConfigError extends Error {}

const first = (env: NodeJS.ProcessEnv, names: string[]): { name: string; value: string } | null => {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
  }
  return null;
};

function parseProxyUrl(name: string, value: string): URL {
  // curl accepts `host:port` without a scheme and means http://.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ProxyConfigError(`the environment variable ${name} is not a proxy URL (expected http://host:port)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ProxyConfigError(`the environment variable ${name} names a ${u.protocol.replace(/:$/, '')}:// proxy; only http:// and https:// proxies are supported`);
  return u;
}

const bare = (host: string): string => host.replace(/^\[|\]$/g, '').toLowerCase();

function parseNoProxy(value: string): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const raw of value.split(/[\s,]+/).filter(Boolean)) {
    if (raw === '*') {
      rules.push({ all: true });
      continue;
    }
    // host, .domain, *.domain, host:port, [v6]:port, 10.0.0.0/8, fd00::/8
    const cidr = /^([^/]+)\/(\d{1,3})$/.exec(raw);
    if (cidr && isIP(bare(cidr[1]!))) {
      const ip = bare(cidr[1]!);
      const list = new BlockList();
      const family = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      const prefix = Number(cidr[2]);
      if (prefix <= (family === 'ipv6' ? 128 : 32)) {
        list.addSubnet(ip, prefix, family);
        rules.push({ cidr: list, port: null });
      }
      continue;
    }
    const m = /^(\[[^\]]+\]|[^:]+|[0-9a-f:]+)(?::(\d+))?$/i.exec(raw);
    const host = bare((m ? m[1]! : raw).replace(/^\*?\./, ''));
    rules.push({ host, port: m?.[2] ? Number(m[2]) : null });
  }
  return rules;
}

export function proxyConfig(env: NodeJS.ProcessEnv = process.env): ProxyConfig {
  const h = first(env, ['http_proxy', 'HTTP_PROXY']);
  const s = first(env, ['https_proxy', 'HTTPS_PROXY']) ?? h;
  const n = first(env, ['no_proxy', 'NO_PROXY']);
  return {
    http: h ? parseProxyUrl(h.name, h.value) : null,
    https: s ? parseProxyUrl(s.name, s.value) : null,
    ...(h ? { httpVar: h.name } : {}),
    ...(s ? { httpsVar: s.name } : {}),
    noProxy: n ? parseNoProxy(n.value) : [],
  };
}

const defaultPort = (u: URL): number => (u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80);

/** The proxy to use for `target`, or null to connect directly (no proxy set, or NO_PROXY matches). */
export function proxyFor(target: URL, cfg: ProxyConfig): URL | null {
  const proxy = target.protocol === 'https:' ? cfg.https : cfg.http;
  if (!proxy) return null;
  const host = bare(target.hostname);
  const port = defaultPort(target);
  for (const r of cfg.noProxy) {
    if ('all' in r) return null;
    if (r.port !== null && r.port !== port) continue;
    if ('cidr' in r) {
      const family = isIP(host);
      if (family && r.cidr.check(host, family === 6 ? 'ipv6' : 'ipv4')) return null;
    } else if (host === r.host || host.endsWith(`.${r.host}`)) return null;
  }
  return proxy;
}

/** `http://user:pw@proxy:3128/` → `http://proxy:3128` (proxy credentials never appear in messages). */
export function proxyLabel(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username && !proxy.password) return {};
  const cred = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { 'proxy-authorization': `Basic ${Buffer.from(cred).toString('base64')}` };
}

/** Why a proxy refused: a status the caller can classify (407 = fatal, 5xx = retryable). */
export class ProxyRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface GetOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  proxy: URL | null;
  /** How the target appears in a proxy error (never the host of a secret URL). */
  label: string;
  /** Give up on a proxy that does not answer the tunnel request for this long. */
  idleTimeoutMs: number;
}

/**
 * Start a GET for `target` (directly or through `proxy`) and return the request; the response arrives on the
 * request's 'response' event, a refusal or network error on 'error'. The caller owns timeouts and teardown.
 */
export function startGet(target: URL, opts: GetOptions): ClientRequest {
  const { proxy } = opts;
  if (!proxy) return (target.protocol === 'https:' ? https : http).get(target, { headers: opts.headers, signal: opts.signal });
  const proxyMod = proxy.protocol === 'https:' ? https : http;
  const proxyTarget: RequestOptions = { host: bare(proxy.hostname), port: defaultPort(proxy), signal: opts.signal };
  if (target.protocol === 'http:') {
    // Absolute-form request: the proxy fetches the URL (what curl does; proxies allow it where CONNECT to :80 is not).
    return proxyMod.get({ ...proxyTarget, path: target.href, headers: { ...opts.headers, host: target.host, ...proxyAuthorization(proxy) } });
  }
  // https:// through a tunnel: CONNECT host:port, then TLS with the origin over the tunnel (the proxy sees no bytes).
  const authority = `${target.hostname}:${defaultPort(target)}`;
  const connect = proxyMod.request({ ...proxyTarget, method: 'CONNECT', path: authority, headers: { host: authority, ...proxyAuthorization(proxy) } });
  const hostname = bare(target.hostname);
  const req = https.get(target, {
    headers: opts.headers,
    signal: opts.signal,
    // The tunnel is opened below; the request waits for it.
    createConnection: (_o: unknown, cb: (err: Error | null, socket?: Socket) => void) => {
      let settled = false;
      connect.setTimeout(opts.idleTimeoutMs, () => connect.destroy(new Error(`no answer from the proxy ${proxyLabel(proxy)} for ${opts.idleTimeoutMs / 1000}s`)));
      connect.once('connect', (res: IncomingMessage, socket: Socket) => {
        settled = true;
        connect.setTimeout(0);
        if (res.statusCode !== 200) {
          socket.destroy();
          const status = res.statusCode ?? 0;
          cb(new ProxyRefusal(status, `the proxy ${proxyLabel(proxy)} answered HTTP ${status} to the tunnel request for ${opts.label}`));
          return;
        }
        const secure = tls.connect({ socket, host: hostname, ...(isIP(hostname) ? {} : { servername: hostname }) });
        cb(null, secure);
      });
      // A proxy that answers CONNECT with an ordinary response (no tunnel) is a refusal too.
      connect.once('response', (res: IncomingMessage) => {
        res.resume();
        if (settled) return;
        settled = true;
        const status = res.statusCode ?? 0;
        cb(new ProxyRefusal(status, `the proxy ${proxyLabel(proxy)} answered HTTP ${status} to the tunnel request for ${opts.label}`));
      });
      connect.on('error', (e: Error) => {
        if (settled) return;
        settled = true;
        cb(e);
      });
      connect.end();
      return undefined;
    },
  } as RequestOptions);
  req.once('close', () => connect.destroy());
  return req;
}
