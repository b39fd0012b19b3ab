import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { SQLSTATE, sqlStateOf } from '@tombstone/kysely'
import { hashPassword } from '../../services/passwords.ts'
import { CliError, print, usingDatabase, type CliIO, type CommonOptions } from '../io.ts'

/**
 * `create-admin <username>`: recovers an installation whose admins are lost (deleted, or nobody knows
 * a password): creates an active admin with a generated password, printed once.
 */
export function createAdminCommand(program: Command, io: CliIO): void {
  program
    .command('create-admin')
    .argument('<username>', 'the new admin\'s username ([a-z0-9_]{3,32}, free among active users)')
    .option('--email <email>', 'the admin\'s email (default <username>@localhost)')
    .description('Create an admin with a generated password, printed once (to recover an installation)')
    .addHelpText('after', '\nExamples:\n  $ npm run cli -- create-admin rescue\n  $ npm run cli -- create-admin rescue --email ops@example.com --json')
    .action(async (username: string, options: CommonOptions & { email?: string }) => {
      if (!/^[a-z0-9_]{3,32}$/.test(username)) throw new CliError('the username must match [a-z0-9_]{3,32}', 2)
      const password = randomBytes(12).toString('base64url')
      await usingDatabase(io, options, async ({ db }) => {
        const row = await db
          .insertInto('users')
          .values({ username, email: (options.email ?? `${username}@localhost`).toLowerCase(), password_hash: await hashPassword(password), role: 'admin' })
          .returning('id')
          .executeTakeFirstOrThrow()
          .catch((error: unknown) => {
            if (sqlStateOf(error) === SQLSTATE.uniqueViolation) throw new CliError(`An active user already has the username ${username} or that email`)
            throw error
          })
        print(io, options, { id: row.id, username, password }, () => `Created the admin "${username}" (id ${row.id}); password: ${password} (shown once)`)
      })
    })
}
