import { randomBytes } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import { restore, softDelete, withDeleted } from '@tombstone/kysely'
import type { Database } from './schema.ts'
import { hashPassword } from '../services/passwords.ts'
import { countAll, isSqlite } from './sql-dialect.ts'

/** What the bootstrap did, for the launcher to print. */
export interface BootstrapResult {
  /** The admin's password when it was generated here (printed once, never stored in clear). */
  readonly generatedAdminPassword: string | undefined
  readonly createdAdmin: boolean
  readonly demoData: boolean
}

/**
 * On an empty database (no user at all, deleted ones included): creates the admin `admin` with
 * `adminPassword` or a generated one, and, when asked, the demo data set. Does nothing otherwise, so
 * it is safe at every start and with several instances (one transaction, a table lock).
 *
 * @example
 * ```ts
 * const { generatedAdminPassword } = await bootstrap(db, { adminPassword: undefined, demoData: true })
 * ```
 */
export async function bootstrap(
  db: Kysely<Database>,
  options: { adminPassword: string | undefined; demoData: boolean },
): Promise<BootstrapResult> {
  const generated = options.adminPassword === undefined ? randomBytes(12).toString('base64url') : undefined
  const password = options.adminPassword ?? (generated as string)
  const passwordHash = await hashPassword(password)
  const outcome = await db.transaction().execute(async (trx) => {
    // SQLite: `begin immediate` already made this transaction the only writer.
    if (!isSqlite(trx)) await sql`lock table users in share row exclusive mode`.execute(trx)
    const existing = await trx
      .selectFrom('users')
      .select(countAll(trx).as('n'))
      .$call(withDeleted({ users: 'include' }))
      .executeTakeFirstOrThrow()
    if (existing.n > 0) {
      // An earlier start created the admin with a generated password but died before showing it:
      // make a new one (the unseen one stops working), to be shown now.
      const pending = await trx.selectFrom('bootstrap_state').select('admin_id').where('password_shown', '=', false).forUpdate().executeTakeFirst()
      if (pending === undefined) return undefined
      const fresh = randomBytes(12).toString('base64url')
      await trx.updateTable('users').set({ password_hash: await hashPassword(fresh) }).where('id', '=', pending.admin_id).execute()
      return { adminId: pending.admin_id, regenerated: fresh }
    }
    const admin = await trx
      .insertInto('users')
      .values({ username: 'admin', email: 'admin@localhost', password_hash: passwordHash, role: 'admin' })
      .returning('id')
      .executeTakeFirstOrThrow()
    // A generated password is pending until markAdminPasswordShown() says it reached the operator.
    await trx.insertInto('bootstrap_state').values({ admin_id: admin.id, password_shown: generated === undefined }).execute()
    return { adminId: admin.id, regenerated: undefined }
  })
  if (outcome === undefined) return { generatedAdminPassword: undefined, createdAdmin: false, demoData: false }
  if (outcome.regenerated !== undefined) return { generatedAdminPassword: outcome.regenerated, createdAdmin: false, demoData: false }
  const adminId = outcome.adminId
  if (options.demoData) await seedDemoData(db, adminId)
  return { generatedAdminPassword: generated, createdAdmin: true, demoData: options.demoData }
}

/**
 * Records that the generated admin password was shown (printed and flushed): from now on a start
 * leaves it alone. Until then, every start makes and shows a new one.
 *
 * @example
 * ```ts
 * process.stdout.write(lines, () => void markAdminPasswordShown(db))
 * ```
 */
export async function markAdminPasswordShown(db: Kysely<Database>): Promise<void> {
  await db.updateTable('bootstrap_state').set({ password_shown: true }).where('password_shown', '=', false).execute()
}

/**
 * A small demo data set: three authors, posts and comments, some of them deleted through the
 * toolkit (so that stamps, deletion ids and the audit trail are real). Demo users get random
 * passwords: they are content, not accounts to sign in with.
 */
export async function seedDemoData(db: Kysely<Database>, adminId: number): Promise<void> {
  const hash = await hashPassword(randomBytes(16).toString('base64url'))
  const users = await db
    .insertInto('users')
    .values(['alice', 'bob', 'carol'].map((name) => ({ username: name, email: `${name}@example.com`, password_hash: hash })))
    .returning(['id', 'username'])
    .execute()
  const id = (name: string) => users.find((user) => user.username === name)?.id as number
  // SQLite fills a column a multi-row insert leaves out with null, not its default: say it.
  const published = isSqlite(db) ? { published: true } : {}
  const posts = await db
    .insertInto('posts')
    .values([
      { ...published, author_id: id('alice'), title: 'Soft delete, done right', slug: 'soft-delete-done-right', content: 'Deleted rows should never leak.' },
      { ...published, author_id: id('alice'), title: 'Partial unique indexes', slug: 'partial-unique-indexes', content: 'Uniqueness among active rows only.' },
      { ...published, author_id: id('bob'), title: 'Restoring what was deleted', slug: 'restoring', content: 'Exactly what one operation deleted.' },
      { ...published, author_id: id('bob'), title: 'A post bob regretted', slug: 'regrets', content: 'This one is in the trash.' },
      { ...published, author_id: id('carol'), title: "Carol's first post", slug: 'carols-first-post', content: 'Carol deleted her account.' },
      { ...published, author_id: id('alice'), title: 'Draft: purge windows', slug: 'purge-windows', content: 'Not published yet.', published: false },
    ])
    .returning(['id', 'slug'])
    .execute()
  const post = (slug: string) => posts.find((row) => row.slug === slug)?.id as number
  await db
    .insertInto('comments')
    .values([
      { post_id: post('soft-delete-done-right'), author_id: id('bob'), body: 'Agreed, joins are where it leaks.' },
      { post_id: post('soft-delete-done-right'), author_id: id('carol'), body: 'What about subqueries?' },
      { post_id: post('restoring'), author_id: id('alice'), body: 'Deletion ids make it exact.' },
      { post_id: post('restoring'), author_id: id('alice'), body: 'Spam spam spam' },
      { post_id: post('regrets'), author_id: id('alice'), body: 'Why delete it?' },
    ])
    .execute()
  const spam = await db.selectFrom('comments').select('id').where('body', '=', 'Spam spam spam').executeTakeFirstOrThrow()
  await softDelete(db, 'comments', { id: spam.id }, { by: adminId, reason: 'spam' })
  await softDelete(db, 'posts', { id: post('regrets') }, { by: id('bob'), reason: 'changed my mind' })
  await softDelete(db, 'users', { id: id('carol') }, { by: id('carol'), reason: 'account closed' })
  // Keep the restore path exercised too: a post deleted and restored shows both in the audit.
  await softDelete(db, 'posts', { id: post('partial-unique-indexes') }, { by: adminId, reason: 'checking restore' })
  await restore(db, 'posts', { id: post('partial-unique-indexes') }, { by: adminId })
}
