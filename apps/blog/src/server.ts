/**
 * The launcher: reads the environment, builds the service, bootstraps an empty database, listens,
 * prints where everything is, and shuts down cleanly on SIGTERM/SIGINT.
 */
import { buildApp } from './app.ts'
import { DatabaseInUseError } from './db/connect.ts'
import { SchemaOutdatedError } from './db/migrate.ts'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { bootstrap, markAdminPasswordShown } from './db/seed.ts'

export async function serve(config: Config): Promise<void> {
  const server = await buildApp(config)
  const result = await bootstrap(server.db, { adminPassword: config.adminPassword, demoData: config.demoData })
  // The first lines printed are ours (where everything is), not the framework's "listening" log.
  const level = server.log.level
  server.log.level = 'warn'
  const address = await server.listen({ host: config.host, port: config.port })
  server.log.level = level
  const base = address.replace('://[::1]', '://localhost')
  const lines = [
    `Tombstone blog API: ${base}`,
    `OpenAPI (Swagger UI): ${base}/docs   (document: ${base}/openapi.json)`,
    `Admin page: ${base}/admin`,
    `Database: ${server.databaseInfo.kind} (${server.databaseInfo.location})`,
  ]
  if (result.generatedAdminPassword !== undefined && !result.createdAdmin) {
    lines.push(`The admin's generated password was never shown (an earlier start stopped first); its new password: "${result.generatedAdminPassword}" (shown once)`)
  } else if (result.generatedAdminPassword !== undefined) {
    lines.push(`Created the admin user: username "admin", password "${result.generatedAdminPassword}" (shown once; set ADMIN_PASSWORD to choose it)`)
  } else if (result.createdAdmin) {
    lines.push('Created the admin user "admin" with the password from ADMIN_PASSWORD')
  }
  if (result.demoData) lines.push('Loaded the demo data set (DEMO_DATA=off to start empty)')
  await new Promise<void>((done) => process.stdout.write(`${lines.join('\n')}\n`, () => done()))
  // Only once the password has been written out is it no longer regenerated at the next start.
  if (result.generatedAdminPassword !== undefined) await markAdminPasswordShown(server.db)

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    server.log.info({ signal }, 'shutting down')
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.log.error({ err: error }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))
}

if (import.meta.main) {
  try {
    await serve(loadConfig())
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${error.message}\n`)
      process.exit(2)
    }
    if (error instanceof DatabaseInUseError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(4)
    }
    if (error instanceof SchemaOutdatedError) {
      process.stderr.write(`${error.message}\n`)
      process.exit(3)
    }
    const reason = unreachable(error)
    if (reason !== undefined) {
      process.stderr.write(`Cannot use the database: ${reason}\n`)
      process.exit(5)
    }
    throw error
  }
}

/**
 * Why the database cannot be used at start, in one line, when the error says so by its code (a
 * socket error, or a SQLSTATE of connection, authorization, missing database or resources): a
 * misconfigured or absent database is the operator's to fix, not a stack trace to read.
 */
function unreachable(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code !== 'string') return undefined
  const message = (error as Error).message.split('\n')[0] ?? code
  if (/^E[A-Z]+$/.test(code)) return `${message} (${code}); is the server running, and DATABASE_URL right?`
  if (code.startsWith('08') || code.startsWith('28') || code.startsWith('53') || code.startsWith('57P') || code === '3D000') {
    return `${message} (SQLSTATE ${code})`
  }
  return undefined
}
