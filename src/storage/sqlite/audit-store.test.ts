import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import type { TestContext } from 'node:test'
import { canonicalJson, ManualClock } from '../../core/index.ts'
import { GENESIS_HASH, hashBody, verifyChain, verifyLog } from '../../audit/index.ts'
import type { AuditRecord } from '../../audit/index.ts'
import { key53, SqliteAuditReader, SqliteAuditStore } from './audit-store.ts'
import { SqliteDb } from './db.ts'

function temp (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'thingward.db')
}

const ev = { action: 'iot.CreateThing', actor: 'user/admin', outcome: 'success' } as const

test('in-transaction appends commit or roll back with the transaction; the committed head follows only commits', async (t) => {
  const db = new SqliteDb({ path: temp(t) })
  t.after(() => db.close())
  const s = new SqliteAuditStore(db, new ManualClock())
  await assert.rejects(s.append(ev), /outside a transaction/)
  await db.transaction(() => s.append(ev))
  await s.head()
  assert.equal(s.committedHead()?.seq, 1)
  await assert.rejects(db.transaction(async () => { await s.append(ev); throw new Error('change failed') }), /change failed/)
  await s.head()
  assert.equal(s.committedHead()?.seq, 1, 'a rolled-back append is not committed')
  assert.equal((await s.rows()).length, 1, 'and its record is gone with the change')
  const [r] = await s.appendMany([ev])
  assert.equal(r.seq, 2)
  assert.equal(s.committedHead()?.seq, 2)
  assert.equal(verifyChain(await s.rows()), undefined)
})

test('record times never go backwards, so a time range is a sequence range', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  const clock = new ManualClock(10_000)
  const s = new SqliteAuditStore(db, clock)
  await s.appendMany([ev])
  clock.set(5_000) // the wall clock steps back
  const [r] = await s.appendMany([ev])
  assert.equal(r.timeMs, 10_000)
})

test('records removed behind the process: new records chain on the committed head, leaving the hole visible', async (t) => {
  const path = temp(t)
  const db = new SqliteDb({ path })
  t.after(() => db.close())
  const s = new SqliteAuditStore(db, new ManualClock())
  await s.appendMany([ev, ev, ev, ev])
  const attacker = new DatabaseSync(path)
  attacker.prepare('DELETE FROM audit_events WHERE seq > 2').run()
  attacker.close()
  const [r] = await s.appendMany([ev])
  assert.equal(r.seq, 5)
  const p = verifyChain(await s.rows())
  assert.deepEqual([p?.seq, p?.kind], [3, 'deleted'])
})

test('rows written before the search columns existed are indexed when the store opens', async (t) => {
  const path = temp(t)
  const db = new SqliteDb({ path })
  t.after(() => db.close())
  // A record in the pre-format-1 encoding (keys all sorted), inserted without index columns.
  const body = canonicalJson({ action: 'iot.DeleteThing', actor: 'user/old', outcome: 'success', seq: 1, prevHash: GENESIS_HASH, timeMs: 1, target: 'arn:aws:iot:r:1:thing/legacy' })
  db.run('INSERT INTO audit_events (seq, time_ms, body, hash) VALUES (1, 1, ?, ?)', body, hashBody(body))
  const s = new SqliteAuditStore(db, new ManualClock())
  const found = (await s.search({ thing: 'legacy', limit: 10 })).map(r => (JSON.parse(r[1]) as AuditRecord).actor)
  assert.deepEqual(found, ['user/old'])
  assert.equal((await s.search({ principal: 'user/old', action: 'iot.DeleteThing', limit: 10 })).length, 1)
  await s.appendMany([ev])
  assert.equal(verifyChain(await s.rows()), undefined, 'a format-1 record chains on a legacy one')
  assert.equal(key53('user/old'), key53('user/old'))
  assert.ok(Number.isSafeInteger(key53('x'.repeat(1000))))
})

test('the offline reader opens a read-only file, writes nothing, and reads a database without audit tables as empty', async (t) => {
  const path = temp(t)
  const db = new SqliteDb({ path })
  const s = new SqliteAuditStore(db, new ManualClock())
  await s.appendMany([ev, ev])
  db.close()
  chmodSync(path, 0o400)
  const digest = (): string => createHash('sha256').update(readFileSync(path)).digest('hex')
  const before = digest()
  const reader = new SqliteAuditReader(path)
  t.after(() => reader.close())
  assert.deepEqual(await reader.eventBounds(), { minSeq: 1, maxSeq: 2 })
  const r = await verifyLog(reader)
  assert.equal(r.ok, true)
  assert.equal(r.digests, 0)
  assert.deepEqual(r.unsignedTail, { fromSeq: 1, toSeq: 2, count: 2 })
  assert.equal(digest(), before, 'the database file is unchanged')

  const bare = join(path, '..', 'bare.db')
  const b = new DatabaseSync(bare)
  b.exec('CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, body TEXT NOT NULL, hash TEXT NOT NULL)')
  b.close()
  const old = new SqliteAuditReader(bare)
  t.after(() => old.close())
  assert.deepEqual(await old.digests(), [])
  assert.deepEqual(await old.publicKeys(), [])
  assert.deepEqual(await old.findEvents('audit.Prune', 10), [])
  assert.throws(() => new SqliteAuditReader(join(path, '..', 'missing.db')), { code: 'ERR_STORAGE_CORRUPT' })
})
