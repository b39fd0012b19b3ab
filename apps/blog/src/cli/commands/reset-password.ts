import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { hashPassword } from '../../services/passwords.ts'
import { revokeTokens } from '../../services/tokens.ts'
import { CliError, print, usingDatabase, type CliIO, type CommonOptions } from '../io.ts'

/**
 * `reset-password <username>`: gives an active user (an admin who lost theirs) a generated password,
 * printed once, and revokes their tokens.
 */
export function resetPasswordCommand(program: Command, io: CliIO): void {
  program
    .command('reset-password')
    .argument('<username>', 'an active user')
    .description('Give an active user a new generated password, printed once, and revoke their tokens')
    .addHelpText('after', '\nExamples:\n  $ npm run cli -- reset-password admin\n  $ npm run cli -- reset-password admin --json')
    .action(async (username: string, options: CommonOptions) => {
      const password = randomBytes(12).toString('base64url')
      await usingDatabase(io, options, async ({ db }) => {
        const hash = await hashPassword(password)
        const user = await db.transaction().execute(async (trx) => {
          const updated = await trx.updateTable('users').set({ password_hash: hash }).where('username', '=', username).returning('id').executeTakeFirst()
          if (updated !== undefined) await revokeTokens(trx, [updated.id])
          return updated
        })
        if (user === undefined) throw new CliError(`No active user is called ${username}`)
        print(io, options, { id: user.id, username, password }, () => `New password of "${username}": ${password} (shown once; their tokens are revoked)`)
      })
    })
}
