import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createPublicKey, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { ManualClock } from '../core/index.ts'
import { LocalKeyring } from '../kms/index.ts'
import { SqliteAuditReader, SqliteAuditStore } from '../storage/sqlite/audit-store.ts'
import { SqliteDb } from '../storage/sqlite/db.ts'
import { SqliteKeyringStore } from '../storage/sqlite/keyring-store.ts'
import { AuditRecorder } from './recorder.ts'
import { AuditService } from './service.ts'
import { keyUseRecorder } from './sources.ts'
import { verifyLog } from './verify.ts'
import { verifyDigestSignature } from './digest.ts'
import { digestEntry, digestLine } from './export.ts'
import type { AuditEventInput } from './chain.ts'

/** A real audit log in a temp SQLite file with a real keyring; `open()` can be called again (restart). */
function harness (t: TestContext, clock = new ManualClock(Date.UTC(2026, 0, 1))) {
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-svc-'))
  const path = join(dir, 'thingward.db')
  const kek = randomBytes(32)
  const open: Array<{ db: SqliteDb }> = []
  t.after(() => { for (const o of open) o.db.close(); rmSync(dir, { recursive: true, force: true }) })
  return {
    path,
    clock,
    async open (opts: { intervalMs?: number } = {}) {
      const db = new SqliteDb({ path, synchronous: 'NORMAL' })
      open.push({ db })
      const store = new SqliteAuditStore(db, clock)
      const recorder = new AuditRecorder({ store })
      const keyring = await LocalKeyring.open({ store: new SqliteKeyringStore(db), kek: Buffer.from(kek), clock, onUse: keyUseRecorder(recorder) })
      const svc = await AuditService.open({ store, recorder, sealer: keyring, clock, digestIntervalMs: opts.intervalMs ?? 60_000 })
      return { db, store, svc, keyring }
    },
  }
}

const ev = (i: number, actor = 'user/admin'): AuditEventInput => ({ action: 'iot.CreateThing', actor, outcome: 'success', target: `arn:aws:iot:r:1:thing/t${i}` })

test('startup and shutdown digests; a restart reloads the sealed key and the log verifies closed', async (t) => {
  const h = harness(t)
  const a = await h.open()
  for (let i = 0; i < 5; i++) await a.svc.record(ev(i))
  await a.svc.close()
  a.db.close()
  const b = await h.open()
  await b.svc.record(ev(9))
  await b.svc.close()
  b.db.close()
  const reader = new SqliteAuditReader(h.path)
  t.after(() => reader.close())
  const r = await verifyLog(reader, { requireClosed: true })
  assert.equal(r.ok, true, r.firstBad?.message)
  assert.equal(r.closed, true)
  assert.deepEqual((await reader.digests()).map(d => (JSON.parse(d.body) as { reason: string }).reason), ['startup', 'shutdown', 'startup', 'shutdown'])
  assert.equal(r.signingKeys.length, 1, 'the same key after the restart')
  assert.deepEqual(r.uncleanStops, [])
  // The private key is stored only sealed: the row holds a keyring envelope, not PKCS#8.
  const raw = new SqliteDb({ path: h.path })
  t.after(() => raw.close())
  const row = raw.get<{ sealed_private: Uint8Array }>('SELECT sealed_private FROM audit_keys')
  assert.equal(row?.sealed_private[0], 0x01, 'keyring envelope format 1')
  assert.ok(!Buffer.from(row?.sealed_private ?? []).includes(Buffer.from([0x30, 0x81, 0x87, 0x02, 0x01, 0x00])), 'no PKCS#8 header in clear')
})

test('an unclean stop is visible: the next startup digest follows a non-shutdown digest and covers the unsigned tail', async (t) => {
  const h = harness(t)
  const a = await h.open()
  for (let i = 0; i < 3; i++) await a.svc.record(ev(i))
  a.db.close() // crash: no shutdown digest
  const b = await h.open()
  await b.svc.close()
  b.db.close()
  const reader = new SqliteAuditReader(h.path)
  t.after(() => reader.close())
  const r = await verifyLog(reader, { requireClosed: true })
  assert.equal(r.ok, true)
  assert.deepEqual(r.uncleanStops, [2])
})

test('the cadence signs digests on time, also with nothing new, and a long silence shows as a gap', async (t) => {
  const h = harness(t)
  const a = await h.open({ intervalMs: 60_000 })
  await a.svc.tick()
  assert.equal((await a.store.digests()).length, 1, 'not due yet')
  h.clock.advance(60_000)
  await a.svc.record(ev(1))
  await a.svc.tick()
  h.clock.advance(60_000)
  await a.svc.tick()
  const ds = (await a.store.digests()).map(d => JSON.parse(d.body) as { reason: string, count: number })
  assert.deepEqual(ds.map(d => [d.reason, d.count]), [['startup', 1], ['interval', 1], ['interval', 0]])
  h.clock.advance(10 * 60_000)
  await a.svc.tick()
  const r = await a.svc.verify()
  assert.equal(r.ok, true)
  assert.equal(r.gaps.length, 1)
  assert.equal(r.gaps[0].toMs - r.gaps[0].fromMs, 10 * 60_000)
})

test('key rotation: the old key signs the hand-over; trust pinned on the first key carries over; the old private key is destroyed', async (t) => {
  const h = harness(t)
  const a = await h.open()
  await a.svc.record(ev(1))
  const first = (await a.svc.publicKeys())[0].fingerprint
  const { previous, current } = await a.svc.rotateSigningKey({ actor: 'user/admin' })
  assert.equal(previous, first)
  await a.svc.record(ev(2))
  await a.svc.close()
  a.db.close()
  const reader = new SqliteAuditReader(h.path)
  t.after(() => reader.close())
  const pinned = await verifyLog(reader, { trustedKeys: [first], requireClosed: true })
  assert.equal(pinned.ok, true, pinned.firstBad?.message)
  assert.deepEqual(pinned.signingKeys, [first, current])
  const wrongPin = await verifyLog(reader, { trustedKeys: [current] })
  assert.equal(wrongPin.firstBad?.kind, 'digest-invalid')
  assert.equal(wrongPin.firstBad?.digestSeq, 1)
  const keys = await reader.publicKeys()
  assert.deepEqual(keys.map(k => [k.fingerprint, k.retiredMs !== undefined]), [[first, true], [current, false]])
  const raw = new SqliteDb({ path: h.path })
  t.after(() => raw.close())
  assert.equal(raw.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_keys WHERE sealed_private IS NOT NULL')?.n, 1)
  // A restart signs with the new key.
  raw.close()
  const b = await h.open()
  await b.svc.close()
  b.db.close()
  assert.equal((await verifyLog(reader, { trustedKeys: [first] })).ok, true)
})

test('prune deletes a prefix at a digest boundary, records itself, and what remains verifies; an unrecorded deletion does not', async (t) => {
  const h = harness(t)
  const a = await h.open()
  for (let i = 0; i < 10; i++) await a.svc.record(ev(i))
  const boundary = await a.svc.signDigest()
  h.clock.advance(86_400_000)
  for (let i = 10; i < 15; i++) await a.svc.record(ev(i))
  const cut = await a.svc.prune({ actor: 'user/admin' }, h.clock.nowMs() - 3_600_000)
  assert.equal(cut.throughSeq, boundary.toSeq)
  assert.equal(cut.deleted, boundary.toSeq)
  const r = await a.svc.verify()
  assert.equal(r.ok, true, r.firstBad?.message)
  assert.equal(r.prunedThroughSeq, boundary.toSeq)
  assert.equal((await a.svc.search({ action: 'audit.Prune' })).records.length, 1)
  assert.deepEqual(await a.svc.prune({ actor: 'user/admin' }, h.clock.nowMs() - 3_600_000), { throughSeq: boundary.toSeq, deleted: 0 }, 'idempotent')
  await a.svc.close()
  a.db.close()
  // An attacker removes two more records from the start.
  const raw = new SqliteDb({ path: h.path })
  raw.run('DELETE FROM audit_events WHERE seq <= ?', boundary.toSeq + 2)
  raw.close()
  const reader = new SqliteAuditReader(h.path)
  t.after(() => reader.close())
  const bad = await verifyLog(reader)
  assert.equal(bad.firstBad?.kind, 'deleted')
})

test('search: principal, thing, action, outcome and time range, paged by sequence', async (t) => {
  const h = harness(t)
  const a = await h.open()
  const t0 = h.clock.nowMs()
  for (let i = 0; i < 6; i++) { await a.svc.record(ev(i, i % 2 === 0 ? 'user/a' : 'user/b')); h.clock.advance(1000) }
  await a.svc.record({ action: 'mqtt.connect', actor: 'cert/x', outcome: 'denied', thing: 't3', reason: 'certificate-revoked' })
  const s = async (q: Parameters<AuditService['search']>[0]): Promise<string[]> => (await a.svc.search(q)).records.map(r => `${r.actor}:${r.target ?? r.thing ?? ''}`)
  assert.deepEqual(await s({ principal: 'user/b' }), ['user/b:arn:aws:iot:r:1:thing/t1', 'user/b:arn:aws:iot:r:1:thing/t3', 'user/b:arn:aws:iot:r:1:thing/t5'])
  assert.deepEqual(await s({ thing: 't3' }), ['user/b:arn:aws:iot:r:1:thing/t3', 'cert/x:t3'])
  assert.deepEqual(await s({ outcome: 'denied' }), ['cert/x:t3'])
  assert.deepEqual(await s({ action: 'iot.CreateThing', fromMs: t0 + 2000, toMs: t0 + 4000 }), ['user/a:arn:aws:iot:r:1:thing/t2', 'user/b:arn:aws:iot:r:1:thing/t3'])
  assert.deepEqual(await s({ principal: 'user/nobody' }), [])
  const p1 = await a.svc.search({ action: 'iot.CreateThing', limit: 4 })
  assert.equal(p1.records.length, 4)
  const p2 = await a.svc.search({ action: 'iot.CreateThing', limit: 4, afterSeq: Number(p1.nextToken) })
  assert.equal(p2.records.length, 2)
  assert.equal(p2.nextToken, undefined)
  await assert.rejects(a.svc.search({ fromMs: 10, toMs: 5 }), { code: 'ERR_REGISTRY_INVALID_REQUEST' })
})

test('two processes on one database (a CLI command while the server runs) keep one digest chain, across a key rotation', async (t) => {
  const h = harness(t)
  const server = await h.open()
  await server.svc.record(ev(1))
  const first = (await server.svc.publicKeys())[0].fingerprint
  const cli = await h.open() // signs its startup digest behind the server's back
  await cli.svc.record(ev(2))
  await cli.svc.rotateSigningKey({ actor: 'user/admin' })
  await cli.svc.close()
  await server.svc.record(ev(3))
  await server.svc.signDigest() // must build on the other process's digests and pick up the new key
  await server.svc.close()
  const reader = new SqliteAuditReader(h.path)
  t.after(() => reader.close())
  const r = await verifyLog(reader, { trustedKeys: [first], requireClosed: true })
  assert.equal(r.ok, true, r.firstBad?.message)
  assert.equal(r.signingKeys.length, 2)
})

test('a digest as the API returns it serializes to exactly its stream line, and its signature checks with a parsed or PEM key', async (t) => {
  const h = harness(t)
  const a = await h.open()
  await a.svc.record(ev(1))
  const d = await a.svc.signDigest()
  assert.equal(JSON.stringify(digestEntry(d)), digestLine(d))
  const [key] = await a.svc.publicKeys()
  assert.equal(verifyDigestSignature(d, key.publicKeyPem), true)
  assert.equal(verifyDigestSignature(d, createPublicKey(key.publicKeyPem)), true)
  assert.equal(verifyDigestSignature({ ...d, signature: d.signature.replace(/^../, '00') }, key.publicKeyPem), false)
  await a.svc.close()
})
