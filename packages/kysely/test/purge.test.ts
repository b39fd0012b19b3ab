import { sql, type ExpressionBuilder, type Kysely, type RawBuilder } from 'kysely'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, dialectKinds, backdate, type DatabaseKind } from '@tombstone/testing'
import { purge, readAudit, restore, softDelete, type PurgeProgress } from '../src/index.ts'
import { createFixture, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser, numbers } from './support/data.ts'
import { daysFromNow, idIn } from './support/dialect-sql.ts'

/** Marks rows as deleted long ago and due for purge, bypassing the API (as time would). */
async function age(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', ids: number[], days = 60): Promise<void> {
  const kind = kindOf(raw)
  await backdate(raw, sql`update ${sql.table(table)} set deleted_at = ${daysFromNow(kind, -days)}, purge_at = ${daysFromNow(kind, 30 - days)}
    where ${idIn('id', ids)} and deleted_at is not null`)
}

async function exists(raw: Kysely<Database>, table: 'users' | 'posts' | 'comments', id: number): Promise<boolean> {
  return (await raw.selectFrom(table).select('id').where('id', '=', id).executeTakeFirst()) !== undefined
}

const kinds = new WeakMap<Kysely<Database>, DatabaseKind>()
function kindOf(raw: Kysely<Database>): DatabaseKind {
  return kinds.get(raw) ?? 'postgres'
}

describe.each(dialectKinds())('purge on %s', (kind) => {
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    fixture = await createFixture(kind)
    db = fixture.db
    raw = fixture.raw
    kinds.set(raw, kind)
  })
  afterAll(async () => {
    await fixture?.close()
  })

  test('removes due rows for good, children first, leaves the rest, audits each row', async () => {
    const user = await insertUser(db)
    const duePost = await insertPost(db, user)
    const dueComment = await insertComment(db, duePost, user)
    const freshPost = await insertPost(db, user)
    const activePost = await insertPost(db, user)
    await softDelete(db, 'posts', { ids: [duePost, freshPost] })
    await age(raw, 'posts', [duePost])
    await age(raw, 'comments', [dueComment])

    const result = await purge(db, { by: 'nightly' })
    expect(result.dryRun).toBe(false)
    expect(result.tables.posts?.count).toBeGreaterThanOrEqual(1)
    expect(await exists(raw, 'posts', duePost)).toBe(false)
    expect(await exists(raw, 'comments', dueComment)).toBe(false)
    expect(await exists(raw, 'posts', freshPost)).toBe(true)
    expect(await exists(raw, 'posts', activePost)).toBe(true)
    const audit = await readAudit(db, { entity: 'posts', entityId: duePost })
    expect(audit.map((entry) => entry.action)).toEqual(['purge', 'soft_delete'])
    expect(audit[0]).toMatchObject({ actor: 'nightly', entityId: String(duePost) })
    expect((await readAudit(db, { entity: 'comments', entityId: dueComment }))[0]?.action).toBe('purge')
  })

  test('a due parent takes its not-yet-due descendants with it; nothing is left orphaned', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const laterComment = await insertComment(db, post, user)
    await softDelete(db, 'posts', { id: post })
    await age(raw, 'posts', [post])
    // The comment was deleted with the post but is not due yet (as with a longer retention).
    await backdate(raw, sql`update comments set purge_at = ${daysFromNow(kind, 10)} where id = ${laterComment}`)
    await purge(db)
    expect(await exists(raw, 'posts', post)).toBe(false)
    expect(await exists(raw, 'comments', laterComment)).toBe(false)
    const orphans = await sql<{ n: number }>`select count(*) as n from comments c left join posts p on p.id = c.post_id where p.id is null`.execute(raw)
    expect(Number(orphans.rows[0]?.n)).toBe(0)
  })

  test('a predicate beyond age: only the due rows that meet it go (with what is below them); counts and plans follow it', async () => {
    const user = await insertUser(db)
    const [spam, kept] = [await insertPost(db, user), await insertPost(db, user)]
    const spamComment = await insertComment(db, spam, user)
    await softDelete(db, 'posts', { id: spam }, { reason: 'spam' })
    await softDelete(db, 'posts', { id: kept }, { reason: 'under review' })
    await age(raw, 'posts', [spam, kept])
    await age(raw, 'comments', [spamComment])
    const where = { posts: (eb: ExpressionBuilder<any, any>, column: (name: string) => RawBuilder<unknown>) => eb(column('delete_reason'), '=', 'spam') }
    const plan = await purge(db, { tables: ['posts'], where, dryRun: true })
    expect(plan.tables.posts?.count).toBe(1)
    // The spam post's comment goes with it.
    expect(plan.sample).toEqual([{ table: 'comments', id: spamComment }, { table: 'posts', id: spam }])
    const result = await purge(db, { tables: ['posts', 'comments'], where })
    expect(result.tables.posts?.count).toBe(1)
    expect(await exists(raw, 'posts', spam)).toBe(false)
    expect(await exists(raw, 'comments', spamComment)).toBe(false)
    expect(await exists(raw, 'posts', kept)).toBe(true)
    await expect(purge(db, { where: { categories: () => sql<boolean>`true` } })).rejects.toMatchObject({ code: 'INVALID_CONFIGURATION' })
    expect((await purge(db, { tables: ['posts'] })).tables.posts?.count).toBe(1)
  })

  test('with `tables`, a plan counts what goes below its rows in tables it does not purge, and nothing else of theirs: the run removes what it counted', async () => {
    await purge(db)
    const user = await insertUser(db)
    const [duePost, activePost] = [await insertPost(db, user), await insertPost(db, user)]
    const below = await insertComment(db, duePost, user)
    const ownDue = await insertComment(db, activePost, user)
    // The post is due, the comment deleted with it is not (yet); another comment is due on its own.
    await softDelete(db, 'posts', { id: duePost })
    await softDelete(db, 'comments', { id: ownDue })
    await age(raw, 'posts', [duePost])
    await age(raw, 'comments', [ownDue])

    const comments = await purge(db, { tables: ['comments'], dryRun: true })
    expect([comments.count, comments.tables]).toEqual([1, { comments: { count: 1, batches: 0, held: 0 } }])
    expect(comments.sample).toEqual([{ table: 'comments', id: ownDue }])
    const posts = await purge(db, { tables: ['posts'], dryRun: true })
    expect([posts.count, posts.tables.posts?.count, posts.tables.comments?.count]).toEqual([2, 1, 1])
    expect(posts.sample).toEqual([{ table: 'comments', id: below }, { table: 'posts', id: duePost }])

    const counts = (result: { tables: Readonly<Record<string, { count: number }>> }) =>
      Object.fromEntries(Object.entries(result.tables).map(([name, entry]) => [name, entry.count]))
    // A run counts each table as its plan did: the comment below the post under comments.
    const ranComments = await purge(db, { tables: ['comments'], asOf: comments.asOf })
    expect([ranComments.count, counts(ranComments)]).toEqual([1, counts(comments)])
    expect(await exists(raw, 'comments', below)).toBe(true)
    const ranPosts = await purge(db, { tables: ['posts'], asOf: posts.asOf })
    expect([ranPosts.count, counts(ranPosts), ranPosts.tables.posts?.batches, ranPosts.tables.comments?.batches]).toEqual([2, counts(posts), 1, 0])
    expect([await exists(raw, 'posts', duePost), await exists(raw, 'comments', below), await exists(raw, 'posts', activePost)]).toEqual([false, false, true])
  })

  test('a cutoff purges rows deleted before it, whatever their purge_at', async () => {
    const user = await insertUser(db)
    const [old, recent] = [await insertPost(db, user), await insertPost(db, user)]
    await softDelete(db, 'posts', { ids: [old, recent] })
    await backdate(raw, sql`update posts set deleted_at = ${daysFromNow(kind, -40)}, purge_at = ${daysFromNow(kind, 1)} where id = ${old}`)
    const result = await purge(db, { before: new Date(Date.now() - 30 * 86_400_000), tables: ['posts'] })
    expect(result.tables.posts?.count).toBe(1)
    expect(await exists(raw, 'posts', old)).toBe(false)
    expect(await exists(raw, 'posts', recent)).toBe(true)
  })

  test('a dry run counts and samples (up to 100) what would go, and changes nothing', async () => {
    const user = await insertUser(db)
    const posts: number[] = []
    for (let i = 0; i < 120; i++) posts.push(await insertPost(db, user))
    await softDelete(db, 'posts', { ids: posts })
    await age(raw, 'posts', posts)
    const digest = async () =>
      JSON.stringify([
        await raw.selectFrom('posts').selectAll().orderBy('id').execute(),
        await raw.selectFrom('tombstone_audit' as any).select((eb) => eb.fn.countAll().as('n')).execute(),
      ])
    const before = await digest()
    const preview = await purge(db, { dryRun: true, tables: ['posts'] })
    expect(preview.dryRun).toBe(true)
    expect(preview.tables.posts?.count).toBeGreaterThanOrEqual(120)
    expect(preview.sample).toHaveLength(100)
    expect(preview.sample.every((entry) => entry.table === 'posts')).toBe(true)
    expect(await digest()).toBe(before)
    const real = await purge(db, { tables: ['posts'] })
    expect(real.count).toBe(preview.count)
  })

  test('works in batches (each its own transaction) and reports progress', async () => {
    const user = await insertUser(db)
    const ids: number[] = []
    for (let i = 0; i < 35; i++) ids.push(await insertPost(db, user))
    await softDelete(db, 'posts', { ids })
    await age(raw, 'posts', ids)
    const progress: PurgeProgress[] = []
    const result = await purge(db, { tables: ['posts'], batchSize: 10, onProgress: (p) => progress.push(p) })
    expect(result.count).toBe(35)
    expect(result.batches).toBe(4)
    expect(progress.map((p) => p.done)).toEqual([10, 20, 30, 35])
    expect(progress.every((p) => p.total === 35 && p.rowsPerSecond > 0)).toBe(true)
    expect(result.longestBatchMs).toBeGreaterThan(0)
  })

  test('paces itself to a duty cycle: after each full batch it waits (1 - d) / d times as long as the batch took', async () => {
    const user = await insertUser(db)
    const ids: number[] = []
    for (let i = 0; i < 35; i++) ids.push(await insertPost(db, user))
    await softDelete(db, 'posts', { ids })
    await age(raw, 'posts', ids)
    const progress: PurgeProgress[] = []
    const result = await purge(db, { tables: ['posts'], batchSize: 10, dutyCycle: 0.25, onProgress: (p) => progress.push(p) })
    expect(result.count).toBe(35)
    // Three full batches are followed by a pause; the last, partial one ends the run.
    const owed = progress.slice(0, 3).reduce((sum, p) => sum + p.batchMs * 3, 0)
    expect(result.pausedMs).toBeGreaterThanOrEqual(owed - 3)
    expect(result.busyMs).toBeCloseTo(progress.reduce((sum, p) => sum + p.batchMs, 0), 6)
    const unpaced = await purge(db, { tables: ['posts'] })
    expect(unpaced.pausedMs).toBe(0)
    for (const dutyCycle of [0, -1, 1.5, Number.NaN]) {
      await expect(purge(db, { dutyCycle })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    }
  })

  test('paces itself to a batch time: each batch sized from the rate the last ran at, grown at most 2x, within batchSize and a floor where the fixed cost dominates', async () => {
    const { purgeWithHooks } = await import('../src/purge/purge.ts')
    const due = async (count: number) => {
      const user = await insertUser(db)
      const rows = Array.from({ length: count }, (_, i) => ({ author_id: user, title: 'p', slug: `paced-${user}-${i}` }))
      for (let i = 0; i < rows.length; i += 100) await raw.insertInto('posts').values(rows.slice(i, i + 100)).execute()
      const ids = numbers((await raw.selectFrom('posts').select('id').where('author_id', '=', user).execute()).map((row) => row.id))
      await softDelete(db, 'posts', { ids })
      await age(raw, 'posts', ids)
    }
    // The batches' time is the test's: 0.01 ms a row (fast rows), then 2 ms a row (slow ones).
    const run = async (msPerRow: number) => {
      const progress: PurgeProgress[] = []
      const result = await purgeWithHooks(
        db,
        { tables: ['posts'], batchSize: 250, targetBatchMs: 20, onProgress: (p) => progress.push(p) },
        { batchMs: (taken) => taken * msPerRow },
      )
      return { result, sizes: progress.map((p) => p.batchSize), done: progress.map((p) => p.done) }
    }
    await due(600)
    const fast = await run(0.01)
    // 20 ms at 100 rows/ms is 2,000 rows: the first batch takes 100, then 2x, then batchSize caps it.
    expect(fast.sizes).toEqual([100, 200, 250, 250])
    expect(fast.done).toEqual([100, 300, 550, 600])
    expect(fast.result.pacing).toEqual({ targetBatchMs: 20, dutyCycle: 1, smallestBatchSize: 100, largestBatchSize: 250, lastBatchSize: 250, batchesOverTarget: 0 })
    await due(130)
    const slow = await run(2)
    // 20 ms at 0.5 rows/ms is 10 rows.
    expect(slow.sizes).toEqual([100, 10, 10, 10])
    expect(slow.result.count).toBe(130)
    expect(slow.result.pacing.batchesOverTarget).toBe(1)
    // A fixed cost per batch (15 ms, over the 10 ms target) and 0.05 ms a row: halving the batch
    // saved less than half of what a per-row cost would, so the size stops there instead of
    // shrinking towards one row a batch (which would only add batches, each paying the 15 ms).
    await due(300)
    const progress: PurgeProgress[] = []
    const fixed = await purgeWithHooks(
      db,
      { tables: ['posts'], batchSize: 250, targetBatchMs: 10, onProgress: (p) => progress.push(p) },
      { batchMs: (taken) => 15 + taken * 0.05 },
    )
    expect(progress.map((p) => p.batchSize)).toEqual([100, 50, 50, 50, 50])
    expect(fixed).toMatchObject({ count: 300, pacing: { smallestBatchSize: 50, batchesOverTarget: 5 } })
    // Without a target, every batch may take batchSize rows; the result says so.
    const unpaced = await purge(db, { tables: ['posts'] })
    expect(unpaced.pacing).toEqual({ targetBatchMs: null, dutyCycle: 1, smallestBatchSize: 0, largestBatchSize: 0, lastBatchSize: 0, batchesOverTarget: 0 })
    for (const targetBatchMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      await expect(purge(db, { targetBatchMs })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    }
  })

  test('stops between batches when aborted; the next run finishes', async () => {
    const user = await insertUser(db)
    const ids: number[] = []
    for (let i = 0; i < 30; i++) ids.push(await insertPost(db, user))
    await softDelete(db, 'posts', { ids })
    await age(raw, 'posts', ids)
    const controller = new AbortController()
    const first = await purge(db, { tables: ['posts'], batchSize: 10, signal: controller.signal, onProgress: () => controller.abort() })
    expect(first).toMatchObject({ aborted: true, count: 10 })
    const second = await purge(db, { tables: ['posts'], batchSize: 10 })
    expect(second.count).toBe(20)
  })

  test('rejects a bad batch size or cutoff with a coded error', async () => {
    await expect(purge(db, { batchSize: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(purge(db, { before: new Date('nope') })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(purge(db, { tables: ['categories'] })).rejects.toMatchObject({ code: 'INVALID_CONFIGURATION' })
  })

  test('a restore and a purge racing: a restore that succeeded is never undone', async () => {
    // MariaDB: each round's backdate drops and recreates the triggers (DDL), so fewer rounds.
    const iterations = kind === 'postgres' ? 1000 : kind === 'mysql' ? 25 : 100
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // Rounds go on (up to 8x) until each side has won once: on MariaDB 25 rounds were seen to end
    // with the restore first every time.
    const outcome = await race(fixture, user, post, iterations, false, iterations * 8)
    expect({ lost: outcome.lost, both: outcome.both }).toEqual({ lost: 0, both: 0 })
    // Both sides won some rounds: the race was real, not one side always first.
    expect(outcome.restoreWon).toBeGreaterThan(0)
    expect(outcome.purgeWon).toBeGreaterThan(0)
  })
})

/**
 * Runs restore against purge `iterations` times on a due comment; counts restores that succeeded
 * but whose row is gone (`lost`), and rows both kept and reported purged (`both`).
 */
async function race(fixture: Fixture, user: number, post: number, iterations: number, skipRecheck: boolean, most = iterations) {
  const { purgeWithHooks } = await import('../src/purge/purge.ts')
  const { db, raw } = fixture
  let lost = 0
  let both = 0
  let restoreWon = 0
  let purgeWon = 0
  for (let i = 0; i < iterations || (i < most && (restoreWon === 0 || purgeWon === 0)); i++) {
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'comments', { id: comment })
    await age(raw, 'comments', [comment])
    const delay = Math.random() * (skipRecheck ? 6 : 2)
    const restoring = () =>
      restore(db, 'comments', { id: comment }).then(
        () => true,
        () => false,
      )
    const purging = () =>
      purgeWithHooks(db, { tables: ['comments'] }, { skipRecheck, afterSelect: () => new Promise((done) => setTimeout(done, delay)) })
    // Either may start first, and a little later.
    const later = <T,>(work: () => Promise<T>) => new Promise<T>((done, fail) => setTimeout(() => work().then(done, fail), Math.random() * 4))
    const [restored, purged] = await Promise.all([later(restoring), later(purging)])
    const present = await exists(raw, 'comments', comment)
    if (restored && !present) lost += 1
    if (present && purged.count > 0 && !restored) both += 1
    if (restored && present) restoreWon += 1
    if (!present) purgeWon += 1
  }
  return { lost, both, restoreWon, purgeWon }
}

describe.runIf(databaseKinds().includes('postgres'))('purge on postgres, concurrency', () => {
  let fixture: Fixture
  beforeAll(async () => {
    fixture = await createFixture('postgres', { poolSize: 12 })
  })
  afterAll(async () => {
    await fixture?.close()
  })

  test('the race test fails when the re-check under lock is taken out', async () => {
    const user = await insertUser(fixture.db)
    const post = await insertPost(fixture.db, user)
    const violations = await race(fixture, user, post, 300, true)
    expect(violations.lost).toBeGreaterThan(0)
  })

  test('two runs never purge the same table at once: one holding the lock makes the other leave it', async () => {
    const { db, raw } = fixture
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const ids = [await insertComment(db, post, user), await insertComment(db, post, user)]
    await softDelete(db, 'comments', { ids })
    await age(raw, 'comments', ids)
    let release!: () => void
    const held = new Promise<void>((done) => (release = done))
    let locked!: () => void
    const isLocked = new Promise<void>((done) => (locked = done))
    const holder = raw.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext('tombstone:purge:comments'))`.execute(trx)
      locked()
      await held
    })
    await isLocked
    const blocked = await purge(db, { tables: ['comments'] })
    expect(blocked.tables.comments).toMatchObject({ count: 0, skipped: 'busy' })
    expect(numbers((await raw.selectFrom('comments').select('id').where('id', 'in', ids).execute()).map((row) => row.id))).toEqual(numbers(ids))
    release()
    await holder
    const after = await purge(db, { tables: ['comments'] })
    expect(after.tables.comments?.count).toBeGreaterThanOrEqual(2)
  })

  test('concurrent runs together purge everything exactly once', async () => {
    const { db, raw } = fixture
    const user = await insertUser(db)
    const posts: number[] = []
    for (let i = 0; i < 200; i++) posts.push(await insertPost(db, user))
    await softDelete(db, 'posts', { ids: posts })
    await age(raw, 'posts', posts)
    const runs = await Promise.all([1, 2, 3].map(() => purge(db, { tables: ['posts'], batchSize: 20 })))
    const left = await raw.selectFrom('posts').select('id').where('id', 'in', posts).execute()
    const followUp = await purge(db, { tables: ['posts'], batchSize: 20 })
    const total = runs.reduce((sum, run) => sum + run.count, 0) + followUp.count
    expect(left.length === 0 || followUp.count === left.length).toBe(true)
    expect(total).toBe(200)
    const audited = await sql<{ n: number }>`select count(*)::int as n from tombstone_audit where action = 'purge' and entity = 'posts' and entity_id = any(${posts.map(String)})`.execute(raw)
    expect(audited.rows[0]?.n).toBe(200)
  })
})
