import { sql, type Kysely } from 'kysely'
import { installSoftDeletes } from '@tombstone/kysely'
import { blogSoftDeletes } from '../../soft-deletes.ts'

/**
 * Legal holds on a SQLite database made before the toolkit had them there: the holds tables and
 * their triggers, the guard refusing the removal of a held row for every client, and the audit
 * rebuilt with `hold_id` and the `hold`/`release` actions (SQLite cannot alter a check). On a fresh
 * database 002 installed all of it already, so this skips the second, identical install.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const installed = await sql<{ n: number }>`select count(*) as n from sqlite_master where type = 'table' and name = 'tombstone_held_rows'`.execute(db)
  if (Number(installed.rows[0]?.n) > 0) return
  await installSoftDeletes(db, blogSoftDeletes(30))
}
