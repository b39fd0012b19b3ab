import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../../soft-deletes.ts'

/**
 * Installs the parent side of the relations' check on a SQLite database made before it: a trigger
 * per relation refusing, from a client outside the toolkit, a user or post soft-deleted while an
 * active post or comment references it (SQLite has no deferred triggers: such a client deletes the
 * children first). On a current database, nothing to do.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const installed = await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'trigger'
    and name in ('tombstone_children_posts_author_id', 'tombstone_children_comments_author_id', 'tombstone_children_comments_post_id')`.execute(db)
  if (Number(installed.rows[0]?.n) === 3) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
