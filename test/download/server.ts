// A real HTTP server on 127.0.0.1 for download tests, with scripted faults: dropped connections mid-file,
// status sequences (401/404/500), Basic auth, slow or stalled bodies, servers that ignore Range.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import * as zlib from 'node:zlib';

export interface Route {
  body: Buffer;
  /** Statuses for the first requests, in order (e.g. [500, 500]); later requests are served normally. */
  statuses?: number[];
  /** For the first `dropTimes` requests: announce the full length, send `dropAfter` bytes, then cut the socket. */
  dropAfter?: number;
  dropTimes?: number;
  auth?: { user: string; pass: string };
  /** Send the body in 1 kB chunks at about this rate. */
  bytesPerSec?: number;
  /** For the first `stallTimes` requests: send headers and a few bytes, then nothing for `stallMs`. */
  stallMs?: number;
  stallTimes?: number;
  ignoreRange?: boolean;
  /** Answer 302 with this Location. */
  redirect?: string;
  /** Send this ETag and honour If-Range with it (a mismatching If-Range gets the whole file with 200). */
  etag?: string;
  /** Send this Last-Modified and honour an If-Range date equal to it. */
  lastModified?: string;
  /** Answer a Range request with 206 whatever If-Range says (a server that does not implement If-Range). */
  ignoreIfRange?: boolean;
  /** `Retry-After` values sent with the scripted statuses, in the same order (a function: computed when sent). */
  retryAfter?: Array<string | (() => string)>;
  /** 200 without a length, and a body that never ends (fast), or one chunk every `trickleMs`. */
  endless?: boolean;
  trickleMs?: number;
  /** For the first request: send this many bytes, then hold the connection open until the socket closes. */
  holdAfter?: number;
  contentType?: string;
}

export interface RequestLog {
  path: string;
  query: string;
  ifRange?: string;
  range?: string;
  authorization?: string;
}

export interface TestServer {
  url: string;
  requests: RequestLog[];
  routes: Map<string, Route>;
  hits(path: string): RequestLog[];
  /** Bytes of body written per path (all requests), for waiting on a transfer that is under way. */
  sent(path: string): number;
  close(): Promise<void>;
}

/** `tls`: serve https with this key and certificate (a self-signed one for 127.0.0.1, see selfSignedCert). */
export async function startServer(routes: Record<string, Route>, opts: { tls?: { key: string; cert: string } } = {}): Promise<TestServer> {
  const table = new Map(Object.entries(routes));
  const requests: RequestLog[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  const sentBytes = new Map<string, number>();
  const count = (path: string, n: number): void => void sentBytes.set(path, (sentBytes.get(path) ?? 0) + n);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(u.pathname);
    requests.push({ path, query: u.search, range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, authorization: req.headers.authorization });
    const n = counts.get(path) ?? 0;
    counts.set(path, n + 1);
    const route = table.get(path);
    if (!route) {
      res.writeHead(404).end('not found');
      return;
    }
    if (route.redirect) {
      res.writeHead(302, { location: route.redirect }).end();
      return;
    }
    if (route.auth) {
      const want = `Basic ${Buffer.from(`${route.auth.user}:${route.auth.pass}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end('unauthorized');
        return;
      }
    }
    const scripted = route.statuses?.[n];
    if (scripted !== undefined) {
      const a = route.retryAfter?.[n];
      const after = typeof a === 'function' ? a() : a;
      res.writeHead(scripted, after !== undefined ? { 'retry-after': after } : {}).end(`scripted ${scripted}`);
      return;
    }
    if (route.contentType) res.setHeader('content-type', route.contentType);
    if (route.endless) {
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      while (!res.destroyed && !req.socket.destroyed) {
        count(path, chunk.length);
        if (!res.write(chunk))
          await new Promise<void>((r) => {
            const done = (): void => {
              res.off('drain', done);
              res.off('close', done);
              r();
            };
            res.once('drain', done);
            res.once('close', done);
          });
        if (route.trickleMs) await new Promise((r) => setTimeout(r, route.trickleMs));
      }
      return;
    }
    const body = route.body;
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const rangeValid = route.ignoreIfRange || ifRange === undefined || ifRange === route.etag || ifRange === route.lastModified;
    if (route.etag) res.setHeader('etag', route.etag);
    if (route.lastModified) res.setHeader('last-modified', route.lastModified);
    if (m && !route.ignoreRange && rangeValid) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'content-length': body.length - start,
        'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'accept-ranges': 'bytes',
      });
    } else res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    const rest = body.subarray(start);
    if (route.holdAfter !== undefined && n === 0) {
      count(path, route.holdAfter);
      res.write(rest.subarray(0, route.holdAfter));
      return; // held open until the client goes away (or close())
    }
    if (route.dropAfter !== undefined && n < (route.dropTimes ?? 1)) {
      count(path, Math.min(route.dropAfter, rest.length));
      // Cut with a FIN after the bytes (a destroy can reset the connection, and the peer's kernel then discards what
      // it had not yet read): the client sees exactly dropAfter bytes, then a premature end.
      res.write(rest.subarray(0, route.dropAfter), () => req.socket.end());
      return;
    }
    if (route.stallMs !== undefined && n < (route.stallTimes ?? 1)) {
      res.write(rest.subarray(0, 10));
      await new Promise((r) => setTimeout(r, route.stallMs));
      if (!res.destroyed) res.end(rest.subarray(10));
      return;
    }
    if (route.bytesPerSec) {
      for (let i = 0; i < rest.length && !res.destroyed; i += 1024) {
        res.write(rest.subarray(i, i + 1024));
        await new Promise((r) => setTimeout(r, (1024 / route.bytesPerSec!) * 1000));
      }
      res.end();
      return;
    }
    count(path, rest.length);
    res.end(rest);
  };

  const server = opts.tls ? createTlsServer(opts.tls, (req, res) => void handle(req, res)) : createServer((req, res) => void handle(req, res));
  server.on(opts.tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    routes: table,
    hits: (p) => requests.filter((r) => r.path === p),
    sent: (p) => sentBytes.get(p) ?? 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface ProxyLog {
  method: string;
  /** The absolute URL (forwarded request) or host:port (CONNECT). */
  target: string;
  proxyAuthorization?: string;
}

export interface TestProxy {
  url: string;
  log: ProxyLog[];
  close(): Promise<void>;
}

/**
 * A real forward proxy on 127.0.0.1: absolute-form requests are forwarded, CONNECT opens a TCP tunnel. With `auth`,
 * requests without the matching Proxy-Authorization get 407.
 */
export async function startProxy(opts: { auth?: { user: string; pass: string } } = {}): Promise<TestProxy> {
  const log: ProxyLog[] = [];
  const sockets = new Set<Socket>();
  const want = opts.auth ? `Basic ${Buffer.from(`${opts.auth.user}:${opts.auth.pass}`).toString('base64')}` : undefined;
  const server = createServer((req, res) => {
    log.push({ method: req.method ?? '', target: req.url ?? '', proxyAuthorization: req.headers['proxy-authorization'] });
    if (want && req.headers['proxy-authorization'] !== want) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="proxy"' }).end();
      return;
    }
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    const up = httpRequest(target, { method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end('bad gateway'));
    req.pipe(up);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    log.push({ method: 'CONNECT', target: req.url ?? '', proxyAuthorization: req.headers['proxy-authorization'] });
    if (want && req.headers['proxy-authorization'] !== want) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nproxy-authenticate: Basic realm="proxy"\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = netConnect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A tar archive built by hand, so tests can include entries a well-behaved tar writer would refuse ("../x"). */
export function rawTar(entries: Array<{ name: string; body?: string | Buffer; type?: '0' | '2' | '5'; link?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type ?? '0', 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * A zip built by hand, for the same reason: stored entries from `body`, or deflated ones given as already-compressed
 * `deflated` data with the uncompressed `size` and `crc` they declare (a zip bomb need not be inflated to be built).
 */
export function rawZip(entries: Array<{ name: string; body: string | Buffer } | { name: string; deflated: Buffer; size: number; crc: number }>): Buffer {
  const { crc32 } = zlib as unknown as { crc32(b: Buffer): number };
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const stored = 'body' in e;
    const data = stored ? (Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body)) : e.deflated;
    const size = stored ? data.length : e.size;
    const crc = stored ? crc32(data) : e.crc;
    const method = stored ? 0 : 8;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc >>> 0, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(size, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc >>> 0, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, data);
    centrals.push(ch, name);
    offset += 30 + name.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/**
 * `mib` MiB of zeros as raw deflate data, built in milliseconds: after a full flush the compressor starts afresh,
 * so every MiB after the first compresses to the same bytes (1 MiB → ~1 KB, a ratio of about 1000).
 */
export async function deflatedZeros(mib: number): Promise<{ deflated: Buffer; size: number; crc: number }> {
  const MiB = Buffer.alloc(1 << 20);
  const d = zlib.createDeflateRaw({ level: 9 });
  const flushOne = (): Promise<Buffer> =>
    new Promise((resolve) => {
      const parts: Buffer[] = [];
      const on = (c: Buffer): void => void parts.push(c);
      d.on('data', on);
      d.write(MiB);
      d.flush(zlib.constants.Z_FULL_FLUSH, () => {
        d.off('data', on);
        resolve(Buffer.concat(parts));
      });
    });
  const first = await flushOne();
  const rest = await flushOne();
  d.destroy();
  const { crc32 } = zlib as unknown as { crc32(b: Buffer, init?: number): number };
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = crc32(MiB, crc);
  // 0x03 0x00: an empty final block.
  return { deflated: Buffer.concat([first, ...Array<Buffer>(mib - 1).fill(rest), Buffer.from([0x03, 0x00])]), size: mib * 2 ** 20, crc };
}
