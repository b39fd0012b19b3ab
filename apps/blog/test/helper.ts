/**
 * Builds the service over a real, freshly migrated database (PGlite in memory, or a throwaway
 * PostgreSQL database) and offers the few things every API test needs: users with tokens, and
 * requests through `app.inject()`.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { Kysely, sql } from 'kysely'
import pg from 'pg'
import { freshDatabase, postgresUrl, type DatabaseKind, type FreshDatabase } from '@tombstone/testing'
import { buildApp } from '../src/app.ts'
import { loadConfig, type Config } from '../src/config.ts'
import { connect } from '../src/db/connect.ts'
import { grantRuntime } from '../src/db/grant.ts'
import { migrate } from '../src/db/migrate.ts'
import type { Database } from '../src/db/schema.ts'
import { bootstrap } from '../src/db/seed.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'

export const ADMIN_PASSWORD = 'admin-password-for-tests'

export interface TestUser {
  readonly id: number
  readonly username: string
  readonly token: string
}

export interface TestApp {
  readonly kind: DatabaseKind
  readonly app: FastifyInstance
  /**
   * The schema owner's connection, for what a test does behind the service's back (moving time).
   * On PostgreSQL the service itself runs as an application role with only `npm run cli -- grant`'s
   * rights, the way docs/concepts.md tells operators to run it; on PGlite and SQLite (no roles) it is
   * the app's.
   */
  readonly owner: Kysely<Database>
  readonly admin: TestUser
  /** On SQLite, the database file (for a test that opens it behind the service's back). */
  readonly file?: string
  /** Registers a user and signs them in. */
  user(prefix?: string): Promise<TestUser>
  /** `app.inject()` with an optional bearer token. */
  request(options: InjectOptions & { token?: string }): Promise<LightMyRequestResponse>
  close(): Promise<void>
}

let counter = 0

/** A role with the service's grants only, on a migrated database; dropped by the returned function. */
async function applicationRole(database: FreshDatabase): Promise<{ url: string; owner: Kysely<Database>; drop: () => Promise<void> }> {
  const handle = await connect(database.url as string, blogSoftDeletes(30))
  await migrate(handle.db)
  counter += 1
  const role = `tombstone_app_${process.pid}_${counter}`
  await sql`create role ${sql.id(role)} login`.execute(handle.db)
  await grantRuntime(handle.db, role)
  const url = new URL(database.url as string)
  url.username = role
  url.password = ''
  return {
    url: url.toString(),
    owner: handle.db,
    drop: async () => {
      await handle.close()
      await database.drop()
      const admin = new pg.Client({ connectionString: postgresUrl() })
      await admin.connect()
      try {
        await admin.query(`drop role if exists "${role}"`)
      } finally {
        await admin.end()
      }
    },
  }
}

export async function build(
  kind: DatabaseKind,
  env: Record<string, string> = {},
  options: { readUrl?: (appUrl: string) => string } = {},
): Promise<TestApp> {
  const database: FreshDatabase | undefined = kind === 'postgres' || kind === 'sqlite' ? await freshDatabase(kind) : undefined
  // SQLite has no roles: the service runs as the file's owner, as on PGlite.
  const role = database === undefined || kind === 'sqlite' ? undefined : await applicationRole(database)
  const config: Config = loadConfig({
    DATABASE_URL: role?.url ?? (kind === 'sqlite' ? `sqlite://${database?.url as string}` : 'memory://'),
    ...(role === undefined ? {} : { MIGRATE_ON_START: 'off' }),
    DEMO_DATA: 'off',
    ADMIN_PASSWORD,
    LOG_LEVEL: 'silent',
    PURGE_INTERVAL_MINUTES: '0',
    // The OWASP cost (17) takes 0.4 s a hash here; the suite registers hundreds of users. Sign-in
    // upgrades and the default are tested on their own (operating.test.ts).
    PASSWORD_COST: '14',
    // Every test user registers from 127.0.0.1; the registration throttle has its own test.
    REGISTER_MAX_PER_HOUR: '1000000',
    ...(role === undefined || options.readUrl === undefined ? {} : { DATABASE_READ_URL: options.readUrl(role.url) }),
    ...env,
  })
  const app = await buildApp(config, false)
  await bootstrap(app.db, { adminPassword: ADMIN_PASSWORD, demoData: false })

  const request = (options: InjectOptions & { token?: string }) => {
    const { token, headers, ...rest } = options
    return app.inject({ ...rest, headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } })
  }

  async function signIn(username: string, password: string): Promise<string> {
    const response = await request({ method: 'POST', url: '/auth/token', payload: { username, password } })
    if (response.statusCode !== 200) throw new Error(`sign-in of ${username} failed: ${response.statusCode} ${response.body}`)
    return response.json<{ access_token: string }>().access_token
  }

  const adminRow = await app.db.selectFrom('users').select('id').where('username', '=', 'admin').executeTakeFirstOrThrow()
  const admin: TestUser = { id: adminRow.id, username: 'admin', token: await signIn('admin', ADMIN_PASSWORD) }

  return {
    kind,
    app,
    owner: role?.owner ?? (app.db as Kysely<Database>),
    admin,
    ...(kind === 'sqlite' && database?.url !== undefined ? { file: database.url } : {}),
    request,
    async user(prefix = 'user') {
      counter += 1
      const username = `${prefix}_${process.pid % 10_000}_${counter}`.slice(0, 32)
      const password = `password-${username}`
      const response = await request({ method: 'POST', url: '/users', payload: { username, email: `${username}@example.com`, password } })
      if (response.statusCode !== 201) throw new Error(`registering ${username} failed: ${response.statusCode} ${response.body}`)
      return { id: response.json<{ id: number }>().id, username, token: await signIn(username, password) }
    },
    async close() {
      await app.close()
      if (role !== undefined) await role.drop()
      else await database?.drop()
    },
  }
}

/** Creates a post as `user` and returns its id. */
export async function createPost(t: TestApp, user: TestUser, fields: Record<string, unknown> = {}): Promise<number> {
  counter += 1
  const response = await t.request({
    method: 'POST',
    url: '/posts',
    token: user.token,
    payload: { title: `Post ${counter}`, content: 'Some content', ...fields },
  })
  if (response.statusCode !== 201) throw new Error(`creating a post failed: ${response.statusCode} ${response.body}`)
  return response.json<{ id: number }>().id
}

/** Creates a comment as `user` on `postId` and returns its id. */
export async function createComment(t: TestApp, user: TestUser, postId: number, body = 'A comment'): Promise<number> {
  const response = await t.request({ method: 'POST', url: `/posts/${postId}/comments`, token: user.token, payload: { body } })
  if (response.statusCode !== 201) throw new Error(`creating a comment failed: ${response.statusCode} ${response.body}`)
  return response.json<{ id: number }>().id
}

/** The deletion fields that must never appear in a public view. */
export const DELETION_FIELDS = ['deleted_at', 'deleted_by', 'delete_reason', 'deletion_id', 'purge_at'] as const

/** Asserts the common shape of a problem+json response; returns its body. */
export function problem(response: LightMyRequestResponse, status: number, slug: string): Record<string, unknown> {
  if (response.statusCode !== status) {
    throw new Error(`expected ${status} ${slug}, got ${response.statusCode}: ${response.body}`)
  }
  if (!String(response.headers['content-type']).startsWith('application/problem+json')) {
    throw new Error(`expected application/problem+json, got ${String(response.headers['content-type'])}`)
  }
  const body = response.json<Record<string, unknown>>()
  if (!String(body.type).endsWith(`/problems/${slug}`) || body.status !== status) {
    throw new Error(`expected type …/problems/${slug} and status ${status}, got ${response.body}`)
  }
  for (const member of ['title', 'detail', 'instance']) {
    if (typeof body[member] !== 'string') throw new Error(`problem without ${member}: ${response.body}`)
  }
  return body
}
