/**
 * installSoftDeletes runs in a migration, and migrations can run again: on every dialect it is
 * idempotent, and what it installs still holds after a second run.
 */
import { sql } from 'kysely'
import { describe, expect, test } from 'vitest'
import { dialectKinds } from '@tombstone/testing'
import { installSoftDeletes, softDelete, sqlStateOf } from '../src/index.ts'
import { createFixture, definition } from './support/fixture.ts'
import { insertPost, insertUser } from './support/data.ts'

describe.each(dialectKinds())('installSoftDeletes on %s', (kind) => {
  test('a second run changes nothing and the guard, stamps and audit still hold', async () => {
    const fixture = await createFixture(kind)
    try {
      await installSoftDeletes(fixture.raw, definition)
      const post = await insertPost(fixture.db, await insertUser(fixture.db))
      expect(sqlStateOf(await sql`delete from posts where id = ${post}`.execute(fixture.raw).catch((error: unknown) => error))).toBe('TB001')
      await softDelete(fixture.db, 'posts', { id: post })
      const audit = await fixture.raw.selectFrom('tombstone_audit' as any).select('action').where('entity_id', '=', String(post)).execute()
      expect(audit).toEqual([{ action: 'soft_delete' }])
    } finally {
      await fixture.close()
    }
  })
})
