import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { AppError } from '../../core/index.ts'
import { SqliteDb } from './db.ts'
import { MIGRATIONS } from './migrations.ts'

const tmp = (t: { after: (fn: () => void) => void }): string => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-db-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('migrations apply once and reopening is a no-op; the file is private (0600)', (t) => {
  const path = join(tmp(t), 'a.db')
  const a = new SqliteDb({ path })
  assert.equal(a.schemaVersion, MIGRATIONS.length)
  a.close()
  const b = new SqliteDb({ path })
  assert.equal(b.all('SELECT version FROM schema_migrations').length, MIGRATIONS.length)
  b.close()
  assert.equal(statSync(path).mode & 0o777, 0o600)
})

test('a database from a newer version is refused, untouched', (t) => {
  const path = join(tmp(t), 'b.db')
  const a = new SqliteDb({ path })
  a.run('INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)', MIGRATIONS.length + 1, 0)
  a.close()
  assert.throws(() => new SqliteDb({ path }), (e: unknown) => e instanceof AppError && e.code === 'ERR_STORAGE_MIGRATION')
})

test('a file that is not a database is refused with an error, not overwritten', (t) => {
  const path = join(tmp(t), 'c.db')
  writeFileSync(path, 'this is not sqlite'.repeat(100))
  assert.throws(() => new SqliteDb({ path }), (e: unknown) => e instanceof AppError && e.code === 'ERR_STORAGE_CORRUPT' && /not a valid SQLite database/.test(e.message))
  assert.match(readFileSync(path, 'utf8'), /^this is not sqlite/)
})

test('transactions are serialized: an await inside one never lets another interleave', async (t) => {
  const db = new SqliteDb({ path: join(tmp(t), 'd.db') })
  t.after(() => db.close())
  const order: string[] = []
  const slow = db.transaction(async () => {
    db.run("INSERT INTO meta (key, value) VALUES ('a', '1')")
    order.push('a-start')
    await new Promise(r => setImmediate(r))
    order.push('a-end')
  })
  const fast = db.read(() => { order.push(`b-sees-${db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'a'")?.value ?? 'none'}`) })
  await Promise.all([slow, fast])
  assert.deepEqual(order, ['a-start', 'a-end', 'b-sees-1'])
})

test('a failed transaction rolls back and the queue keeps working', async (t) => {
  const db = new SqliteDb({ path: join(tmp(t), 'e.db') })
  t.after(() => db.close())
  await assert.rejects(db.transaction(() => { db.run("INSERT INTO meta (key, value) VALUES ('x', '1')"); throw new Error('no') }), /no/)
  assert.equal(await db.read(() => db.get("SELECT value FROM meta WHERE key = 'x'")), undefined)
  await db.transaction(() => { db.run("INSERT INTO meta (key, value) VALUES ('y', '2')") })
  assert.equal((await db.read(() => db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'y'")))?.value, '2')
})
