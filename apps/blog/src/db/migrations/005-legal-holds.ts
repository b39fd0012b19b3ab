import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../soft-deletes.ts'

/**
 * Legal holds and deletions as objects, on a database installed before them: the holds tables and
 * their audited functions, the guard refusing the removal of a held row for every client, the
 * audit's `hold_id` column and its `hold`/`release` actions, and the audit's deletion index. On a
 * fresh database 002 installed all of it already (`installSoftDeletes` is idempotent), so this
 * skips the second, identical install.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const installed = await sql<{ present: boolean }>`select to_regclass('tombstone_held_rows') is not null as present`.execute(db)
  if (installed.rows[0]?.present === true) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
