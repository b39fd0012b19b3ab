/**
 * The SQL each dialect's operations send, in snapshots per dialect family: a cascade soft delete of a
 * user (posts, comments), its exact restore, and a force delete. The behaviour is proven by
 * operations.test.ts on every kind; this shows what differs (PostgreSQL's CTE chain, SQLite's
 * UPDATE … RETURNING per table, MariaDB's locking SELECT + UPDATE by key).
 */
import { Kysely } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { dialectKinds } from '@tombstone/testing'
import { forceDelete, restore, softDelete, SoftDeletePlugin } from '../src/index.ts'
import { createFixture, definition, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser } from './support/data.ts'

describe.each(dialectKinds())('the SQL of the operations on %s', (kind) => {
  let fixture: Fixture
  beforeAll(async () => {
    fixture = await createFixture(kind)
  })
  afterAll(async () => {
    await fixture?.close()
  })

  test('soft delete, restore and force delete of a user with a post and a comment', async () => {
    const user = await insertUser(fixture.db)
    const post = await insertPost(fixture.db, user)
    await insertComment(fixture.db, post, user)
    const statements: string[] = []
    const logged = new Kysely<Database>({
      dialect: fixture.database.dialect(),
      plugins: [new SoftDeletePlugin(definition)],
      log: (event) => {
        if (event.level === 'query') statements.push(event.query.sql.replace(/\s+/g, ' ').replace(/tombstone_p\d+/g, 'tombstone_pN'))
      },
    })
    try {
      const family = kind === 'pglite' || kind === 'postgres' ? 'postgres' : kind
      const sqlOf = async (work: () => Promise<unknown>) => {
        statements.length = 0
        await work()
        // PGlite's commit probe aside, so that PGlite and PostgreSQL share a snapshot.
        return statements.filter((statement) => statement !== 'select 1')
      }
      expect(await sqlOf(() => softDelete(logged, 'users', { id: user }, { by: 'admin' }))).toMatchSnapshot(`${family} soft delete`)
      expect(await sqlOf(() => restore(logged, 'users', { id: user }))).toMatchSnapshot(`${family} restore`)
      expect(await sqlOf(() => forceDelete(logged, 'users', { id: user }))).toMatchSnapshot(`${family} force delete`)
    } finally {
      await logged.destroy()
    }
  })
})
