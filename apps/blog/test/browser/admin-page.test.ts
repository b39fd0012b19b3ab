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
    // Closed before the next step: while the modal dialog is open, the page behind it is inert and
    // cannot take focus (a slow machine showed that race).
    await poll(() => dialog.isVisible()).toBe(false)
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
    // (At least one line: while the page loads there are none, and none would pass.)
    await poll(async () => {
      const lines = await page.locator('table.trash tbody tr').allInnerTexts()
      return lines.length > 0 && lines.every((line) => line.includes('Searchbox consistency'))
    }).toBe(true)
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
      ['ArrowRight', 'Deletions', 'Deletions'],
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

  /** The toast, and what it says. */
  const toast = () => page.getByTestId('toast')

  test('deletions: one entry per operation, named and counted; expandable to its rows; filters in the URL', async () => {
    const carol = await t.user('carol')
    const first = await createPost(t, carol, { title: 'Carol first' })
    const second = await createPost(t, carol, { title: 'Carol second' })
    const comments = [await createComment(t, reader, first), await createComment(t, carol, first), await createComment(t, reader, second)]
    const deleted = await api('DELETE', `/users/${carol.id}?reason=account%20closed`, carol.token)
    expect(deleted.statusCode).toBe(204)
    const deletion = deleted.headers['tombstone-deletion'] as string
    // One of its comments is erased since: the preview will say it cannot come back.
    expect((await api('DELETE', `/comments/${comments[2]}/permanent`, t.admin.token)).statusCode).toBe(204)
    await signIn('admin', ADMIN_PASSWORD)
    await tab('Deletions').click()
    await page.getByLabel('Deleted by (user id)').fill(String(carol.id))
    await page.getByRole('button', { name: 'Filter' }).click()
    await poll(() => new URL(page.url()).searchParams.get('d_actor')).toBe(String(carol.id))
    const entry = page.getByTestId(`deletion-${deletion}`)
    await entry.waitFor()
    expect(await page.locator('li.deletion').count()).toBe(1)
    expect(await entry.getByRole('heading').innerText()).toBe(`${carol.username}’s account: 1 user, 2 posts, 3 comments — account closed`)
    expect(await entry.innerText()).toContain(`Deleted by ${carol.username}`)
    await shot('deletions')
    // Expanded: what it took per type and what became of it, and its rows still deleted.
    await entry.getByRole('button', { name: 'Show rows' }).click()
    await poll(() => new URL(page.url()).searchParams.get('open')).toBe(deletion)
    const parts = entry.getByTestId('deletion-parts')
    await parts.waitFor()
    expect(await parts.locator('tbody tr').allInnerTexts()).toEqual(['users\t1\t1\t0\t0', 'posts\t2\t2\t0\t0', 'comments\t3\t2\t0\t1'])
    const rows = await entry.locator('ul.rows li').allInnerTexts()
    expect(rows).toHaveLength(5)
    expect(rows.join('\n')).toContain(`Post Carol first #${first}`)
    expect(await entry.getByRole('button', { name: 'Hide rows' }).getAttribute('aria-expanded')).toBe('true')
    await shot('deletion-expanded')
    // Reload keeps the filter and the expanded entry; a date filter with no match says so.
    await page.reload()
    await entry.getByTestId('deletion-parts').waitFor()
    await page.getByLabel('From').fill('2001-01-01')
    await page.getByLabel('To').fill('2001-01-31')
    await page.getByRole('button', { name: 'Filter' }).click()
    await poll(() => visibleText()).toContain('No deletion matches.')
    expect(new URL(page.url()).searchParams.get('d_to')).toBe('2001-01-31')
    await page.goBack()
    await entry.waitFor()
  })

  test('a filter typed the moment its tab opens is kept: the views do not copy the URL into the box after the first frame', async () => {
    await signIn('admin', ADMIN_PASSWORD)
    await tab('Trash').waitFor()
    for (const [name, label, param] of [['Deletions', 'Deleted by (user id)', 'd_actor'], ['Audit', 'Actor id', 'actor_id'], ['Trash', 'Search', 'q']] as const) {
      // In one task: open the tab, let it render (a microtask), type. Preact runs the view's first
      // effects only after the next frame; the page then waits for that frame and one more task.
      const kept = await page.evaluate(async ([name, label]) => {
        const tabs = [...document.querySelectorAll<HTMLElement>('[role="tab"]')]
        tabs.find((each) => each.textContent?.trim().startsWith(name))?.click()
        const box = () => [...document.querySelectorAll('label')].find((each) => each.textContent?.trim().startsWith(label))?.querySelector('input')
        for (let i = 0; i < 50 && box() === undefined; i++) await Promise.resolve()
        const input = box()
        if (input === undefined || input === null) return 'no box'
        input.value = '42'
        input.dispatchEvent(new Event('input', { bubbles: true }))
        await new Promise((done) => requestAnimationFrame(() => setTimeout(done)))
        await new Promise((done) => requestAnimationFrame(() => setTimeout(done)))
        return input.value
      }, [name, label] as const)
      expect(kept, name).toBe('42')
      await page.getByRole('button', { name: name === 'Trash' ? 'Search' : 'Filter', exact: true }).click()
      await poll(() => new URL(page.url()).searchParams.get(param)).toBe('42')
    }
  })

  test('deletions: restore the whole deletion after a preview naming what comes back and what not; the Undo toast deletes it again', async () => {
    const dave = await t.user('dave')
    const post = await createPost(t, dave, { title: 'Dave post' })
    await createComment(t, reader, post)
    const gone = await createComment(t, reader, post)
    const deletion = (await api('DELETE', `/users/${dave.id}?reason=spam%20account`, t.admin.token)).headers['tombstone-deletion'] as string
    await api('DELETE', `/comments/${gone}/permanent`, t.admin.token)
    await page.goto(`${base}/admin/?tab=deletions&d_type=user`)
    const entry = page.getByTestId(`deletion-${deletion}`)
    await entry.getByRole('button', { name: 'Restore…' }).click()
    const preview = entry.getByTestId('restore-preview')
    await preview.waitFor()
    expect(await preview.getByTestId('preview-back').innerText()).toMatch(/^Comes back: 1 user, 1 post, 1 comment/)
    expect(await preview.getByTestId('preview-skipped').innerText()).toContain('1 comment removed for good since (purged or deleted permanently): cannot come back')
    // Nothing changed yet.
    expect((await api('GET', `/users/${dave.id}`, t.admin.token)).statusCode).toBe(404)
    await shot('deletion-preview')
    await preview.getByRole('button', { name: 'Restore 3 rows' }).click()
    await poll(() => toast().innerText()).toContain(`${dave.username}’s account: 1 user, 1 post, 1 comment restored.`)
    expect((await api('GET', `/users/${dave.id}`, t.admin.token)).statusCode).toBe(200)
    await shot('toast-restored')
    // Focus is on what happened (the preview and its button are gone), not lost to the body.
    const focused = () => page.evaluate(() => document.activeElement?.textContent?.trim())
    expect(await focused()).toContain('restored.')
    // The Undo button is in the tab order: Tab from there reaches it (the toast ends the page), then Dismiss.
    const focusable = await page.locator('button:visible, a:visible, input:visible, select:visible').count()
    for (let presses = 0; presses < focusable && (await focused()) !== 'Undo'; presses += 1) await page.keyboard.press('Tab')
    expect(await focused()).toBe('Undo')
    await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Dismiss notification')
    await page.keyboard.press('Shift+Tab')
    await page.keyboard.press('Enter')
    await poll(() => toast().innerText()).toContain(`User #${dave.id} “${dave.username}” is deleted again.`)
    expect((await api('GET', `/users/${dave.id}`, t.admin.token)).statusCode).toBe(404)
    expect((await api('GET', `/posts/${post}`, t.admin.token)).statusCode).toBe(404)
    // That delete has its own undo (the undo endpoint, the admin's own deletion), also on Ctrl+Z: back again.
    await page.locator('h2').first().click()
    await page.keyboard.press('Control+z')
    await poll(() => toast().innerText()).toContain('is restored again.')
    expect((await api('GET', `/users/${dave.id}`, t.admin.token)).statusCode).toBe(200)
    await toast().getByRole('button', { name: 'Dismiss notification' }).click()
    await poll(() => toast().count()).toBe(0)
  })

  test('deletions: a restore that would be refused says why and offers no restore', async () => {
    const slug = `taken-again-${kind}`
    const post = await createPost(t, author, { title: 'Slug owner', slug })
    const deletion = (await api('DELETE', `/posts/${post}`, author.token)).headers['tombstone-deletion'] as string
    const squatter = await createPost(t, reader, { title: 'Slug squatter', slug })
    await page.goto(`${base}/admin/?tab=deletions`)
    const entry = page.getByTestId(`deletion-${deletion}`)
    await entry.getByRole('button', { name: 'Restore…' }).click()
    const refused = entry.getByTestId('preview-refused')
    await refused.waitFor()
    expect(await refused.innerText()).toContain(`Post #${post} “Slug owner”: its slug is now used by post #${squatter}. Rename one of them first.`)
    expect(await entry.getByRole('button', { name: /^Restore \d+ rows?$/ }).count()).toBe(0)
    await shot('deletion-refused')
  })

  test('the toast goes by itself after a while (the page clock, fast-forwarded); a permanent delete has no toast', async () => {
    const other = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    try {
      await other.clock.install()
      await other.goto(`${base}/admin/`)
      await other.evaluate((token) => sessionStorage.setItem('tombstone.admin.token', token), t.admin.token)
      const post = await createPost(t, author, { title: 'Toast timing' })
      const erased = await createPost(t, author, { title: 'Erased without undo' })
      await api('DELETE', `/posts/${post}`, author.token)
      await api('DELETE', `/posts/${erased}`, author.token)
      await other.goto(`${base}/admin/?q=Toast%20timing`)
      await other.getByTestId(`trash-post:${post}`).getByRole('button', { name: 'Restore' }).click()
      const shown = other.getByTestId('toast')
      await expect.poll(() => shown.innerText(), { timeout: 15_000 }).toContain(`Post #${post} “Toast timing” is restored.`)
      await other.clock.fastForward(5_000)
      expect(await shown.count()).toBe(1)
      await other.clock.fastForward(6_000)
      await expect.poll(() => shown.count(), { timeout: 15_000 }).toBe(0)
      await other.goto(`${base}/admin/?q=Erased%20without`)
      await other.getByTestId(`trash-post:${erased}`).getByRole('button', { name: 'Delete permanently' }).click()
      await other.getByRole('dialog').getByRole('button', { name: 'Delete permanently' }).click()
      await expect.poll(() => other.locator('.outcomes').innerText(), { timeout: 15_000 }).toContain('is deleted for good')
      expect(await shown.count()).toBe(0)
    } finally {
      await other.close()
    }
  })

  test('legal holds: placed and released from a trash row and from a deletion, with a reason; Held badges; the purge preview counts the held rows it keeps', async () => {
    const single = await createPost(t, author, { title: 'Held single row' })
    await api('DELETE', `/posts/${single}`, author.token)
    await page.goto(`${base}/admin/?q=Held%20single`)
    const line = row('post', single)
    await line.getByRole('button', { name: 'Hold…', exact: true }).click()
    const dialog = page.getByRole('dialog')
    await dialog.getByLabel('Reason').fill('subpoena 2026-117')
    await shot('hold-dialog')
    await dialog.getByRole('button', { name: 'Place hold' }).click()
    await poll(() => line.locator('.badge.held').innerText()).toBe('Held')
    expect(await line.getByRole('button', { name: 'Delete permanently' }).isDisabled()).toBe(true)
    expect((await api('DELETE', `/posts/${single}/permanent`, t.admin.token)).statusCode).toBe(409)
    await shot('trash-held')
    await line.getByRole('button', { name: 'Release hold…' }).click()
    await poll(() => dialog.getByTestId('holds-to-release').innerText()).toContain('“subpoena 2026-117”')
    await dialog.getByLabel('Reason').fill('case closed')
    await dialog.getByRole('button', { name: 'Release hold' }).click()
    await poll(() => line.getByRole('button', { name: 'Hold…', exact: true }).count()).toBe(1)
    expect(await line.locator('.badge.held').count()).toBe(0)

    // A whole deletion: a post and its two comments, deleted long ago.
    const post = await createPost(t, author, { title: 'Held with its comments' })
    await createComment(t, reader, post)
    await createComment(t, reader, post)
    const deletion = (await api('DELETE', `/posts/${post}`, author.token)).headers['tombstone-deletion'] as string
    for (const table of ['posts', 'comments'] as const) {
      await backdate(t.owner, sql`update ${sql.table(table)} set deleted_at = now() - interval '400 days' where deletion_id = ${deletion}::uuid`)
    }
    await page.goto(`${base}/admin/?tab=deletions`)
    const entry = page.getByTestId(`deletion-${deletion}`)
    await entry.getByRole('button', { name: 'Hold…', exact: true }).click()
    await dialog.getByLabel('Reason').fill('litigation hold')
    await dialog.getByRole('button', { name: 'Place hold' }).click()
    await poll(() => entry.getByRole('heading').innerText()).toContain('Held')
    await shot('deletion-held')
    await tab('Purge').click()
    await page.getByLabel(/Deleted more than/).fill('365')
    await page.getByRole('button', { name: 'Preview (dry run)' }).click()
    await poll(() => page.getByTestId('purge-held').innerText()).toContain('3 held rows are kept')
    // The held rows are not among what would go.
    expect(await visibleText()).not.toContain(`post “Held with its comments” (#${post})`)
    await shot('purge-held')
    // Released from the deletion: the preview no longer keeps them.
    await tab('Deletions').click()
    await entry.getByRole('button', { name: 'Release hold…' }).click()
    await dialog.getByTestId('holds-to-release').waitFor()
    await dialog.getByLabel('Reason').fill('settled')
    await dialog.getByRole('button', { name: 'Release hold' }).click()
    await poll(() => entry.getByRole('button', { name: 'Hold…', exact: true }).count()).toBe(1)
    await tab('Purge').click()
    await page.getByLabel(/Deleted more than/).fill('365')
    await page.getByRole('button', { name: 'Preview (dry run)' }).click()
    await poll(() => page.getByTestId('purge-sample').innerText()).toContain(`post “Held with its comments” (#${post})`)
    expect(await page.getByTestId('purge-held').count()).toBe(0)
    // The audit words for both.
    await page.goto(`${base}/admin/?tab=audit&entity=post&entity_id=${single}`)
    await poll(() => page.locator('.timeline').innerText()).toContain('released from a legal hold by admin — case closed')
    expect(await page.locator('.timeline').innerText()).toContain('put under a legal hold by admin — subpoena 2026-117')
  })

  test('audit: a chart of deleted, restored and purged rows per day over 30 days, with its numbers in a table', async () => {
    await page.goto(`${base}/admin/?tab=audit`)
    const chart = page.getByTestId('audit-chart')
    await chart.waitFor()
    const { days } = (await api('GET', '/admin/audit/daily?days=30', t.admin.token)).json() as { days: { date: string; soft_delete: number; restore: number; purge: number }[] }
    const today = days.at(-1) as (typeof days)[number]
    expect(today.soft_delete).toBeGreaterThan(0)
    const total = (field: 'soft_delete' | 'restore' | 'purge') => days.reduce((sum, day) => sum + day[field], 0)
    const svg = chart.locator('svg[role=img]')
    expect(await svg.getAttribute('aria-labelledby')).toBe('chart-title chart-desc')
    expect(await chart.locator('#chart-desc').textContent()).toBe(`Last 30 days: ${total('soft_delete')} rows deleted, ${total('restore')} restored, ${total('purge')} purged.`)
    expect(await chart.locator('.legend').innerText()).toContain(`Deleted: ${total('soft_delete')}`)
    expect(await svg.locator('rect').count()).toBe(90)
    await shot('audit-chart')
    await chart.getByText('Show the numbers').click()
    const lines = await chart.getByTestId('chart-table').locator('tbody tr').allInnerTexts()
    expect(lines).toHaveLength(30)
    expect(lines.at(-1)?.split('\t').slice(1)).toEqual([String(today.soft_delete), String(today.restore), String(today.purge)])
    await shot('audit-chart-numbers')
  })

  test('usable at phone width, and by keyboard', async () => {
    const post = await createPost(t, author, { title: 'Seen on a phone' })
    await api('DELETE', `/posts/${post}?reason=phone`, author.token)
    await page.setViewportSize({ width: 390, height: 844 })
    // Every screen at phone width: nothing wider than the screen.
    for (const [name, ready] of [['trash', 'table.trash, .empty'], ['deletions', 'ol.deletions, .empty'], ['audit', '[data-testid=audit-chart]'], ['purge', '#purge-title']] as const) {
      await page.goto(`${base}/admin/?tab=${name}`)
      await page.locator(ready).first().waitFor()
      await shot(`phone-${name}`)
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      expect({ name, overflow: overflow <= 1 }).toEqual({ name, overflow: true })
    }
    await page.getByRole('button', { name: 'Preview (dry run)' }).click()
    await page.getByTestId('purge-count').waitFor()
    await shot('phone-purge-preview')
    // A deletion expanded and previewed, and the toast, at phone width.
    const deletion = (await api('DELETE', `/posts/${await createPost(t, author, { title: 'Phone deletion' })}?reason=phone`, author.token)).headers['tombstone-deletion'] as string
    await page.goto(`${base}/admin/?tab=deletions&open=${deletion}`)
    const entry = page.getByTestId(`deletion-${deletion}`)
    await entry.getByTestId('deletion-parts').waitFor()
    await entry.getByRole('button', { name: 'Restore…' }).click()
    await entry.getByTestId('restore-preview').waitFor()
    await shot('phone-deletion-preview')
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(1)
    await entry.getByRole('button', { name: 'Restore 1 row' }).click()
    await page.getByTestId('toast').waitFor()
    await shot('phone-toast')
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
