// Builds the admin page when web/dist is missing or older than its sources, so that `npm start`
// serves a built page with no extra step. Plain JavaScript: it runs before anything else.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

const root = import.meta.dirname
const built = join(root, 'dist', 'index.html')

function newest(path) {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))))
}

const sources = ['src', 'index.html', 'vite.config.ts'].map((name) => join(root, name))
if (!existsSync(built) || Math.max(...sources.map(newest)) > statSync(built).mtimeMs) {
  process.stderr.write('Building the admin page (web/dist)…\n')
  const { build } = await import('vite')
  await build({ configFile: join(root, 'vite.config.ts'), logLevel: 'warn' })
}
