/**
 * Scenario: what the invariants held by the database cost. The toolkit's cascade (soft delete, then
 * restore) of one user with their posts and the comments on them, on the blog's schema with every
 * invariant trigger (stamping, the audit written by statement triggers, the parent checks), side by
 * side in the same run with the statements the toolkit ran before those triggers existed: each
 * `UPDATE` writing its own audit rows through a data-modifying CTE, by hand, on a twin database
 * whose invariant triggers are dropped (the hard-delete guard stays, as before).
 */
import { sql } from 'kysely'
import { restore, softDelete } from '@tombstone/kysely'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase, type BenchDatabase } from '../setup.ts'
import { measurement, median, time } from '../stats.ts'
import { deletedCount, expected, seed } from './cascade.ts'

const VICTIM = 1

/** Drops the invariant triggers: the schema as it was before them. */
async function withoutInvariants(bench: BenchDatabase): Promise<void> {
  await sql`do $$ declare r record; begin
    for r in select tgname, tgrelid::regclass::text as t from pg_trigger
      where not tgisinternal and (tgname like 'tombstone\\_stamp%' or tgname like 'tombstone\\_parent\\_%'
        or tgname in ('tombstone_audit_update', 'tombstone_audit_delete'))
    loop execute format('drop trigger %I on %s', r.tgname, r.t); end loop;
  end $$`.execute(bench.plain)
}

/** The previous soft delete: one UPDATE per table, each appending its audit rows in the same statement. */
async function previousDelete(bench: BenchDatabase): Promise<void> {
  const client = await bench.pool.connect()
  try {
    await client.query('begin')
    const id = crypto.randomUUID()
    const stamp = `deleted_at = now(), deleted_by = 'bench', delete_reason = null, deletion_id = $1::uuid, purge_at = now() + interval '30 days'`
    const audited = (table: string, update: string) => `with c as (${update} returning ${table}.id, ${table}.deletion_id),
      a as (insert into tombstone_audit (action, entity, entity_id, actor, reason, deletion_id)
            select 'soft_delete', '${table}', c.id::text, 'bench', null, c.deletion_id from c)
      select count(*) from c`
    await client.query(audited('users', `update users set ${stamp} where id = $2 and deleted_at is null`), [id, VICTIM])
    await client.query(audited('posts', `update posts set ${stamp} where author_id in (select id from users where deletion_id = $1::uuid) and deleted_at is null`), [id])
    await client.query(
      audited(
        'comments',
        `update comments set ${stamp} where (author_id in (select id from users where deletion_id = $1::uuid)
          or post_id in (select id from posts where deletion_id = $1::uuid)) and deleted_at is null`,
      ),
      [id],
    )
    await client.query('commit')
  } finally {
    client.release()
  }
}

/** The previous restore: the same three tables back, each UPDATE appending its audit rows. */
async function previousRestore(bench: BenchDatabase): Promise<void> {
  const client = await bench.pool.connect()
  try {
    await client.query('begin')
    const clear = `deleted_at = null, deleted_by = null, delete_reason = null, deletion_id = null, purge_at = null`
    const restored = (table: string, select: string) => `with o as (${select}),
      c as (update ${table} t set ${clear} from o where t.id = o.id returning o.id, o.deletion_id),
      a as (insert into tombstone_audit (action, entity, entity_id, actor, reason, deletion_id)
            select 'restore', '${table}', c.id::text, null, null, c.deletion_id from c)
      select max(c.deletion_id::text) as d from c`
    const root = await client.query<{ d: string }>(restored('users', `select id, deletion_id from users where id = $1 and deleted_at is not null`), [VICTIM])
    const deletion = root.rows[0]?.d
    await client.query(restored('posts', `select id, deletion_id from posts where deletion_id = $1::uuid and author_id = $2`), [deletion, VICTIM])
    await client.query(restored('comments', `select id, deletion_id from comments where deletion_id = $1::uuid`), [deletion])
    await client.query('commit')
  } finally {
    client.release()
  }
}

async function auditCount(bench: BenchDatabase): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from tombstone_audit`.execute(bench.plain)
  return Number(rows[0]?.n)
}

export async function invariants(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const posts = options.quick ? 500 : 10_000
  const commentsPerPost = 10
  const current = await blogDatabase(server, 'bench_invariants')
  const previous = await blogDatabase(server, 'bench_invariants_previous')
  const notes: string[] = []
  try {
    await seed(current, posts, commentsPerPost)
    await seed(previous, posts, commentsPerPost)
    await withoutInvariants(previous)
    const reach = await expected(current)
    const samples: Record<string, number[]> = {
      'toolkit delete, database stamps and audits': [],
      'toolkit restore, database stamps and audits': [],
      'previous statements delete (audit CTE)': [],
      'previous statements restore (audit CTE)': [],
    }
    for (let round = 0; round < options.repetitions; round++) {
      const before = [await auditCount(current), await auditCount(previous)]
      samples['toolkit delete, database stamps and audits']?.push(await time(() => softDelete(current.db, 'users', { id: VICTIM }, { by: 'bench' })))
      samples['previous statements delete (audit CTE)']?.push(await time(() => previousDelete(previous)))
      for (const [name, bench] of [['toolkit', current], ['previous', previous]] as const) {
        const n = await deletedCount(bench)
        if (n !== reach) notes.push(`${name} soft-deleted ${n} rows where the cascade reaches ${reach}`)
      }
      samples['toolkit restore, database stamps and audits']?.push(await time(() => restore(current.db, 'users', { id: VICTIM })))
      samples['previous statements restore (audit CTE)']?.push(await time(() => previousRestore(previous)))
      const written = [(await auditCount(current)) - (before[0] as number), (await auditCount(previous)) - (before[1] as number)]
      if (written[0] !== 2 * reach || written[1] !== 2 * reach) notes.push(`audit rows per round: toolkit ${written[0]}, previous ${written[1]}, expected ${2 * reach}`)
      for (const bench of [current, previous]) if ((await deletedCount(bench)) !== 0) notes.push('a restore left rows deleted')
    }
    const m = (name: string) => median(samples[name] ?? [])
    const deleteRatio = m('toolkit delete, database stamps and audits') / m('previous statements delete (audit CTE)')
    const restoreRatio = m('toolkit restore, database stamps and audits') / m('previous statements restore (audit CTE)')
    return {
      scenario: 'invariants',
      description: `database-held invariants vs the previous statements: cascade of one user with ${posts} posts and ${posts * commentsPerPost} comments (${reach} rows), delete then restore`,
      sizes: { posts, comments_on_them: posts * commentsPerPost, rows_reached: reach },
      measurements: Object.keys(samples).map((name) => measurement(name, samples[name] ?? [], 'ms')),
      ratios: [
        { name: 'delete: database invariants / previous statements', value: deleteRatio, baseline: 'previous statements (lower is better)' },
        { name: 'restore: database invariants / previous statements', value: restoreRatio, baseline: 'previous statements (lower is better)' },
      ],
      targets: [
        { description: `delete at most 10% slower (${((deleteRatio - 1) * 100).toFixed(1)}%)`, met: deleteRatio <= 1.1 },
        { description: `restore at most 10% slower (${((restoreRatio - 1) * 100).toFixed(1)}%)`, met: restoreRatio <= 1.1 },
      ],
      notes: [...new Set(notes)],
    }
  } finally {
    await current.close()
    await previous.close()
  }
}
