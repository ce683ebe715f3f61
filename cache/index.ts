/** The cache's public surface: the engine imports from here (types in ./types.js). */
export type * from './types.js';
export { asHash, asStageKey, isHashHex } from './brand.js';
export { CacheError } from './errors.js';
export { canonicalJson, hashBytes, hashFile, hashJson } from './hash.js';
export { isLinkEntry, manifestJson, parseManifest, type FileEntry, type LinkEntry, type ManifestEntry } from './manifest.js';
export { outPathKey, sameOutPath } from './paths.js';
export { openHashState, type DirHash, type HashOptions, type HashStateOptions, type HashStateStats, type LocalHashState } from './state.js';
export { linkInside, openStore, type LocalStore, type StoreOptions } from './store.js';
export { openRunCache, safeStageName, sharedRunsDir, type LocalRunCache, type RunCacheOptions } from './runs.js';
export { readRegularFile } from './read.js';
export { pidAlive, workspaceLock, type WorkspaceLockOptions } from './lock.js';
export { collectGarbage, DEFAULT_KEEP_RUNS_MS, type GcOptions, type GcResult, type LockRefs } from './gc.js';
export { listWorkspaces, registerWorkspace, workspaceId, type RegisteredWorkspace } from './registry.js';
