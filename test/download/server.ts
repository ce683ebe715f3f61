// A real HTTP server on 127.0.0.1 for download tests, with scripted faults: dropped connections mid-file,
// status sequences (401/404/500), Basic auth, slow or stalled bodies, servers that ignore Range.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
  close(): Promise<void>;
}

export async function startServer(routes: Record<string, Route>): Promise<TestServer> {
  const table = new Map(Object.entries(routes));
  const requests: RequestLog[] = [];
  const counts = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(u.pathname);
    requests.push({ path, query: u.search, range: req.headers.range, ifRange: req.headers['if-range'], authorization: req.headers.authorization });
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
      res.writeHead(scripted).end(`scripted ${scripted}`);
      return;
    }
    const body = route.body;
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    const rangeValid = ifRange === undefined || ifRange === route.etag;
    if (route.etag) res.setHeader('etag', route.etag);
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
    if (route.dropAfter !== undefined && n < (route.dropTimes ?? 1)) {
      res.write(rest.subarray(0, route.dropAfter));
      setTimeout(() => req.socket.destroy(), 20);
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
    res.end(rest);
  };

  const server = createServer((req, res) => void handle(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes: table,
    hits: (p) => requests.filter((r) => r.path === p),
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

/** A stored (uncompressed) zip built by hand, for the same reason. */
export function rawZip(entries: Array<{ name: string; body: string | Buffer }>): Buffer {
  const { crc32 } = zlib as unknown as { crc32(b: Buffer): number };
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const body = Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body);
    const crc = crc32(body);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(body.length, 18);
    lh.writeUInt32LE(body.length, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(body.length, 20);
    ch.writeUInt32LE(body.length, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, body);
    centrals.push(ch, name);
    offset += 30 + name.length + body.length;
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
