/**
 * One process per embedded database folder: PGlite is a single writer, and a second process on the
 * same folder (the CLI's seed while `npm start` runs) once corrupted it silently. The second open gets
 * a clear error naming the holder; a lock left by a process that is gone is taken over.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { connect, DatabaseInUseError } from '../src/db/connect.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'
import { run } from '../src/cli/main.ts'
import { PassThrough } from 'node:stream'

describe('the embedded database folder', () => {
  let folder: string
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tombstone-lock-'))
  })
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true })
  })

  test('a second open is refused, naming the process that holds it; the CLI says so in one line', async () => {
    const first = await connect(`file:${folder}`, blogSoftDeletes(30))
    try {
      const second = await connect(`file:${folder}`, blogSoftDeletes(30)).catch((error: unknown) => error)
      expect(second).toBeInstanceOf(DatabaseInUseError)
      expect((second as DatabaseInUseError).pid).toBe(process.pid)
      expect((second as Error).message).toContain(`process ${process.pid}`)

      const stderr = new PassThrough()
      let err = ''
      stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
      const code = await run(['stats'], { stdout: new PassThrough(), stderr, env: { DATABASE_URL: `file:${folder}`, LOG_LEVEL: 'silent' } })
      expect(code).toBe(1)
      expect(err.trim().split('\n')).toHaveLength(1)
      expect(err).toContain(`open in process ${process.pid}`)
    } finally {
      await first.close()
    }
    // Released on close: it opens again.
    const again = await connect(`file:${folder}`, blogSoftDeletes(30))
    await again.close()
  })

  test('a lock left by a process that is gone is taken over', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    await writeFile(join(folder, 'tombstone.lock'), `${gone.stdout}\n`)
    const handle = await connect(`file:${folder}`, blogSoftDeletes(30))
    await handle.close()
  })
})
