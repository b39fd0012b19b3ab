import type { Command } from 'commander'
import { serve } from '../../server.ts'
import { configOf, positiveInteger, type CliIO, type CommonOptions } from '../io.ts'

export function serveCommand(program: Command, io: CliIO): void {
  program
    .command('serve')
    .description('Start the service (what npm start runs)')
    .option('--host <host>', 'listen address (HOST)')
    .option('--port <port>', 'listen port (PORT)', positiveInteger(65_535))
    .addHelpText('after', '\nExamples:\n  $ tombstone-blog serve\n  $ tombstone-blog serve --port 8080 --database-url memory://')
    .action(async (options: CommonOptions & { host?: string; port?: number }) => {
      const config = configOf(io, options)
      await serve({ ...config, ...(options.host === undefined ? {} : { host: options.host }), ...(options.port === undefined ? {} : { port: options.port }) })
      // Keeps running until SIGTERM/SIGINT.
      await new Promise(() => {})
    })
}
