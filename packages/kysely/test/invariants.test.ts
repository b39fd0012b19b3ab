/**
 * The invariants the database holds for every client, not only for the toolkit: deletion stamps set
 * by the database, the audit written by the database, no active row under a deleted parent, and the
 * hard-delete opt-in bound to one transaction. Part one writes as psql would (the `raw` instance has
 * no plugin) on every database; part two forces interleavings of two real connections on PostgreSQL
 * and MariaDB (PGlite is one connection and SQLite one writer, so neither can interleave), waiting
 * until the server shows a connection blocked on the lock the test means, never sleeping and hoping.
 */
import { CompiledQuery, Kysely, MysqlDialect, PostgresDialect, sql, type ControlledTransaction, type DatabaseConnection } from 'kysely'
import { createConnection as createMysqlConnection, createPool as createMysqlPool } from 'mysql2'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, test, test as vitestTest } from 'vitest'
import { backdate, dialectKinds, mysqlUrl, postgresUrl, type DatabaseKind } from '@tombstone/testing'
import {
  classifyDatabaseError,
  DeletionStampedError,
  NotFoundError,
  ParentDeletedError,
  purge,
  restore,
  softDelete,
  SoftDeletePlugin,
  sqlStateOf,
} from '../src/index.ts'
import { purgeWithHooks } from '../src/purge/purge.ts'
import { createFixture, definition, type Database, type Fixture } from './support/fixture.ts'
import { insertComment, insertPost, insertUser, stateOf } from './support/data.ts'
import { daysFromNow } from './support/dialect-sql.ts'

const error = (promise: Promise<unknown>) => promise.then(() => undefined, (caught: unknown) => caught)

/** What a dialect cannot run of this table, by test name, with the reason. */
const lacks: Partial<Record<DatabaseKind, Readonly<Record<string, string>>>> = {
  sqlite: {
    "who and why come from the toolkit's context of this transaction only":
      'SQLite has no settings or transaction ids: its context is a row the toolkit writes and removes inside the transaction (docs/dialects.md)',
    'no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction':
      'SQLite has no settings; its opt-in is a grant row, removed before every commit (tested in operations.test.ts: the database guard)',
    'checked at commit: the children after the parent in the same transaction, or the parent restored before the commit, pass':
      "SQLite has no deferred triggers: a client outside the toolkit is refused at the parent's own statement, so it deletes the children first (the test above; docs/dialects.md)",
  },
  mysql: {
    "who and why come from the toolkit's context of this transaction only":
      'MariaDB has no transaction-bound settings: its context is a row keyed by the connection, removed by the toolkit before the operation ends (docs/dialects.md)',
    'no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction':
      'MariaDB has no settings; its opt-in is a connection-keyed grant row that withHardDeletes removes (tested in operations.test.ts: the database guard)',
    'checked at commit: the children after the parent in the same transaction, or the parent restored before the commit, pass':
      "MariaDB has no deferred triggers: a client outside the toolkit is refused at the parent's own statement, so it deletes the children first (the test above; docs/dialects.md)",
  },
}

const DAY = 86_400_000

describe.each(dialectKinds())('database invariants on %s', (kind) => {
  const test = (name: string, fn: () => Promise<void>) => {
    const reason = lacks[kind]?.[name]
    return vitestTest.skipIf(reason !== undefined)(reason === undefined ? name : `${name} (skipped: ${reason})`, fn)
  }
  let fixture: Fixture
  let db: Kysely<Database>
  let raw: Kysely<Database>
  beforeAll(async () => {
    fixture = await createFixture(kind)
    db = fixture.db
    raw = fixture.raw
  })
  afterAll(async () => {
    await fixture?.close()
  })

  const auditOf = (entity: string, id: number) =>
    raw
      .selectFrom('tombstone_audit' as any)
      .select(['action', 'actor', 'reason', 'deletion_id'])
      .where('entity', '=', entity)
      .where('entity_id', '=', String(id))
      .orderBy('id')
      .execute()

  test('a plain UPDATE that deletes is stamped by the database and audited; a plain restore too', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // A year in the past and no purge date: the database takes its own clock and the table's retention.
    await sql`update posts set deleted_at = ${daysFromNow(kind, -365)} where id = ${post}`.execute(raw)
    const stamped = await stateOf(raw, 'posts', post)
    const deletedAt = new Date(stamped!.deleted_at!).getTime()
    expect(Date.now() - deletedAt).toBeLessThan(60_000)
    expect(new Date(stamped!.purge_at!).getTime() - deletedAt).toBe(30 * DAY)
    expect(stamped?.deletion_id).toEqual(expect.any(String))
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'soft_delete', deletion_id: stamped?.deletion_id })])

    await sql`update posts set deleted_at = null where id = ${post}`.execute(raw)
    expect(await stateOf(raw, 'posts', post)).toEqual({ deleted_at: null, deleted_by: null, delete_reason: null, deletion_id: null, purge_at: null })
    expect((await auditOf('posts', post)).map((row) => row.action)).toEqual(['soft_delete', 'restore'])
  })

  test("a deleted row's stamps never move earlier or change; purge_at may move later", async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post }, { by: 'alice', reason: 'spam' })
    for (const change of [
      sql`update posts set purge_at = ${daysFromNow(kind, -365)} where id = ${post}`,
      sql`update posts set deleted_at = ${daysFromNow(kind, -365)} where id = ${post}`,
      sql`update posts set deletion_id = '00000000-0000-4000-8000-000000000999' where id = ${post}`,
      sql`update posts set deleted_by = 'mallory' where id = ${post}`,
    ]) {
      const caught = await error(change.execute(raw))
      expect(sqlStateOf(caught)).toBe('TB005')
      expect(classifyDatabaseError(caught)).toBeInstanceOf(DeletionStampedError)
    }
    await sql`update posts set purge_at = ${daysFromNow(kind, 365)} where id = ${post}`.execute(raw)
    expect((await stateOf(raw, 'posts', post))?.deleted_by).toBe('alice')
  })

  test("who and why come from the toolkit's context of this transaction only", async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    // Another transaction's context (as a session-level SET through a pooler would leave it) is ignored.
    await sql`select set_config('tombstone.context', json_build_object('txid', '1', 'actor', 'mallory')::text, false)`.execute(raw)
    await sql`update posts set deleted_at = now() where id = ${post}`.execute(raw)
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'soft_delete', actor: null })])
    await sql`select set_config('tombstone.context', '', false)`.execute(raw)
    await restore(db, 'posts', { id: post }, { by: 'bob', reason: 'mistake' })
    expect((await auditOf('posts', post)).at(-1)).toMatchObject({ action: 'restore', actor: 'bob', reason: 'mistake' })
  })

  test('no setting of any value is a hard-delete opt-in; the opt-in is recorded and ends with its transaction', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    for (const attempt of [
      sql`set tombstone.allow_hard_delete = on`,
      sql`select set_config('tombstone.allow_hard_delete', 'on', false)`,
      sql`select set_config('tombstone.context', json_build_object('txid', txid_current()::text)::text, false)`,
    ]) {
      await attempt.execute(raw)
      expect(((await error(sql`delete from posts where id = ${post}`.execute(raw))) as { code?: string }).code).toBe('TB001')
    }
    await sql`reset tombstone.allow_hard_delete`.execute(raw)
    await raw.transaction().execute(async (trx) => {
      await sql`select tombstone_allow_hard_delete('hard_delete', 'ops', 'cleanup')`.execute(trx)
      await sql`delete from posts where id = ${post}`.execute(trx)
    })
    expect(await auditOf('posts', post)).toEqual([expect.objectContaining({ action: 'hard_delete', actor: 'ops', reason: 'cleanup' })])
    expect(((await error(sql`delete from posts where id = -1`.execute(raw))) as { code?: string }).code).toBe('TB001')
  })

  test('an active row under a deleted parent is refused, from any client: insert, restore by hand, dependents', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const other = await insertUser(db)
    await softDelete(db, 'posts', { id: post })
    const inserted = await error(sql`insert into comments (post_id, author_id, body) values (${post}, ${other}, 'late')`.execute(raw))
    expect(sqlStateOf(inserted)).toBe('TB003')
    expect(classifyDatabaseError(inserted)).toMatchObject({ code: 'PARENT_DELETED', table: 'comments', parentTable: 'posts', parentId: String(post) })
    const revived = await error(sql`update comments set deleted_at = null where id = ${comment}`.execute(raw))
    expect(classifyDatabaseError(revived)).toBeInstanceOf(ParentDeletedError)
    // Moving a comment under a deleted post is refused too.
    const live = await insertPost(db, other)
    const moved = await insertComment(db, live, other)
    expect(sqlStateOf(await error(sql`update comments set post_id = ${post} where id = ${moved}`.execute(raw)))).toBe('TB003')
    // A table that is not soft-deletable but depends on a user (sessions, tokens) cannot gain rows under a deleted user.
    await softDelete(db, 'users', { id: other })
    const session = await error(sql`insert into sessions (user_id) values (${other})`.execute(raw))
    expect(classifyDatabaseError(session)).toMatchObject({ code: 'PARENT_DELETED', table: 'sessions', parentTable: 'users' })
    expect(await raw.selectFrom('comments').select('id').where('post_id', '=', post).where('deleted_at', 'is', null).execute()).toEqual([])
  })

  test('a plain UPDATE deleting a parent that keeps an active child is refused; the children deleted first, in the same transaction, pass', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    const now = daysFromNow(kind, 0)
    const refused = await error(sql`update posts set deleted_at = ${now} where id = ${post}`.execute(raw))
    expect(sqlStateOf(refused)).toBe('TB003')
    expect(classifyDatabaseError(refused)).toMatchObject({ code: 'PARENT_DELETED', table: 'comments', id: String(comment), parentTable: 'posts', parentId: String(post) })
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
    // Two relations from users: refused by the one with an active row.
    expect(classifyDatabaseError(await error(sql`update users set deleted_at = ${now} where id = ${user}`.execute(raw)))).toMatchObject({ parentTable: 'users' })
    await raw.transaction().execute(async (trx) => {
      await sql`update comments set deleted_at = ${now} where post_id = ${post}`.execute(trx)
      await sql`update posts set deleted_at = ${now} where id = ${post}`.execute(trx)
    })
    expect((await stateOf(raw, 'posts', post))?.deleted_at).not.toBeNull()
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).not.toBeNull()
  })

  test('checked at commit: the children after the parent in the same transaction, or the parent restored before the commit, pass', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    // Deleted and restored again before the commit: nothing is left under a deleted parent.
    await raw.transaction().execute(async (trx) => {
      await sql`update posts set deleted_at = now() where id = ${post}`.execute(trx)
      await sql`update posts set deleted_at = null where id = ${post}`.execute(trx)
    })
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
    // The children in the same transaction, after the parent or before it.
    await raw.transaction().execute(async (trx) => {
      await sql`update posts set deleted_at = now() where id = ${post}`.execute(trx)
      await sql`update comments set deleted_at = now() where post_id = ${post}`.execute(trx)
    })
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).not.toBeNull()
    const second = await insertPost(db, user)
    await raw.transaction().execute(async (trx) => {
      await sql`update comments set deleted_at = now() where author_id = ${user} and deleted_at is null`.execute(trx)
      await sql`update posts set deleted_at = now() where author_id = ${user} and deleted_at is null`.execute(trx)
      await sql`update users set deleted_at = now() where id = ${user}`.execute(trx)
    })
    expect((await stateOf(raw, 'posts', second))?.deleted_at).not.toBeNull()
  })

  test('restoring a user leaves deleted a descendant whose other parent was deleted on its own since', async () => {
    const alice = await insertUser(db)
    const bob = await insertUser(db)
    const bobsPost = await insertPost(db, bob)
    const alicesComment = await insertComment(db, bobsPost, alice)
    await softDelete(db, 'users', { id: alice })
    await softDelete(db, 'posts', { id: bobsPost })
    const result = await restore(db, 'users', { id: alice })
    expect(result.restored).toEqual([alice])
    expect((await stateOf(raw, 'comments', alicesComment))?.deleted_at).not.toBeNull()
  })
})

/** The two servers that can interleave (PGlite is one connection, SQLite one writer). */
type Server = 'postgres' | 'mysql'

/** A server, and the session every connection of the suite runs in there. */
interface Interleaving {
  readonly server: Server
  readonly label: string
  readonly isolation: 'read committed' | 'repeatable read'
  readonly session: readonly string[]
}

/**
 * Lock waits that fail fast: a wait no test forces (one the test itself would release only after it)
 * ends in an error after 20 s, instead of never on PostgreSQL and after InnoDB's 50 s on MariaDB
 * (`lock_wait_timeout`: metadata locks, whose default is a day). A wait a test forces lasts as long
 * as its barrier takes to see it (10 s at most).
 */
const POSTGRES_FAIL_FAST = ["set lock_timeout = '20s'"] as const
const MYSQL_FAIL_FAST = ['set session innodb_lock_wait_timeout = 20', 'set session lock_wait_timeout = 20'] as const

/**
 * PostgreSQL (READ COMMITTED, its default), and MariaDB in both isolation levels an application runs
 * it in: InnoDB reads the tables of a data-modifying statement's triggers with shared locks in
 * REPEATABLE READ (its default) whatever the trigger says, but an `UPDATE`'s without locks in
 * READ COMMITTED, where only the trigger's own `LOCK IN SHARE MODE` makes it wait.
 */
const interleavings = (): Interleaving[] => [
  ...(postgresUrl() === undefined ? [] : [{ server: 'postgres' as const, label: 'postgres', isolation: 'read committed' as const, session: POSTGRES_FAIL_FAST }]),
  ...(mysqlUrl() === undefined
    ? []
    : [
        { server: 'mysql' as const, label: 'mysql, REPEATABLE READ', isolation: 'repeatable read' as const, session: MYSQL_FAIL_FAST },
        {
          server: 'mysql' as const,
          label: 'mysql, READ COMMITTED',
          isolation: 'read committed' as const,
          session: [...MYSQL_FAIL_FAST, 'set session transaction isolation level read committed'],
        },
      ]),
]

/** A connection of its own, to interleave by hand: statements with `$n` placeholders, and its id on the server. */
interface Connection {
  readonly id: number
  query(text: string, params?: readonly unknown[]): Promise<unknown>
  end(): Promise<void>
}

async function connect({ server: kind, session }: Interleaving, url: string): Promise<Connection> {
  if (kind === 'postgres') {
    const connection = new pg.Client({ connectionString: url })
    await connection.connect()
    for (const statement of session) await connection.query(statement)
    const id = (await connection.query<{ id: number }>('select pg_backend_pid() as id')).rows[0]?.id as number
    return { id, query: (text, params) => connection.query(text, params as unknown[]), end: () => connection.end() }
  }
  const connection = createMysqlConnection({ uri: url, supportBigNumbers: true }).promise()
  for (const statement of session) await connection.query(statement)
  const [rows] = await connection.query('select connection_id() as id')
  const id = Number((rows as Array<{ id: number }>)[0]?.id)
  return {
    id,
    query: (text, params) => connection.query(text.replace(/\$\d+/g, '?'), params as unknown[]),
    end: () => connection.end(),
  }
}

/** The Kysely instances of an interleaving suite, on the fixture's database: new pools whose sessions fail fast. */
function instances({ server: kind, session }: Interleaving, fixture: Fixture): { db: Kysely<Database>; raw: Kysely<Database>; close(): Promise<void> } {
  const url = fixture.database.url as string
  const onCreateConnection = async (connection: DatabaseConnection) => {
    for (const statement of session) await connection.executeQuery(CompiledQuery.raw(statement))
  }
  const dialect = () => {
    if (kind === 'mysql') {
      return new MysqlDialect({ pool: createMysqlPool({ uri: url, connectionLimit: 10, supportBigNumbers: true, dateStrings: false }), onCreateConnection })
    }
    const pool = new pg.Pool({ connectionString: url, max: 10 })
    // Dropping the database terminates connections still closing; that is expected, not a failure.
    pool.on('error', () => {})
    return new PostgresDialect({ pool, onCreateConnection })
  }
  const db = new Kysely<Database>({ dialect: dialect(), plugins: [new SoftDeletePlugin(definition)] })
  const raw = new Kysely<Database>({ dialect: dialect() })
  return { db, raw, close: async () => void (await Promise.all([db.destroy(), raw.destroy()])) }
}

/** The lock a connection was seen waiting for: who holds it (both servers), and on MariaDB the table and mode. */
interface LockWait {
  readonly holders: readonly number[]
  readonly table?: string
  readonly mode?: string
}

/**
 * Resolves once the connection `id` waits on a row lock, as the server shows it: PostgreSQL's
 * pg_stat_activity wait event and `pg_blocking_pids`; MariaDB's InnoDB transaction in `LOCK WAIT`
 * and the lock it requested (`information_schema.innodb_lock_waits`, `innodb_locks`). Polls the
 * server until it shows the wait, never sleeping and hoping. Fails at once if `pending` (the
 * waiting statement) settles first, having never waited, and after 10 s otherwise.
 *
 * InnoDB's information_schema tables are a copy it refreshes only once nobody has read it for
 * 100 ms: polled faster, it shows the same old copy for as long as the polling goes on (why the
 * first MariaDB attempt missed waits), so MariaDB is polled 150 ms apart. A copy can still be one
 * read just before, showing a wait already over: a wait an earlier barrier saw is not taken again.
 */
async function blocked(kind: Server, admin: Connection, id: number, pending: Promise<unknown>, seen: Set<string>): Promise<LockWait> {
  let settled = false
  void pending.then(
    () => (settled = true),
    () => (settled = true),
  )
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (kind === 'postgres') {
      const result = (await admin.query(
        `select pg_blocking_pids(pid) as holders from pg_stat_activity where pid = $1 and wait_event_type = 'Lock'`,
        [id],
      )) as pg.QueryResult<{ holders: number[] }>
      const row = result.rows[0]
      if (row !== undefined && row.holders.length > 0) return { holders: row.holders }
    } else {
      const [rows] = (await admin.query(
        `select r.trx_id as waiter, w.requested_lock_id as lock_id, b.trx_mysql_thread_id as holder, l.lock_table as lock_table, l.lock_mode as lock_mode
         from information_schema.innodb_trx r
         join information_schema.innodb_lock_waits w on w.requesting_trx_id = r.trx_id
         join information_schema.innodb_trx b on b.trx_id = w.blocking_trx_id
         join information_schema.innodb_locks l on l.lock_id = w.requested_lock_id
         where r.trx_mysql_thread_id = $1 and r.trx_state = 'LOCK WAIT'`,
        [id],
      )) as [Array<{ waiter: string; lock_id: string; holder: number; lock_table: string; lock_mode: string }>, unknown]
      const first = rows[0]
      // The waiter of a statement not yet given a transaction id (an autocommit INSERT's trigger) shows as trx 0.
      const wait = first === undefined ? undefined : `${id}/${first.waiter}/${first.lock_id}`
      if (first !== undefined && wait !== undefined && !seen.has(wait) && !settled) {
        seen.add(wait)
        // `db`.`table` → table
        return { holders: rows.map((row) => Number(row.holder)), table: first.lock_table.split('.').at(-1)?.replaceAll('`', ''), mode: first.lock_mode }
      }
    }
    if (settled) throw new Error(`connection ${id} finished its statement without ever waiting on a lock`)
    await new Promise((resolve) => setTimeout(resolve, kind === 'mysql' ? 150 : 10))
  }
  const state =
    kind === 'mysql'
      ? JSON.stringify(((await admin.query('select state, info from information_schema.processlist where id = $1', [id])) as [unknown[]])[0])
      : ''
  throw new Error(`connection ${id} never waited on a lock within 10 s ${state}`)
}

/** A toolkit transaction kept open, with its connection's id on the server. */
async function openTransaction(kind: Server, db: Kysely<Database>): Promise<{ trx: ControlledTransaction<Database>; pid: number }> {
  const trx = await db.startTransaction().execute()
  const query = kind === 'postgres' ? sql<{ pid: number }>`select pg_backend_pid() as pid` : sql<{ pid: number }>`select connection_id() as pid`
  const pid = Number((await query.execute(trx)).rows[0]?.pid)
  return { trx, pid }
}

/** What one server cannot run of the interleavings, by test name, with the reason. */
const interleavingLacks: Partial<Record<Server, Readonly<Record<string, string>>>> = {
  postgres: {
    'delete a child on its own while its parent is being restored: it waits for the restore, then deletes the restored child and its descendants':
      "MariaDB's order: PostgreSQL's statement reads the state before the restore (the test above)",
  },
  mysql: {
    'a user cascade and a bulk delete of the same posts, heap order unlike key order: no deadlock':
      'InnoDB keeps rows in primary-key order (a clustered index): there is no heap order unlike key order to force',
    'delete a child on its own while its parent is being restored: it sees the state before the restore, and no child is left under a deleted parent':
      "PostgreSQL's order: InnoDB's locking read waits for the restore's row lock instead (the test below)",
  },
}

describe.skipIf(interleavings().length === 0).each(interleavings())('database invariants under forced interleavings on $label (two connections)', (interleaving) => {
  const kind = interleaving.server
  const test = (name: string, fn: () => Promise<void>) => {
    const reason = interleavingLacks[kind]?.[name]
    return vitestTest.skipIf(reason !== undefined)(reason === undefined ? name : `${name} (skipped: ${reason})`, fn)
  }
  let fixture: Fixture
  let own: ReturnType<typeof instances>
  let db: Kysely<Database>
  let raw: Kysely<Database>
  let admin: Connection
  let other: Connection
  const seen = new Set<string>()
  const opened: { trx: ControlledTransaction<Database>; pid: number }[] = []
  const open = async (database: Kysely<Database>) => {
    const transaction = await openTransaction(kind, database)
    opened.push(transaction)
    return transaction
  }
  /** Waits until connection `id` is blocked on a lock; on MariaDB, checks the table it waits on (what each order is about). */
  const waitsOnLock = async (id: number, pending: Promise<unknown>, expected: { holder?: number; table: string | readonly string[] }) => {
    const lock = await blocked(kind, admin, id, pending, seen)
    if (expected.holder !== undefined) expect(lock.holders).toContain(expected.holder)
    if (kind === 'mysql') expect(typeof expected.table === 'string' ? [expected.table] : expected.table).toContain(lock.table)
    return lock
  }
  beforeAll(async () => {
    fixture = await createFixture(kind)
    own = instances(interleaving, fixture)
    db = own.db
    raw = own.raw
    admin = await connect(interleaving, fixture.database.url as string)
    other = await connect(interleaving, fixture.database.url as string)
  })
  // A failed test must not leave a transaction holding locks for the next, nor a statement waiting
  // for one: a connection runs its statements in turn, so its rollback would queue behind the wait.
  afterEach(async () => {
    const ids = [other.id, ...opened.map((transaction) => transaction.pid)]
    if (kind === 'postgres') {
      await admin.query(`select pg_cancel_backend(pid) from pg_stat_activity where pid = any($1) and state = 'active'`, [ids])
    } else {
      const [running] = (await admin.query(`select id from information_schema.processlist where command = 'Query' and id in (${ids.map(Number).join(', ')})`)) as [Array<{ id: number }>]
      for (const { id } of running) await admin.query(`kill query ${Number(id)}`)
    }
    await other.query('rollback')
    for (const { trx } of opened.splice(0)) if (!trx.isCommitted && !trx.isRolledBack) await trx.rollback().execute()
  })
  afterAll(async () => {
    await other?.end()
    await admin?.end()
    await own?.close()
    await fixture?.close()
  })

  const activePostsOf = async (user: number) =>
    raw.selectFrom('posts').select('id').where('author_id', '=', user).where('deleted_at', 'is', null).execute()
  const orphans = async () => {
    const rows = await sql<{ n: number }>`select count(*) as n from comments c join posts p on p.id = c.post_id
      where c.deleted_at is null and p.deleted_at is not null`.execute(raw)
    return Number(rows.rows[0]?.n)
  }

  test('insert child while the parent is being deleted: the insert waits, then is refused', async () => {
    const user = await insertUser(db)
    const deleting = await open(db)
    await softDelete(deleting.trx, 'users', { id: user })
    const insert = error(other.query(`insert into posts (author_id, title, slug) values ($1, 'late', $2)`, [user, `late-${user}`]))
    // MariaDB: the trigger's LOCK IN SHARE MODE read of the user waits for the delete's X lock.
    await waitsOnLock(other.id, insert, { holder: deleting.pid, table: 'users' })
    await deleting.trx.commit().execute()
    expect(classifyDatabaseError(await insert)).toBeInstanceOf(ParentDeletedError)
    expect(await activePostsOf(user)).toEqual([])
  })

  test('parent delete while a child is being inserted: the delete waits, then cascades to it', async () => {
    const user = await insertUser(db)
    await other.query('begin')
    await other.query(`insert into posts (author_id, title, slug) values ($1, 'early', $2)`, [user, `early-${user}`])
    const deleting = await open(db)
    const deleted = softDelete(deleting.trx, 'users', { id: user })
    // MariaDB: the insert holds the user S-locked (its trigger's read, its foreign key check); the delete's FOR UPDATE waits.
    await waitsOnLock(deleting.pid, deleted, { holder: other.id, table: 'users' })
    await other.query('commit')
    const result = await deleted
    await deleting.trx.commit().execute()
    expect(result.tables.posts?.count).toBe(1)
    expect(await activePostsOf(user)).toEqual([])
  })

  test('insert a child while a plain UPDATE deletes its parent: the insert waits (its check locks the parent), then is refused', async () => {
    const user = await insertUser(db)
    await other.query('begin')
    await other.query('update users set deleted_at = now() where id = $1', [user])
    const inserting = await open(raw)
    const insert = error(sql`insert into posts (author_id, title, slug) values (${user}, 'late', ${`late-${user}`})`.execute(inserting.trx))
    await waitsOnLock(inserting.pid, insert, { holder: other.id, table: 'users' })
    await other.query('commit')
    expect(classifyDatabaseError(await insert)).toMatchObject({ code: 'PARENT_DELETED', table: 'posts', parentTable: 'users' })
  })

  test('a plain UPDATE deleting a parent while a child is being inserted: the delete waits, then is refused (at its commit on PostgreSQL)', async () => {
    const user = await insertUser(db)
    const inserting = await open(raw)
    await sql`insert into posts (author_id, title, slug) values (${user}, 'early', ${`early-${user}`})`.execute(inserting.trx)
    await other.query('begin')
    const deleting = error(other.query('update users set deleted_at = now() where id = $1', [user]))
    await waitsOnLock(other.id, deleting, { holder: inserting.pid, table: 'users' })
    await inserting.trx.commit().execute()
    // PostgreSQL checks at commit; MariaDB at the statement, whose locking read of the children
    // waited for the insert and reads it as committed.
    const statement = await deleting
    if (kind === 'postgres') expect(statement).toBeUndefined()
    const refused = kind === 'postgres' ? await error(other.query('commit')) : statement
    expect(classifyDatabaseError(refused)).toMatchObject({ code: 'PARENT_DELETED', table: 'posts', parentTable: 'users', parentId: String(user) })
    expect((await stateOf(raw, 'users', user))?.deleted_at).toBeNull()
    expect(await activePostsOf(user)).toHaveLength(1)
  })

  test('restore a child while its parent is being deleted: the restore waits, then is refused', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    await other.query('begin')
    // The restoring transaction read the user before the delete (MariaDB's REPEATABLE READ keeps that snapshot).
    await other.query('select count(*) from users where id = $1', [user])
    const deleting = await open(db)
    await softDelete(deleting.trx, 'users', { id: user })
    const restoring = error(other.query(`update posts set deleted_at = null where id = $1`, [post]))
    // MariaDB: the cascade's locking scan of the user's posts locked the deleted one too, and the restore's
    // UPDATE waits for it. READ COMMITTED lets go of a row that fails the condition when the scan used an
    // index (these tables are small enough for a full scan, which keeps it): then the trigger waits on the user.
    const on = interleaving.isolation === 'read committed' ? ['posts', 'users'] : 'posts'
    await waitsOnLock(other.id, restoring, { holder: deleting.pid, table: on })
    await deleting.trx.commit().execute()
    expect(classifyDatabaseError(await restoring)).toBeInstanceOf(ParentDeletedError)
    await other.query('rollback')
    expect(await activePostsOf(user)).toEqual([])
  })

  test('move a dependent row to a parent being deleted: the move waits, then is refused', async () => {
    const user = await insertUser(db)
    const doomed = await insertUser(db)
    await sql`insert into sessions (user_id) values (${user})`.execute(raw)
    const session = (await raw.selectFrom('sessions').select('id').where('user_id', '=', user).executeTakeFirstOrThrow()).id
    const deleting = await open(db)
    await softDelete(deleting.trx, 'users', { id: doomed })
    const moving = error(other.query('update sessions set user_id = $1 where id = $2', [doomed, session]))
    // MariaDB: the trigger's LOCK IN SHARE MODE read of the user waits for the delete's X lock. In READ
    // COMMITTED InnoDB reads an UPDATE's trigger tables without locks: without that clause the check
    // would pass on the user as it was, and only the foreign key check would wait, then let it through.
    await waitsOnLock(other.id, moving, { holder: deleting.pid, table: 'users' })
    await deleting.trx.commit().execute()
    expect(classifyDatabaseError(await moving)).toMatchObject({ code: 'PARENT_DELETED', table: 'sessions', parentTable: 'users' })
    expect(await raw.selectFrom('sessions').select('user_id').where('id', '=', session).executeTakeFirst()).toEqual({ user_id: user })
  })

  test('delete a parent while a child is being restored: the delete waits, then cascades to the restored child', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    const restoring = await open(db)
    await restore(restoring.trx, 'posts', { id: post })
    const deleting = await open(db)
    const deleted = softDelete(deleting.trx, 'users', { id: user })
    // MariaDB: the restore's parent check holds the user S-locked; the delete's FOR UPDATE waits.
    await waitsOnLock(deleting.pid, deleted, { holder: restoring.pid, table: 'users' })
    await restoring.trx.commit().execute()
    expect((await deleted).tables.posts?.count).toBe(1)
    await deleting.trx.commit().execute()
    expect(await activePostsOf(user)).toEqual([])
  })

  test('delete a child on its own while its parent is being restored: it sees the state before the restore, and no child is left under a deleted parent', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'users', { id: user })
    const restoring = await open(db)
    await restore(restoring.trx, 'users', { id: user })
    // READ COMMITTED: the restore is not committed, so the post is still deleted to this statement,
    // which has nothing to lock and nothing to do.
    const deleted = await softDelete(db, 'posts', { id: post })
    expect(deleted.alreadyDeleted).toEqual([post])
    await restoring.trx.commit().execute()
    expect(await orphans()).toBe(0)
    expect((await stateOf(raw, 'comments', comment))?.deleted_at).toBeNull()
  })

  test('delete a child on its own while its parent is being restored: it waits for the restore, then deletes the restored child and its descendants', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const comment = await insertComment(db, post, user)
    await softDelete(db, 'users', { id: user })
    const restoring = await open(db)
    await restore(restoring.trx, 'users', { id: user })
    const deleting = await open(db)
    const deleted = softDelete(deleting.trx, 'posts', { id: post })
    // The restore cascaded to the post and holds it X-locked; the delete's locking read waits, then reads it restored.
    await waitsOnLock(deleting.pid, deleted, { holder: restoring.pid, table: 'posts' })
    await restoring.trx.commit().execute()
    const result = await deleted
    await deleting.trx.commit().execute()
    expect(result.deleted).toEqual([post])
    expect(result.tables.comments?.ids.map(Number)).toEqual([comment])
    expect((await stateOf(raw, 'users', user))?.deleted_at).toBeNull()
    expect(await orphans()).toBe(0)
  })

  test('a user cascade and a bulk delete of the same posts, heap order unlike key order: no deadlock', async () => {
    const user = await insertUser(db)
    const first = await insertPost(db, user)
    const second = await insertPost(db, user)
    // Rewrite the first post so that its row now lies after the second in the heap.
    await sql`update posts set title = title || '' where id = ${first}`.execute(raw)
    const order = await sql<{ id: number }>`select id from posts where author_id = ${user} order by ctid`.execute(raw)
    expect(order.rows.map((row) => row.id)).toEqual([second, first])
    // A third connection holds the second post, so both operations queue behind it in a known order.
    await other.query('begin')
    await other.query('select 1 from posts where id = $1 for update', [second])
    const cascade = await open(db)
    // The cascade reads the posts in heap order (a sequential scan), as it does on a large table.
    await sql`set local enable_indexscan = off`.execute(cascade.trx)
    await sql`set local enable_bitmapscan = off`.execute(cascade.trx)
    const cascading = error(softDelete(cascade.trx, 'users', { id: user }))
    await waitsOnLock(cascade.pid, cascading, { holder: other.id, table: 'posts' })
    const bulk = await open(db)
    const bulkDeleting = error(softDelete(bulk.trx, 'posts', { ids: [first, second] }))
    await blocked(kind, admin, bulk.pid, bulkDeleting, seen)
    await other.query('commit')
    expect(await cascading).toBeUndefined()
    await cascade.trx.commit().execute()
    expect(await bulkDeleting).toBeUndefined()
    await bulk.trx.commit().execute()
    expect(await activePostsOf(user)).toEqual([])
  })

  test('insert a child in a transaction whose snapshot predates the parent delete: refused, the check reads the parent as committed', async () => {
    const user = await insertUser(db)
    await other.query('begin')
    // Takes the transaction's snapshot (MariaDB's REPEATABLE READ keeps it for every plain read after).
    await other.query('select count(*) from users where id = $1', [user])
    await softDelete(db, 'users', { id: user })
    const insert = await error(other.query(`insert into posts (author_id, title, slug) values ($1, 'stale', $2)`, [user, `stale-${user}`]))
    expect(classifyDatabaseError(insert)).toBeInstanceOf(ParentDeletedError)
    await other.query('rollback')
    expect(await activePostsOf(user)).toEqual([])
  })

  test('two soft deletes of one row at once: the second waits, then finds it deleted; stamped and audited once', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    const first = await open(db)
    const firstResult = await softDelete(first.trx, 'posts', { id: post }, { by: 'alice', reason: 'spam' })
    const second = await open(db)
    const secondResult = softDelete(second.trx, 'posts', { id: post }, { by: 'bob', reason: 'dup' })
    await waitsOnLock(second.pid, secondResult, { holder: first.pid, table: 'posts' })
    await first.trx.commit().execute()
    expect(firstResult.deleted).toEqual([post])
    expect((await secondResult).alreadyDeleted).toEqual([post])
    await second.trx.commit().execute()
    expect((await stateOf(raw, 'posts', post))?.deleted_by).toBe('alice')
    const audit = await raw.selectFrom('tombstone_audit' as any).select(['action', 'actor']).where('entity', '=', 'posts').where('entity_id', '=', String(post)).execute()
    expect(audit).toEqual([{ action: 'soft_delete', actor: 'alice' }])
  })

  test('purge while a due row is being restored: purge passes over the locked row, the restore stands', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    await backdate(raw, sql`update posts set deleted_at = ${daysFromNow(kind, -60)}, purge_at = ${daysFromNow(kind, -30)} where id = ${post}`)
    const restoring = await open(db)
    await restore(restoring.trx, 'posts', { id: post })
    // Nothing waits here: a wait would be on the restore, which commits only after the purge returns.
    const purged = await purge(db)
    expect(purged.tables.posts?.count ?? 0).toBe(0)
    await restoring.trx.commit().execute()
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
    // Once restored, the row is not due: a second run leaves it too.
    await purge(db)
    expect((await stateOf(raw, 'posts', post))?.deleted_at).toBeNull()
  })

  test('restore while a due row is being purged: the restore waits, then finds the row gone', async () => {
    const user = await insertUser(db)
    const post = await insertPost(db, user)
    await softDelete(db, 'posts', { id: post })
    await backdate(raw, sql`update posts set deleted_at = ${daysFromNow(kind, -60)}, purge_at = ${daysFromNow(kind, -30)} where id = ${post}`)
    // The purge's batch holds its rows (FOR UPDATE SKIP LOCKED) until this gate opens.
    let taken!: () => void
    const selected = new Promise<void>((resolve) => (taken = resolve))
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const purging = purgeWithHooks(db, { tables: ['posts'], where: { posts: (eb, column) => eb(column('id'), '=', post) } }, { afterSelect: () => (taken(), gate) })
    try {
      await Promise.race([selected, purging])
      const restoring = await open(db)
      const restored = error(restore(restoring.trx, 'posts', { id: post }))
      // The purge's connection is the pool's: the holder is not named here.
      await waitsOnLock(restoring.pid, restored, { table: 'posts' })
      release()
      expect((await purging).tables.posts?.count).toBe(1)
      expect(await restored).toBeInstanceOf(NotFoundError)
      await restoring.trx.rollback().execute()
    } finally {
      release()
      await purging.catch(() => undefined)
    }
    expect(await stateOf(raw, 'posts', post)).toBeUndefined()
  })

  test('a session (dependent row) created while its user is being deleted: waits, then is refused; the other order cascades nothing and leaves it to the app', async () => {
    const user = await insertUser(db)
    const deleting = await open(db)
    await softDelete(deleting.trx, 'users', { id: user })
    const login = error(other.query('insert into sessions (user_id) values ($1)', [user]))
    await waitsOnLock(other.id, login, { holder: deleting.pid, table: 'users' })
    await deleting.trx.commit().execute()
    expect(classifyDatabaseError(await login)).toMatchObject({ code: 'PARENT_DELETED', table: 'sessions' })
    expect(await raw.selectFrom('sessions').select('id').where('user_id', '=', user).execute()).toEqual([])
  })
})
