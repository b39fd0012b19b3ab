/**
 * The docs' code runs: every ```ts block of README.md and docs/*.md, each as its own module, with
 * plain `node --conditions=source` (so workspace imports such as '@tombstone/kysely' resolve to the
 * sources, and only erasable TypeScript is accepted, as Node runs it), on PGlite. A block fails the
 * test if it throws or exits non-zero. Then all of them are type-checked together with `tsc`.
 *
 * The convention (also in docs/README.md):
 *
 * - A block fenced ```ts runs. Other fences (```sh, ```sql, ```typescript, ```json ...) do not.
 * - `<!-- docs-test: skip (reason) -->` on the line right before the fence skips it; the reason is
 *   required and is shown as the skipped test's name. Skip only what cannot run here (another
 *   ORM's code, a server of its own).
 * - `<!-- docs-test: prelude NAME -->` on the line right before the fence runs the block after the
 *   code of docs/preludes/NAME.ts (the two texts joined), for fragments that use a `db`, a
 *   `Database` type and the toolkit's functions without defining them. Such a fragment does not
 *   import what its prelude imports.
 *
 * Each block is written to .tmp/docs-test/ (inside the repository, git-ignored) and run there.
 */
import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const run = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
const out = join(root, '.tmp', 'docs-test')

/** One ```ts block of a Markdown file. */
export interface DocBlock {
  /** `README.md:42`: the file and the line of the opening fence. */
  readonly name: string
  readonly code: string
  readonly skip: string | undefined
  readonly prelude: string | undefined
}

const MARKER = /^<!--\s*docs-test:\s*(skip|prelude)\s*(.*?)\s*-->$/

/** The ```ts blocks of one Markdown text, with the marker on the line before each, if any. */
export function extractBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n')
  const blocks: DocBlock[] = []
  for (let index = 0; index < lines.length; index++) {
    const fence = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[index] as string)
    if (fence === null) continue
    const [, indent, marks, language] = fence as unknown as [string, string, string, string]
    let end = index + 1
    while (end < lines.length && !(lines[end] as string).trimStart().startsWith(marks)) end++
    if (language === 'ts') {
      const previous = (lines[index - 1] ?? '').trim()
      const marker = MARKER.exec(previous)
      const argument = marker?.[2] ?? ''
      if (marker?.[1] === 'skip' && !/^\(.+\)$/.test(argument)) throw new Error(`${file}:${index + 1}: a skip needs a reason: <!-- docs-test: skip (why) -->`)
      if (marker?.[1] === 'prelude' && !/^[\w-]+$/.test(argument)) throw new Error(`${file}:${index + 1}: <!-- docs-test: prelude NAME --> names a file of docs/preludes`)
      blocks.push({
        name: `${file}:${index + 1}`,
        code: lines
          .slice(index + 1, end)
          .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
          .join('\n'),
        skip: marker?.[1] === 'skip' ? argument.slice(1, -1) : undefined,
        prelude: marker?.[1] === 'prelude' ? argument : undefined,
      })
    }
    index = end
  }
  return blocks
}

async function documents(): Promise<{ file: string; text: string }[]> {
  const files = ['README.md', ...(await readdir(join(root, 'docs'))).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)]
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(join(root, file), 'utf8') })))
}

const blocks = (await documents()).flatMap(({ file, text }) => extractBlocks(file, text))
const moduleName = (block: DocBlock) => `${block.name.replace(/[^\w]+/g, '_')}.ts`

describe('the docs convention', () => {
  test('blocks, markers and skips are read as documented', () => {
    const text = [
      '```ts',
      'one()',
      '```',
      '<!-- docs-test: skip (another ORM) -->',
      '```ts',
      'two()',
      '```',
      '<!-- docs-test: prelude blog -->',
      '  ```ts',
      '  three()',
      '  ```',
      '```sh',
      'npm test',
      '```',
    ].join('\n')
    expect(extractBlocks('x.md', text)).toEqual([
      { name: 'x.md:1', code: 'one()', skip: undefined, prelude: undefined },
      { name: 'x.md:5', code: 'two()', skip: 'another ORM', prelude: undefined },
      { name: 'x.md:9', code: 'three()', skip: undefined, prelude: 'blog' },
    ])
    expect(() => extractBlocks('x.md', '<!-- docs-test: skip -->\n```ts\nx\n```')).toThrow(/needs a reason/)
  })
})

describe('docs code blocks', () => {
  beforeAll(async () => {
    await rm(out, { recursive: true, force: true })
    await mkdir(out, { recursive: true })
    for (const block of blocks) {
      const prelude = block.prelude === undefined ? '' : `${await readFile(join(root, 'docs', 'preludes', `${block.prelude}.ts`), 'utf8')}\n`
      await writeFile(join(out, moduleName(block)), `${prelude}${block.code}\n\nexport {}\n`)
    }
  })
  afterAll(async () => {
    if (process.env.KEEP_DOCS_TEST !== '1') await rm(out, { recursive: true, force: true })
  })

  test('there are blocks to run', () => {
    expect(blocks.filter((block) => block.skip === undefined).length).toBeGreaterThan(3)
  })

  for (const block of blocks) {
    if (block.skip !== undefined) {
      test.skip(`${block.name} (skipped: ${block.skip})`, () => {})
      continue
    }
    test(`${block.name}${block.prelude === undefined ? '' : ` (prelude ${block.prelude})`} runs`, async () => {
      const file = join(out, moduleName(block))
      const result = await run(process.execPath, ['--conditions=source', '--no-warnings', file], { cwd: root, timeout: 170_000 }).catch(
        (error: { stderr?: string; code?: unknown }) => ({ failed: true, stderr: error.stderr ?? String(error), code: error.code }),
      )
      if ('failed' in result) {
        throw new Error(`${block.name} failed (exit ${String(result.code)}; ${relative(root, file)}):\n${result.stderr}`)
      }
      // PGlite starts in a second or two; a loaded machine makes it much longer.
    }, 180_000)
  }

  test('every block type-checks (tsc, the repository settings)', async () => {
    await writeFile(
      join(out, 'tsconfig.json'),
      JSON.stringify({ extends: '../../tsconfig.base.json', compilerOptions: { noEmit: true, noUnusedLocals: false }, include: ['*.ts'] }),
    )
    // Skipped blocks are not checked either: they are another library's code.
    for (const block of blocks.filter((candidate) => candidate.skip !== undefined)) await rm(join(out, moduleName(block)), { force: true })
    const tsc = join(root, 'node_modules', '.bin', 'tsc')
    const result = await run(tsc, ['-p', join(out, 'tsconfig.json')], { cwd: root }).catch((error: { stdout?: string }) => ({
      failed: true,
      stdout: error.stdout ?? String(error),
    }))
    if ('failed' in result) throw new Error(`The docs' blocks do not type-check:\n${result.stdout}`)
  }, 180_000)
})
