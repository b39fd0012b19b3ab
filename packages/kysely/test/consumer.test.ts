/**
 * The published packages as a user gets them: `npm pack` of @tombstone/kysely and @tombstone/fastify
 * (their prepack scripts build dist/ and strip the repository-only `source` condition), installed
 * from the tarballs into a fresh project beside registry dependencies only, then used with plain
 * `node` (ESM and require), checked by a strict `tsc` (nodenext and bundler resolution) and run on
 * PGlite and, when TEST_POSTGRES_URL is set, on PostgreSQL.
 *
 * The packs run in a copy of the two packages (their own node_modules links pointing into the
 * repository's), so that the suite's other files, which resolve the packages through `source`,
 * never see a package.json stripped by a pack in progress.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../../..')
const FIXTURES = join(import.meta.dirname, 'consumer')
const PACKAGES = ['kysely', 'fastify'] as const
/** Registry dependencies of the consumer, at the versions the repository has (so npm's cache has them). */
const REGISTRY = ['kysely', 'fastify', 'typebox', '@electric-sql/pglite', 'pg', '@types/node'] as const

/** The environment without npm's run-script variables, which would point the nested npm at this repository. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'INIT_CWD' && key !== 'NODE_OPTIONS') env[key] = value
  }
  return env
}

async function sh(command: string, args: readonly string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${failure.message}\n${failure.stdout ?? ''}\n${failure.stderr ?? ''}`)
  }
}

async function versionOf(name: string): Promise<string> {
  return JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
}

/** The JSON lines an app printed. */
function lines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
}

const databases = process.env.TEST_POSTGRES_URL ? ['pglite', 'postgres'] : ['pglite']
const scenario = { deleted: 2, visible: 0, trash: 1, restored: 2, comments: 1, guard: 'HARD_DELETE_REFUSED', posts: 1 }

// The runs overlap and share two cores with the rest of the suite: generous per-test limits.
describe('the packed packages, installed from their tarballs', { timeout: 180_000 }, () => {
  let work: string
  let app: string
  const tarballs: Record<string, string> = {}
  /** The consumer's runs, started together once the project is installed (two cores: they overlap). */
  const runs: Record<string, Promise<string>> = {}

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'tombstone-consumer-'))
    const stage = join(work, 'stage')
    await mkdir(join(stage, 'scripts'), { recursive: true })
    await cp(join(ROOT, 'tsconfig.base.json'), join(stage, 'tsconfig.base.json'))
    await cp(join(ROOT, 'scripts/pack-manifest.mjs'), join(stage, 'scripts/pack-manifest.mjs'))
    for (const name of PACKAGES) {
      await cp(join(ROOT, 'packages', name), join(stage, 'packages', name), {
        recursive: true,
        filter: (source) => !/[/\\](dist|test|node_modules)$/.test(source),
      })
    }
    // The stage's node_modules: the repository's, except the workspace packages, which are the copies.
    await mkdir(join(stage, 'node_modules/@tombstone'), { recursive: true })
    for (const entry of await readdir(join(ROOT, 'node_modules'))) {
      if (entry === '@tombstone' || entry.startsWith('.package-lock')) continue
      await symlink(join(ROOT, 'node_modules', entry), join(stage, 'node_modules', entry))
    }
    for (const name of PACKAGES) await symlink(join('../../packages', name), join(stage, 'node_modules/@tombstone', name))

    const packed = join(work, 'tarballs')
    await mkdir(packed)
    for (const name of PACKAGES) {
      const out = await sh('npm', ['pack', '--json', '--pack-destination', packed], join(stage, 'packages', name))
      const [info] = JSON.parse(out.slice(out.indexOf('[')))
      tarballs[name] = join(packed, info.filename)
    }

    app = join(work, 'app')
    await cp(FIXTURES, app, { recursive: true })
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
    const registry = await Promise.all(REGISTRY.map(async (name) => `${name}@${await versionOf(name)}`))
    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...Object.values(tarballs), ...registry], app)

    for (const moduleResolution of ['nodenext', 'bundler']) {
      await writeFile(
        join(app, `tsconfig.${moduleResolution}.json`),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            module: moduleResolution === 'bundler' ? 'preserve' : 'nodenext',
            moduleResolution,
            target: 'es2023',
            lib: ['es2023'],
            types: ['node'],
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            // The declarations were checked without it once (TypeScript 7: no error); with it the
            // check takes seconds instead of a minute. A declaration that failed to resolve still
            // shows: check.ts's typed uses and its @ts-expect-error would no longer hold.
            skipLibCheck: true,
          },
          files: ['check.ts'],
        }),
      )
    }
    const start = (name: string, command: string, args: readonly string[]) => {
      runs[name] = sh(command, args, app)
      runs[name].catch(() => {}) // awaited by its test; not an unhandled rejection meanwhile
    }
    start('esm', process.execPath, ['app.mjs'])
    start('cjs', process.execPath, ['app.cjs'])
    start('resolve', process.execPath, ['resolve.mjs'])
    start('resolveSource', process.execPath, ['--conditions=source', 'resolve.mjs'])
    start('fastify', process.execPath, ['fastify-app.mjs'])
    const tsc = join(ROOT, 'node_modules/.bin/tsc')
    start('nodenext', tsc, ['-p', 'tsconfig.nodenext.json'])
    start('bundler', tsc, ['-p', 'tsconfig.bundler.json'])
  }, 300_000)

  afterAll(async () => {
    await Promise.allSettled(Object.values(runs))
    if (work) await rm(work, { recursive: true, force: true })
  })

  test.each(PACKAGES)('@tombstone/%s: every export target is in the tarball; README, LICENSE, maps; no source condition', async (name) => {
    const files = new Set((await sh('tar', ['-tzf', tarballs[name]!], work)).split('\n').filter(Boolean).map((file) => file.replace(/^package\//, '')))
    const manifest = JSON.parse(await sh('tar', ['-xzOf', tarballs[name]!, 'package/package.json'], work))
    const targets = Object.entries(manifest.exports as Record<string, string | Record<string, string>>)
    expect(targets.length).toBeGreaterThan(0)
    for (const [subpath, target] of targets) {
      if (typeof target === 'string') {
        expect(files, `${subpath} -> ${target}`).toContain(target.replace(/^\.\//, ''))
        continue
      }
      expect(Object.keys(target)[0], `${subpath}: types first`).toBe('types')
      expect(target, `${subpath}: no source condition in the published manifest`).not.toHaveProperty('source')
      for (const condition of ['types', 'default']) {
        const file = target[condition]?.replace(/^\.\//, '') ?? `(no ${condition})`
        expect(files, `${subpath} ${condition}`).toContain(file)
        if (condition === 'types') expect(files).toContain(`${file}.map`)
        else expect(files).toContain(`${file}.map`)
      }
    }
    for (const file of ['README.md', 'LICENSE', 'package.json']) expect(files).toContain(file)
    expect([...files].some((file) => file.endsWith('.test.ts') || file.endsWith('.tsbuildinfo'))).toBe(false)
    expect(manifest.sideEffects).toBe(false)
    expect(manifest.engines.node).toMatch(/^>=\d+\.\d+$/)
  })

  test('@tombstone/fastify peers on a caret range of @tombstone/kysely', async () => {
    const manifest = JSON.parse(await sh('tar', ['-xzOf', tarballs.fastify!, 'package/package.json'], work))
    const kysely = JSON.parse(await sh('tar', ['-xzOf', tarballs.kysely!, 'package/package.json'], work))
    expect(manifest.peerDependencies['@tombstone/kysely']).toBe(`^${kysely.version}`)
  })

  test('ESM on plain node: soft delete and restore on every database', async () => {
    const out = lines(await runs.esm!)
    expect(out).toEqual(databases.map((database) => ({ app: 'esm', database, ...scenario })))
  })

  test('CommonJS: require() of the packages (require(esm), Node >= 22.12)', async () => {
    const out = lines(await runs.cjs!)
    expect(out).toEqual(databases.map((database) => ({ app: 'cjs', database, ...scenario })))
  })

  test('every entry point resolves to dist/*.js, also for a consumer running with --conditions=source', async () => {
    for (const run of [runs.resolve!, runs.resolveSource!]) {
      const out = lines(await run)
      expect(out.map((line) => line.specifier)).toEqual(['@tombstone/kysely', '@tombstone/kysely/pglite', '@tombstone/kysely/sqlite', '@tombstone/fastify'])
      for (const line of out) {
        expect(line.url).toMatch(/\/node_modules\/@tombstone\/(kysely|fastify)\/dist\/[\w/-]+\.js$/)
        expect(line.exports).toBeGreaterThan(0)
      }
    }
  })

  test('a Fastify app on @tombstone/fastify answers a toolkit error as problem+json', async () => {
    const [out] = lines(await runs.fastify!)
    expect(out).toMatchObject({ app: 'fastify', status: 404, body: { type: '/problems/not-found', status: 404 } })
    expect(out?.type).toMatch(/^application\/problem\+json/)
  })

  test.each(['nodenext', 'bundler'])('strict tsc with moduleResolution %s type-checks a real use', async (moduleResolution) => {
    await runs[moduleResolution]
  })
})
