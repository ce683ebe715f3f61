/**
 * The one place where plain strings become branded `Hash` / `StageKey` values. Everything else obtains them from
 * here, so a path or an arbitrary string can never silently pass for a hash.
 */
import type { Hash, StageKey } from './types.js';

const HEX64 = /^[0-9a-f]{64}$/;

/** Brand a lowercase 64-hex sha256 digest; throws on anything else (a bug, not an expected failure). */
export function asHash(hex: string): Hash {
  if (!HEX64.test(hex)) throw new TypeError(`not a sha256 hex digest: ${JSON.stringify(hex)}`);
  return hex as Hash;
}

/** Brand a stage key (a sha256 hex digest, see engine/fingerprint.ts). */
export function asStageKey(hex: string): StageKey {
  if (!HEX64.test(hex)) throw new TypeError(`not a stage key (64 lowercase hex chars): ${JSON.stringify(hex)}`);
  return hex as StageKey;
}

/** True when `s` looks like a hash; used to validate names read back from disk (object files, run records). */
export function isHashHex(s: string): boolean {
  return HEX64.test(s);
}

/**
 * Brand a digest read back from pipe's own atomically written files, where only the length is checked: the hash
 * state loads 100,000 of them per run and a regex per line measured a quarter of its load time.
 */
export function trustedHash(hex: string): Hash | undefined {
  return hex.length === 64 ? (hex as Hash) : undefined;
}
