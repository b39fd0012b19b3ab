/**
 * The SQLite dialect on node:sqlite: one connection, handed to one holder at a time (by Kysely,
 * because the dialect uses SqliteAdapter); what SQLite leaves off (foreign keys) turned on;
 * parameters SQLite cannot bind converted; results shaped as Kysely expects.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kysely, sql, type Generated } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { NodeSqliteDialect } from '@tombstone/kysely/sqlite'
import { overlap, type Db } from './support/overlap.ts'

interface Things {
  things: { id: Generated<number>; name: string; flag: number; at: string | null }
  parts: { id: number; thing_id: number }
}

describe('NodeSqliteDialect', () => {
  let folder: string
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tombstone-sqlite-'))
  })
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true })
  })

  test('overlapping transactions: nothing of the rolled-back one survives, nothing else is lost', async () => {
    const db = new Kysely<Db>({ dialect: new NodeSqliteDialect({ database: ':memory:' }) })
    try {
      for (let round = 0; round < 20; round++) expect(await overlap(db)).toEqual(['outside', 'second transaction'])
    } finally {
      await db.destroy()
    }
  })

  test('foreign keys are enforced, parameters are converted, results carry affected rows and insert ids', async () => {
    const db = new Kysely<Things>({ dialect: new NodeSqliteDialect({ database: join(folder, 'things.db') }) })
    try {
      await sql`create table things (id integer primary key, name text not null unique, flag integer not null, at text)`.execute(db)
      await sql`create table parts (id integer primary key, thing_id integer not null references things(id))`.execute(db)
      const at = new Date('2026-01-02T03:04:05.678Z')
      const inserted = await db.insertInto('things').values({ name: 'a', flag: true as never, at: at as never }).executeTakeFirstOrThrow()
      expect(inserted.insertId).toBe(1n)
      const row = await db.selectFrom('things').selectAll().executeTakeFirstOrThrow()
      expect({ ...row }).toEqual({ id: 1, name: 'a', flag: 1, at: '2026-01-02T03:04:05.678Z' })

      const returned = await db.updateTable('things').set({ name: 'b' }).returning(['id', 'name']).execute()
      expect(returned.map((r) => ({ ...r }))).toEqual([{ id: 1, name: 'b' }])
      const updated = await db.updateTable('things').set({ flag: 0 }).executeTakeFirstOrThrow()
      expect(updated.numUpdatedRows).toBe(1n)

      // A missing parent is refused: SQLite's foreign keys are off unless the connection turns them on.
      await expect(db.insertInto('parts').values({ id: 1, thing_id: 99 }).execute()).rejects.toMatchObject({ errcode: 787 })
      // A unique violation carries SQLite's extended result code (SQLITE_CONSTRAINT_UNIQUE).
      await expect(db.insertInto('things').values({ name: 'b', flag: 0, at: null }).execute()).rejects.toMatchObject({ errcode: 2067 })

      const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db)
      expect(journal.rows[0]?.journal_mode).toBe('wal')
    } finally {
      await db.destroy()
    }
  })

  test('a failed transaction rolls back; savepoints nest', async () => {
    const db = new Kysely<Things>({ dialect: new NodeSqliteDialect({ database: ':memory:' }) })
    try {
      await sql`create table things (id integer primary key, name text not null unique, flag integer not null, at text)`.execute(db)
      await expect(
        db.transaction().execute(async (trx) => {
          await trx.insertInto('things').values({ name: 'kept?', flag: 0, at: null }).execute()
          throw new Error('undo')
        }),
      ).rejects.toThrow('undo')
      const trx = await db.startTransaction().execute()
      await trx.insertInto('things').values({ name: 'outer', flag: 0, at: null }).execute()
      const inner = await trx.savepoint('inner').execute()
      await inner.insertInto('things').values({ name: 'inner', flag: 0, at: null }).execute()
      await inner.rollbackToSavepoint('inner').execute()
      await inner.commit().execute()
      const names = await db.selectFrom('things').select('name').execute()
      expect(names.map((r) => r.name)).toEqual(['outer'])
    } finally {
      await db.destroy()
    }
  })
})
