/**
 * The baseline of the HTTP scenario: a minimal hand-written Fastify + `pg` server doing what a
 * careful hand-written service does for the same three operations, with the same queries.
 */
import { createHash } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type pg from 'pg'

const POST_COLUMNS = 'id, title, slug, content, published, author_id, created_at, updated_at'

/** The baseline: what a careful hand-written server does for the same three operations. */
export function handWritten(pool: pg.Pool): FastifyInstance {
  const app = Fastify({ logger: false })
  const tokenHash = (header: string | undefined) =>
    header?.startsWith('Bearer ') ? createHash('sha256').update(header.slice(7)).digest('base64url') : undefined
  async function admin(client: pg.Pool | pg.PoolClient, header: string | undefined): Promise<number | undefined> {
    const hash = tokenHash(header)
    if (hash === undefined) return undefined
    const { rows } = await client.query<{ id: number; role: string }>(
      `select u.id, u.role from tokens t join users u on u.id = t.user_id
       where t.token_hash = $1 and t.revoked_at is null and t.expires_at > now() and u.deleted_at is null`,
      [hash],
    )
    return rows[0]?.role === 'admin' ? rows[0].id : undefined
  }
  /**
   * An admin's transaction: 401 without an admin token; rolled back on failure; the answer sent
   * only after the commit (as the service does).
   */
  async function asAdmin(
    request: { headers: { authorization?: string } },
    reply: { code(status: number): { send(body?: unknown): unknown } },
    work: (client: pg.PoolClient, by: number) => Promise<{ status: number; body?: unknown }>,
  ): Promise<unknown> {
    const client = await pool.connect()
    try {
      await client.query('begin')
      const by = await admin(client, request.headers.authorization)
      if (by === undefined) {
        await client.query('rollback')
        return reply.code(401).send({ status: 401 })
      }
      const { status, body } = await work(client, by)
      await client.query('commit')
      return reply.code(status).send(body)
    } catch (error) {
      await client.query('rollback')
      throw error
    } finally {
      client.release()
    }
  }
  app.get('/posts/:id', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    if (!Number.isSafeInteger(id) || id < 1) return reply.code(422).send({ status: 422 })
    const { rows } = await pool.query(`select ${POST_COLUMNS} from posts where id = $1 and deleted_at is null`, [id])
    if (rows.length === 0) return reply.code(404).send({ status: 404 })
    return rows[0]
  })
  app.get('/posts', async (request) => {
    const author = Number((request.query as { author_id?: string }).author_id)
    const { rows } = await pool.query(
      `select ${POST_COLUMNS} from posts where author_id = $1 and published and deleted_at is null order by created_at desc, id desc limit 21`,
      [author],
    )
    return { items: rows.slice(0, 20), next_cursor: null }
  })
  app.delete('/posts/:id', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    return asAdmin(request, reply, async (client, by) => {
      const deletion = crypto.randomUUID()
      const posts = await client.query<{ id: number }>(
        `update posts set deleted_at = now(), deleted_by = $2, deletion_id = $3, purge_at = now() + interval '30 days' where id = $1 and deleted_at is null returning id`,
        [id, String(by), deletion],
      )
      const comments = await client.query<{ id: number }>(
        `update comments set deleted_at = now(), deleted_by = $2, deletion_id = $3, purge_at = now() + interval '30 days' where post_id = any($1) and deleted_at is null returning id`,
        [posts.rows.map((row) => row.id), String(by), deletion],
      )
      for (const [entity, rows] of [['posts', posts.rows], ['comments', comments.rows]] as const) {
        if (rows.length > 0) {
          await client.query(
            `insert into tombstone_audit (action, entity, entity_id, actor, deletion_id) select 'soft_delete', $1, k, $2, $3 from unnest($4::text[]) k`,
            [entity, String(by), deletion, rows.map((row) => String(row.id))],
          )
        }
      }
      return { status: 204 }
    })
  })
  app.post('/posts/:id/restore', async (request, reply) => {
    const id = Number((request.params as { id: string }).id)
    return asAdmin(request, reply, async (client, by) => {
      const post = await client.query<{ deletion_id: string | null }>(`select deletion_id from posts where id = $1 and deleted_at is not null for update`, [id])
      if (post.rows.length === 0) return { status: 400, body: { status: 400 } }
      const deletion = post.rows[0]?.deletion_id
      await client.query(`update posts set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where id = $1`, [id])
      const comments = await client.query<{ id: number }>(
        `update comments set deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null where post_id = $1 and deletion_id = $2 returning id`,
        [id, deletion],
      )
      await client.query(
        `insert into tombstone_audit (action, entity, entity_id, actor, deletion_id) select 'restore', e, k, $1, $2 from unnest($3::text[], $4::text[]) as x(e, k)`,
        [String(by), deletion, ['posts', ...comments.rows.map(() => 'comments')], [String(id), ...comments.rows.map((row) => String(row.id))]],
      )
      const { rows } = await client.query(`select ${POST_COLUMNS}, deleted_at, deleted_by, delete_reason, deletion_id, purge_at from posts where id = $1`, [id])
      return { status: 200, body: rows[0] }
    })
  })
  return app
}

