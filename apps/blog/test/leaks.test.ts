/**
 * Leak hunt over HTTP: with deleted and active posts, comments and users mixed, no public list, get,
 * search or nested route returns a deleted row or any deletion field, to anyone who is not asking as
 * an admin.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'
import { build, createComment, createPost, DELETION_FIELDS, type TestApp, type TestUser } from './helper.ts'

function deletionKeys(value: unknown, path = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((item, index) => deletionKeys(item, `${path}[${index}]`))
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, inner]) => [
    ...((DELETION_FIELDS as readonly string[]).includes(key) ? [`${path}.${key}`] : []),
    ...deletionKeys(inner, `${path}.${key}`),
  ])
}

describe.each(databaseKinds())('leak hunt on %s', (kind) => {
  let t: TestApp
  let active: TestUser
  let reader: TestUser
  const deleted = { users: [] as number[], posts: [] as number[], comments: [] as number[] }
  const alive = { posts: [] as number[], comments: [] as number[] }
  const marker = `leakmarker${Date.now()}`

  beforeAll(async () => {
    t = await build(kind)
    active = await t.user('active')
    reader = await t.user('reader')
    const leaving = await t.user('leaving')
    const keep = await createPost(t, active, { title: `${marker} kept` })
    const drop = await createPost(t, active, { title: `${marker} dropped`, content: marker })
    const theirs = await createPost(t, leaving, { title: `${marker} theirs` })
    alive.posts.push(keep)
    alive.comments.push(await createComment(t, reader, keep, `${marker} stays`))
    const droppedComment = await createComment(t, reader, keep, `${marker} comment dropped`)
    const byLeaving = await createComment(t, leaving, keep, `${marker} by leaving user`)
    const onDropped = await createComment(t, reader, drop, `${marker} on dropped post`)
    const onTheirs = await createComment(t, active, theirs, `${marker} on their post`)
    expect((await t.request({ method: 'DELETE', url: `/comments/${droppedComment}`, token: reader.token })).statusCode).toBe(204)
    expect((await t.request({ method: 'DELETE', url: `/posts/${drop}`, token: active.token })).statusCode).toBe(204)
    expect((await t.request({ method: 'DELETE', url: `/users/${leaving.id}`, token: leaving.token })).statusCode).toBe(204)
    deleted.users.push(leaving.id)
    deleted.posts.push(drop, theirs)
    deleted.comments.push(droppedComment, byLeaving, onDropped, onTheirs)
  })
  afterAll(async () => {
    await t?.close()
  })

  async function walk(token: string | undefined): Promise<{ url: string; status: number; body: unknown }[]> {
    const urls = [
      '/posts',
      '/posts?limit=100',
      `/posts?q=${marker}`,
      `/posts?q=${marker.toUpperCase()}`,
      `/posts?author_id=${active.id}`,
      `/posts?author_id=${deleted.users[0]}`,
      '/posts?published=true',
      '/posts?published=false',
      '/users/me',
      ...[...alive.posts, ...deleted.posts].flatMap((id) => [`/posts/${id}`, `/posts/${id}/comments`, `/posts/${id}/comments?limit=100`]),
      ...[...alive.comments, ...deleted.comments].map((id) => `/comments/${id}`),
      ...[active.id, reader.id, ...deleted.users].map((id) => `/users/${id}`),
    ]
    const results = []
    for (const url of urls) {
      const response = await t.request({ method: 'GET', url, ...(token === undefined ? {} : { token }) })
      results.push({ url, status: response.statusCode, body: response.json() })
    }
    return results
  }

  test.each(['anonymous', 'reader', 'author'] as const)('as %s: no deleted row, no deletion field', async (who) => {
    const token = who === 'anonymous' ? undefined : who === 'reader' ? reader.token : active.token
    const results = await walk(token)
    const problems: string[] = []
    for (const { url, status, body } of results) {
      const keys = deletionKeys(body)
      if (keys.length > 0) problems.push(`${url}: deletion fields ${keys.join(', ')}`)
      const text = JSON.stringify(body)
      for (const phrase of ['dropped', 'by leaving user', 'on dropped post', 'on their post', `${marker} theirs`]) {
        if (status < 300 && text.includes(phrase)) problems.push(`${url}: leaks "${phrase}"`)
      }
      const items = (body as { items?: { id: number; post_id?: number }[] }).items
      if (items !== undefined) {
        const isComments = url.includes('/comments')
        for (const item of items) {
          if (!isComments && deleted.posts.includes(item.id)) problems.push(`${url}: deleted post ${item.id}`)
          if (isComments && deleted.comments.includes(item.id)) problems.push(`${url}: deleted comment ${item.id}`)
        }
      }
      const single = url.match(/^\/(posts|comments|users)\/(\d+)$/)
      if (single !== null) {
        const [, table, id] = single as unknown as [string, 'posts' | 'comments' | 'users', string]
        const gone = deleted[table].includes(Number(id))
        if (gone && status !== 404) problems.push(`${url}: deleted ${table} answered ${status}`)
        if (!gone && status !== 200) problems.push(`${url}: active ${table} answered ${status}`)
      }
      if (url.match(/^\/posts\/(\d+)\/comments/) && deleted.posts.includes(Number(url.split('/')[2])) && status !== 404) {
        problems.push(`${url}: comments of a deleted post answered ${status}`)
      }
    }
    expect(problems).toEqual([])
    // The search that matches every post by its marker finds the active one only.
    const search = results.find((result) => result.url === `/posts?q=${marker}`)?.body as { items: { id: number }[] }
    expect(search.items.map((item) => item.id)).toEqual(alive.posts)
  })
})
