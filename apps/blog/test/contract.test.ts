/**
 * The HTTP contract (../shared/spec/http-api.md), row by row, on every database kind.
 */
import type { LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, backdate } from '@tombstone/testing'

/** The PostgreSQL kinds, and SQLite: the service runs on each (docs/service.md). */
const kinds = [...databaseKinds(), 'sqlite' as const]
import { build, createComment, createPost, DELETION_FIELDS, problem, type TestApp, type TestUser } from './helper.ts'

describe.each(kinds)('contract on %s', (kind) => {
  let t: TestApp
  let alice: TestUser
  let bob: TestUser
  beforeAll(async () => {
    t = await build(kind)
    alice = await t.user('alice')
    bob = await t.user('bob')
  })
  afterAll(async () => {
    await t?.close()
  })

  describe('conventions', () => {
    test('errors are problem+json with type, title, status, detail, instance; GET /problems/<slug> describes them', async () => {
      const response = await t.request({ method: 'GET', url: '/posts/999999' })
      const body = problem(response, 404, 'not-found')
      expect(body.instance).toBe('/posts/999999')
      const described = await t.request({ method: 'GET', url: new URL(String(body.type), 'http://localhost').pathname })
      expect(described.statusCode).toBe(200)
      expect(described.json()).toMatchObject({ slug: 'not-found', status: 404 })
      for (const slug of ['not-found', 'unauthorized', 'forbidden', 'validation-failed', 'not-deleted', 'conflict', 'parent-deleted', 'precondition-failed', 'too-many-requests', 'internal']) {
        expect((await t.request({ method: 'GET', url: `/problems/${slug}` })).statusCode).toBe(200)
      }
      // Names every object has are not problem types.
      for (const slug of ['nope', 'constructor', 'toString', '__proto__']) problem(await t.request({ method: 'GET', url: `/problems/${slug}` }), 404, 'not-found')
    })

    test('unknown route 404, wrong method 405 with Allow', async () => {
      problem(await t.request({ method: 'GET', url: '/nowhere' }), 404, 'not-found')
      const response = await t.request({ method: 'PUT', url: '/posts/1' })
      problem(response, 405, 'method-not-allowed')
      expect(String(response.headers.allow).split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PATCH'])
    })

    test('401 carries WWW-Authenticate: Bearer, for a missing, malformed or unknown token', async () => {
      for (const headers of [{}, { authorization: 'Bearer nonsense' }, { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' }, { authorization: 'Bearer tsb_unknown' }]) {
        const response = await t.request({ method: 'GET', url: '/users/me', headers })
        problem(response, 401, 'unauthorized')
        expect(String(response.headers['www-authenticate'])).toMatch(/^Bearer/)
      }
    })

    test('validation failures are 422 with errors [{pointer, detail}]; unknown fields are rejected, not dropped', async () => {
      const post = await createPost(t, alice)
      const response = await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: { deleted_at: null } })
      const body = problem(response, 422, 'validation-failed')
      expect(body.errors).toEqual([expect.objectContaining({ pointer: '/body/deleted_at' })])
      const missing = await t.request({ method: 'POST', url: '/posts', token: alice.token, payload: { content: 'x' } })
      expect(problem(missing, 422, 'validation-failed').errors).toEqual([expect.objectContaining({ pointer: '/body/title' })])
      const query = await t.request({ method: 'GET', url: '/posts?limit=0' })
      expect(problem(query, 422, 'validation-failed').errors).toEqual([expect.objectContaining({ pointer: '/query/limit' })])
      problem(await t.request({ method: 'GET', url: '/posts/abc' }), 422, 'validation-failed')
    })

    test('malformed JSON is a 400 problem', async () => {
      const response = await t.request({
        method: 'POST',
        url: '/posts',
        token: alice.token,
        headers: { 'content-type': 'application/json' },
        payload: '{"title": "x",',
      })
      problem(response, 400, 'validation-failed')
    })

    test('lists: limit (1–100, default 20), opaque cursor, newest first', async () => {
      const author = await t.user('lister')
      const ids: number[] = []
      for (let i = 0; i < 25; i++) ids.push(await createPost(t, author))
      const first = await t.request({ method: 'GET', url: `/posts?author_id=${author.id}` })
      const page1 = first.json<{ items: { id: number }[]; next_cursor: string }>()
      expect(page1.items).toHaveLength(20)
      expect(page1.items.map((item) => item.id)).toEqual([...ids].reverse().slice(0, 20))
      const second = await t.request({ method: 'GET', url: `/posts?author_id=${author.id}&cursor=${page1.next_cursor}` })
      const page2 = second.json<{ items: { id: number }[]; next_cursor: string | null }>()
      expect(page2.items.map((item) => item.id)).toEqual([...ids].reverse().slice(20))
      expect(page2.next_cursor).toBeNull()
      const small = await t.request({ method: 'GET', url: `/posts?author_id=${author.id}&limit=3` })
      expect(small.json<{ items: unknown[] }>().items).toHaveLength(3)
      problem(await t.request({ method: 'GET', url: '/posts?limit=101' }), 422, 'validation-failed')
      problem(await t.request({ method: 'GET', url: '/posts?cursor=not-a-cursor' }), 422, 'validation-failed')
    })

    test('GET of a resource sends an ETag; If-Match mismatch is 412, match passes', async () => {
      const post = await createPost(t, alice)
      const got = await t.request({ method: 'GET', url: `/posts/${post}` })
      const etag = String(got.headers.etag)
      expect(etag).toMatch(/^"/)
      problem(
        await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, headers: { 'if-match': '"stale"' }, payload: { title: 'New' } }),
        412,
        'precondition-failed',
      )
      const patched = await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, headers: { 'if-match': etag }, payload: { title: 'New' } })
      expect(patched.statusCode).toBe(200)
      expect(patched.headers.etag).not.toBe(etag)
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token, headers: { 'if-match': etag } }), 412, 'precondition-failed')
      expect((await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token, headers: { 'if-match': String(patched.headers.etag) } })).statusCode).toBe(204)
    })

    test('If-Match is evaluated only after authentication, authorization and existence', async () => {
      const post = await createPost(t, alice)
      const stale = { 'if-match': '"stale"' }
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}`, headers: stale }), 401, 'unauthorized')
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}`, token: bob.token, headers: stale }), 403, 'forbidden')
      problem(await t.request({ method: 'DELETE', url: '/posts/987654', token: alice.token, headers: stale }), 404, 'not-found')
      problem(await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: alice.token, headers: stale }), 403, 'forbidden')
    })

    test('GET /openapi.json is OpenAPI 3.1 of every route; /docs is Swagger UI; /healthz answers', async () => {
      const doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, unknown> }>()
      expect(doc.openapi).toBe('3.1.0')
      for (const path of ['/users', '/auth/token', '/users/me', '/users/{id}', '/users/{id}/restore', '/users/{id}/permanent', '/posts', '/posts/deleted', '/posts/{id}', '/posts/{id}/soft', '/posts/{id}/restore', '/posts/{id}/permanent', '/posts/bulk', '/posts/bulk-delete', '/posts/bulk-restore', '/posts/{id}/comments', '/comments/{id}', '/comments/{id}/restore', '/comments/{id}/permanent', '/admin/trash', '/admin/purge', '/admin/audit', '/healthz']) {
        expect(doc.paths, path).toHaveProperty([path])
      }
      const docs = await t.request({ method: 'GET', url: '/docs/' })
      expect([200, 302]).toContain(docs.statusCode)
      expect((await t.request({ method: 'GET', url: '/healthz' })).json()).toMatchObject({ status: 'ok' })
    })
  })

  describe('users and auth', () => {
    test('POST /users: 201 + Location; username rules; password length; taken: 409', async () => {
      const response = await t.request({ method: 'POST', url: '/users', payload: { username: 'new_user_1', email: 'New1@Example.com', password: 'long enough' } })
      expect(response.statusCode).toBe(201)
      const body = response.json<{ id: number }>()
      expect(response.headers.location).toBe(`/users/${body.id}`)
      expect(body).toMatchObject({ username: 'new_user_1', email: 'new1@example.com', role: 'user' })
      for (const key of DELETION_FIELDS) expect(body).not.toHaveProperty(key)
      problem(await t.request({ method: 'POST', url: '/users', payload: { username: 'new_user_1', email: 'other@example.com', password: 'long enough' } }), 409, 'conflict')
      problem(await t.request({ method: 'POST', url: '/users', payload: { username: 'other_user', email: 'new1@example.com', password: 'long enough' } }), 409, 'conflict')
      problem(await t.request({ method: 'POST', url: '/users', payload: { username: 'Bad-Name', email: 'b@example.com', password: 'long enough' } }), 422, 'validation-failed')
      problem(await t.request({ method: 'POST', url: '/users', payload: { username: 'ab', email: 'b@example.com', password: 'long enough' } }), 422, 'validation-failed')
      problem(await t.request({ method: 'POST', url: '/users', payload: { username: 'shortpw', email: 'b@example.com', password: 'short' } }), 422, 'validation-failed')
    })

    test('POST /auth/token: JSON or form; wrong password or deleted user: 401', async () => {
      await t.request({ method: 'POST', url: '/users', payload: { username: 'formuser', email: 'form@example.com', password: 'form-password' } })
      const json = await t.request({ method: 'POST', url: '/auth/token', payload: { username: 'formuser', password: 'form-password' } })
      expect(json.json()).toMatchObject({ token_type: 'bearer', expires_in: expect.any(Number), access_token: expect.any(String) })
      const form = await t.request({
        method: 'POST',
        url: '/auth/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'grant_type=password&username=formuser&password=form-password',
      })
      expect(form.statusCode).toBe(200)
      problem(await t.request({ method: 'POST', url: '/auth/token', payload: { username: 'formuser', password: 'wrong-password' } }), 401, 'unauthorized')
      const token = json.json<{ access_token: string }>().access_token
      const me = await t.request({ method: 'GET', url: '/users/me', token })
      const id = me.json<{ id: number }>().id
      expect((await t.request({ method: 'DELETE', url: `/users/${id}`, token })).statusCode).toBe(204)
      problem(await t.request({ method: 'POST', url: '/auth/token', payload: { username: 'formuser', password: 'form-password' } }), 401, 'unauthorized')
    })

    test('more than LOGIN_MAX_FAILURES failures per username and address: 429 with Retry-After', async () => {
      const throttled = await build(kind, { LOGIN_MAX_FAILURES: '3' })
      try {
        for (let i = 0; i < 3; i++) {
          problem(await throttled.request({ method: 'POST', url: '/auth/token', payload: { username: 'admin', password: 'wrong' } }), 401, 'unauthorized')
        }
        const blocked = await throttled.request({ method: 'POST', url: '/auth/token', payload: { username: 'admin', password: 'admin-password-for-tests' } })
        problem(blocked, 429, 'too-many-requests')
        expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0)
        const other = await throttled.request({ method: 'POST', url: '/auth/token', payload: { username: 'admin', password: 'admin-password-for-tests' }, remoteAddress: '10.0.0.9' })
        expect(other.statusCode).toBe(200)
      } finally {
        await throttled.close()
      }
    })

    test('GET /users/me and /users/{id}: public view to others, self view to self and admins', async () => {
      const me = (await t.request({ method: 'GET', url: '/users/me', token: alice.token })).json()
      expect(me).toMatchObject({ id: alice.id, username: alice.username, role: 'user', email: expect.any(String) })
      const asOther = (await t.request({ method: 'GET', url: `/users/${alice.id}`, token: bob.token })).json()
      expect(Object.keys(asOther).sort()).toEqual(['created_at', 'id', 'username'])
      const asAnonymous = (await t.request({ method: 'GET', url: `/users/${alice.id}` })).json()
      expect(Object.keys(asAnonymous).sort()).toEqual(['created_at', 'id', 'username'])
      const asAdmin = (await t.request({ method: 'GET', url: `/users/${alice.id}`, token: t.admin.token })).json()
      expect(asAdmin).toHaveProperty('email')
      expect(asAdmin).not.toHaveProperty('deleted_at')
      expect(me.created_at).toMatch(/Z$/)
    })

    test('DELETE /users/{id}: the account, its posts, its comments, comments on its posts, as one operation; tokens stop working; restore brings exactly that back', async () => {
      const victim = await t.user('victim')
      const post = await createPost(t, victim)
      const ownComment = await createComment(t, victim, post)
      const othersComment = await createComment(t, bob, post)
      const bobPost = await createPost(t, bob)
      const onBobs = await createComment(t, victim, bobPost)
      const earlier = await createComment(t, bob, post, 'deleted on its own')
      expect((await t.request({ method: 'DELETE', url: `/comments/${earlier}`, token: bob.token })).statusCode).toBe(204)

      expect((await t.request({ method: 'DELETE', url: `/users/${victim.id}?reason=leaving`, token: victim.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'GET', url: '/users/me', token: victim.token }), 401, 'unauthorized')
      problem(await t.request({ method: 'GET', url: `/users/${victim.id}` }), 404, 'not-found')
      problem(await t.request({ method: 'GET', url: `/posts/${post}` }), 404, 'not-found')
      for (const comment of [ownComment, othersComment, onBobs]) problem(await t.request({ method: 'GET', url: `/comments/${comment}` }), 404, 'not-found')
      expect((await t.request({ method: 'GET', url: `/posts/${bobPost}` })).statusCode).toBe(200)

      const deletedView = (await t.request({ method: 'GET', url: `/users/${victim.id}?include_deleted=true`, token: t.admin.token })).json()
      expect(deletedView).toMatchObject({ delete_reason: 'leaving', deleted_by: victim.id, deletion_id: expect.any(String), deleted_at: expect.stringMatching(/Z$/), purge_at: expect.stringMatching(/Z$/) })

      const restored = await t.request({ method: 'POST', url: `/users/${victim.id}/restore`, token: t.admin.token })
      expect(restored.statusCode).toBe(200)
      expect(restored.json()).toMatchObject({ id: victim.id, deleted_at: null, deleted_by: null, delete_reason: null, deletion_id: null, purge_at: null })
      for (const comment of [ownComment, othersComment, onBobs]) expect((await t.request({ method: 'GET', url: `/comments/${comment}` })).statusCode).toBe(200)
      expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)
      problem(await t.request({ method: 'GET', url: `/comments/${earlier}` }), 404, 'not-found')
      // Revoked tokens stay revoked after a restore.
      problem(await t.request({ method: 'GET', url: '/users/me', token: victim.token }), 401, 'unauthorized')
    })

    test('POST /users/{id}/restore: username or email taken since: 409 conflict', async () => {
      const response = await t.request({ method: 'POST', url: '/users', payload: { username: 'reused_name', email: 'reused@example.com', password: 'password1' } })
      const id = response.json<{ id: number }>().id
      expect((await t.request({ method: 'DELETE', url: `/users/${id}`, token: t.admin.token })).statusCode).toBe(204)
      expect((await t.request({ method: 'POST', url: '/users', payload: { username: 'reused_name', email: 'fresh@example.com', password: 'password1' } })).statusCode).toBe(201)
      const conflict = problem(await t.request({ method: 'POST', url: `/users/${id}/restore`, token: t.admin.token }), 409, 'conflict')
      expect(conflict.fields).toEqual(['username'])
    })

    test('DELETE /users/{id}/permanent: admin, 204, erases the account and all it owns', async () => {
      const doomed = await t.user('doomed')
      const post = await createPost(t, doomed)
      await createComment(t, bob, post)
      expect((await t.request({ method: 'DELETE', url: `/users/${doomed.id}/permanent`, token: t.admin.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'GET', url: `/users/${doomed.id}?include_deleted=true`, token: t.admin.token }), 404, 'not-found')
      problem(await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token }), 404, 'not-found')
      problem(await t.request({ method: 'DELETE', url: `/users/${doomed.id}/permanent`, token: t.admin.token }), 404, 'not-found')
    })
  })

  describe('posts', () => {
    test('POST /posts: 201 + Location; slug derived from the title; slug taken by an active post: 409, by a deleted one: free', async () => {
      const response = await t.request({ method: 'POST', url: '/posts', token: alice.token, payload: { title: 'Hello, Wörld!', content: 'x' } })
      expect(response.statusCode).toBe(201)
      const post = response.json<{ id: number; slug: string; published: boolean }>()
      expect(response.headers.location).toBe(`/posts/${post.id}`)
      expect(post.slug).toMatch(/^hello-world(-\d+)?$/)
      const second = (await t.request({ method: 'POST', url: '/posts', token: alice.token, payload: { title: 'Hello, Wörld!', content: 'x' } })).json<{ slug: string }>()
      expect(second.slug).not.toBe(post.slug)
      problem(await t.request({ method: 'POST', url: '/posts', token: bob.token, payload: { title: 'x', content: 'x', slug: post.slug } }), 409, 'conflict')
      expect((await t.request({ method: 'DELETE', url: `/posts/${post.id}`, token: alice.token })).statusCode).toBe(204)
      expect((await t.request({ method: 'POST', url: '/posts', token: bob.token, payload: { title: 'x', content: 'x', slug: post.slug } })).statusCode).toBe(201)
    })

    test('GET /posts filters: author_id, published, q with % _ \\ literal', async () => {
      const writer = await t.user('writer')
      const a = await createPost(t, writer, { title: '100% pure', content: 'a_b' })
      const b = await createPost(t, writer, { title: '100 percent', content: 'aXb' })
      const c = await createPost(t, writer, { title: 'back\\slash', content: 'draft', published: false })
      const ids = async (query: string, token?: string) =>
        (await t.request({ method: 'GET', url: `/posts?author_id=${writer.id}&${query}`, ...(token ? { token } : {}) })).json<{ items: { id: number }[] }>().items.map((item) => item.id)
      expect(await ids('q=100%25')).toEqual([a])
      expect(await ids('q=A_B')).toEqual([a])
      expect(await ids('q=%5C', writer.token)).toEqual([c])
      expect(await ids('q=PERCENT')).toEqual([b])
      expect(await ids('published=false', writer.token)).toEqual([c])
      expect(await ids('published=true')).toEqual([b, a])
    })

    test('GET /posts include_deleted / only_deleted: admin only (403 otherwise), only_deleted wins, admin view', async () => {
      const writer = await t.user('trasher')
      const kept = await createPost(t, writer)
      const gone = await createPost(t, writer)
      await t.request({ method: 'DELETE', url: `/posts/${gone}`, token: writer.token })
      problem(await t.request({ method: 'GET', url: '/posts?include_deleted=true', token: writer.token }), 403, 'forbidden')
      problem(await t.request({ method: 'GET', url: '/posts?only_deleted=true' }), 403, 'forbidden')
      const all = (await t.request({ method: 'GET', url: `/posts?author_id=${writer.id}&include_deleted=true`, token: t.admin.token })).json<{ items: Record<string, unknown>[] }>()
      expect(all.items.map((item) => item.id)).toEqual([gone, kept])
      expect(all.items[1]).toMatchObject({ deleted_at: null, deletion_id: null })
      const only = (await t.request({ method: 'GET', url: `/posts?author_id=${writer.id}&include_deleted=true&only_deleted=true`, token: t.admin.token })).json<{ items: Record<string, unknown>[] }>()
      expect(only.items.map((item) => item.id)).toEqual([gone])
      const publicList = (await t.request({ method: 'GET', url: `/posts?author_id=${writer.id}` })).json<{ items: Record<string, unknown>[] }>()
      expect(publicList.items.map((item) => item.id)).toEqual([kept])
      for (const key of DELETION_FIELDS) expect(publicList.items[0]).not.toHaveProperty(key)
    })

    test('cursors page through the posts trash, the admin trash and comments without skipping or repeating', async () => {
      const writer = await t.user('pager')
      const posts = [await createPost(t, writer), await createPost(t, writer), await createPost(t, writer)]
      const comments = [await createComment(t, bob, posts[0] as number), await createComment(t, bob, posts[0] as number), await createComment(t, bob, posts[0] as number)]
      const all = async (first: string, token?: string) => {
        const seen: string[] = []
        let url: string | null = first
        while (url !== null) {
          const response: LightMyRequestResponse = await t.request({ method: 'GET', url, ...(token === undefined ? {} : { token }) })
          const page = response.json<{ items: { id: number; type?: string }[]; next_cursor: string | null }>()
          seen.push(...page.items.map((item) => `${item.type ?? ''}${item.id}`))
          url = page.next_cursor === null ? null : `${first}&cursor=${page.next_cursor}`
        }
        return seen
      }
      expect((await all(`/posts/${posts[0]}/comments?limit=1`)).filter((id) => comments.map(String).includes(id))).toEqual(comments.map(String).reverse())
      for (const post of [posts[1], posts[2], posts[0]]) await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
      const trash = await all('/posts/deleted?limit=2', t.admin.token)
      expect(new Set(trash).size).toBe(trash.length)
      expect(trash.filter((id) => posts.map(String).includes(id))).toEqual([posts[0], posts[2], posts[1]].map(String))
      const admin = await all('/admin/trash?type=post&limit=2', t.admin.token)
      expect(new Set(admin).size).toBe(admin.length)
      expect(admin.filter((id) => posts.map((post) => `post${post}`).includes(id))).toEqual([posts[0], posts[2], posts[1]].map((post) => `post${post}`))
    })

    test('GET /posts/deleted: the posts trash, admin view, most recently deleted first', async () => {
      const writer = await t.user('trash')
      const first = await createPost(t, writer)
      const second = await createPost(t, writer)
      await t.request({ method: 'DELETE', url: `/posts/${second}`, token: writer.token })
      await t.request({ method: 'DELETE', url: `/posts/${first}`, token: writer.token })
      const trash = (await t.request({ method: 'GET', url: '/posts/deleted?limit=100', token: t.admin.token })).json<{ items: { id: number; deleted_at: string }[] }>()
      const mine = trash.items.filter((item) => [first, second].includes(item.id)).map((item) => item.id)
      expect(mine).toEqual([first, second])
      problem(await t.request({ method: 'GET', url: '/posts/deleted', token: writer.token }), 403, 'forbidden')
    })

    test('GET /posts/{id}: missing or deleted 404; admin with include_deleted sees it', async () => {
      const post = await createPost(t, alice)
      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token })
      problem(await t.request({ method: 'GET', url: `/posts/${post}` }), 404, 'not-found')
      problem(await t.request({ method: 'GET', url: `/posts/${post}`, token: alice.token }), 404, 'not-found')
      const admin = await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token })
      expect(admin.statusCode).toBe(200)
      expect(admin.json()).toMatchObject({ id: post, deleted_by: alice.id })
      problem(await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: alice.token }), 403, 'forbidden')
    })

    test('PATCH /posts/{id}: owner or admin; deleted: 404; slug taken: 409', async () => {
      const post = await createPost(t, alice)
      const other = await createPost(t, alice, { slug: `taken-${Date.now()}` })
      const otherSlug = (await t.request({ method: 'GET', url: `/posts/${other}` })).json<{ slug: string }>().slug
      expect((await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: { title: 'Edited' } })).json()).toMatchObject({ title: 'Edited' })
      expect((await t.request({ method: 'PATCH', url: `/posts/${post}`, token: t.admin.token, payload: { published: false } })).json()).toMatchObject({ published: false })
      problem(await t.request({ method: 'PATCH', url: `/posts/${post}`, token: bob.token, payload: { title: 'x' } }), 404, 'not-found')
      await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: { published: true } })
      problem(await t.request({ method: 'PATCH', url: `/posts/${post}`, token: bob.token, payload: { title: 'x' } }), 403, 'forbidden')
      problem(await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: { slug: otherSlug } }), 409, 'conflict')
      problem(await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: {} }), 422, 'validation-failed')
      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token })
      problem(await t.request({ method: 'PATCH', url: `/posts/${post}`, token: alice.token, payload: { title: 'x' } }), 404, 'not-found')
    })

    test('DELETE /posts/{id} (and /soft): the deleting rules 1–5, with its active comments in the same operation', async () => {
      problem(await t.request({ method: 'DELETE', url: '/posts/987654', token: alice.token }), 404, 'not-found')
      const post = await createPost(t, alice)
      const comment = await createComment(t, bob, post)
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}`, token: bob.token }), 403, 'forbidden')
      const deleted = await t.request({ method: 'DELETE', url: `/posts/${post}/soft?reason=outdated`, token: alice.token })
      expect(deleted.statusCode).toBe(204)
      expect(deleted.body).toBe('')
      const first = (await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token })).json<Record<string, unknown>>()
      expect(first.delete_reason).toBe('outdated')
      problem(await t.request({ method: 'GET', url: `/comments/${comment}` }), 404, 'not-found')
      // Rule 4: owner or admin again: 204, nothing re-stamped.
      expect((await t.request({ method: 'DELETE', url: `/posts/${post}?reason=again`, token: alice.token })).statusCode).toBe(204)
      expect((await t.request({ method: 'DELETE', url: `/posts/${post}`, token: t.admin.token })).statusCode).toBe(204)
      const after = (await t.request({ method: 'GET', url: `/posts/${post}?include_deleted=true`, token: t.admin.token })).json<Record<string, unknown>>()
      expect(after).toEqual(first)
      // Rule 5: anyone else: 404.
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}`, token: bob.token }), 404, 'not-found')
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}` }), 401, 'unauthorized')
    })

    test('rule 6: two concurrent deletes of one row: both 204, one stamp, one audit event', async () => {
      const post = await createPost(t, alice)
      const [a, b] = await Promise.all([
        t.request({ method: 'DELETE', url: `/posts/${post}?reason=a`, token: alice.token }),
        t.request({ method: 'DELETE', url: `/posts/${post}?reason=b`, token: t.admin.token }),
      ])
      expect([a.statusCode, b.statusCode]).toEqual([204, 204])
      const audit = await t.app.db.selectFrom('tombstone_audit').selectAll().where('entity', '=', 'posts').where('entity_id', '=', String(post)).execute()
      expect(audit.filter((row) => row.action === 'soft_delete')).toHaveLength(1)
    })

    test('POST /posts/{id}/restore: missing 404, not deleted 400, slug taken 409, author deleted 409 parent-deleted; exact comments', async () => {
      problem(await t.request({ method: 'POST', url: '/posts/987654/restore', token: t.admin.token }), 404, 'not-found')
      const writer = await t.user('restorer')
      const post = await createPost(t, writer, { slug: `restore-me-${writer.id}` })
      problem(await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: t.admin.token }), 400, 'not-deleted')
      const withPost = await createComment(t, bob, post, 'goes with the post')
      const onItsOwn = await createComment(t, bob, post, 'deleted before')
      await t.request({ method: 'DELETE', url: `/comments/${onItsOwn}`, token: bob.token })
      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
      const restored = await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: t.admin.token })
      expect(restored.statusCode).toBe(200)
      expect(restored.json()).toMatchObject({ id: post, deleted_at: null, deletion_id: null })
      expect((await t.request({ method: 'GET', url: `/comments/${withPost}` })).statusCode).toBe(200)
      problem(await t.request({ method: 'GET', url: `/comments/${onItsOwn}` }), 404, 'not-found')

      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
      const squatter = await createPost(t, bob, { slug: `restore-me-${writer.id}` })
      const conflict = problem(await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: t.admin.token }), 409, 'conflict')
      expect(conflict.detail).toContain(`#${squatter}`)
      expect(conflict.conflicting_id).toBe(squatter)
      await t.request({ method: 'DELETE', url: `/posts/${squatter}/permanent`, token: t.admin.token })

      await t.request({ method: 'DELETE', url: `/users/${writer.id}`, token: t.admin.token })
      const orphan = await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: t.admin.token })
      // The post was deleted before its author: restoring it alone meets the deleted author.
      problem(orphan, 409, 'parent-deleted')
    })

    test('DELETE /posts/{id}/permanent: admin; active or deleted; its comments too; missing 404', async () => {
      const post = await createPost(t, alice)
      const comment = await createComment(t, bob, post)
      expect((await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'GET', url: `/comments/${comment}` }), 404, 'not-found')
      expect(await t.app.db.selectFrom('comments').select('id').where('id', '=', comment).$call((qb) => qb).execute()).toEqual([])
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token }), 404, 'not-found')
      const deleted = await createPost(t, alice)
      await t.request({ method: 'DELETE', url: `/posts/${deleted}`, token: alice.token })
      expect((await t.request({ method: 'DELETE', url: `/posts/${deleted}/permanent`, token: t.admin.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: alice.token }), 403, 'forbidden')
    })

    test('bulk: DELETE /posts/bulk 204; POST /posts/bulk-delete and bulk-restore report per id; 1–1000 ids', async () => {
      const writer = await t.user('bulk')
      const [a, b, c] = [await createPost(t, writer), await createPost(t, writer), await createPost(t, writer, { slug: `bulk-slug-${writer.id}` })]
      await t.request({ method: 'DELETE', url: `/posts/${b}`, token: writer.token })
      const report = await t.request({ method: 'POST', url: '/posts/bulk-delete', token: t.admin.token, payload: { post_ids: [a, b, 987654], reason: 'cleanup' } })
      expect(report.json()).toEqual({ deleted: [a], already_deleted: [b], not_found: [987654] })
      await t.request({ method: 'DELETE', url: `/posts/${c}`, token: writer.token })
      await createPost(t, bob, { slug: `bulk-slug-${writer.id}` })
      const active = await createPost(t, writer)
      const restored = await t.request({ method: 'POST', url: '/posts/bulk-restore', token: t.admin.token, payload: { post_ids: [a, b, c, active, 987654] } })
      expect(restored.json()).toMatchObject({ restored: [a, b].sort((x, y) => x - y), not_deleted: [active], not_found: [987654], conflicts: [c] })
      const gone = await t.request({ method: 'DELETE', url: '/posts/bulk', token: t.admin.token, payload: { post_ids: [a, b, 987654] } })
      expect(gone.statusCode).toBe(204)
      problem(await t.request({ method: 'GET', url: `/posts/${a}` }), 404, 'not-found')
      const hard = await t.request({ method: 'POST', url: '/posts/bulk-delete', token: t.admin.token, payload: { post_ids: [a, active], hard_delete: true } })
      expect(hard.json()).toEqual({ deleted: [a, active].sort((x, y) => x - y), already_deleted: [], not_found: [] })
      problem(await t.request({ method: 'POST', url: '/posts/bulk-delete', token: t.admin.token, payload: { post_ids: [] } }), 422, 'validation-failed')
      problem(
        await t.request({ method: 'POST', url: '/posts/bulk-delete', token: t.admin.token, payload: { post_ids: Array.from({ length: 1001 }, (_, i) => i + 1) } }),
        422,
        'validation-failed',
      )
      problem(await t.request({ method: 'DELETE', url: '/posts/bulk', token: alice.token, payload: { post_ids: [1] } }), 403, 'forbidden')
    })
  })

  describe('comments', () => {
    test('GET/POST /posts/{id}/comments: post missing or deleted 404; 201 + Location', async () => {
      const post = await createPost(t, alice)
      const created = await t.request({ method: 'POST', url: `/posts/${post}/comments`, token: bob.token, payload: { body: 'hi' } })
      expect(created.statusCode).toBe(201)
      const comment = created.json<{ id: number }>()
      expect(created.headers.location).toBe(`/comments/${comment.id}`)
      const list = (await t.request({ method: 'GET', url: `/posts/${post}/comments` })).json<{ items: { id: number }[] }>()
      expect(list.items.map((item) => item.id)).toEqual([comment.id])
      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token })
      problem(await t.request({ method: 'GET', url: `/posts/${post}/comments` }), 404, 'not-found')
      problem(await t.request({ method: 'POST', url: `/posts/${post}/comments`, token: bob.token, payload: { body: 'late' } }), 404, 'not-found')
      problem(await t.request({ method: 'POST', url: '/posts/987654/comments', token: bob.token, payload: { body: 'x' } }), 404, 'not-found')
    })

    test('DELETE /comments/{id}: owner, the post’s author, admin; others 403', async () => {
      const carol = await t.user('carol')
      const post = await createPost(t, alice)
      const byBob = await createComment(t, bob, post)
      problem(await t.request({ method: 'DELETE', url: `/comments/${byBob}`, token: carol.token }), 403, 'forbidden')
      expect((await t.request({ method: 'DELETE', url: `/comments/${byBob}`, token: alice.token })).statusCode).toBe(204)
      expect((await t.request({ method: 'DELETE', url: `/comments/${byBob}`, token: bob.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'DELETE', url: `/comments/${byBob}`, token: carol.token }), 404, 'not-found')
      const other = await createComment(t, bob, post)
      expect((await t.request({ method: 'DELETE', url: `/comments/${other}`, token: t.admin.token })).statusCode).toBe(204)
    })

    test('POST /comments/{id}/restore: admin; its post deleted: 409 parent-deleted; DELETE /comments/{id}/permanent', async () => {
      const post = await createPost(t, alice)
      const comment = await createComment(t, bob, post)
      await t.request({ method: 'DELETE', url: `/comments/${comment}`, token: bob.token })
      const restored = await t.request({ method: 'POST', url: `/comments/${comment}/restore`, token: t.admin.token })
      expect(restored.json()).toMatchObject({ id: comment, deleted_at: null })
      await t.request({ method: 'DELETE', url: `/posts/${post}`, token: alice.token })
      const blocked = problem(await t.request({ method: 'POST', url: `/comments/${comment}/restore`, token: t.admin.token }), 409, 'parent-deleted')
      expect(blocked.detail).toContain(`post #${post}`)
      expect((await t.request({ method: 'DELETE', url: `/comments/${comment}/permanent`, token: t.admin.token })).statusCode).toBe(204)
      problem(await t.request({ method: 'DELETE', url: `/comments/${comment}/permanent`, token: t.admin.token }), 404, 'not-found')
    })
  })

  describe('admin', () => {
    test('legal holds: admin only (401, 403); placed, listed and released; a held post is not removed for good', async () => {
      const writer = await t.user('holdme')
      const post = await createPost(t, writer)
      const deleted = await t.request({ method: 'DELETE', url: `/posts/${post}`, token: writer.token })
      expect(deleted.statusCode).toBe(204)
      const deletion = String(deleted.headers['tombstone-deletion'])
      problem(await t.request({ method: 'GET', url: '/admin/holds' }), 401, 'unauthorized')
      problem(await t.request({ method: 'GET', url: '/admin/holds', token: writer.token }), 403, 'forbidden')
      const placed = await t.request({ method: 'POST', url: '/admin/holds', token: t.admin.token, payload: { deletion_id: deletion, reason: 'litigation' } })
      expect(placed.statusCode).toBe(201)
      const hold = placed.json<{ hold: { id: number; rows: number } }>().hold
      expect(hold.rows).toBe(1)
      const listed = await t.request({ method: 'GET', url: `/admin/holds?active=true&type=post&id=${post}`, token: t.admin.token })
      expect(listed.json<{ items: { id: number }[] }>().items.map((item) => item.id)).toEqual([hold.id])
      // The trash and the deletions list say what is held.
      const trash = await t.request({ method: 'GET', url: '/admin/trash?type=post&limit=100', token: t.admin.token })
      expect(trash.json<{ items: { id: number; held: boolean }[] }>().items.find((item) => item.id === post)?.held).toBe(true)
      const deletions = await t.request({ method: 'GET', url: '/admin/deletions?limit=100', token: t.admin.token })
      expect(deletions.json<{ items: { id: string; held: boolean }[] }>().items.find((item) => item.id === deletion)?.held).toBe(true)
      problem(await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token }), 409, 'legal-hold')
      const released = await t.request({ method: 'DELETE', url: `/admin/holds/${hold.id}?reason=settled`, token: t.admin.token })
      expect(released.json()).toMatchObject({ id: hold.id, release_reason: 'settled' })
      expect((await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token })).statusCode).toBe(204)
      expect((await t.request({ method: 'GET', url: `/admin/deletions/${deletion}`, token: t.admin.token })).statusCode).toBe(200)
    })

    test('GET /admin/trash: every deleted post, comment and user with who, when, why, purge date; by type', async () => {
      const writer = await t.user('trashy')
      const post = await createPost(t, writer, { title: 'Trash me' })
      const comment = await createComment(t, bob, post)
      await t.request({ method: 'DELETE', url: `/posts/${post}?reason=old`, token: writer.token })
      const trash = (await t.request({ method: 'GET', url: '/admin/trash?limit=100', token: t.admin.token })).json<{ items: Record<string, unknown>[] }>()
      const entry = trash.items.find((item) => item.type === 'post' && item.id === post)
      expect(entry).toMatchObject({
        label: 'Trash me',
        deleted_by: writer.id,
        deleted_by_username: writer.username,
        delete_reason: 'old',
        deletion_id: expect.any(String),
        purge_at: expect.stringMatching(/Z$/),
        dependents: { posts: 0, comments: 1 },
      })
      expect(trash.items.find((item) => item.type === 'comment' && item.id === comment)).toMatchObject({ parent: { type: 'post', id: post, deleted: true } })
      const onlyUsers = (await t.request({ method: 'GET', url: '/admin/trash?type=user', token: t.admin.token })).json<{ items: { type: string }[] }>()
      expect(onlyUsers.items.every((item) => item.type === 'user')).toBe(true)
      const deletedAts = trash.items.map((item) => String(item.deleted_at))
      expect([...deletedAts].sort().reverse()).toEqual(deletedAts)
      problem(await t.request({ method: 'GET', url: '/admin/trash', token: bob.token }), 403, 'forbidden')
      problem(await t.request({ method: 'GET', url: '/admin/trash' }), 401, 'unauthorized')
    })

    test('POST /admin/purge: a dry run without force (count, sample, cutoff), then for good with force', async () => {
      const writer = await t.user('purged')
      const old = await createPost(t, writer)
      const comment = await createComment(t, bob, old)
      const recent = await createPost(t, writer)
      await t.request({ method: 'DELETE', url: `/posts/${old}`, token: writer.token })
      await t.request({ method: 'DELETE', url: `/posts/${recent}`, token: writer.token })
      const fortyDaysAgo = kind === 'sqlite' ? sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-40 days')` : sql`now() - interval '40 days'`
      await backdate(t.owner, sql`update posts set deleted_at = ${fortyDaysAgo} where id = ${old}`)
      await backdate(t.owner, sql`update comments set deleted_at = ${fortyDaysAgo} where id = ${comment}`)
      const preview = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: {} })
      expect(preview.statusCode).toBe(200)
      const body = preview.json<{ purge_count: number; purge_sample: { type: string; id: number }[]; cutoff: string }>()
      expect(body.purge_sample).toEqual(
        expect.arrayContaining([expect.objectContaining({ type: 'post', id: old, label: expect.any(String) }), expect.objectContaining({ type: 'comment', id: comment })]),
      )
      expect(body.purge_sample.some((entry) => entry.type === 'post' && entry.id === recent)).toBe(false)
      expect(body.purge_count).toBeGreaterThanOrEqual(2)
      expect(Date.parse(body.cutoff)).toBeLessThan(Date.now() - 29 * 86_400_000)
      expect((await t.request({ method: 'GET', url: `/posts/${old}?include_deleted=true`, token: t.admin.token })).statusCode).toBe(200)
      const onlyComments = (await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { type: 'comment' } })).json<{ purge_sample: { type: string }[] }>()
      expect(onlyComments.purge_sample.every((entry) => entry.type === 'comment')).toBe(true)
      const purged = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { force: true } })
      expect(purged.json()).toMatchObject({ purged_count: body.purge_count, cutoff: expect.any(String) })
      problem(await t.request({ method: 'GET', url: `/posts/${old}?include_deleted=true`, token: t.admin.token }), 404, 'not-found')
      expect((await t.request({ method: 'GET', url: `/posts/${recent}?include_deleted=true`, token: t.admin.token })).statusCode).toBe(200)
      const everything = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { older_than_days: 0, type: 'post' } })
      expect(everything.json<{ purge_sample: { id: number }[] }>().purge_sample).toContainEqual(expect.objectContaining({ type: 'post', id: recent }))
      problem(await t.request({ method: 'POST', url: '/admin/purge', token: bob.token, payload: {} }), 403, 'forbidden')
      problem(await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { older_than_days: -1 } }), 422, 'validation-failed')
    })

    test('POST /admin/purge with a plan removes exactly what the dry run counted, or less: rows deleted or restored since are not purged', async () => {
      const writer = await t.user('planned')
      const [a, b, c] = [await createPost(t, writer), await createPost(t, writer), await createPost(t, writer)]
      for (const id of [a, b]) await t.request({ method: 'DELETE', url: `/posts/${id}`, token: writer.token })
      const preview = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { older_than_days: 0 } })
      const planned = preview.json<{ purge_count: number; purge_sample: { id: number; label: string }[]; plan: string; as_of: string }>()
      expect(planned.purge_sample).toEqual(expect.arrayContaining([expect.objectContaining({ id: a, label: expect.stringMatching(/^Post /) })]))
      // Between the preview and the confirmation: one more post deleted, one of the counted restored.
      await t.request({ method: 'DELETE', url: `/posts/${c}`, token: writer.token })
      await t.request({ method: 'POST', url: `/posts/${b}/restore`, token: t.admin.token })
      const done = await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { force: true, plan: planned.plan } })
      expect(done.json<{ purged_count: number }>().purged_count).toBe(planned.purge_count - 1)
      problem(await t.request({ method: 'GET', url: `/posts/${a}?include_deleted=true`, token: t.admin.token }), 404, 'not-found')
      expect((await t.request({ method: 'GET', url: `/posts/${b}`, token: t.admin.token })).statusCode).toBe(200)
      expect((await t.request({ method: 'GET', url: `/posts/${c}?include_deleted=true`, token: t.admin.token })).statusCode).toBe(200)
      problem(await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { force: true, plan: 'bm90IGEgcGxhbg' } }), 422, 'validation-failed')
      problem(await t.request({ method: 'POST', url: '/admin/purge', token: t.admin.token, payload: { force: true, plan: planned.plan, older_than_days: 3 } }), 422, 'validation-failed')
    })

    test('GET /admin/audit: every action, filterable; finds rows a cascade or bulk operation reached', async () => {
      const writer = await t.user('audited')
      const post = await createPost(t, writer)
      const comment = await createComment(t, bob, post)
      await t.request({ method: 'DELETE', url: `/posts/${post}?reason=why`, token: writer.token })
      await t.request({ method: 'POST', url: `/posts/${post}/restore`, token: t.admin.token })
      await t.request({ method: 'POST', url: '/posts/bulk-delete', token: t.admin.token, payload: { post_ids: [post] } })
      await t.request({ method: 'DELETE', url: `/posts/${post}/permanent`, token: t.admin.token })
      const forComment = (await t.request({ method: 'GET', url: `/admin/audit?entity=comment&entity_id=${comment}`, token: t.admin.token })).json<{ items: Record<string, unknown>[] }>()
      expect(forComment.items.map((item) => item.action)).toEqual(['hard_delete', 'soft_delete', 'restore', 'soft_delete'])
      expect(forComment.items[3]).toMatchObject({ entity: 'comment', entity_id: comment, actor_id: writer.id, reason: 'why', deletion_id: expect.any(String), at: expect.stringMatching(/Z$/) })
      const restores = (await t.request({ method: 'GET', url: `/admin/audit?action=restore&actor_id=${t.admin.id}&limit=100`, token: t.admin.token })).json<{ items: Record<string, unknown>[] }>()
      expect(restores.items.every((item) => item.action === 'restore' && item.actor_id === t.admin.id)).toBe(true)
      expect(restores.items.some((item) => item.entity_id === post)).toBe(true)
      const page = (await t.request({ method: 'GET', url: '/admin/audit?limit=2', token: t.admin.token })).json<{ items: { id: number }[]; next_cursor: string }>()
      const next = (await t.request({ method: 'GET', url: `/admin/audit?limit=2&cursor=${page.next_cursor}`, token: t.admin.token })).json<{ items: { id: number }[] }>()
      expect(next.items[0]?.id).toBeLessThan(page.items[1]?.id as number)
      problem(await t.request({ method: 'GET', url: '/admin/audit', token: bob.token }), 403, 'forbidden')
      problem(await t.request({ method: 'GET', url: '/admin/audit?action=delete', token: t.admin.token }), 422, 'validation-failed')
    })
  })
})
