/**
 * The authorization matrix: every endpoint × {anonymous, another user, owner, admin} ×
 * {active, deleted, missing} answers the status the contract names, and a refused request changes
 * nothing. Admin endpoints answer 403 to non-admins whether or not the target exists.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'

/** The PostgreSQL kinds, and SQLite: the service runs on each (docs/service.md). */
const kinds = [...databaseKinds(), 'sqlite' as const]
import { withDeleted } from '@tombstone/kysely'
import { build, createComment, createPost, type TestApp, type TestUser } from './helper.ts'

type Role = 'anonymous' | 'other' | 'owner' | 'admin'
type State = 'active' | 'deleted' | 'missing'
type Kind = 'user' | 'post' | 'comment'

const ROLES: Role[] = ['anonymous', 'other', 'owner', 'admin']
const STATES: State[] = ['active', 'deleted', 'missing']
const MISSING_ID = 2_000_000_000

interface Endpoint {
  readonly name: string
  readonly kind: Kind
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  readonly path: (id: number) => string
  readonly body?: Record<string, unknown>
  /** The status the contract names, by role and state. */
  readonly expected: (role: Role, state: State) => number
}

/** Admin-only endpoints: 401 anonymous, 403 any other non-admin whatever the target, else by state. */
const adminOnly =
  (byState: Record<State, number>) =>
  (role: Role, state: State): number =>
    role === 'anonymous' ? 401 : role !== 'admin' ? 403 : byState[state]

/** The deleting rules 1–5. */
const deleting = (role: Role, state: State): number => {
  if (role === 'anonymous') return 401
  if (state === 'missing') return 404
  if (state === 'active') return role === 'other' ? 403 : 204
  return role === 'other' ? 404 : 204
}

const anyone = (byState: Record<State, number>) => (_role: Role, state: State) => byState[state]

const ENDPOINTS: Endpoint[] = [
  { name: 'GET /users/{id}', kind: 'user', method: 'GET', path: (id) => `/users/${id}`, expected: anyone({ active: 200, deleted: 404, missing: 404 }) },
  {
    name: 'GET /users/{id}?include_deleted=true',
    kind: 'user',
    method: 'GET',
    path: (id) => `/users/${id}?include_deleted=true`,
    expected: (role, state) => (role !== 'admin' ? 403 : state === 'missing' ? 404 : 200),
  },
  {
    name: 'DELETE /users/{id}',
    kind: 'user',
    method: 'DELETE',
    path: (id) => `/users/${id}`,
    expected: deleting,
  },
  { name: 'POST /users/{id}/restore', kind: 'user', method: 'POST', path: (id) => `/users/${id}/restore`, expected: adminOnly({ active: 400, deleted: 200, missing: 404 }) },
  { name: 'DELETE /users/{id}/permanent', kind: 'user', method: 'DELETE', path: (id) => `/users/${id}/permanent`, expected: adminOnly({ active: 204, deleted: 204, missing: 404 }) },
  { name: 'GET /posts/{id}', kind: 'post', method: 'GET', path: (id) => `/posts/${id}`, expected: anyone({ active: 200, deleted: 404, missing: 404 }) },
  {
    name: 'GET /posts/{id}?include_deleted=true',
    kind: 'post',
    method: 'GET',
    path: (id) => `/posts/${id}?include_deleted=true`,
    expected: (role, state) => (role !== 'admin' ? 403 : state === 'missing' ? 404 : 200),
  },
  {
    name: 'PATCH /posts/{id}',
    kind: 'post',
    method: 'PATCH',
    path: (id) => `/posts/${id}`,
    body: { title: 'changed' },
    expected: (role, state) => (role === 'anonymous' ? 401 : state !== 'active' ? 404 : role === 'other' ? 403 : 200),
  },
  { name: 'DELETE /posts/{id}', kind: 'post', method: 'DELETE', path: (id) => `/posts/${id}`, expected: deleting },
  { name: 'DELETE /posts/{id}/soft', kind: 'post', method: 'DELETE', path: (id) => `/posts/${id}/soft`, expected: deleting },
  { name: 'POST /posts/{id}/restore', kind: 'post', method: 'POST', path: (id) => `/posts/${id}/restore`, expected: adminOnly({ active: 400, deleted: 200, missing: 404 }) },
  { name: 'DELETE /posts/{id}/permanent', kind: 'post', method: 'DELETE', path: (id) => `/posts/${id}/permanent`, expected: adminOnly({ active: 204, deleted: 204, missing: 404 }) },
  { name: 'GET /posts/{id}/comments', kind: 'post', method: 'GET', path: (id) => `/posts/${id}/comments`, expected: anyone({ active: 200, deleted: 404, missing: 404 }) },
  {
    name: 'POST /posts/{id}/comments',
    kind: 'post',
    method: 'POST',
    path: (id) => `/posts/${id}/comments`,
    body: { body: 'hello' },
    expected: (role, state) => (role === 'anonymous' ? 401 : state === 'active' ? 201 : 404),
  },
  { name: 'GET /comments/{id}', kind: 'comment', method: 'GET', path: (id) => `/comments/${id}`, expected: anyone({ active: 200, deleted: 404, missing: 404 }) },
  { name: 'DELETE /comments/{id}', kind: 'comment', method: 'DELETE', path: (id) => `/comments/${id}`, expected: deleting },
  { name: 'POST /comments/{id}/restore', kind: 'comment', method: 'POST', path: (id) => `/comments/${id}/restore`, expected: adminOnly({ active: 400, deleted: 200, missing: 404 }) },
  { name: 'DELETE /comments/{id}/permanent', kind: 'comment', method: 'DELETE', path: (id) => `/comments/${id}/permanent`, expected: adminOnly({ active: 204, deleted: 204, missing: 404 }) },
]

interface Collection {
  readonly name: string
  readonly method: 'GET' | 'POST' | 'DELETE'
  readonly url: string
  readonly body?: Record<string, unknown>
  readonly success: number
  /** Needs a token at all (else anonymous is served). */
  readonly user: boolean
  readonly admin: boolean
}

const COLLECTIONS: Collection[] = [
  { name: 'GET /posts', method: 'GET', url: '/posts', success: 200, user: false, admin: false },
  { name: 'GET /posts?only_deleted=true', method: 'GET', url: '/posts?only_deleted=true', success: 200, user: true, admin: true },
  { name: 'POST /posts', method: 'POST', url: '/posts', body: { title: 'x', content: 'y' }, success: 201, user: true, admin: false },
  { name: 'GET /users/me', method: 'GET', url: '/users/me', success: 200, user: true, admin: false },
  { name: 'GET /posts/deleted', method: 'GET', url: '/posts/deleted', success: 200, user: true, admin: true },
  { name: 'GET /admin/trash', method: 'GET', url: '/admin/trash', success: 200, user: true, admin: true },
  { name: 'DELETE /posts/bulk', method: 'DELETE', url: '/posts/bulk', body: { post_ids: [MISSING_ID] }, success: 204, user: true, admin: true },
  { name: 'POST /posts/bulk-delete', method: 'POST', url: '/posts/bulk-delete', body: { post_ids: [MISSING_ID] }, success: 200, user: true, admin: true },
  { name: 'POST /posts/bulk-restore', method: 'POST', url: '/posts/bulk-restore', body: { post_ids: [MISSING_ID] }, success: 200, user: true, admin: true },
]

describe.each(kinds)('authorization matrix on %s', (kind) => {
  let t: TestApp
  let other: TestUser
  let postOwner: TestUser
  beforeAll(async () => {
    t = await build(kind)
    other = await t.user('other')
    postOwner = await t.user('owner')
  })
  afterAll(async () => {
    await t?.close()
  })

  /** A target of the kind, in the state, and the user owning it. */
  async function target(kindOf: Kind, state: State): Promise<{ id: number; owner: TestUser }> {
    if (state === 'missing') return { id: MISSING_ID, owner: postOwner }
    let id: number
    let owner: TestUser
    if (kindOf === 'user') {
      owner = await t.user('target')
      id = owner.id
    } else if (kindOf === 'post') {
      owner = postOwner
      id = await createPost(t, owner)
    } else {
      owner = await t.user('commenter')
      id = await createComment(t, owner, await createPost(t, postOwner))
    }
    if (state === 'deleted') {
      const table = kindOf === 'user' ? 'users' : kindOf === 'post' ? 'posts' : 'comments'
      const response = await t.request({ method: 'DELETE', url: `/${table}/${id}`, token: t.admin.token })
      expect(response.statusCode).toBe(204)
    }
    return { id, owner }
  }

  async function snapshot(kindOf: Kind, id: number): Promise<unknown> {
    const table = kindOf === 'user' ? 'users' : kindOf === 'post' ? 'posts' : 'comments'
    const rows = await t.app.db
      .selectFrom(table)
      .selectAll()
      .where('id', '=', id)
      .$call(withDeleted({ [table]: 'include' }))
      .execute()
    const counts = await sql<{ n: number }>`select (select count(*) from posts) + (select count(*) from comments) + (select count(*) from users) as n`.execute(t.app.db)
    return { rows, total: Number(counts.rows[0]?.n) }
  }

  test.each(ENDPOINTS)('$name', async (endpoint) => {
    const mismatches: string[] = []
    for (const state of STATES) {
      for (const role of ROLES) {
        const { id, owner } = await target(endpoint.kind, state)
        const token = role === 'anonymous' ? undefined : role === 'admin' ? t.admin.token : role === 'owner' ? owner.token : other.token
        // A deleted account's own token died with it: 401 wherever it is used.
        const expected = endpoint.kind === 'user' && role === 'owner' && state === 'deleted' ? 401 : endpoint.expected(role, state)
        const before = expected >= 400 ? await snapshot(endpoint.kind, id) : undefined
        const response = await t.request({
          method: endpoint.method,
          url: endpoint.path(id),
          ...(token === undefined ? {} : { token }),
          ...(endpoint.body === undefined ? {} : { payload: endpoint.body }),
        })
        if (response.statusCode !== expected) mismatches.push(`${role} × ${state}: expected ${expected}, got ${response.statusCode} ${response.body.slice(0, 120)}`)
        if (response.statusCode >= 400 && !String(response.headers['content-type']).startsWith('application/problem+json')) {
          mismatches.push(`${role} × ${state}: ${response.statusCode} without problem+json`)
        }
        if (before !== undefined && JSON.stringify(await snapshot(endpoint.kind, id)) !== JSON.stringify(before)) {
          mismatches.push(`${role} × ${state}: refused with ${response.statusCode} but changed the database`)
        }
      }
    }
    expect(mismatches).toEqual([])
  })

  test.each(COLLECTIONS)('$name', async (endpoint) => {
    const statuses: Record<string, number> = {}
    for (const role of ['anonymous', 'user', 'admin'] as const) {
      const token = role === 'anonymous' ? undefined : role === 'admin' ? t.admin.token : other.token
      const response = await t.request({
        method: endpoint.method,
        url: endpoint.url,
        ...(token === undefined ? {} : { token }),
        ...(endpoint.body === undefined ? {} : { payload: endpoint.body }),
      })
      statuses[role] = response.statusCode
    }
    const forbidden = endpoint.url.includes('only_deleted') ? 403 : 401
    expect(statuses).toEqual({
      anonymous: endpoint.user ? forbidden : endpoint.success,
      user: endpoint.admin ? 403 : endpoint.success,
      admin: endpoint.success,
    })
  })
})
