/**
 * Persistent sessions and retained messages survive a gateway restart: the gateway is stopped, its SQLite file
 * closed and reopened by a brand-new Gateway, and real clients reconnect.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet'
import { ManualClock } from '../src/core/index.ts'
import { MemoryRetainedStore, MemorySessionStore } from '../src/gateway/index.ts'
import { SqliteDb } from '../src/storage/sqlite/db.ts'
import { SqliteGatewayStore } from '../src/storage/sqlite/gateway-store.ts'
import { cleanupPki, closed, createPki, Inbox, startGateway, waitUntil } from './gateway-helpers.ts'
import type { TestGateway, TestGatewayOptions, TestPki } from './gateway-helpers.ts'

let pki: TestPki
before(() => { pki = createPki(['dev-a', 'dev-b']) })
after(() => { cleanupPki(pki) })

/** A gateway on a SQLite file that can be restarted: `restart()` stops it, closes the DB and starts a new one. */
async function sqliteGateway (t: TestContext, opts: TestGatewayOptions = {}): Promise<{ h: () => TestGateway, restart: () => Promise<void>, db: () => SqliteDb }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-gw-persist-'))
  const path = join(dir, 'thingward.db')
  let db = new SqliteDb({ path })
  let store = new SqliteGatewayStore(db)
  let h = await startGateway(t, pki, { ...opts, sessionStore: store, retainedStore: store })
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }) })
  return {
    h: () => h,
    db: () => db,
    restart: async () => {
      await h.stop()
      db.close()
      db = new SqliteDb({ path })
      store = new SqliteGatewayStore(db)
      h = await startGateway(t, pki, { ...opts, sessionStore: store, retainedStore: store })
    },
  }
}

describe('persistent sessions across a gateway restart', () => {
  test('[MQTT-3.1.2-4] [MQTT-3.1.2-5] 3.1.1 CleanSession 0: subscriptions and queued QoS 1 messages survive a restart', async (t) => {
    const g = await sqliteGateway(t)
    const sub = await g.h().client('dev-a', { protocolVersion: 4, clean: false })
    await sub.subscribeAsync({ 'p/#': { qos: 1 }, 'z/q0': { qos: 0 } })
    sub.end()
    await closed(sub)
    await waitUntil(() => g.h().gw.sessions.get('dev-a')?.connected === false)
    const pub = await g.h().client('dev-b', { protocolVersion: 4 })
    for (let i = 0; i < 3; i++) await pub.publishAsync('p/x', `before-${i}`, { qos: 1 })
    await g.h().gw.flush()
    await g.restart()
    assert.equal(g.h().gw.sessions.get('dev-a')?.queuedMessages, 3, 'queue restored from disk')
    const pub2 = await g.h().client('dev-b', { protocolVersion: 4 })
    await pub2.publishAsync('p/x', 'after-restart', { qos: 1 })
    const r = await g.h().raw('dev-a')
    const ack = await r.connect('dev-a', { clean: false }) as IConnackPacket
    assert.equal(ack.sessionPresent, true)
    const got: string[] = []
    for (let i = 0; i < 4; i++) {
      const p = await r.next('publish') as IPublishPacket
      got.push(p.payload.toString())
      r.send({ cmd: 'puback', messageId: p.messageId ?? 0 })
    }
    assert.deepEqual(got, ['before-0', 'before-1', 'before-2', 'after-restart'])
    assert.deepEqual([...(g.h().gw.sessions.get('dev-a')?.subscriptionFilters ?? [])].sort(), ['p/#', 'z/q0'])
  })

  test('MQTT 5: messages in flight when the gateway stops are re-sent after the restart', async (t) => {
    const g = await sqliteGateway(t)
    const r = await g.h().raw('dev-a')
    await r.connect('dev-a', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'inflight/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await r.next('suback')
    const pub = await g.h().client('dev-b')
    await pub.publishAsync('inflight/x', 'unacked', { qos: 1 })
    await r.next('publish') // never acknowledged
    await g.restart()
    const r2 = await g.h().raw('dev-a')
    const ack = await r2.connect('dev-a', { protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } }) as IConnackPacket
    assert.equal(ack.sessionPresent, true)
    const p = await r2.next('publish') as IPublishPacket
    assert.equal(p.payload.toString(), 'unacked')
  })

  test('retained messages survive a restart; a deletion survives it too', async (t) => {
    const g = await sqliteGateway(t)
    const pub = await g.h().client('dev-b')
    await pub.publishAsync('ret/keep', 'k', { qos: 1, retain: true, properties: { userProperties: { a: 'b' } } })
    await pub.publishAsync('ret/drop', 'd', { qos: 1, retain: true })
    await pub.publishAsync('ret/drop', '', { qos: 1, retain: true })
    await g.restart()
    assert.equal(g.h().gw.metrics.retainedMessages, 1)
    const sub = await g.h().client('dev-a')
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('ret/#', { qos: 1 })
    const m = await inbox.waitFor('ret/keep')
    assert.equal(m.packet.retain, true)
    assert.deepEqual({ ...(m.packet.properties?.userProperties as object) }, { a: 'b' })
  })

  test('a session whose expiry passed while the gateway was down is discarded at start', async (t) => {
    const clock = new ManualClock()
    const g = await sqliteGateway(t, { clock, housekeepingIntervalMs: 0 })
    const r = await g.h().raw('dev-a')
    await r.connect('dev-a', { protocolVersion: 5, properties: { sessionExpiryInterval: 60 } })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'e/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await r.next('suback')
    r.send({ cmd: 'disconnect', reasonCode: 0 })
    await waitUntil(() => g.h().gw.sessions.get('dev-a')?.connected === false)
    clock.advance(61_000)
    await g.restart()
    assert.equal(g.h().gw.sessions.size, 0)
    await g.h().gw.flush()
    assert.equal(g.db().get<{ n: number }>('SELECT COUNT(*) AS n FROM gateway_sessions')?.n, 0, 'and removed from disk')
  })

  test('clean sessions leave nothing on disk', async (t) => {
    const g = await sqliteGateway(t)
    const c = await g.h().client('dev-a', { protocolVersion: 4, clean: true })
    await c.subscribeAsync('x/#', { qos: 1 })
    c.end()
    await closed(c)
    await g.h().gw.flush()
    assert.equal(g.db().get<{ n: number }>('SELECT COUNT(*) AS n FROM gateway_sessions')?.n, 0)
  })

  test('the in-memory stores give the same restart semantics within one process', async (t) => {
    const sessionStore = new MemorySessionStore()
    const retainedStore = new MemoryRetainedStore()
    const h1 = await startGateway(t, pki, { sessionStore, retainedStore })
    const sub = await h1.client('dev-a', { protocolVersion: 4, clean: false })
    await sub.subscribeAsync('m/#', { qos: 1 })
    await h1.stop()
    const h2 = await startGateway(t, pki, { sessionStore, retainedStore })
    const pub = await h2.client('dev-b')
    await pub.publishAsync('m/x', 'v', { qos: 1 })
    const again = await h2.client('dev-a', { protocolVersion: 4, clean: false })
    assert.equal((await new Inbox(again).waitFor('m/x')).payload, 'v')
  })
})
