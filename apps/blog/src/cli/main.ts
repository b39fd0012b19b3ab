/**
 * The blog's command line: `npm run cli -- <command>` or the `tombstone-blog` bin.
 * Exit codes: 0 done, 1 failed, 2 bad arguments.
 */
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { ConfigError } from '../config.ts'
import { createAdminCommand } from './commands/create-admin.ts'
import { grantCommand } from './commands/grant.ts'
import { migrateCommand } from './commands/migrate.ts'
import { purgeCommand } from './commands/purge.ts'
import { resetPasswordCommand } from './commands/reset-password.ts'
import { seedCommand } from './commands/seed.ts'
import { serveCommand } from './commands/serve.ts'
import { statsCommand } from './commands/stats.ts'
import { CliError, type CliIO } from './io.ts'

/** The blog's version, from its package.json (what `--version` prints). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version

/** Builds the program; commands write to `io`. */
export function program(io: CliIO): Command {
  const root = new Command('tombstone-blog')
    .description('The Tombstone reference blog: run it, migrate it, seed it, purge it, measure it.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .addHelpText('after', '\nExamples:\n  $ npm run cli -- stats\n  $ npm run cli -- purge --dry-run --older-than 30d\n  $ npm run cli -- seed --users 1000 --posts-per-user 100 --comments-per-post 9')
  for (const add of [migrateCommand, grantCommand, serveCommand, seedCommand, purgeCommand, statsCommand, createAdminCommand, resetPasswordCommand]) add(root, io)
  for (const command of root.commands) {
    command
      .option('--json', 'machine-readable output on stdout')
      .option('--database-url <url>', 'the database (default: DATABASE_URL, else PGlite in ./.data)')
      .exitOverride()
      .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
  }
  return root
}

/**
 * Runs the CLI on arguments (without `node` and the script) and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await run(['stats', '--json'], { stdout: process.stdout, stderr: process.stderr, env: process.env })
 * ```
 */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  try {
    await program(io).parseAsync([...argv], { from: 'user' })
    return 0
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with code 0.
      return error.exitCode === 0 ? 0 : 2
    }
    if (error instanceof ConfigError) {
      io.stderr.write(`error: ${error.message}\n`)
      return 2
    }
    if (error instanceof CliError) {
      io.stderr.write(`error: ${error.message}\n`)
      return error.exitCode
    }
    io.stderr.write(`error: ${(error as Error).message}\n`)
    return 1
  }
}

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
}
