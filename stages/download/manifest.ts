import type { StageManifest } from '../../engine/stage-api.js';

export const manifest: StageManifest = {
  kind: 'download',
  description:
    'Download files over HTTP(S) — single URLs or every entry of a SHA256SUMS.txt manifest — with resume (Range), ' +
    'retries with exponential backoff, per-file sha256 verification, credentials from environment variables or ' +
    'netrc (never stored), proxies from the environment, an offline mirror tried first, size/time bounds, atomic ' +
    'placement and optional archive extraction (bounded, all or nothing).',
  with: {
    out: { type: 'path', role: 'out', required: true, description: 'Directory the files are placed in (relative layout kept).' },
    url: { type: 'string', description: 'One http(s) URL (saved under its file name).' },
    urls: { type: 'string[]', description: 'Several http(s) URLs.' },
    sha256: { type: 'object', description: 'Expected sha256 per file name for url/urls: {"file.tar.gz": "<hex>"}.' },
    manifest: {
      type: 'string',
      description: 'URL of a checksum manifest (`<sha256>  <relative path>` lines, as PhysioNet\'s SHA256SUMS.txt).',
    },
    files: {
      type: 'any',
      description:
        'List of {path, url?, sha256?, note?}: saved under `path`; `url` absolute or relative to the base URL; ' +
        'no url = the file must come from the mirror (`note` says where to obtain it).',
    },
    base_url: {
      type: 'string',
      description: 'Base URL that relative urls and manifest paths resolve against (default for a manifest: its folder).',
    },
    base_url_env: {
      type: 'string',
      description:
        'Name of an environment variable holding the base URL, for signed/private share links (e.g. an Azure SAS URL); ' +
        'its value is never stored or logged.',
    },
    include: { type: 'string[]', description: 'Glob patterns (`*`, `**`, `?`) selecting manifest entries (default: all).' },
    auth: {
      type: 'object',
      description:
        'Credentials: {user_env: NAME, password_env: NAME} names environment variables (values are never stored); ' +
        'falls back to ~/.netrc or $NETRC unless {netrc: false}.',
    },
    mirror: { type: 'string', description: 'Local directory with the same relative layout, tried before the network.' },
    retries: { type: 'integer', default: 4, description: 'Extra attempts per file after the first.' },
    backoff_ms: { type: 'number', default: 500, description: 'First retry delay; doubles each attempt (capped at 30 s).' },
    timeout_s: { type: 'number', default: 60, description: 'Give up on a connection that sends nothing for this long (then retry).' },
    max_bytes: {
      type: 'integer',
      default: 64 * 2 ** 30,
      description: 'Largest file accepted, in bytes (default 64 GiB): a larger announced size, or a body that goes on past it, fails the stage.',
    },
    max_time_s: {
      type: 'number',
      default: 86_400,
      description: 'Total time one file may take, all attempts and waits included (default 24 h; timeout_s covers only silence).',
    },
    extract: { type: 'boolean', default: false, description: 'Extract .tar/.tar.gz/.tgz/.zip files next to themselves.' },
    max_extract_bytes: {
      type: 'integer',
      default: 64 * 2 ** 30,
      description: 'Largest total size the entries of one archive may declare, in bytes (default 64 GiB); checked before anything is written.',
    },
    max_extract_ratio: {
      type: 'number',
      default: 100,
      description: "Largest ratio of an archive's expanded size to its own size (default 100): a decompression bomb is refused.",
    },
    max_extract_entries: {
      type: 'integer',
      default: 1_000_000,
      description: 'Most entries (files, folders, links) one archive may hold (default 1,000,000); checked before anything is written.',
    },
    concurrency: { type: 'integer', default: 4, description: 'Files downloaded in parallel.' },
  },
  // The variables `base_url_env` and `auth` name reach the stage (names keyed through `with:`, values never).
  envFrom: (w) => {
    const auth = (w.auth ?? {}) as { user_env?: unknown; password_env?: unknown };
    return [w.base_url_env, auth.user_env, auth.password_env].filter((n): n is string => typeof n === 'string');
  },
  resources: { cpus: 1 },
};
