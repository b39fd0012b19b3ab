/// <reference lib="dom" />
/**
 * The admin trash page in a real browser (Debian's Chromium driven by playwright-core; never a
 * browser download). Screenshots of each view go to test-results/screenshots (git-ignored).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { sql } from 'kysely'
import { chromium, type Browser, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { databaseKinds, backdate } from '@tombstone/testing'
import { ADMIN_PAGE_DIR } from '../../src/plugins/admin-page.ts'
import { relative } from '../../web/src/api.ts'
import { ADMIN_PASSWORD, build, createComment, createPost, type TestApp, type TestUser } from '../helper.ts'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const available = existsSync(CHROMIUM)
if (!available && process.env.REQUIRE_BROWSER === '1') throw new Error(`REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}`)
/** expect.poll with room for a loaded machine (the default gives up after one second); it ends at the first pass. */
const poll = <T>(read: () => T | Promise<T>) => expect.poll(read, { timeout: 15_000 })
const SHOTS = resolve(import.meta.dirname, '../../../../test-results/screenshots')

describe.runIf(available).each(databaseKinds())('admin page in Chromium on %s', (kind) => {
  let t: TestApp
  let base: string
  let browser: Browser
  let page: Page
  let author: TestUser
  let reader: TestUser

  beforeAll(async () => {
    if (!existsSync(resolve(ADMIN_PAGE_DIR, 'index.html'))) throw new Error('the admin page is not built: npm run build:web')
    await mkdir(SHOTS, { recursive: true })
    t = await build(kind)
    author = await t.user('author')
    reader = await t.user('reader')
    base = await t.app.listen({ host: '127.0.0.1', port: 0 })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    })
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  }, 120_000)
  afterAll(async () => {
    await browser?.close()
    await t?.close()
  })

  /** What a person sees on the page: the rendered text of the body (hidden elements excluded). */
  const visibleText = () => page.locator('body').innerText()
  /** A screenshot of the screen, after checking that nothing left over from loading is visible on it. */
  const shot = async (name: string) => {
    expect(await visibleText()).not.toMatch(/Loading the admin page|Checking your session/)
    await page.screenshot({ path: resolve(SHOTS, `${kind}-${name}.png`), fullPage: true })
  }
  const tab = (name: string) => page.getByRole('tab', { name })
  const api = (method: string, url: string, token: string, payload?: unknown) =>
    t.request({ method: method as 'GET', url, token, ...(payload === undefined ? {} : { payload: payload as object }) })
  const row = (type: string, id: number) => page.getByTestId(`trash-${type}:${id}`)

  /** The page, freshly loaded (the session stays in sessionStorage). */
  async function open() {
    await page.goto(`${base}/admin/`)
    await page.locator('header, form').first().waitFor()
  }

  async function signIn(username: string, password: string) {
    await page.goto(`${base}/admin`)
    await page.evaluate(() => sessionStorage.clear())
    await page.goto(`${base}/admin/`)
    await page.getByLabel('Username').fill(username)
    await page.getByLabel('Password').fill(password)
    await page.getByRole('button', { name: 'Sign in' }).click()
  }

  test('a non-admin is told plainly that the page is not for them; wrong passwords are said in words', async () => {
    await signIn(reader.username, 'not the password')
    await poll(() => page.getByRole('alert').textContent()).toContain('Wrong username or password')
    await shot('signin-error')
    await signIn(reader.username, `password-${reader.username}`)
    await poll(() => page.getByRole('alert').textContent()).toContain('not an admin')
    await shot('not-admin')
  })

  test('trash: a post deleted through the API is there with who, when, why; restore brings it back', async () => {
    const post = await createPost(t, author, { title: 'Browser restore post' })
    await createComment(t, reader, post)
    expect((await api('DELETE', `/posts/${post}?reason=spring%20cleaning`, author.token)).statusCode).toBe(204)
    await signIn('admin', ADMIN_PASSWORD)
    const entry = row('post', post)
    await entry.waitFor()
    expect(await entry.textContent()).toContain('Browser restore post')
    expect(await entry.textContent()).toContain(author.username)
    expect(await entry.textContent()).toContain('spring cleaning')
    expect(await entry.locator('time').first().getAttribute('title')).toMatch(/\d{4}/)
    await shot('trash')
    await entry.getByRole('button', { name: 'Restore' }).click()
    await poll(() => page.locator('.outcomes').textContent()).toContain(`Post #${post} “Browser restore post” is restored.`)
    // The row and its button are gone: focus is on what happened, not lost to the body.
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('outcomes')
    await shot('trash-restored')
    expect((await t.request({ method: 'GET', url: `/posts/${post}` })).statusCode).toBe(200)
    expect(await row('post', post).count()).toBe(0)
  })

  test('restore of many at once, each outcome in words; a conflict is explained', async () => {
    const clashing = await createPost(t, author, { title: 'Clashing slug', slug: `clash-${kind}` })
    const fine = await createPost(t, author, { title: 'Fine to restore' })
    await api('DELETE', `/posts/${clashing}`, author.token)
    await api('DELETE', `/posts/${fine}`, author.token)
    const squatter = await createPost(t, reader, { title: 'The squatter', slug: `clash-${kind}` })
    await open()
    await row('post', clashing).waitFor()
    await row('post', clashing).getByRole('checkbox').check()
    await row('post', fine).getByRole('checkbox').check()
    await page.getByRole('button', { name: /Restore selected \(2\)/ }).click()
    const outcomes = page.locator('.outcomes')
    await poll(() => outcomes.textContent()).toContain(`its slug is now used by post #${squatter}`)
    expect(await outcomes.textContent()).toContain(`Post #${fine} “Fine to restore” is restored.`)
    await shot('restore-conflict')
  })

  test('delete permanently asks first, naming what goes with it', async () => {
    const post = await createPost(t, author, { title: 'Going for good' })
    await createComment(t, reader, post)
    await createComment(t, reader, post)
    await api('DELETE', `/posts/${post}`, author.token)
    await open()
    await row('post', post).getByRole('button', { name: 'Delete permanently' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    expect(await page.getByTestId('confirm-text').textContent()).toBe(`Post #${post} “Going for good” and 2 comments will be erased. This cannot be undone.`)
    await shot('confirm-permanent')
    await dialog.getByRole('button', { name: 'Cancel' }).click()
    expect((await api('GET', `/posts/${post}?include_deleted=true`, t.admin.token)).statusCode).toBe(200)
    // By keyboard: Enter opens it with focus on Cancel, Escape closes it and focus is back on the button.
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim())
    await row('post', post).getByRole('button', { name: 'Delete permanently' }).focus()
    await page.keyboard.press('Enter')
    await dialog.waitFor()
    await poll(focused).toBe('Cancel')
    await page.keyboard.press('Escape')
    await poll(() => dialog.isVisible()).toBe(false)
    expect(await focused()).toBe('Delete permanently')
    expect((await api('GET', `/posts/${post}?include_deleted=true`, t.admin.token)).statusCode).toBe(200)
    await row('post', post).getByRole('button', { name: 'Delete permanently' }).click()
    await page.getByRole('dialog').getByRole('button', { name: 'Delete permanently' }).click()
    await poll(() => page.locator('.outcomes').textContent()).toContain('is deleted for good, with 2 comments')
    expect((await api('GET', `/posts/${post}?include_deleted=true`, t.admin.token)).statusCode).toBe(404)
  })

  test('filter, search, empty state', async () => {
    await open()
    await page.getByLabel('Type').selectOption('user')
    await poll(() => page.locator('table.trash tbody tr, .empty').first().textContent()).toBeTruthy()
    await page.getByLabel('Type').selectOption('')
    await page.getByRole('searchbox').fill('no such thing anywhere')
    await page.getByRole('button', { name: 'Search' }).click()
    await poll(() => page.locator('.empty').textContent()).toContain('Nothing in the trash matches')
    await shot('trash-empty-search')
    await page.getByRole('searchbox').fill('')
    await page.getByRole('button', { name: 'Search' }).click()
  })

  test('signed in, only the admin screen is visible: no leftover "Loading the admin page…" line', async () => {
    await signIn('admin', ADMIN_PASSWORD)
    await page.getByRole('heading', { name: 'Trash' }).waitFor()
    await page.locator('table.trash, .empty').first().waitFor()
    const text = await visibleText()
    expect(text).not.toContain('Loading the admin page')
    // The header is the first thing on the screen.
    expect(text.trimStart().startsWith('Tombstone')).toBe(true)
    await open()
    await page.locator('table.trash, .empty').first().waitFor()
    expect(await visibleText()).not.toContain('Loading the admin page')
  })

  test('Type and Sort apply the search box as it reads, not the last submitted search', async () => {
    const post = await createPost(t, author, { title: 'Searchbox consistency post' })
    await api('DELETE', `/posts/${post}`, author.token)
    await open()
    await page.getByRole('searchbox').fill('no such thing anywhere')
    await page.getByRole('button', { name: 'Search' }).click()
    await poll(() => visibleText()).toContain('Nothing in the trash matches')
    // The admin clears the box and picks a type: the trash shows posts, whatever the old search was.
    await page.getByRole('searchbox').fill('')
    await page.getByLabel('Type').selectOption('post')
    await row('post', post).waitFor()
    expect(await visibleText()).not.toContain('Nothing in the trash matches')
    // Typed, not submitted, then a new sort: the sort applies the typed text.
    await page.getByRole('searchbox').fill('Searchbox consistency')
    await page.getByLabel('Sort').selectOption('deleted_asc')
    await poll(async () => (await page.locator('table.trash tbody tr').allInnerTexts()).every((line) => line.includes('Searchbox consistency'))).toBe(true)
    expect(await row('post', post).isVisible()).toBe(true)
    expect(new URL(page.url()).searchParams.get('q')).toBe('Searchbox consistency')
  })

  test('the tab, the filters and the page are in the URL: reload and Back keep them', async () => {
    const ids: number[] = []
    for (let i = 0; i < 21; i += 1) {
      const post = await createPost(t, author, { title: `Paged trash item ${i}` })
      await api('DELETE', `/posts/${post}`, author.token)
      ids.push(post)
    }
    await open()
    await page.getByRole('searchbox').fill('Paged trash item')
    await page.getByLabel('Type').selectOption('post')
    await poll(() => page.locator('table.trash tbody tr').count()).toBe(20)
    await page.getByRole('button', { name: 'Next' }).click()
    await poll(() => page.locator('table.trash tbody tr').count()).toBe(1)
    expect(await visibleText()).toContain('Page 2')
    const onPage2 = await page.locator('table.trash tbody tr').getAttribute('data-testid')
    await page.reload()
    await poll(() => page.locator('table.trash tbody tr').count()).toBe(1)
    expect(await page.locator('table.trash tbody tr').getAttribute('data-testid')).toBe(onPage2)
    expect(await page.getByLabel('Type').inputValue()).toBe('post')
    expect(await page.getByRole('searchbox').inputValue()).toBe('Paged trash item')
    await shot('trash-page-2')
    await page.goBack()
    await poll(() => page.locator('table.trash tbody tr').count()).toBe(20)
    expect(await visibleText()).not.toContain('Page 2')
    await tab('Audit').click()
    await page.getByLabel('Action').selectOption('restore')
    await poll(() => new URL(page.url()).searchParams.get('action')).toBe('restore')
    await page.reload()
    await poll(() => tab('Audit').getAttribute('aria-selected')).toBe('true')
    expect(await page.getByLabel('Action').inputValue()).toBe('restore')
    await page.goBack()
    await page.goBack()
    await poll(() => tab('Trash').getAttribute('aria-selected')).toBe('true')
    expect(await page.getByLabel('Type').inputValue()).toBe('post')
    expect(await page.getByRole('searchbox').inputValue()).toBe('Paged trash item')
    for (const id of ids) await api('DELETE', `/posts/${id}/permanent`, t.admin.token)
  })

  test('the tabs are a tablist: one tab stop; ArrowLeft/ArrowRight, Home and End move and show', async () => {
    await page.goto(`${base}/admin/`)
    await tab('Trash').waitFor()
    expect(await page.getByRole('tablist').count()).toBe(1)
    expect(await page.locator('[role=tab][tabindex="0"]').count()).toBe(1)
    await tab('Trash').focus()
    const focusedTab = () => page.evaluate(() => document.activeElement?.textContent?.trim())
    const steps: [string, string, string][] = [
      ['ArrowRight', 'Audit', 'Audit'],
      ['ArrowRight', 'Purge', 'Purge'],
      ['ArrowRight', 'Trash', 'Trash'],
      ['ArrowLeft', 'Purge', 'Purge'],
      ['Home', 'Trash', 'Trash'],
      ['End', 'Purge', 'Purge'],
    ]
    for (const [key, name, heading] of steps) {
      await page.keyboard.press(key)
      await poll(focusedTab).toBe(name)
      expect({ key, selected: await tab(name).getAttribute('aria-selected') }).toEqual({ key, selected: 'true' })
      await page.getByRole('tabpanel').getByRole('heading', { name: heading, level: 2 }).waitFor()
      expect(await tab(name).getAttribute('tabindex')).toBe('0')
    }
    expect(await page.getByRole('tabpanel').getAttribute('aria-labelledby')).toBe('tab-purge')
  })

  test('the audit names users and links to the rows it names', async () => {
    const post = await createPost(t, author, { title: 'Audited by name' })
    await api('DELETE', `/posts/${post}?reason=named%20audit`, author.token)
    await page.goto(`${base}/admin/?tab=audit&entity=post&entity_id=${post}`)
    const line = page.locator('.timeline li').first()
    await line.waitFor()
    const text = await line.innerText()
    expect(text).toContain(`“Audited by name” #${post}`)
    expect(text).toContain(`deleted by ${author.username}`)
    expect(text).not.toContain(`user #${author.id}`)
    await shot('audit-named')
    // The actor's name leads to everything they did.
    await line.getByRole('link', { name: author.username }).click()
    await poll(() => new URL(page.url()).searchParams.get('actor_id')).toBe(String(author.id))
    await poll(async () => (await page.locator('.timeline li').allInnerTexts()).every((entry) => entry.includes(`by ${author.username}`))).toBe(true)
    // The row in the trash: the link opens the trash filtered to it.
    await page.getByRole('link', { name: `Post “Audited by name” #${post}` }).first().click()
    await poll(() => tab('Trash').getAttribute('aria-selected')).toBe('true')
    await row('post', post).waitFor()
    expect(await page.locator('table.trash tbody tr').count()).toBe(1)
    // And from the trash row back to its history.
    await row('post', post).getByRole('link', { name: 'History' }).click()
    await poll(() => page.locator('.timeline li').count()).toBe(1)
    await page.goBack()
    await row('post', post).waitFor()
  })

  test('a session the service ends (token revoked) goes back to sign-in, saying why', async () => {
    await signIn('admin', ADMIN_PASSWORD)
    // The trash has loaded (its request is not in flight when the token is revoked).
    await page.locator('table.trash, .empty').first().waitFor()
    const token = (await page.evaluate(() => sessionStorage.getItem('tombstone.admin.token'))) as string
    expect((await t.request({ method: 'POST', url: '/auth/logout', token })).statusCode).toBeLessThan(300)
    await tab('Audit').click()
    await page.getByLabel('Username').waitFor()
    expect(await visibleText()).toContain('Your session has ended')
    await shot('session-ended')
    await page.getByLabel('Username').fill('admin')
    await page.getByLabel('Password').fill(ADMIN_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    // Signed in again (a password check takes a while: scrypt), on the screen the URL names.
    await tab('Audit').waitFor()
    expect(await tab('Audit').getAttribute('aria-selected')).toBe('true')
  })

  test('purge: a dry run with count and sample, then the purge after confirming', async () => {
    const post = await createPost(t, author, { title: 'Old enough to purge' })
    await api('DELETE', `/posts/${post}`, author.token)
    await backdate(t.owner, sql`update posts set deleted_at = now() - interval '400 days' where id = ${post}`)
    await open()
    await tab('Purge').click()
    await page.getByLabel(/Deleted more than/).fill('365')
    await page.getByRole('button', { name: 'Preview (dry run)' }).click()
    await poll(() => page.getByTestId('purge-count').textContent()).toMatch(/1 row\b/)
    // The preview names what goes by its label, not a bare id.
    expect(await page.getByTestId('purge-sample').textContent()).toContain(`post “Old enough to purge” (#${post})`)
    await shot('purge-preview')
    expect((await api('GET', `/posts/${post}?include_deleted=true`, t.admin.token)).statusCode).toBe(200)
    await page.getByRole('button', { name: /Purge 1 row/ }).click()
    await page.getByRole('button', { name: /Yes, purge 1 row/ }).click()
    await poll(() => page.getByRole('status').last().textContent()).toContain('Purged 1 row')
    await shot('purge-done')
    expect((await api('GET', `/posts/${post}?include_deleted=true`, t.admin.token)).statusCode).toBe(404)
  })

  test('audit: a timeline of deletes, restores and purges, filterable', async () => {
    await open()
    await tab('Audit').click()
    await poll(() => page.locator('.timeline li').count()).toBeGreaterThan(3)
    expect(await page.locator('.timeline').innerText()).toContain('purged')
    await shot('audit')
    for (const [action, words] of [['restore', 'restored'], ['purge', 'purged']] as const) {
      await page.getByLabel('Action').selectOption(action)
      await page.getByRole('button', { name: 'Filter' }).click()
      await poll(async () => {
        const lines = await page.locator('.timeline li').allInnerTexts()
        return lines.length > 0 && lines.every((line) => line.includes(words))
      }).toBe(true)
    }
  })

  test('usable at phone width, and by keyboard', async () => {
    const post = await createPost(t, author, { title: 'Seen on a phone' })
    await api('DELETE', `/posts/${post}?reason=phone`, author.token)
    await page.setViewportSize({ width: 390, height: 844 })
    // Every screen at phone width: nothing wider than the screen.
    for (const [name, ready] of [['trash', 'table.trash, .empty'], ['audit', '.timeline, .empty'], ['purge', '#purge-title']] as const) {
      await page.goto(`${base}/admin/?tab=${name}`)
      await page.locator(ready).first().waitFor()
      await shot(`phone-${name}`)
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      expect({ name, overflow: overflow <= 1 }).toEqual({ name, overflow: true })
    }
    await page.getByRole('button', { name: 'Preview (dry run)' }).click()
    await page.getByTestId('purge-count').waitFor()
    await shot('phone-purge-preview')
    await page.setViewportSize({ width: 1280, height: 800 })
    await open()
    // Every control is reachable with Tab and has an accessible name.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('button, input, select')].filter((element) => {
        const el = element as HTMLElement
        const label = el.getAttribute('aria-label') ?? (el as HTMLInputElement).labels?.[0]?.textContent ?? el.textContent
        return (label ?? '').trim() === ''
      }).length,
    )
    expect(unnamed).toBe(0)
    await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.tagName)).not.toBe('BODY')
  })
})

test('times in words: a purge due in 30 days (give or take a second) reads "in 30 days", never "next month"', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  const at = (seconds: number) => new Date(now + seconds * 1000).toISOString()
  expect(relative(at(30 * 86_400), now)).toBe('in 30 days')
  expect(relative(at(30 * 86_400 + 1), now)).toBe('in 30 days')
  expect(relative(at(30 * 86_400 - 1), now)).toBe('in 30 days')
  expect(relative(at(-45 * 86_400), now)).toBe('45 days ago')
  expect(relative(at(90 * 86_400), now)).toBe('in 3 months')
  expect(relative(at(400 * 86_400), now)).toBe('next year')
  expect(relative(at(-5), now)).toBe('5 seconds ago')
  expect(relative(at(0), now)).toBe('now')
})
