/**
 * Type tests for the public API: checked by `tsc` (part of `npm test`); the `@ts-expect-error`
 * lines fail the build if the mistake they show starts to compile.
 */
import { Kysely } from 'kysely'
import { describe, expectTypeOf, test } from 'vitest'
import {
  defineSoftDeletes,
  forceDelete,
  restore,
  softDelete,
  withDeleted,
  type ForceDeleteResult,
  type RestoreResult,
  type RowKey,
  type SoftDeleteDefinition,
  type SoftDeleteResult,
  type TombstoneErrorCode,
  isTombstoneError,
} from '../src/index.ts'
import type { Database } from './support/fixture.ts'

declare const db: Kysely<Database>

describe('types', () => {
  test('definitions are checked against the database interface', () => {
    expectTypeOf(defineSoftDeletes<Database>()({ tables: { posts: {} } })).toEqualTypeOf<SoftDeleteDefinition<Database>>()
    // @ts-expect-error: not a table of Database
    defineSoftDeletes<Database>()({ tables: { postz: {} } })
    defineSoftDeletes<Database>()({
      tables: { posts: {}, comments: {} },
      // @ts-expect-error: a relation names tables of Database
      relations: [{ parent: 'postz', child: 'comments', foreignKey: 'post_id' }],
    })
    // @ts-expect-error: retention parts are numbers
    defineSoftDeletes<Database>()({ tables: { posts: { retention: { days: '30' } } } })
  })

  test('operations take a table of the database and a target, and say what they did', () => {
    expectTypeOf(softDelete(db, 'posts', { id: 1 })).resolves.toEqualTypeOf<SoftDeleteResult>()
    expectTypeOf(restore(db, 'posts', { ids: [1, 2] })).resolves.toEqualTypeOf<RestoreResult>()
    expectTypeOf(forceDelete(db, 'posts', { where: (eb) => eb('id', '>', 1) })).resolves.toEqualTypeOf<ForceDeleteResult>()
    expectTypeOf<SoftDeleteResult['deleted']>().toEqualTypeOf<readonly RowKey[]>()
    // @ts-expect-error: not a table
    void softDelete(db, 'nope', { id: 1 })
    // @ts-expect-error: a target is one of id, ids, where
    void softDelete(db, 'posts', { id: 1, ids: [1] })
    // @ts-expect-error: onFailure is 'throw' or 'skip'
    void restore(db, 'posts', { id: 1 }, { onFailure: 'ignore' })
  })

  test('withDeleted keeps the builder type and checks visibilities', () => {
    const query = db.selectFrom('posts').select('id')
    expectTypeOf(query.$call(withDeleted({ posts: 'only' }))).toEqualTypeOf(query)
    const update = db.updateTable('posts').set({ title: 'x' })
    expectTypeOf(update.$call(withDeleted({ posts: 'include' }))).toEqualTypeOf(update)
    // @ts-expect-error: not a visibility
    withDeleted({ posts: 'everything' })
  })

  test('errors narrow by code', () => {
    const error: unknown = undefined
    if (isTombstoneError(error, 'CONFLICT')) {
      expectTypeOf(error.columns).toEqualTypeOf<readonly string[]>()
    }
    if (isTombstoneError(error)) {
      expectTypeOf(error.code).toEqualTypeOf<TombstoneErrorCode>()
    }
  })
})
