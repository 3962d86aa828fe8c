import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../core/index.ts'
import { SqliteAuditStore } from '../storage/sqlite/audit-store.ts'
import { SqliteDb } from '../storage/sqlite/db.ts'
import { verifyChain } from './chain.ts'
import type { AuditEventInput, AuditRecord } from './chain.ts'
import { AuditRecorder } from './recorder.ts'

const ev = (i: number): AuditEventInput => ({ action: 'test.event', actor: 'system', outcome: 'success', details: { i } })

function store (): { db: SqliteDb, store: SqliteAuditStore, batches: number[] } {
  const db = new SqliteDb({ path: ':memory:' })
  const s = new SqliteAuditStore(db, new ManualClock())
  const batches: number[] = []
  const appendMany = s.appendMany.bind(s)
  // Observe batch sizes; the real store does the work.
  Object.defineProperty(s, 'appendMany', { configurable: true, value: async (events: readonly AuditEventInput[]) => { batches.push(events.length); return appendMany(events) } })
  return { db, store: s, batches }
}

test('group commit: events arriving together share one transaction; records resolve in order', async () => {
  const { db, store: s, batches } = store()
  const r = new AuditRecorder({ store: s, maxBatch: 400 })
  const records = await Promise.all(Array.from({ length: 1000 }, (_, i) => r.record(ev(i))))
  assert.deepEqual(records.map(x => x.seq), Array.from({ length: 1000 }, (_, i) => i + 1))
  assert.deepEqual(batches, [400, 400, 200])
  assert.equal(verifyChain(await s.rows()), undefined)
  db.close()
})

test('past the hard limit record/enqueue refuse (fail closed) and nothing of theirs is written; enqueueAlways never refuses', async () => {
  const { db, store: s } = store()
  let release = (): void => {}
  const held = db.transaction(() => new Promise<void>((resolve) => { release = resolve }))
  const r = new AuditRecorder({ store: s, highWaterMark: 5, hardLimit: 10 })
  for (let i = 0; i < 10; i++) r.enqueue(ev(i))
  assert.equal(r.saturated, true)
  assert.throws(() => r.enqueue(ev(99)), { code: 'ERR_AUDIT_OVERLOADED' })
  await assert.rejects(r.record(ev(98)), { code: 'ERR_AUDIT_OVERLOADED' })
  r.enqueueAlways(ev(11))
  release()
  await held
  await r.flush()
  const rows = (await s.rows()).map(x => (JSON.parse(x.body) as AuditRecord).details?.i)
  assert.deepEqual(rows, [...Array.from({ length: 10 }, (_, i) => i), 11])
  assert.equal(r.saturated, false)
  db.close()
})

test('a failed commit: awaited events are rejected, queued ones retried; an unencodable event is kept in a JSON-safe form', async () => {
  const { db, store: s } = store()
  const appendMany = s.appendMany.bind(s)
  let failures = 1
  Object.defineProperty(s, 'appendMany', {
    value: async (events: readonly AuditEventInput[]) => {
      if (failures-- > 0) throw new Error('disk full')
      return appendMany(events)
    },
  })
  const errors: unknown[] = []
  const r = new AuditRecorder({ store: s, retryMs: 1, onError: (e) => { errors.push(e) } })
  r.enqueue(ev(1))
  const awaited = r.record(ev(2))
  await assert.rejects(awaited, /disk full/)
  await r.flush()
  assert.deepEqual((await s.rows()).map(x => (JSON.parse(x.body) as AuditRecord).details?.i), [1])
  // A BigInt cannot be encoded: the event is kept, sanitized, instead of blocking the queue forever.
  r.enqueue({ action: 'test.odd', actor: 'system', outcome: 'success', details: { big: 10n as unknown as number, n: Number.NaN } })
  r.enqueue(ev(3))
  await r.flush()
  const last = (await s.rows()).slice(-2).map(x => JSON.parse(x.body) as AuditRecord)
  assert.deepEqual(last[0].details, { big: '10', n: null, sanitized: true })
  assert.equal(last[1].details?.i, 3)
  assert.equal(errors.length, 2)
  await r.close()
  assert.throws(() => r.enqueue(ev(4)), /closed/)
  db.close()
})

test('commit delay: events nobody awaits share one commit; an awaited event, flush or a full batch commits at once', async () => {
  const { db, store: s, batches } = store()
  const r = new AuditRecorder({ store: s, commitDelayMs: 60_000, delayedBatch: 50 })
  for (let i = 0; i < 3; i++) { r.enqueueAlways(ev(i)); await new Promise<void>(resolve => { setImmediate(resolve) }) }
  // Three events queued over three turns of the event loop, none committed: the delay holds them.
  assert.deepEqual(batches, [])
  assert.equal(r.pending, 3)
  const rec = await r.record(ev(3))
  assert.equal(rec.seq, 4)
  assert.deepEqual(batches, [4])
  for (let i = 4; i < 54; i++) r.enqueue(ev(i))
  await new Promise<void>(resolve => { setImmediate(resolve) })
  assert.deepEqual(batches, [4, 50])
  r.enqueue(ev(54))
  await r.flush()
  assert.deepEqual(batches, [4, 50, 1])
  assert.equal(r.pending, 0)
  assert.equal(verifyChain(await s.rows()), undefined)
  await r.close()
  db.close()
})
