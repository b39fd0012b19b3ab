/**
 * Keys other than one integer column: uuid and text keys, a cascade over uuid and text foreign keys,
 * an integer parent beside bigint, uuid and text children (one restore statement returns them all),
 * the type results report keys in, bad keys as coded errors, and composite keys refused.
 */
import { Kysely, sql, type Generated } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { backdate, databaseKinds, freshDatabase, type FreshDatabase } from '@tombstone/testing'
import {
  defineSoftDeletes,
  forceDelete,
  installSoftDeletes,
  InvalidArgumentError,
  InvalidConfigurationError,
  ParentDeletedError,
  purge,
  readAudit,
  restore,
  softDelete,
  softDeleteColumns,
  SoftDeletePlugin,
  withDeleted,
} from '../src/index.ts'

interface Stamps {
  deleted_at: Date | null
  deleted_by: string | null
  delete_reason: string | null
  deletion_id: string | null
  purge_at: Date | null
}
interface Database {
  orgs: { id: number; name: string } & Stamps
  teams: { id: Generated<string>; org_id: number; name: string } & Stamps
  members: { handle: string; team_id: string } & Stamps
  events: { id: Generated<string>; org_id: number } & Stamps
}

const definition = defineSoftDeletes<Database>()({
  tables: { orgs: {}, teams: {}, members: { key: 'handle' }, events: {} },
  relations: [
    { parent: 'orgs', child: 'teams', foreignKey: 'org_id' },
    { parent: 'teams', child: 'members', foreignKey: 'team_id' },
    { parent: 'orgs', child: 'events', foreignKey: 'org_id' },
  ],
  audit: true,
})

describe('composite keys', () => {
  test('are refused with a coded error, for a table, a relation and a dependent', () => {
    const attempts = [
      () => defineSoftDeletes<Database>()({ tables: { orgs: { key: ['id', 'name'] as unknown as string } } }),
      () => defineSoftDeletes<Database>()({ tables: { orgs: { key: 'id, name' } } }),
      () =>
        defineSoftDeletes<Database>()({
          tables: { orgs: {}, teams: {} },
          relations: [{ parent: 'orgs', child: 'teams', foreignKey: ['org_id', 'name'] as unknown as string }],
        }),
      () =>
        defineSoftDeletes<Database>()({
          tables: { orgs: {} },
          dependents: [{ table: 'seats', foreignKey: 'org_id', parent: 'orgs', parentKey: '(id, name)' }],
        }),
    ]
    for (const attempt of attempts) {
      expect(attempt).toThrow(InvalidConfigurationError)
      expect(attempt).toThrow(/composite keys are not supported/)
    }
  })
})

describe.each(databaseKinds())('uuid and text keys on %s', (kind) => {
  let database: FreshDatabase
  let raw: Kysely<Database>
  let db: Kysely<Database>
  beforeAll(async () => {
    database = await freshDatabase(kind)
    raw = new Kysely<Database>({ dialect: database.dialect() })
    await raw.schema.createTable('orgs').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text', (c) => c.notNull()).$call(softDeleteColumns()).execute()
    await raw.schema
      .createTable('teams')
      .addColumn('id', 'uuid', (c) => c.primaryKey().defaultTo(sql`gen_random_uuid()`))
      .addColumn('org_id', 'integer', (c) => c.notNull().references('orgs.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .$call(softDeleteColumns())
      .execute()
    await raw.schema
      .createTable('members')
      .addColumn('handle', 'text', (c) => c.primaryKey())
      .addColumn('team_id', 'uuid', (c) => c.notNull().references('teams.id'))
      .$call(softDeleteColumns())
      .execute()
    await raw.schema
      .createTable('events')
      .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
      .addColumn('org_id', 'integer', (c) => c.notNull().references('orgs.id'))
      .$call(softDeleteColumns())
      .execute()
    await installSoftDeletes(raw, definition, { onWarning: () => {} })
    db = new Kysely<Database>({ dialect: database.dialect(), plugins: [new SoftDeletePlugin(definition)] })
  })
  afterAll(async () => {
    await db?.destroy()
    await raw?.destroy()
    await database?.drop()
  })

  let nextOrg = 1
  async function seed() {
    const org = nextOrg++
    await raw.insertInto('orgs').values({ id: org, name: `org ${org}` }).execute()
    const teams = await raw
      .insertInto('teams')
      .values([{ org_id: org, name: 'a' }, { org_id: org, name: 'b' }])
      .returning('id')
      .execute()
    const [a, b] = teams.map((team) => team.id) as [string, string]
    await raw.insertInto('members').values([{ handle: `ann-${org}`, team_id: a }, { handle: `bo-${org}`, team_id: b }]).execute()
    const event = await raw.insertInto('events').values({ org_id: org }).returning('id').executeTakeFirstOrThrow()
    return { org, a, b, ann: `ann-${org}`, bo: `bo-${org}`, event: event.id }
  }

  const sorted = (values: readonly unknown[]) => [...values].map(String).sort()

  test('a cascade over integer, uuid and text foreign keys, and a restore of it, report each key as the driver returns its column', async () => {
    const { org, a, b, ann, bo, event } = await seed()
    const deleted = await softDelete(db, 'orgs', { id: org }, { by: 'admin' })
    const restored = await restore(db, 'orgs', { id: org })
    for (const result of [deleted, restored]) {
      expect(result.tables.orgs?.ids).toEqual([org])
      expect(sorted(result.tables.teams?.ids ?? [])).toEqual(sorted([a, b]))
      expect(sorted(result.tables.members?.ids ?? [])).toEqual(sorted([ann, bo]))
      // bigint: a string from pg, a number from PGlite; the same in both operations, and as a select returns it.
      expect(result.tables.events?.ids).toEqual([event])
    }
    expect(typeof deleted.tables.orgs?.ids[0]).toBe('number')
    expect(typeof restored.tables.orgs?.ids[0]).toBe('number')
    expect(restored.restored).toEqual([org])
    const teams = await db.selectFrom('teams').select('id').where('org_id', '=', org).execute()
    expect(sorted(teams.map((team) => team.id))).toEqual(sorted([a, b]))
  })

  test('a uuid target: soft delete, exact restore, a parent check, force delete', async () => {
    const { org, a, b, ann } = await seed()
    const team = await softDelete(db, 'teams', { id: a })
    expect(team.deleted).toEqual([a])
    expect(team.tables.members?.ids).toEqual([ann])
    // The team's org deleted on its own since: the team cannot come back under it.
    await softDelete(db, 'orgs', { id: org })
    const error = await restore(db, 'teams', { id: a }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ParentDeletedError)
    expect((error as ParentDeletedError).parentId).toBe(org)
    // Restoring the org brings back what its own deletion took (team b), not team a.
    const org_ = await restore(db, 'orgs', { id: org })
    expect(org_.tables.teams?.ids).toEqual([b])
    const back = await restore(db, 'teams', { id: a.toUpperCase() })
    expect(back.restored).toEqual([a])
    expect(back.tables.members?.ids).toEqual([ann])
    const removed = await forceDelete(db, 'teams', { ids: [a, '00000000-0000-4000-8000-000000000000'] })
    expect(removed.deleted).toEqual([a])
    expect(removed.tables.members?.ids).toEqual([ann])
    expect(removed.notFound).toEqual(['00000000-0000-4000-8000-000000000000'])
    const audit = await readAudit(db, { entity: 'teams', entityId: a })
    expect(audit.map((entry) => entry.action)).toEqual(['hard_delete', 'restore', 'soft_delete'])
  })

  test('a text target and a purge over uuid and text keys', async () => {
    const { org, a, b, ann, bo } = await seed()
    expect((await softDelete(db, 'members', { id: ann })).deleted).toEqual([ann])
    expect((await restore(db, 'members', { ids: [ann] })).restored).toEqual([ann])
    await softDelete(db, 'orgs', { id: org })
    await backdate(raw, sql`update teams set purge_at = now() - interval '1 day' where org_id = ${org}`)
    const result = await purge(db, { tables: ['teams'] })
    // The two teams and, below them, their two members (each counted under its own table).
    expect([result.count, result.tables.teams?.count, result.tables.members?.count]).toEqual([4, 2, 2])
    const left = await db.selectFrom('members').select('handle').where('handle', 'in', [ann, bo]).$call(withDeleted({ members: 'include' })).execute()
    expect(left).toEqual([])
    const teams = await db.selectFrom('teams').select('id').where('id', 'in', [a, b]).$call(withDeleted({ teams: 'include' })).execute()
    expect(teams).toEqual([])
  })

  test('keys given as text are reported in the column type, not-found keys included', async () => {
    const { org } = await seed()
    const result = await softDelete(db, 'orgs', { ids: [String(org), org, '999999'] })
    expect(result.deleted).toEqual([org])
    expect(result.notFound).toEqual([999_999])
    expect(result.alreadyDeleted).toEqual([])
    const again = await restore(db, 'orgs', { ids: [String(org), 999_998] }, { onFailure: 'skip' })
    expect(again.restored).toEqual([org])
    expect(again.notFound).toEqual([999_998])
    const gone = await forceDelete(db, 'orgs', { ids: ['999997'] })
    expect(gone.notFound).toEqual([999_997])
  })

  test('a key the column cannot hold is an InvalidArgumentError, not a database error', async () => {
    for (const attempt of [
      () => softDelete(db, 'orgs', { id: 'abc' }),
      () => softDelete(db, 'teams', { id: 'not-a-uuid' }),
      () => restore(db, 'teams', { ids: ['nope'] }),
      () => forceDelete(db, 'orgs', { id: '99999999999' }),
    ]) {
      const error = await attempt().catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(InvalidArgumentError)
    }
  })
})
