import { defineSoftDeletes, type SoftDeleteDefinition } from '@tombstone/kysely'
import type { Database } from './schema.ts'

/**
 * The blog's soft-delete declaration: users own posts and comments, posts own comments, tokens
 * depend on their user; deleted rows are kept `retentionDays` before they may be purged; every
 * change of deletion state is audited (by the database).
 */
export function blogSoftDeletes(retentionDays: number): SoftDeleteDefinition<Database> {
  const retention = { days: retentionDays }
  return defineSoftDeletes<Database>()({
    tables: { users: { retention }, posts: { retention }, comments: { retention } },
    relations: [
      { parent: 'users', child: 'posts', foreignKey: 'author_id' },
      { parent: 'users', child: 'comments', foreignKey: 'author_id' },
      { parent: 'posts', child: 'comments', foreignKey: 'post_id' },
    ],
    // A token is its user's: none can be issued to a deleted account, whatever runs concurrently.
    dependents: [{ table: 'tokens', foreignKey: 'user_id', parent: 'users' }],
    audit: true,
  })
}
