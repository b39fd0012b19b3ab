#!/usr/bin/env node
// The published manifest of a workspace package, for `npm pack` and `npm publish` (run from the
// package's folder by its prepack and postpack scripts).
//
//   node ../../scripts/pack-manifest.mjs strip     (prepack)  checks that every `types` and
//     `default` target of `exports` exists (so a missing build or a wrong path fails the pack), then
//     removes the `source` conditions from package.json.
//   node ../../scripts/pack-manifest.mjs restore   (postpack) puts them back.
//
// Why: in this repository the `source` condition (`node --conditions=source`, vitest, tsc's
// customConditions) resolves each package to its TypeScript source. A consumer who runs with
// `--conditions=source` for their own monorepo must not get `.ts` files from node_modules (Node
// refuses to strip types there: ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so the tarball's
// manifest has no `source` condition. `src/` still ships, for the source and declaration maps.
//
// `restore` derives each `source` target from its `default` one (./dist/x.js -> ./src/x.ts), so it
// also repairs a package.json that a pack interrupted between the two scripts left stripped.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'

const mode = process.argv[2]
const file = resolve('package.json')
const text = readFileSync(file, 'utf8')
const manifest = JSON.parse(text)

function entries(exportsField) {
  if (typeof exportsField !== 'object' || exportsField === null) return []
  return Object.entries(exportsField).filter(([, target]) => typeof target === 'object' && target !== null)
}

if (mode === 'strip') {
  const missing = []
  for (const [subpath, target] of entries(manifest.exports)) {
    for (const condition of ['types', 'default']) {
      if (typeof target[condition] !== 'string') missing.push(`${subpath}: no "${condition}" condition`)
      else if (!existsSync(resolve(target[condition]))) missing.push(`${subpath}: ${condition} ${target[condition]} does not exist`)
    }
    delete target.source
  }
  if (missing.length > 0) {
    console.error(`${manifest.name}: cannot pack, exports point at missing files (did the build run?):\n  ${missing.join('\n  ')}`)
    process.exit(1)
  }
} else if (mode === 'restore') {
  for (const [subpath, target] of entries(manifest.exports)) {
    const built = /^\.\/dist\/(.+)\.js$/.exec(target.default ?? '')
    if (built === null) throw new Error(`${manifest.name}: exports["${subpath}"].default is not ./dist/*.js`)
    const { types, source: _source, ...rest } = target
    manifest.exports[subpath] = { types, source: `./src/${built[1]}.ts`, ...rest }
  }
} else {
  console.error('usage: pack-manifest.mjs strip|restore')
  process.exit(2)
}

const next = `${JSON.stringify(manifest, null, 2)}\n`
if (next !== text) writeFileSync(file, next)
