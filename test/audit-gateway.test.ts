/**
 * Gateway events in the audit log, and backpressure: a real gateway (mTLS on 127.0.0.1:0, real MQTT.js clients)
 * whose audit sink is the group-commit recorder over a real SQLite file. While the recorder is saturated, new
 * connections are refused; no event is dropped; allowed message-level events are sampled, denials never.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync } from 'mqtt'
import type { MqttClient } from 'mqtt'
import { Gateway } from '../src/gateway/index.ts'
import type { AuthenticationResult, ConnectionRequest, GatewayAuditEvent } from '../src/gateway/index.ts'
import { AuditRecorder, GatewayAuditAdapter, refuseWhenSaturated } from '../src/audit/index.ts'
import type { AuditRecord } from '../src/audit/index.ts'
import { ManualClock } from '../src/core/index.ts'
import { SqliteAuditStore } from '../src/storage/sqlite/audit-store.ts'
import { SqliteDb } from '../src/storage/sqlite/db.ts'
import { createPki, PrefixPolicy, TEST_LIMITS } from './gateway-helpers.ts'

const pki = createPki(['lamp-1', 'lamp-2', 'lamp-3'])

test('while the audit recorder is saturated the gateway refuses new connections; every event is kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-audit-gw-'))
  const db = new SqliteDb({ path: join(dir, 'audit.db'), synchronous: 'NORMAL' })
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }) })
  const store = new SqliteAuditStore(db, new ManualClock())
  const recorder = new AuditRecorder({ store, highWaterMark: 50 })
  const adapter = new GatewayAuditAdapter(recorder) // messageSampleRate 0: allowed publishes are not kept
  const emitted: GatewayAuditEvent[] = []
  const policy = new PrefixPolicy({ connect: ['${cn}'], publish: ['lamp/${cn}/*'], subscribe: ['lamp/${cn}/*'], receive: ['lamp/${cn}/*'] })
  for (const name of ['lamp-1', 'lamp-2', 'lamp-3']) policy.register(pki.client(name), name)
  const refused: AuthenticationResult = { ok: false, reason: 'audit-backpressure' }
  const gw = new Gateway({
    tls: { cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert] },
    authenticator: { authenticate: refuseWhenSaturated(recorder, (r: ConnectionRequest) => policy.authenticate(r), refused) },
    authorizers: policy,
    audit: { record (e) { emitted.push(e); adapter.record(e) } },
    limits: TEST_LIMITS,
    housekeepingIntervalMs: 0,
  })
  const { port } = await gw.start({ host: '127.0.0.1', port: 0 })
  const clients: MqttClient[] = []
  t.after(async () => { for (const c of clients) c.end(true); await gw.stop() })
  const connect = async (name: string): Promise<MqttClient> => {
    const c = await connectAsync(`mqtts://127.0.0.1:${port}`, { key: pki.client(name).key, cert: pki.client(name).cert, ca: pki.caCert, clientId: name, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 })
    clients.push(c)
    return c
  }

  const lamp1 = await connect('lamp-1')
  await lamp1.publishAsync('lamp/lamp-1/state', 'on', { qos: 1 })
  await lamp1.publishAsync('lamp/lamp-2/state', 'on', { qos: 1 }).catch(() => {}) // denied: not its topic
  await recorder.flush()
  assert.equal(recorder.saturated, false)

  // Hold the database (a long transaction elsewhere): commits queue, the recorder saturates.
  let release = (): void => {}
  const held = db.transaction(() => new Promise<void>((resolve) => { release = resolve }))
  for (let i = 0; i < 60; i++) recorder.enqueue({ action: 'test.load', actor: 'system', outcome: 'success', details: { i } })
  assert.equal(recorder.saturated, true)
  await assert.rejects(connect('lamp-2'), /Not authorized/i)
  assert.ok(recorder.pending > 60, 'the refusal itself is queued, not dropped')

  release()
  await held
  await recorder.flush()
  assert.equal(recorder.saturated, false)
  const lamp2 = await connect('lamp-2')
  lamp2.end(true)
  await recorder.flush()
  await new Promise<void>((resolve) => { setImmediate(resolve) })
  await recorder.flush()

  const records = (await store.rows()).map(r => JSON.parse(r.body) as AuditRecord)
  const mqtt = records.filter(r => r.action.startsWith('mqtt.'))
  const messageLevel = new Set(['mqtt.publish', 'mqtt.subscribe', 'mqtt.receive', 'mqtt.will'])
  const kept = emitted.filter(e => !(e.outcome === 'allowed' && messageLevel.has(e.action)))
  assert.equal(mqtt.length, kept.length, 'every gateway event except sampled-out allowed message-level ones is in the log')
  assert.equal(records.filter(r => r.action === 'test.load').length, 60)
  const connects = mqtt.filter(r => r.action === 'mqtt.connect').map(r => [r.thing, r.outcome, r.reason])
  assert.deepEqual(connects, [['lamp-1', 'success', 'connected'], ['lamp-2', 'denied', 'audit-backpressure'], ['lamp-2', 'success', 'connected']])
  const denial = mqtt.find(r => r.action === 'mqtt.publish')
  assert.equal(denial?.outcome, 'denied')
  assert.equal(denial?.target, 'lamp/lamp-2/state')
  assert.equal(denial?.actor, 'lamp-1')
  assert.equal(denial?.kind, 'authorization')
  assert.equal((denial?.details as { certificateFingerprint256?: string }).certificateFingerprint256, pki.client('lamp-1').fingerprint256)
})

test('message-level sampling keeps exactly every n-th allowed event and every denial', () => {
  const kept: string[] = []
  const recorder = { enqueueAlways: (e: { action: string, outcome: string }) => { kept.push(`${e.action}:${e.outcome}`) } } as unknown as AuditRecorder
  const adapter = new GatewayAuditAdapter(recorder, { messageSampleRate: 0.25 })
  for (let i = 0; i < 20; i++) adapter.record({ action: 'mqtt.receive', outcome: 'allowed', timeMs: i, reason: 'delivered' })
  adapter.record({ action: 'mqtt.receive', outcome: 'denied', timeMs: 0, reason: 'not-authorized' })
  adapter.record({ action: 'mqtt.connect', outcome: 'allowed', timeMs: 0, reason: 'connected' })
  assert.deepEqual(kept, [...Array<string>(5).fill('mqtt.receive:success'), 'mqtt.receive:denied', 'mqtt.connect:success'])
})
