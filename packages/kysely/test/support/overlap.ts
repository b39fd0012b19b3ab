/**
 * The overlap scenario shared by the single-connection dialects' tests: two transactions and a plain
 * insert that overlap on one database; the first transaction rolls back. A dialect that lets other
 * work run inside an open transaction loses that work with the rollback.
 */
import { sql, type Kysely } from 'kysely'

export interface Db {
  marks: { name: string }
}

/** Runs the scenario once; returns the names that survived, sorted (expected: outside, second transaction). */
export async function overlap(db: Kysely<Db>): Promise<string[]> {
  await sql`create table if not exists marks (name text)`.execute(db)
  await sql`delete from marks`.execute(db)
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let inserted!: () => void
  const firstInserted = new Promise<void>((resolve) => (inserted = resolve))

  const first = db
    .transaction()
    .execute(async (trx) => {
      await trx.insertInto('marks').values({ name: 'rolled back' }).execute()
      inserted()
      await gate
      throw new Error('roll back')
    })
    .catch(() => 'rolled back')
  await firstInserted
  const second = db.transaction().execute(async (trx) => {
    await trx.insertInto('marks').values({ name: 'second transaction' }).execute()
  })
  const outside = db.insertInto('marks').values({ name: 'outside' }).execute()
  // Let the other work start (or queue) while the first transaction is open.
  await new Promise((resolve) => setTimeout(resolve, 50))
  release()
  await Promise.all([first, second, outside])
  const rows = await db.selectFrom('marks').select('name').orderBy('name').execute()
  return rows.map((row) => row.name)
}
