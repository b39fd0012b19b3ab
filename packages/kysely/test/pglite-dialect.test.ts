/**
 * Overlapping transactions on one database: what is rolled back is gone, nothing else is. PGlite is
 * a single connection; a dialect that lets other work run inside an open transaction loses that work
 * on rollback. The same test runs on PostgreSQL for parity, and on a naive single-connection dialect
 * to show that the test does catch the loss.
 */
import {
  CompiledQuery,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
  type DatabaseConnection,
  type Dialect,
  type Driver,
} from 'kysely'
import { PGlite } from '@electric-sql/pglite'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import { overlap, type Db } from './support/overlap.ts'

describe.each(databaseKinds())('overlapping transactions on %s', (kind) => {
  let database: FreshDatabase
  let db: Kysely<Db>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    db = new Kysely<Db>({ dialect: database.dialect() })
  })
  afterAll(async () => {
    await db?.destroy()
    await database?.drop()
  })

  test('nothing of the rolled-back transaction survives, and nothing else is lost', async () => {
    for (let round = 0; round < 20; round++) {
      expect(await overlap(db)).toEqual(['outside', 'second transaction'])
    }
  })

  test('a failed statement inside a transaction makes the commit fail loudly, not roll back silently', async () => {
    await sql`create table if not exists strict_marks (name text primary key)`.execute(db)
    await expect(
      db.transaction().execute(async (trx) => {
        await sql`insert into strict_marks values ('a')`.execute(trx)
        await sql`insert into strict_marks values ('a')`.execute(trx).catch(() => undefined)
      }),
    ).rejects.toThrow()
    expect((await sql<{ n: number }>`select count(*)::int as n from strict_marks`.execute(db)).rows[0]?.n).toBe(0)
  })
})

/** One PGlite connection handed to everyone at once: what naive dialects do. */
class NaiveDialect implements Dialect {
  readonly #pglite: PGlite
  constructor(pglite: PGlite) {
    this.#pglite = pglite
  }
  createAdapter() {
    return new PostgresAdapter()
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler()
  }
  createIntrospector(db: Kysely<any>) {
    return new PostgresIntrospector(db)
  }
  createDriver(): Driver {
    const pglite = this.#pglite
    const connection: DatabaseConnection = {
      async executeQuery(query: CompiledQuery) {
        const result = await pglite.query(query.sql, [...query.parameters])
        return { rows: result.rows as never[] }
      },
      // eslint-disable-next-line require-yield
      async *streamQuery() {
        throw new Error('no streaming')
      },
    }
    return {
      init: async () => {},
      acquireConnection: async () => connection,
      beginTransaction: async (conn) => void (await conn.executeQuery(CompiledQuery.raw('begin'))),
      commitTransaction: async (conn) => void (await conn.executeQuery(CompiledQuery.raw('commit'))),
      rollbackTransaction: async (conn) => void (await conn.executeQuery(CompiledQuery.raw('rollback'))),
      releaseConnection: async () => {},
      destroy: async () => {},
    }
  }
}

test('the overlap test catches a dialect that shares the connection without queueing', async () => {
  const pglite = await PGlite.create()
  const db = new Kysely<Db>({ dialect: new NaiveDialect(pglite) })
  try {
    const survivors = await overlap(db).catch((error: unknown) => [`failed: ${String(error)}`])
    expect(survivors).not.toEqual(['outside', 'second transaction'])
  } finally {
    await db.destroy()
    await pglite.close()
  }
})
