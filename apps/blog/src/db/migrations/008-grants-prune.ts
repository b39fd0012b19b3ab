import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Re-installs `tombstone_allow_hard_delete()` on a database installed before its prune of old
 * grants was one pass: the self-joined prune (`… for update skip locked`), planned while the grants
 * table was small, read a day's grants squared on every force delete and purge batch. On a current
 * database, nothing to do.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const current = await sql<{ old: boolean }>`select coalesce(bool_or(prosrc like '%skip locked%'), false) as old
    from pg_proc where proname = 'tombstone_allow_hard_delete'`.execute(db)
  if (current.rows[0]?.old !== true) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
