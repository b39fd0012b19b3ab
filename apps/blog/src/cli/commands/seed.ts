import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { sql } from 'kysely'
import { softDelete } from '@tombstone/kysely'
import { hashPassword } from '../../services/passwords.ts'
import { count, plural, positiveInteger, print, share, usingDatabase, type CliIO, type CommonOptions } from '../io.ts'
import { progressBar } from '../progress.ts'

interface SeedOptions extends CommonOptions {
  readonly users: number
  readonly postsPerUser: number
  readonly commentsPerPost: number
  readonly deletedShare: number
  readonly password?: string
}

/** Rows per statement, roughly: big enough to be fast, small enough to show progress. */
const ROWS_PER_CHUNK = 50_000

export function seedCommand(program: Command, io: CliIO): void {
  program
    .command('seed')
    .description('Generate users, posts and comments with set-based inserts, then soft-delete a share of the users (and, by cascade, what they own)')
    .option('--users <n>', 'users to create', positiveInteger(10_000_000), 100)
    .option('--posts-per-user <n>', 'posts per user', count(100_000), 10)
    .option('--comments-per-post <n>', 'comments per post', count(100_000), 5)
    .option('--deleted-share <share>', 'share of the users to soft-delete, 0 to 1, with everything they own', share, 0.3)
    .option('--password <password>', 'password of every seeded user (default: random, not printed)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ tombstone-blog seed --users 1000 --posts-per-user 100 --comments-per-post 9 --deleted-share 0.3\n  $ tombstone-blog seed --users 10 --password demo-password --json',
    )
    .action(async (options: SeedOptions) => {
      if (options.password !== undefined && options.password.length < 8) {
        throw new (await import('../io.ts')).CliError('--password must be at least 8 characters', 2)
      }
      await usingDatabase(io, options, async ({ db }) => {
        const started = performance.now()
        const run = randomBytes(3).toString('hex')
        const hash = await hashPassword(options.password ?? randomBytes(16).toString('base64url'))
        const rowsPerUser = 1 + options.postsPerUser * (1 + options.commentsPerPost)
        const usersPerChunk = Math.max(1, Math.floor(ROWS_PER_CHUNK / rowsPerUser))
        const total = options.users * rowsPerUser
        const bar = progressBar(io, 'seeding')
        let inserted = 0
        try {
          for (let first = 1; first <= options.users; first += usersPerChunk) {
            const last = Math.min(options.users, first + usersPerChunk - 1)
            // One statement per chunk: users, their posts, the comments on them (authors drawn from the chunk).
            await sql`
              with new_users as (
                insert into users (username, email, password_hash, created_at)
                select ${`seed_${run}_`} || g, ${`seed_${run}_`} || g || '@example.com', ${hash}, now() - random() * interval '730 days'
                from generate_series(${first}::int, ${last}::int) g
                returning id
              ),
              ids as (select array_agg(id) as a from new_users),
              new_posts as (
                insert into posts (author_id, title, slug, content, published, created_at)
                select u.id, 'Post ' || n || ' of user ' || u.id, ${`s${run}-`} || u.id || '-' || n,
                       'Generated content for post ' || n || '.', random() < 0.9, now() - random() * interval '365 days'
                from new_users u cross join generate_series(1, ${options.postsPerUser}::int) n
                returning id
              )
              insert into comments (post_id, author_id, body, created_at)
              select p.id, ids.a[1 + floor(random() * array_length(ids.a, 1))::int], 'Generated comment ' || n,
                     now() - random() * interval '180 days'
              from new_posts p cross join ids cross join generate_series(1, ${options.commentsPerPost}::int) n`.execute(db)
            inserted += (last - first + 1) * rowsPerUser
            bar.update(inserted, total)
          }
        } finally {
          bar.stop()
        }
        const insertSeconds = (performance.now() - started) / 1000
        const deleted = await softDelete(
          db,
          'users',
          { where: (eb) => eb.and([eb('username', 'like', `seed\\_${run}\\_%`), sql<boolean>`random() < ${options.deletedShare}`]) },
          { by: null, reason: 'seeded as deleted' },
        )
        const seconds = (performance.now() - started) / 1000
        const summary = {
          run,
          inserted: { users: options.users, posts: options.users * options.postsPerUser, comments: options.users * options.postsPerUser * options.commentsPerPost, total },
          soft_deleted: Object.fromEntries(Object.entries(deleted.tables).map(([name, entry]) => [name, entry.count])),
          insert_seconds: Number(insertSeconds.toFixed(2)),
          seconds: Number(seconds.toFixed(2)),
          rows_per_second: Math.round(total / insertSeconds),
        }
        print(io, options, summary, () =>
          [
            `Seeded ${plural(total, 'row')} (${plural(summary.inserted.users, 'user')}, ${plural(summary.inserted.posts, 'post')}, ${plural(summary.inserted.comments, 'comment')}) in ${summary.insert_seconds} s (${summary.rows_per_second} rows/s)`,
            `Soft-deleted ${deleted.count} of them with their owners (${Object.entries(summary.soft_deleted).map(([name, n]) => `${name}: ${n}`).join(', ')}); ${summary.seconds} s in all`,
            `Seeded usernames start with seed_${run}_`,
          ].join('\n'),
        )
      })
    })
}
