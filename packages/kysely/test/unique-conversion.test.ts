/**
 * installSoftDeletes and plain unique constraints left beside active-only unique indexes: the
 * warning (result, onWarning, the default process warning), the conversion where it is safe, and
 * the scenario it is about: re-registering a deleted user's email fails before and works after.
 */
import { Kysely, sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import {
  createActiveUniqueIndex,
  defineSoftDeletes,
  installSoftDeletes,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  sqlStateOf,
  type UniqueWarning,
} from '../src/index.ts'

describe.each(databaseKinds())('plain unique constraints beside active-only ones on %s', (kind) => {
  let database: FreshDatabase
  let raw: Kysely<any>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<any>({ dialect: database.dialect() })
  })
  afterAll(async () => {
    await raw?.destroy()
    await database?.drop()
  })

  /** A users-like table with `email text unique` (the constraint `<table>_email_key`) and an active-only index. */
  async function usersTable(table: string) {
    await raw.schema
      .createTable(table)
      .addColumn('id', 'integer', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .$call(softDeleteColumns())
      .execute()
    await createActiveUniqueIndex(raw, table, ['email'])
    const definition = defineSoftDeletes<any>()({ tables: { [table]: {} } })
    const db = new Kysely<any>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
    /** Registers, deletes, and registers the same email again: the error of the second, or null. */
    const reRegister = async (email: string) => {
      const first = await db.insertInto(table).values({ email }).returning('id').executeTakeFirstOrThrow()
      await softDelete(db, table, { id: first.id })
      return db
        .insertInto(table)
        .values({ email })
        .execute()
        .then(() => null, (error: unknown) => error)
    }
    return { definition, db, reRegister }
  }

  test('without the option: a warning in the result and to onWarning, and the deleted email stays taken', async () => {
    const { definition, db, reRegister } = await usersTable('accounts')
    const seen: UniqueWarning[] = []
    const result = await installSoftDeletes(raw, definition, { onWarning: (warning) => seen.push(warning) })
    expect(result.converted).toEqual([])
    expect(result.warnings).toEqual([
      expect.objectContaining({
        code: 'PLAIN_UNIQUE_BESIDE_ACTIVE_UNIQUE',
        table: 'accounts',
        name: 'accounts_email_key',
        kind: 'constraint',
        columns: ['email'],
        activeIndex: 'accounts_email_active_key',
        reason: expect.stringContaining('convertUniqueConstraints'),
      }),
    ])
    expect(seen).toEqual(result.warnings)
    const error = await reRegister('ann@example.com')
    expect(sqlStateOf(error)).toBe('23505')
    expect((error as { constraint?: string }).constraint).toBe('accounts_email_key')
    await db.destroy()
  })

  test('the default onWarning is a process warning of type TombstoneWarning', async () => {
    const { definition, db } = await usersTable('members')
    const warnings: Error[] = []
    const listener = (warning: Error) => warnings.push(warning)
    process.on('warning', listener)
    try {
      await installSoftDeletes(raw, definition)
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', listener)
    }
    expect(warnings.map((warning) => [warning.name, (warning as { code?: string }).code])).toEqual([
      ['TombstoneWarning', 'PLAIN_UNIQUE_BESIDE_ACTIVE_UNIQUE'],
    ])
    expect(warnings[0]?.message).toContain('members_email_key')
    await db.destroy()
  })

  test('convertUniqueConstraints drops the constraint: the deleted email can be registered again, an active twin still cannot', async () => {
    const { definition, db, reRegister } = await usersTable('people')
    const result = await raw.transaction().execute((trx) => installSoftDeletes(trx, definition, { convertUniqueConstraints: true, onWarning: () => {} }))
    expect(result).toEqual({
      warnings: [],
      converted: [{ table: 'people', name: 'people_email_key', kind: 'constraint', columns: ['email'], activeIndex: 'people_email_active_key' }],
    })
    expect(await reRegister('bo@example.com')).toBeNull()
    const twin = await db.insertInto('people').values({ email: 'bo@example.com' }).execute().catch((error: unknown) => error)
    expect(sqlStateOf(twin)).toBe('23505')
    expect((twin as { constraint?: string }).constraint).toBe('people_email_active_key')
    // Idempotent: nothing left to report or convert.
    expect(await installSoftDeletes(raw, definition, { convertUniqueConstraints: true, onWarning: () => {} })).toEqual({ warnings: [], converted: [] })
    await db.destroy()
  })

  test('what is not safe to drop is left, with the reason: a referenced unique index, fewer columns than the active index', async () => {
    await raw.schema
      .createTable('handles')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('handle', 'text', (c) => c.notNull())
      .addColumn('tenant', 'integer', (c) => c.notNull())
      .addColumn('email', 'text', (c) => c.notNull())
      .$call(softDeleteColumns())
      .execute()
    await sql`create unique index handles_handle_uniq on handles (handle)`.execute(raw)
    await sql`create table mentions (id integer primary key, handle text references handles (handle))`.execute(raw)
    await createActiveUniqueIndex(raw, 'handles', ['handle'])
    await sql`alter table handles add constraint handles_email_key unique (email)`.execute(raw)
    await createActiveUniqueIndex(raw, 'handles', ['tenant', 'email'])
    const definition = defineSoftDeletes<any>()({ tables: { handles: {} } })
    const result = await installSoftDeletes(raw, definition, { convertUniqueConstraints: true, onWarning: () => {} })
    expect(result.converted).toEqual([])
    expect(result.warnings.map((warning) => [warning.name, warning.kind, warning.activeIndex])).toEqual([
      ['handles_email_key', 'constraint', 'handles_tenant_email_active_key'],
      ['handles_handle_uniq', 'index', 'handles_handle_active_key'],
    ])
    expect(result.warnings[0]?.reason).toMatch(/more columns/)
    expect(result.warnings[1]?.reason).toMatch(/foreign key references it/)
    const left = await sql<{ n: number }>`select count(*)::int as n from pg_indexes where tablename = 'handles' and indexname in ('handles_email_key', 'handles_handle_uniq')`.execute(raw)
    expect(left.rows[0]?.n).toBe(2)
  })
})
