/**
 * Bad input never yields a 5xx and never changes anything. The cases are generated from the
 * service's own OpenAPI document, so a new endpoint is covered without touching this file:
 * malformed ids, wrong types, huge strings, unknown fields, malformed JSON, oversized lists.
 */
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds } from '@tombstone/testing'

/** The PostgreSQL kinds, and SQLite: the service runs on each (docs/service.md). */
const kinds = [...databaseKinds(), 'sqlite' as const]
import { build, createComment, createPost, type TestApp } from './helper.ts'

interface Schema {
  type?: string | string[]
  properties?: Record<string, Schema>
  items?: Schema
  anyOf?: Schema[]
  $ref?: string
  enum?: unknown[]
  const?: unknown
}

interface Operation {
  parameters?: { name: string; in: string; schema: Schema }[]
  requestBody?: { content: Record<string, { schema: Schema }> }
}

interface Case {
  readonly label: string
  readonly method: string
  readonly url: string
  readonly headers?: Record<string, string>
  readonly payload?: string
}

const MALFORMED_IDS = [
  'abc', '-1', '0', '1.5', '1e3', '99999999999999999999', '2147483648', "1'%20or%20'1'='1", '%00', 'null',
  // Spellings that coercion used to read as another row's id (the fuzzer once deleted the admin through `%201`).
  '%201', '1%20', '01', '001', '1e0', '0x1', '+1', '1.0',
]
/** Text no database stores: a NUL, and a lone surrogate after a non-ASCII character. */
const UNSTORABLE = ['a\u0000b', '\u00e9\ud800']
const cursorOf = (values: unknown[]) => Buffer.from(JSON.stringify(values)).toString('base64url')
/** Cursors that Date.parse accepts but PostgreSQL does not, or with an id past int4. */
const BAD_CURSORS = [cursorOf(['12', 1]), cursorOf(['2020 (x)', 1]), cursorOf(['+275760-09-13T00:00:00Z', 1]), cursorOf(['2020-02-30T00:00:00Z', 1]), cursorOf(['2020-01-01T00:00:00Z', 2147483648])]
const HUGE = 'x'.repeat(200_001)

function wrongValues(schema: Schema): unknown[] {
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'integer':
    case 'number':
      return ['12', 1.5, -1, 1e20, true, null, [], {}]
    case 'string':
      return [123, true, null, [], {}, HUGE, ...UNSTORABLE]
    case 'boolean':
      return ['true', 1, null, []]
    case 'array':
      return ['1,2', {}, null, Array.from({ length: 1001 }, (_, i) => i + 1), ['a']]
    default:
      return [null, 123, 'x']
  }
}

function wrongQueryValues(schema: Schema): string[] {
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'integer':
    case 'number':
      return ['abc', '-5', '1.5', '99999999999999999999', '']
    case 'boolean':
      return ['maybe', '2', 'yes please']
    case 'string':
      return [encodeURIComponent(HUGE.slice(0, 600)), '%00', 'a%00b']
    default:
      return ['%zz']
  }
}

function casesFrom(doc: { paths: Record<string, Record<string, Operation>> }, ids: Record<string, number>): Case[] {
  const cases: Case[] = []
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!['get', 'post', 'patch', 'delete', 'put'].includes(method)) continue
      const upper = method.toUpperCase()
      const resource = path.split('/')[1] ?? ''
      const validId = ids[resource] ?? 1
      const concrete = path.replace('{id}', String(validId)).replace('{slug}', 'not-found')
      if (path.includes('{id}')) {
        for (const bad of MALFORMED_IDS) cases.push({ label: `id ${bad}`, method: upper, url: path.replace('{id}', bad) })
      }
      for (const parameter of operation.parameters ?? []) {
        if (parameter.in !== 'query') continue
        // The same parameter twice: an array where one value is expected.
        cases.push({ label: `query ${parameter.name} twice`, method: upper, url: `${concrete}?${parameter.name}=1&${parameter.name}=2` })
        for (const bad of [...wrongQueryValues(parameter.schema), ...(parameter.name === 'cursor' ? BAD_CURSORS : [])]) {
          cases.push({ label: `query ${parameter.name}=${bad.slice(0, 20)}`, method: upper, url: `${concrete}?${parameter.name}=${bad}` })
        }
      }
      const body = operation.requestBody?.content['application/json']?.schema
      if (body === undefined) continue
      const json = { 'content-type': 'application/json' }
      const sample: Record<string, unknown> = {}
      for (const [name, property] of Object.entries(body.properties ?? {})) {
        const type = Array.isArray(property.type) ? property.type[0] : property.type
        sample[name] = type === 'array' ? [ids.posts ?? 1] : type === 'boolean' ? false : type === 'integer' ? 1 : 'valid-value'
      }
      cases.push({ label: 'malformed JSON', method: upper, url: concrete, headers: json, payload: '{"a": ' })
      cases.push({ label: 'JSON array body', method: upper, url: concrete, headers: json, payload: '[]' })
      cases.push({ label: 'JSON null body', method: upper, url: concrete, headers: json, payload: 'null' })
      cases.push({ label: 'a string body', method: upper, url: concrete, headers: json, payload: '"text"' })
      cases.push({ label: 'unknown field', method: upper, url: concrete, headers: json, payload: JSON.stringify({ ...sample, deleted_at: null }) })
      // Prototype keys: refused as unknown fields, never merged into an object.
      cases.push({ label: '__proto__ key', method: upper, url: concrete, headers: json, payload: `{"__proto__": {"role": "admin"}, ${JSON.stringify(sample).slice(1)}` })
      cases.push({ label: 'constructor key', method: upper, url: concrete, headers: json, payload: JSON.stringify({ ...sample, constructor: { prototype: { role: 'admin' } } }) })
      cases.push({ label: 'oversized body', method: upper, url: concrete, headers: json, payload: JSON.stringify({ ...sample, junk: 'y'.repeat(2_000_000) }) })
      cases.push({ label: 'wrong media type', method: upper, url: concrete, headers: { 'content-type': 'text/csv' }, payload: 'a,b' })
      for (const [name, property] of Object.entries(body.properties ?? {})) {
        for (const value of wrongValues(property)) {
          cases.push({
            label: `${name}=${JSON.stringify(value)?.slice(0, 20)}`,
            method: upper,
            url: concrete,
            headers: json,
            payload: JSON.stringify({ ...sample, [name]: value }),
          })
        }
      }
    }
  }
  return cases
}

describe.each(kinds)('bad input on %s', (kind) => {
  let t: TestApp
  let cases: Case[] = []
  beforeAll(async () => {
    t = await build(kind)
    const author = await t.user('author')
    const post = await createPost(t, author)
    const comment = await createComment(t, author, post)
    const doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json()
    cases = casesFrom(doc, { posts: post, comments: comment, users: author.id })
  })
  afterAll(async () => {
    await t?.close()
  })

  async function fingerprint(): Promise<string> {
    if (kind === 'sqlite') {
      // Every row of every table, as the database holds it (raw SQL: no read filter).
      const parts: unknown[] = []
      for (const query of [sql`select * from users order by id`, sql`select * from posts order by id`, sql`select * from comments order by id`, sql`select count(*) as n from tombstone_audit`]) {
        parts.push((await query.execute(t.app.db)).rows)
      }
      return JSON.stringify(parts)
    }
    const { rows } = await sql<{ digest: string }>`select md5(
      coalesce((select json_agg(u order by u.id)::text from users u), '') ||
      coalesce((select json_agg(p order by p.id)::text from posts p), '') ||
      coalesce((select json_agg(c order by c.id)::text from comments c), '') ||
      coalesce((select count(*)::text from tombstone_audit), '')) as digest`.execute(t.app.db)
    return rows[0]?.digest ?? ''
  }

  test('every endpoint answers bad input with a 4xx problem and changes nothing', async () => {
    expect(cases.length).toBeGreaterThan(300)
    const before = await fingerprint()
    const failures: string[] = []
    for (const item of cases) {
      const response = await t.request({
        method: item.method as 'GET',
        url: item.url,
        token: t.admin.token,
        ...(item.headers === undefined ? {} : { headers: item.headers }),
        ...(item.payload === undefined ? {} : { payload: item.payload }),
      })
      const status = response.statusCode
      const problemJson = String(response.headers['content-type']).startsWith('application/problem+json')
      if (status < 400 || status >= 500 || !problemJson) failures.push(`${item.method} ${item.url.slice(0, 60)} [${item.label}] -> ${status} ${response.body.slice(0, 100)}`)
    }
    expect(failures).toEqual([])
    expect(await fingerprint()).toBe(before)
  })
})
