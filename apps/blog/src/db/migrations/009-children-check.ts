import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Installs the parent side of the relations' check on a database installed before it: a deferred
 * constraint trigger per relation refusing, at commit, a user or post the transaction soft-deleted
 * that still has an active post or comment (a plain `UPDATE` from any client left them before). On a
 * current database, nothing to do.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const current = await sql<{ installed: boolean }>`select count(*) = 3 as installed
    from pg_proc where proname in ('tombstone_children_posts_author_id', 'tombstone_children_comments_author_id', 'tombstone_children_comments_post_id')`.execute(db)
  if (current.rows[0]?.installed === true) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
