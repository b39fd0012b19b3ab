/**
 * `DATABASE_URL=sqlite://…`: which file it names, what the config refuses, and that a relative
 * path opens under the working directory while `:memory:` writes no file.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ConfigError, loadConfig } from '../src/config.ts'
import { connect, sqlitePathOf } from '../src/db/connect.ts'
import { migrate, pendingMigrations, SQLITE_MIGRATIONS } from '../src/db/migrate.ts'
import { blogSoftDeletes } from '../src/db/soft-deletes.ts'

describe('sqlite:// URLs', () => {
  test('everything after sqlite:// is the path: relative, absolute, or :memory:', () => {
    expect(sqlitePathOf('sqlite://blog.db')).toBe('blog.db')
    expect(sqlitePathOf('sqlite://./data/blog.db')).toBe('./data/blog.db')
    expect(sqlitePathOf('sqlite:///var/lib/blog.db')).toBe('/var/lib/blog.db')
    expect(sqlitePathOf('sqlite://:memory:')).toBe(':memory:')
    expect(sqlitePathOf('sqlite://my%20blog.db')).toBe('my blog.db')
    expect(sqlitePathOf('postgres://me@host/db')).toBeUndefined()
    expect(() => sqlitePathOf('sqlite://')).toThrow(/needs a file/)
  })

  test('the config takes sqlite://<file> and refuses a bare sqlite://', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite://blog.db' }).databaseUrl).toBe('sqlite://blog.db')
    expect(() => loadConfig({ DATABASE_URL: 'sqlite://' })).toThrow(ConfigError)
    expect(() => loadConfig({ DATABASE_URL: 'sqlite://blog.db', DATABASE_READ_URL: 'postgres://me@host/db' })).toThrow(ConfigError)
  })

  test('a relative path opens under the working directory (folders made); :memory: is migrated in memory', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'tombstone-sqlite-url-'))
    const cwd = process.cwd()
    try {
      process.chdir(folder)
      const file = await connect('sqlite://nested/blog.db', blogSoftDeletes(30))
      expect(file.kind).toBe('sqlite')
      await migrate(file.db)
      await file.close()
      expect((await stat(join(folder, 'nested', 'blog.db'))).isFile()).toBe(true)
      const memory = await connect('sqlite://:memory:', blogSoftDeletes(30))
      expect(await pendingMigrations(memory.db)).toEqual(Object.keys(SQLITE_MIGRATIONS))
      await migrate(memory.db)
      expect(await pendingMigrations(memory.db)).toEqual([])
      await memory.close()
      await expect(stat(join(folder, ':memory:'))).rejects.toThrow()
    } finally {
      process.chdir(cwd)
      await rm(folder, { recursive: true, force: true })
    }
  })
})
