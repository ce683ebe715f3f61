/** The cache's public surface: the engine imports from here (types in ./types.js). */
export type * from './types.js';
export { asHash, asStageKey, isHashHex } from './brand.js';
export { CacheError } from './errors.js';
export { canonicalJson, hashBytes, hashFile, hashJson } from './hash.js';
export { manifestJson, parseManifest, type ManifestEntry } from './manifest.js';
export { openHashState, type DirHash, type HashStateOptions, type HashStateStats, type LocalHashState } from './state.js';
export { openStore, type LocalStore, type StoreOptions } from './store.js';
export { openRunCache, safeStageName, type LocalRunCache } from './runs.js';
export { pidAlive, workspaceLock, type WorkspaceLockOptions } from './lock.js';
export { collectGarbage, DEFAULT_KEEP_RUNS_MS, type GcOptions, type GcResult } from './gc.js';
