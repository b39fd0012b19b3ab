/**
 * The OpenAPI document at /openapi.json: valid OpenAPI 3.1 (checked by an OpenAPI schema validator,
 * which also resolves every $ref), and usable: every operation named and described, every protected
 * operation carrying its security requirement (so Swagger UI's "Try it out" sends the token), every
 * error response declared as problem+json, no placeholder descriptions. The document does not
 * depend on the database, so it is built once, on PGlite.
 */
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { build, type TestApp } from './helper.ts'

interface Operation {
  operationId?: string
  summary?: string
  description?: string
  security?: Record<string, string[]>[]
  parameters?: { in: string; name: string; schema?: { examples?: unknown[] }; example?: unknown; examples?: unknown }[]
  responses: Record<string, { description: string; content?: Record<string, { schema?: { $ref?: string } }> }>
}
interface Document {
  openapi: string
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Record<string, unknown>>; securitySchemes: Record<string, unknown> }
}

/** Operations anyone may call without a token, and that ignore one. */
const PUBLIC = new Set(['describeProblemType', 'liveness', 'readiness', 'health', 'createToken'])

function operations(doc: Document): { key: string; operation: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, operation })),
  )
}

describe('the OpenAPI document', () => {
  let t: TestApp
  let doc: Document
  beforeAll(async () => {
    t = await build('pglite')
    const response = await t.request({ method: 'GET', url: '/openapi.json' })
    expect(response.statusCode).toBe(200)
    doc = response.json<Document>()
  })
  afterAll(async () => {
    await t?.close()
  })

  test('is valid OpenAPI 3.1, every $ref resolved (and the validator does refuse a broken one)', async () => {
    expect(doc.openapi).toBe('3.1.0')
    const result = await new Validator().validate(structuredClone(doc) as never)
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)

    const broken = structuredClone(doc) as unknown as { paths: Record<string, Record<string, { responses: unknown }>> }
    broken.paths['/posts/{id}']!.delete!.responses = { 204: { content: 'not an object' } }
    expect((await new Validator().validate(broken as never)).valid).toBe(false)
  })

  test('every operation has a unique operationId, a summary and a description', () => {
    const all = operations(doc)
    expect(all.length).toBeGreaterThanOrEqual(33)
    const missing = all.filter(({ operation }) => !operation.operationId || !operation.summary || !operation.description).map(({ key }) => key)
    expect(missing).toEqual([])
    const ids = all.map(({ operation }) => operation.operationId)
    expect(ids.filter((id, index) => ids.indexOf(id) !== index)).toEqual([])
  })

  test('every non-public operation carries the bearer security requirement; public ones none', () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    const problems: string[] = []
    for (const { key, operation } of operations(doc)) {
      const schemes = (operation.security ?? []).flatMap((requirement) => Object.keys(requirement))
      if (PUBLIC.has(operation.operationId ?? '')) {
        if (schemes.length > 0) problems.push(`${key} is public but declares ${schemes.join(', ')}`)
      } else if (!schemes.includes('bearer')) {
        // It reads a token (an optional one too): Swagger UI's "Try it out" must be able to send it.
        problems.push(`${key} has no bearer security requirement`)
      }
    }
    expect(problems).toEqual([])
    // The 14 soft-delete routes are among them.
    const softDelete = operations(doc).filter(({ operation }) =>
      /^(delete|softDelete|restore|permanentlyDelete|listDeleted|bulkDelete|bulkRestore)(Post|Comment|User)s?(WithReport)?$/.test(operation.operationId ?? ''),
    )
    expect(softDelete.map(({ key }) => key)).toHaveLength(14)
    for (const { operation } of softDelete) expect(operation.security).toEqual([{ bearer: [] }])
  })

  test('every 4xx and 5xx response is application/problem+json with the Problem schema', () => {
    const problems: string[] = []
    for (const { key, operation } of operations(doc)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue
        const types = Object.keys(response.content ?? {})
        const schema = response.content?.['application/problem+json']?.schema
        if (types.join() !== 'application/problem+json' || schema?.$ref !== '#/components/schemas/Problem') {
          problems.push(`${key} ${status}: ${JSON.stringify(response.content)}`)
        }
      }
    }
    expect(problems).toEqual([])
    expect(doc.components.schemas.Problem).toMatchObject({ type: 'object', required: expect.arrayContaining(['type', 'title', 'status', 'detail']) })
    expect(doc.components.schemas.Problem?.examples).toEqual(expect.arrayContaining([expect.objectContaining({ status: 404 })]))
  })

  test('no "Default Response" placeholders; /problems/{slug} is documented; path ids carry examples', () => {
    expect(JSON.stringify(doc)).not.toContain('Default Response')
    expect(doc.paths['/problems/{slug}']?.get?.responses['200']?.description).toBeTruthy()
    const withoutExample = operations(doc)
      .flatMap(({ key, operation }) => (operation.parameters ?? []).filter((parameter) => parameter.in === 'path').map((parameter) => ({ key, parameter })))
      .filter(({ parameter }) => parameter.example === undefined && parameter.examples === undefined && parameter.schema?.examples === undefined)
      .map(({ key, parameter }) => `${key} ${parameter.name}`)
    expect(withoutExample).toEqual([])
  })
})
