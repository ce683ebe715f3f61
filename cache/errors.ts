/**
 * Expected failures of the cache (a bad input on disk, a corrupt object) are `CacheError`s with a one-paragraph
 * message naming the path; the CLI prints the message without a stack. Anything else thrown from cache/ is a bug.
 */
export class CacheError extends Error {
  override readonly name = 'CacheError';
  constructor(
    message: string,
    /** Machine-readable reason, for callers that branch on it. */
    readonly code:
      | 'broken-symlink'
      | 'symlink-cycle'
      | 'special-file'
      | 'corrupt-object'
      | 'missing-object'
      | 'not-found'
      | 'bad-manifest'
      | 'link-outside'
      | 'not-own-folder',
    readonly path?: string,
  ) {
    super(message);
  }
}
