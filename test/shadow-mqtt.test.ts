/**
 * Device side of shadows, end to end: the real platform (registry, CA, policy engine, keyring, SQLite) behind the
 * MQTT gateway, devices with certificates from our CA, real MQTT.js clients (v5 and v3.1.1) on the reserved
 * topics `$aws/things/{thing}/shadow[/name/{shadow}]/…` (IoT DG `device-shadow-mqtt`).
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { IClientOptions, MqttClient } from 'mqtt'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { closed } from './gateway-helpers.ts'
import { JsonInbox, connectDevice, provisionDevice, shadowRequest } from './shadow-helpers.ts'

const prefix = (thing: string, shadow?: string): string => shadow === undefined ? `$aws/things/${thing}/shadow` : `$aws/things/${thing}/shadow/name/${shadow}`

/** A platform with its gateway, and one provisioned device connected with a JSON inbox subscribed (QoS 1) to `filters`. */
async function deviceOnShadowTopics (t: TestContext, thing: string, filters: string | string[], o: IClientOptions = {}): Promise<{ p: TestPlatform, c: MqttClient, inbox: JsonInbox }> {
  const p = await startPlatform(t, { gateway: true })
  const c = await connectDevice(p, await provisionDevice(p, thing), t, o)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync(filters, { qos: 1 })
  return { p, c, inbox }
}

test('MQTT 5: update, get and delete a classic shadow; clientToken echoed; versions count; metadata per leaf', async (t) => {
  const { c, inbox } = await deviceOnShadowTopics(t, 'lamp-1', `${prefix('lamp-1')}/#`)

  const up = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { power: 'on', level: 3 } }, clientToken: 'tok-1' })
  assert.equal(up.outcome, 'accepted')
  assert.equal(up.doc.version, 1)
  assert.equal(up.doc.clientToken, 'tok-1')
  assert.deepEqual(up.doc.state, { reported: { power: 'on', level: 3 } })
  const ts = up.doc.timestamp as number
  assert.deepEqual(up.doc.metadata, { reported: { power: { timestamp: ts }, level: { timestamp: ts } } })
  const docs = await inbox.next(`${prefix('lamp-1')}/update/documents`, j => j.clientToken === 'tok-1')
  assert.deepEqual(docs.current, { state: { reported: { power: 'on', level: 3 } }, metadata: up.doc.metadata, version: 1 })
  assert.equal(docs.previous, undefined)

  const second = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { level: null, mode: 'eco' } }, version: 1 })
  assert.equal(second.outcome, 'accepted')
  assert.equal(second.doc.version, 2)

  const got = await shadowRequest(c, inbox, prefix('lamp-1'), 'get', {})
  assert.equal(got.outcome, 'accepted')
  assert.deepEqual(got.doc.state, { reported: { power: 'on', mode: 'eco' } })
  assert.equal(got.doc.version, 2)
  // Our staleness extension: the age of every reported value, from its metadata timestamp.
  assert.deepEqual(Object.keys((got.doc.thingward as { reportedAgeSeconds: object }).reportedAgeSeconds).sort(), ['mode', 'power'])

  const del = await shadowRequest(c, inbox, prefix('lamp-1'), 'delete', { clientToken: 'bye' })
  assert.equal(del.outcome, 'accepted')
  assert.equal(del.doc.version, 2)
  const gone = await shadowRequest(c, inbox, prefix('lamp-1'), 'get', {})
  assert.deepEqual([gone.outcome, gone.doc.code, gone.doc.message], ['rejected', 404, "No shadow exists with name: 'lamp-1'"])
  // A shadow re-created within 48 hours continues its version (IoT DG `device-shadow-data-flow`).
  const again = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { power: 'off' } } })
  assert.equal(again.doc.version, 3)
})

test('desired state set by the backend reaches the device as /update/delta; reporting it back converges', async (t) => {
  const { p, c, inbox } = await deviceOnShadowTopics(t, 'lamp-1', [`${prefix('lamp-1')}/update/delta`, `${prefix('lamp-1')}/update/accepted`, `${prefix('lamp-1')}/update/rejected`])
  await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { color: 'GREEN', power: 'on' } } })
  await p.app.shadows.update({ thingName: 'lamp-1' }, Buffer.from(JSON.stringify({ state: { desired: { color: 'RED', power: 'on' } }, clientToken: 'ops-1' })), { actor: 'user/ops', via: 'https' })
  const delta = await inbox.next(`${prefix('lamp-1')}/update/delta`)
  assert.deepEqual(delta.state, { color: 'RED' })
  assert.equal(delta.version, 2)
  assert.equal(delta.clientToken, 'ops-1')
  assert.deepEqual(Object.keys(delta.metadata as object), ['color'])
  const done = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { color: 'RED' } } })
  assert.equal(done.outcome, 'accepted')
  const doc = await p.app.shadows.get({ thingName: 'lamp-1' })
  assert.equal((doc.state as { delta?: unknown }).delta, undefined, 'no delta once reported matches desired')
  assert.equal(inbox.on(`${prefix('lamp-1')}/update/delta`).length, 1, 'no delta for a converging report')
})

test('version conflicts are refused with 409 "Version conflict" and change nothing', async (t) => {
  const { p, c, inbox } = await deviceOnShadowTopics(t, 'lamp-1', `${prefix('lamp-1')}/#`)
  await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { v: 1 } } })
  const stale = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { v: 'stale' } }, version: 7, clientToken: 'old' })
  assert.deepEqual(stale, { outcome: 'rejected', doc: { code: 409, message: 'Version conflict', timestamp: stale.doc.timestamp, clientToken: 'old' } })
  const doc = await p.app.shadows.get({ thingName: 'lamp-1' })
  assert.deepEqual([doc.version, (doc.state as { reported: unknown }).reported], [1, { v: 1 }])
})

test('named shadows are separate documents on their own topics, listed by ListNamedShadowsForThing', async (t) => {
  const { p, c, inbox } = await deviceOnShadowTopics(t, 'lamp-1', `${prefix('lamp-1')}/#`)
  const cfg = await shadowRequest(c, inbox, prefix('lamp-1', 'config'), 'update', { state: { desired: { interval: 30 } } })
  assert.equal(cfg.outcome, 'accepted')
  assert.equal(cfg.doc.version, 1)
  await shadowRequest(c, inbox, prefix('lamp-1', 'firmware'), 'update', { state: { reported: { v: '1.2.0' } } })
  const classic = await shadowRequest(c, inbox, prefix('lamp-1'), 'get', {})
  assert.deepEqual([classic.outcome, classic.doc.code], ['rejected', 404])
  const named = await shadowRequest(c, inbox, prefix('lamp-1', 'config'), 'get', {})
  assert.deepEqual(named.doc.state, { desired: { interval: 30 }, delta: { interval: 30 } })
  assert.deepEqual((await p.app.shadows.listNamedShadows('lamp-1')).results, ['config', 'firmware'])
})

test('MQTT 3.1.1: the 8 KB size and 6-level nesting limits answer with AWS codes and texts on /rejected', async (t) => {
  const { c, inbox } = await deviceOnShadowTopics(t, 'lamp-1', `${prefix('lamp-1')}/update/+`, { protocolVersion: 4 })
  const big = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { blob: 'x'.repeat(8200) } } })
  assert.deepEqual([big.outcome, big.doc.code, big.doc.message], ['rejected', 413, 'The payload exceeds the maximum size allowed'])
  const deep = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } } })
  assert.deepEqual([deep.outcome, deep.doc.code, deep.doc.message], ['rejected', 400, 'JSON contains too many levels of nesting; maximum is 6'])
  const ok = await shadowRequest(c, inbox, prefix('lamp-1'), 'update', { state: { reported: { a: { b: { c: { d: { e: { f: 1 } } } } } } } })
  assert.equal(ok.outcome, 'accepted')
  assert.equal(ok.doc.version, 1, 'the refused updates changed nothing')
  await c.publishAsync(`${prefix('lamp-1')}/update`, '{"state":', { qos: 1 })
  assert.deepEqual((await inbox.next(`${prefix('lamp-1')}/update/rejected`, j => j.message === 'Invalid JSON')).code, 400)
})

test("a device cannot read another thing's shadow: publish refused (v5 0x87, v3.1.1 closed), nothing delivered to anyone", async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const a = await provisionDevice(p, 'lamp-a')
  const b = await provisionDevice(p, 'lamp-b')
  const cb = await connectDevice(p, b, t)
  const inboxB = new JsonInbox(cb)
  await cb.subscribeAsync(`${prefix('lamp-b')}/#`, { qos: 1 })
  await shadowRequest(cb, inboxB, prefix('lamp-b'), 'update', { state: { reported: { secret: 'b-only' } } })

  const ca = await connectDevice(p, a, t)
  const inboxA = new JsonInbox(ca)
  const granted = await ca.subscribeAsync(`${prefix('lamp-b')}/get/accepted`, { qos: 1 }).then(() => [] as number[], (e: { packet?: { granted?: number[] } }) => e.packet?.granted ?? [])
  assert.deepEqual(granted, [0x87])
  await assert.rejects(ca.publishAsync(`${prefix('lamp-b')}/get`, '{}', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await assert.rejects(ca.publishAsync(`${prefix('lamp-b')}/update`, JSON.stringify({ state: { desired: { secret: 'stolen' } } }), { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  // Barrier through the shadow path: B's own get is served after anything A's requests could have caused.
  const own = await shadowRequest(cb, inboxB, prefix('lamp-b'), 'get', {})
  assert.deepEqual((own.doc.state as { reported: unknown }).reported, { secret: 'b-only' })
  assert.equal(own.doc.version, 1, "A's update was not applied")
  assert.equal(inboxB.on(`${prefix('lamp-b')}/get/accepted`).length, 1, "no answer to A's get reached B's topic")
  assert.equal(inboxB.on(`${prefix('lamp-b')}/update/accepted`).length, 1)
  assert.deepEqual(inboxA.messages, [])
  // MQTT 3.1.1 has no negative PUBACK: the gateway closes the connection (AWS behaviour). Another device: AWS
  // limits CONNECTs to one per second per client id.
  const c4 = await connectDevice(p, await provisionDevice(p, 'lamp-c'), t, { protocolVersion: 4 })
  const gone = closed(c4)
  c4.publish(`${prefix('lamp-b')}/get`, '{}', { qos: 1 })
  await gone
  const after = await shadowRequest(cb, inboxB, prefix('lamp-b'), 'get', {})
  assert.equal(after.outcome, 'accepted')
  assert.equal(inboxB.on(`${prefix('lamp-b')}/get/accepted`).length, 2, 'only B’s two gets were answered')
  await p.gateway?.flushAudit()
  const denied = await p.app.audit.query({ action: 'mqtt.publish', outcome: 'denied' })
  assert.ok(denied.some(e => e.target === `${prefix('lamp-b')}/get`))
})

test('shadows survive a restart, and the stored shadow is not readable in clear from the SQLite files', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-shadow-restart-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const masterKey = randomBytes(32).toString('base64')
  const marker = `MARKER-${randomBytes(8).toString('hex')}`
  let dev: Awaited<ReturnType<typeof provisionDevice>> | undefined

  await t.test('first run: a device reports its state', async (t1) => {
    const p = await startPlatform(t1, { gateway: true, dataDir, masterKey })
    dev = await provisionDevice(p, 'lamp-1')
    const c = await connectDevice(p, dev, t1)
    const inbox = new JsonInbox(c)
    await c.subscribeAsync(`${prefix('lamp-1', 'secrets')}/update/+`, { qos: 1 })
    const r = await shadowRequest(c, inbox, prefix('lamp-1', 'secrets'), 'update', { state: { reported: { wifiPassword: marker } } })
    assert.equal(r.outcome, 'accepted')
    // The row is sealed under { purpose: 'shadow', thingName, shadowName }: another context does not open it.
    const row = p.app.db.get<{ sealed: Uint8Array }>('SELECT sealed FROM shadows WHERE thing_name = ? AND shadow_name = ?', 'lamp-1', 'secrets')
    assert.ok(row !== undefined)
    assert.ok(p.app.keyring.decrypt(row.sealed, { purpose: 'shadow', thingName: 'lamp-1', shadowName: 'secrets' }).toString().includes(marker))
    assert.throws(() => p.app.keyring.decrypt(row.sealed, { purpose: 'shadow', thingName: 'lamp-2', shadowName: 'secrets' }))
  })

  const files = readdirSync(dataDir).filter(f => f.startsWith('thingward.db'))
  assert.ok(files.length > 0)
  for (const f of files) {
    const bytes = readFileSync(join(dataDir, f))
    assert.equal(bytes.includes(marker), false, `${f} holds the reported value in clear`)
    assert.equal(bytes.includes(Buffer.from(marker, 'utf16le')), false)
  }

  await t.test('second run: the device reads its shadow back', async (t2) => {
    const p = await startPlatform(t2, { gateway: true, dataDir, masterKey })
    assert.ok(dev !== undefined)
    const c = await connectDevice(p, dev, t2)
    const inbox = new JsonInbox(c)
    await c.subscribeAsync(`${prefix('lamp-1', 'secrets')}/get/+`, { qos: 1 })
    const r = await shadowRequest(c, inbox, prefix('lamp-1', 'secrets'), 'get', {})
    assert.equal(r.outcome, 'accepted')
    assert.deepEqual((r.doc.state as { reported: unknown }).reported, { wifiPassword: marker })
    assert.equal(r.doc.version, 1)
  })
})
