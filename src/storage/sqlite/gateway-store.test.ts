import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqliteDb } from './db.ts'
import { SqliteGatewayStore } from './gateway-store.ts'
import type { StoredMessage, StoredSession } from '../../gateway/ports.ts'

const session = (clientId: string, extra: Partial<StoredSession> = {}): StoredSession => ({
  clientId, protocolVersion: 5, expiryIntervalSec: 3600,
  subscriptions: [{ filter: 'a/+', qos: 1, noLocal: true, retainAsPublished: false, retainHandling: 1, subscriptionIdentifier: 7 },
    { filter: '$share/g/b/#', qos: 0, noLocal: false, retainAsPublished: true, retainHandling: 0 }],
  ...extra,
})
const msg = (topic: string, payload: string, extra: Partial<StoredMessage> = {}): StoredMessage =>
  ({ topic, payload: Buffer.from(payload), qos: 1, retain: false, ...extra })

test('sqlite gateway store: sessions, queued messages and retained messages survive reopening the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-gw-store-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'db.sqlite')
  let db = new SqliteDb({ path })
  let store = new SqliteGatewayStore(db)
  await store.saveSession(session('c1', { disconnectedAtMs: 1000, principalId: 'p1' }))
  await store.appendMessages([
    { clientId: 'c1', message: msg('a/1', 'one', { properties: { userProperties: { k: ['v1', 'v2'] }, correlationData: Buffer.from([1, 2]), contentType: 'text/plain' } }) },
    { clientId: 'c1', message: msg('a/2', 'two', { expiresAtMs: 99_999 }) },
    { clientId: 'nobody', message: msg('a/3', 'dropped') },
  ])
  await store.saveSession(session('c1', { disconnectedAtMs: 2000 })) // an update must keep the queue
  await store.applyRetained([{ topic: 'r/1', message: msg('r/1', 'keep', { retain: true }) }, { topic: 'r/2', message: msg('r/2', 'gone', { retain: true }) }])
  await store.applyRetained([{ topic: 'r/2' }])
  db.close()

  db = new SqliteDb({ path })
  t.after(() => db.close())
  store = new SqliteGatewayStore(db)
  const loaded = await store.loadSessions()
  assert.equal(loaded.length, 1)
  assert.deepEqual(loaded[0].session, { ...session('c1', { disconnectedAtMs: 2000 }) })
  assert.deepEqual(loaded[0].messages.map((m) => m.payload.toString()), ['one', 'two'])
  const props = loaded[0].messages[0].properties
  assert.deepEqual({ ...props, userProperties: { ...props?.userProperties } },
    { userProperties: { k: ['v1', 'v2'] }, correlationData: Buffer.from([1, 2]), contentType: 'text/plain' })
  assert.equal(loaded[0].messages[1].expiresAtMs, 99_999)
  const retained = await store.loadRetained()
  assert.deepEqual(retained.map((m) => [m.topic, m.payload.toString(), m.retain]), [['r/1', 'keep', true]])

  await store.replaceMessages('c1', [msg('a/9', 'nine')])
  assert.deepEqual((await store.loadSessions())[0].messages.map((m) => m.topic), ['a/9'])
  await store.deleteSession('c1')
  assert.deepEqual(await store.loadSessions(), [])
  assert.equal(db.get<{ n: number }>('SELECT COUNT(*) AS n FROM gateway_session_messages')?.n, 0, 'no orphaned messages')
})

test('sqlite gateway store: a malformed row is ERR_STORAGE_CORRUPT, not a crash later', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  const store = new SqliteGatewayStore(db)
  db.run("INSERT INTO gateway_sessions (client_id, protocol_version, expiry_interval_sec, subscriptions, updated_ms) VALUES ('x', 5, 10, '{bad', 0)")
  await assert.rejects(store.loadSessions(), (e: unknown) => e instanceof Error && 'code' in e && e.code === 'ERR_STORAGE_CORRUPT')
})
