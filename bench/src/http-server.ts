/**
 * One server of the HTTP scenario in its own process, so that the load generator does not share
 * its event loop: `node --conditions=source http-server.ts <service|service-prepared|hand-written> <database url>`
 * (`service-prepared`: the service with `DB_PREPARED_STATEMENTS=on`).
 * Prints `listening <url>`, stops on SIGTERM.
 */
import pg from 'pg'
import { buildApp } from '../../apps/blog/src/app.ts'
import { loadConfig } from '../../apps/blog/src/config.ts'
import { handWritten } from './hand-written-server.ts'

const [which, url] = process.argv.slice(2) as [string, string]
const app =
  which === 'service' || which === 'service-prepared'
    ? await buildApp(
        loadConfig({
          DATABASE_URL: url,
          LOG_LEVEL: 'silent',
          PURGE_INTERVAL_MINUTES: '0',
          DEMO_DATA: 'off',
          DB_PREPARED_STATEMENTS: which === 'service-prepared' ? 'on' : 'off',
        }),
        false,
      )
    : handWritten(new pg.Pool({ connectionString: url, max: 10 }))
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`listening ${address}\n`)
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
