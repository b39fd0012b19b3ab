/**
 * Scenario 6: the same read with relations — a post, its author, its comments, deleted ones
 * excluded — through the toolkit, TypeORM and Sequelize, on the same tables: time per read, and
 * which of them returned deleted rows.
 */
import { sql } from 'kysely'
import { jsonArrayFrom, jsonObjectFrom } from 'kysely/helpers/postgres'
import type { Model } from 'sequelize'
import { sequelizeModels, typeormDataSource, type OrmPost } from '../peers-models.ts'
import type { Server } from '../postgres.ts'
import type { ScenarioResult } from '../report.ts'
import { blogDatabase } from '../setup.ts'
import { measurement, median, paired } from '../stats.ts'

interface Shape {
  id: number
  author: { id: number } | null
  comments: { id: number }[]
}

export async function peers(server: Server, options: { quick: boolean; repetitions: number }): Promise<ScenarioResult> {
  const posts = options.quick ? 2_000 : 10_000
  const bench = await blogDatabase(server, 'bench_peers', 8)
  const typeorm = await typeormDataSource(bench.url)
  const sequelize = sequelizeModels(bench.url)
  try {
    await sql`insert into users (username, email, password_hash) select 'user_' || g, 'u' || g || '@x', 'x' from generate_series(1, 200) g`.execute(bench.plain)
    await sql`insert into posts (author_id, title, slug, content) select 1 + g % 200, 'Post ' || g, 'post-' || g, 'x' from generate_series(1, ${posts}::int) g`.execute(bench.plain)
    await sql`insert into comments (post_id, author_id, body) select 1 + g % ${posts}::int, 1 + g % 200, 'c ' || g from generate_series(1, ${posts * 10}::int) g`.execute(bench.plain)
    // Three comments in ten deleted; one author in ten deleted (their posts left active, as happens
    // when a delete did not cascade). The database refuses that state since it checks a deleted
    // parent's children: these rows are data from before the check, written with the triggers off
    // (superuser's session_replication_role), as a legacy database holds them.
    await sql`update comments set deleted_at = now(), deletion_id = gen_random_uuid() where id % 10 < 3`.execute(bench.plain)
    await bench.plain.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx)
      await sql`update users set deleted_at = now(), deletion_id = gen_random_uuid() where id % 10 = 0`.execute(trx)
    })
    await sql`vacuum analyze`.execute(bench.plain)

    const postRepository = typeorm.getRepository<OrmPost>('Post')
    const id = (i: number) => 1 + ((i * 7919) % posts)
    const toolkit = async (i: number): Promise<Shape | undefined> => {
      const row = await bench.db
        .selectFrom('posts')
        .where('posts.id', '=', id(i))
        .select((eb) => [
          'posts.id',
          'posts.title',
          jsonObjectFrom(eb.selectFrom('users').select(['users.id', 'users.username']).whereRef('users.id', '=', 'posts.author_id')).as('author'),
          jsonArrayFrom(eb.selectFrom('comments').select(['comments.id', 'comments.body']).whereRef('comments.post_id', '=', 'posts.id')).as('comments'),
        ])
        .executeTakeFirst()
      return row === undefined ? undefined : { id: row.id, author: row.author, comments: row.comments }
    }
    const viaTypeorm = async (i: number): Promise<Shape | undefined> => {
      const post = await postRepository.findOne({ where: { id: id(i) }, relations: { author: true, comments: true } })
      return post === null ? undefined : { id: post.id, author: post.author ?? null, comments: post.comments ?? [] }
    }
    const viaSequelize = async (i: number): Promise<Shape | undefined> => {
      const post = (await sequelize.Post.findByPk(id(i), {
        include: [
          { model: sequelize.User, as: 'author' },
          { model: sequelize.Comment, as: 'comments' },
        ],
      })) as (Model & { id: number; author?: { id: number } | null; comments?: { id: number }[] }) | null
      return post === null ? undefined : { id: post.id, author: post.author ?? null, comments: post.comments ?? [] }
    }

    // Which returned deleted rows: compare each read with what is active.
    const deletedComments = new Set((await sql<{ id: number }>`select id from comments where deleted_at is not null`.execute(bench.plain)).rows.map((row) => row.id))
    const deletedUsers = new Set((await sql<{ id: number }>`select id from users where deleted_at is not null`.execute(bench.plain)).rows.map((row) => row.id))
    const leaks: Record<string, { comments: number; authors: number }> = {}
    for (const [name, read] of [
      ['toolkit', toolkit],
      ['TypeORM', viaTypeorm],
      ['Sequelize', viaSequelize],
    ] as const) {
      const count = { comments: 0, authors: 0 }
      for (let i = 0; i < 200; i++) {
        const shape = await read(i)
        if (shape === undefined) continue
        count.comments += shape.comments.filter((comment) => deletedComments.has(Number(comment.id))).length
        if (shape.author !== null && deletedUsers.has(Number(shape.author.id))) count.authors += 1
      }
      leaks[name] = count
    }

    const iterations = options.quick ? 300 : 1500
    const samples = await paired(options.repetitions, iterations, { toolkit, typeorm: viaTypeorm, sequelize: viaSequelize })
    const base = median(samples.toolkit)
    return {
      scenario: 'peers',
      description: 'a post with its author and its comments, deleted ones excluded, through the toolkit, TypeORM and Sequelize',
      sizes: { posts, comments: posts * 10, deleted_comments_share_pct: 30, deleted_authors_share_pct: 10, leak_check_reads: 200 },
      measurements: [
        measurement('toolkit (Kysely + plugin, one query with JSON subqueries)', samples.toolkit, 'µs/read'),
        measurement('TypeORM findOne with relations', samples.typeorm, 'µs/read'),
        measurement('Sequelize findByPk with include (paranoid)', samples.sequelize, 'µs/read'),
      ],
      ratios: [
        { name: 'TypeORM / toolkit', value: median(samples.typeorm) / base, baseline: 'toolkit' },
        { name: 'Sequelize / toolkit', value: median(samples.sequelize) / base, baseline: 'toolkit' },
      ],
      targets: [],
      notes: [
        ...Object.entries(leaks).map(
          ([name, count]) =>
            `${name}: in 200 reads returned ${count.comments} deleted comments and ${count.authors} deleted authors${count.comments + count.authors === 0 ? ' (none)' : ''}`,
        ),
        'Prisma 7 is not in this comparison: it was not attempted (see BENCHMARKS.md)',
      ],
    }
  } finally {
    await typeorm.destroy()
    await sequelize.sequelize.close()
    await bench.close()
  }
}
