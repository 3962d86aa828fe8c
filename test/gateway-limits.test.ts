/**
 * Gateway limits (AWS IoT defaults, configurable): packet size from the fixed header, payload, topic length and
 * depth, subscriptions, publish and byte rates, connect rate per client id, CONNECT deadline, bounded queues and
 * inflight windows. Each limit → the right v5 reason code or a close, an audit record, and no effect on others.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { IConnackPacket, IDisconnectPacket, IPubackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet'
import { AppError, ManualClock } from '../src/core/index.ts'
import { DEFAULT_LIMITS, Gateway } from '../src/gateway/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { barrier, cleanupPki, createPki, Inbox, PrefixPolicy, startGateway, waitUntil } from './gateway-helpers.ts'
import { connectDevice, observer } from './helpers/devices.ts'
import { startPlatform } from './helpers/platform.ts'
import type { RawClient, TestGateway, TestPki } from './gateway-helpers.ts'

let pki: TestPki
before(() => { pki = createPki(['dev-a', 'dev-b', 'dev-c']) })
after(() => { cleanupPki(pki) })

async function raw5 (h: TestGateway, name: string, props: Record<string, unknown> = {}): Promise<RawClient> {
  const r = await h.raw(name)
  const ack = await r.connect(name, { protocolVersion: 5, properties: props }) as IConnackPacket
  assert.equal(ack.reasonCode, 0)
  return r
}

function publish (r: RawClient, topic: string, payload: Buffer | string, messageId: number, extra: Record<string, unknown> = {}): void {
  r.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false, ...extra })
}

describe('AWS IoT defaults', () => {
  test('the defaults are AWS IoT Core\'s published limits', () => {
    assert.equal(DEFAULT_LIMITS.maxPayloadBytes, 128 * 1024)
    assert.equal(DEFAULT_LIMITS.maxTopicBytes, 256)
    assert.equal(DEFAULT_LIMITS.maxTopicSlashes, 7)
    assert.equal(DEFAULT_LIMITS.maxSubscriptionsPerSession, 50)
    assert.equal(DEFAULT_LIMITS.maxFiltersPerSubscribe, 8)
    assert.equal(DEFAULT_LIMITS.publishesPerSecond, 100)
    assert.equal(DEFAULT_LIMITS.publishBytesPerSecond, 512 * 1024)
    assert.equal(DEFAULT_LIMITS.connectAttemptsPerClientIdPerSecond, 1)
    assert.equal(DEFAULT_LIMITS.maxInflightOutbound, 100)
    assert.equal(DEFAULT_LIMITS.keepAliveMaxSec, 1200)
    assert.equal(DEFAULT_LIMITS.maxClientIdBytes, 128)
  })
})

describe('packet and payload size', () => {
  test('a packet over Maximum Packet Size is refused from its fixed header, before the body is sent (v5: DISCONNECT 0x95)', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxPacketBytes: 4096 } })
    const bystander = await h.client('dev-b')
    const r = await raw5(h, 'dev-a')
    const before = h.gw.metrics.bytesIn
    // PUBLISH fixed header announcing 10 MB; no body follows.
    r.write([0x30, 0x80, 0xad, 0xe2, 0x04])
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x95)
    await r.waitClosed()
    assert.equal(h.gw.metrics.bytesIn - before, 5, 'only the fixed header was read')
    assert.equal(h.audit.find({ action: 'mqtt.limit', reason: 'packet-too-large' }).length, 1)
    assert.equal(bystander.connected, true)
  })

  test('before CONNECT, an oversized packet just closes the connection', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxPacketBytes: 4096 } })
    const r = await h.raw('dev-a')
    r.write([0x10, 0xff, 0xff, 0x03])
    await r.waitClosed()
    assert.equal(r.packets.length, 0)
  })

  test('a payload over the payload limit (packet within bounds) gets DISCONNECT 0x95 and is delivered to nobody', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxPayloadBytes: 1000, maxPacketBytes: 8192 } })
    const sub = await h.client('dev-b')
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('#', { qos: 1 })
    const r = await raw5(h, 'dev-a')
    publish(r, 'big', Buffer.alloc(1001), 1)
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x95)
    await sub.publishAsync('after', 'x', { qos: 1 })
    await inbox.waitFor('after')
    assert.equal(inbox.on('big').length, 0)
  })
})

describe('topics and subscriptions', () => {
  test('a topic over 256 bytes or 7 slashes: v5 PUBACK 0x90 (connection kept), 3.1.1 connection closed', async (t) => {
    const h = await startGateway(t, pki)
    const r = await raw5(h, 'dev-a')
    publish(r, 'x'.repeat(257), 'a', 1)
    publish(r, 'a/b/c/d/e/f/g/h/i', 'b', 2)
    publish(r, 'a/b/c/d/e/f/g/h', 'ok', 3)
    const acks = [await r.next('puback'), await r.next('puback'), await r.next('puback')] as IPubackPacket[]
    assert.deepEqual(acks.map((a) => a.reasonCode), [0x90, 0x90, 0])
    const r4 = await h.raw('dev-b')
    await r4.connect('dev-b')
    r4.send({ cmd: 'publish', topic: 'a/b/c/d/e/f/g/h/i', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    await r4.waitClosed()
    assert.equal(h.audit.find({ action: 'mqtt.limit', reason: 'topic-too-deep' }).length, 2)
  })

  test('subscriptions per session: past the limit SUBACK 0x97 (v5) / 0x80 (3.1.1); filters per SUBSCRIBE likewise', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxSubscriptionsPerSession: 3, maxFiltersPerSubscribe: 2 } })
    const r = await raw5(h, 'dev-a')
    const sub = (topic: string): { topic: string, qos: 0, nl: boolean, rap: boolean, rh: number } => ({ topic, qos: 0, nl: false, rap: false, rh: 0 })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [sub('a'), sub('b'), sub('c')] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [0, 0, 0x97])
    r.send({ cmd: 'subscribe', messageId: 2, subscriptions: [sub('c'), sub('d')] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [0, 0x97])
    r.send({ cmd: 'subscribe', messageId: 3, subscriptions: [sub('a')] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [0], 're-subscribing an existing filter is not a new one')
    const r4 = await h.raw('dev-b')
    await r4.connect('dev-b')
    r4.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a', qos: 0 }, { topic: 'b', qos: 0 }, { topic: 'c', qos: 0 }] })
    assert.deepEqual((await r4.next('suback') as ISubackPacket).granted, [0, 0, 0x80])
  })

  test('a filter over the topic limits gets SUBACK 0x8F', async (t) => {
    const h = await startGateway(t, pki)
    const r = await raw5(h, 'dev-a')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'a/b/c/d/e/f/g/h/#', qos: 0, nl: false, rap: false, rh: 0 }] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [0x8f])
  })

  test('retained message quota: past it a retained publish gets PUBACK 0x97 and is not routed', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxRetainedMessages: 2 } })
    const r = await raw5(h, 'dev-a')
    for (let i = 1; i <= 3; i++) publish(r, `r/${i}`, 'v', i, { retain: true })
    publish(r, 'r/1', 'replace', 4, { retain: true })
    const codes = []
    for (let i = 0; i < 4; i++) codes.push((await r.next('puback') as IPubackPacket).reasonCode)
    assert.deepEqual(codes, [0, 0, 0x97, 0])
    assert.equal(h.gw.metrics.retainedMessages, 2)
  })
})

describe('rates', () => {
  test('publish rate token bucket: excess QoS 1 publishes get PUBACK 0x97 and are discarded; refills with time; audited once per second', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0, limits: { publishesPerSecond: 5 } })
    const sub = await h.client('dev-b')
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('rate/#', { qos: 1 })
    const r = await raw5(h, 'dev-a')
    for (let i = 1; i <= 8; i++) publish(r, 'rate/x', `m${i}`, i)
    const codes = []
    for (let i = 0; i < 8; i++) codes.push((await r.next('puback') as IPubackPacket).reasonCode)
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0x97, 0x97, 0x97])
    clock.advance(1000)
    publish(r, 'rate/x', 'later', 9)
    assert.equal((await r.next('puback') as IPubackPacket).reasonCode, 0)
    await inbox.waitFor('rate/x', 'later')
    assert.deepEqual(inbox.on('rate/x').map((m) => m.payload), ['m1', 'm2', 'm3', 'm4', 'm5', 'later'])
    assert.equal(h.audit.find({ reason: 'publish-rate-exceeded' }).length, 1)
  })

  test('byte rate token bucket, and the disconnect policy: DISCONNECT 0x96 Message rate too high', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0, limits: { publishBytesPerSecond: 1000, rateLimitPolicy: 'disconnect' } })
    const r = await raw5(h, 'dev-a')
    publish(r, 'b', Buffer.alloc(600), 1)
    assert.equal((await r.next('puback') as IPubackPacket).reasonCode, 0)
    publish(r, 'b', Buffer.alloc(600), 2)
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x96)
  })

  test('connection attempts per client id per second: CONNACK 0x9F (v5) / 3 (3.1.1); other ids and unauthorized attempts unaffected', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0, limits: { connectAttemptsPerClientIdPerSecond: 1 } })
    const a = await h.raw('dev-a')
    assert.equal((await a.connect('dev-a', { protocolVersion: 5 }) as IConnackPacket).reasonCode, 0)
    const b = await h.raw('dev-a')
    assert.equal((await b.connect('dev-a', { protocolVersion: 5 }) as IConnackPacket).reasonCode, 0x9f)
    const c = await h.raw('dev-a')
    assert.equal((await c.connect('dev-a') as IConnackPacket).returnCode, 3)
    const other = await h.raw('dev-b')
    assert.equal((await other.connect('dev-b') as IConnackPacket).returnCode, 0)
    h.policy.setRules('dev-c', { connect: ['dev-c'], publish: [], subscribe: [], receive: [] })
    const intruder = await h.raw('dev-c')
    assert.equal((await intruder.connect('dev-a') as IConnackPacket).returnCode, 5, 'not allowed to use the id')
    assert.equal(h.audit.find({ reason: 'connect-rate-exceeded' }).length, 2, 'unauthorized attempts do not count')
    assert.equal(h.gw.sessions.get('dev-a')?.connected, true, 'the refused attempts did not take the session over')
    clock.advance(1000)
    const d = await h.raw('dev-a')
    assert.equal((await d.connect('dev-a') as IConnackPacket).returnCode, 0)
  })
})

describe('slowloris and slow consumers', () => {
  test('CONNECT must arrive within connectTimeoutMs of the TLS handshake; a dribbled CONNECT does not extend it', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0, limits: { connectTimeoutMs: 2000 } })
    const silent = await h.raw('dev-a')
    const dribble = await h.raw('dev-b')
    dribble.write([0x10, 0x0d, 0x00])
    await waitUntil(() => h.gw.metrics.bytesIn >= 3)
    clock.advance(2000)
    h.gw.runHousekeeping()
    assert.equal(silent.socket.destroyed, false, 'exactly at the deadline is still allowed')
    clock.advance(1)
    h.gw.runHousekeeping()
    await silent.waitClosed()
    await dribble.waitClosed()
    assert.equal(h.audit.find({ reason: 'connect-timeout' }).length, 2)
  })

  test('a subscriber that stops acknowledging gets a bounded inflight window and a bounded queue; others are not stalled', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxInflightOutbound: 3, maxQueuedMessages: 5 } })
    const slow = await raw5(h, 'dev-a')
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await slow.next('suback')
    const fast = await h.client('dev-c')
    const inbox = new Inbox(fast)
    await fast.subscribeAsync('flood/#', { qos: 1 })
    const pub = await h.client('dev-b')
    for (let i = 0; i < 20; i++) await pub.publishAsync('flood/x', `m${i}`, { qos: 1 })
    await inbox.waitFor('flood/x', 'm19')
    assert.equal(inbox.on('flood/x').length, 20)
    const s = h.gw.sessions.get('dev-a')
    assert.equal(s?.inflightMessages, 3)
    assert.equal(s?.queuedMessages, 5)
    assert.equal(h.gw.metrics.messagesDropped, 12)
    const got = slow.packets.filter((p) => p.cmd === 'publish') as IPublishPacket[]
    assert.equal(got.length, 3)
    slow.send({ cmd: 'puback', messageId: got[0].messageId ?? 0, reasonCode: 0 })
    await slow.next('publish')
    await slow.next('publish')
    await slow.next('publish')
    assert.equal((await slow.next('publish') as IPublishPacket).payload.toString(), 'm3', 'the queue continues in order')
  })

  test('slowSubscriberPolicy "disconnect": a full queue disconnects the slow subscriber with 0x97', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxInflightOutbound: 1, maxQueuedMessages: 2, slowSubscriberPolicy: 'disconnect' } })
    const slow = await raw5(h, 'dev-a')
    slow.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'flood/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await slow.next('suback')
    const pub = await h.client('dev-b')
    for (let i = 0; i < 5; i++) await pub.publishAsync('flood/x', `m${i}`, { qos: 1 })
    assert.equal((await slow.next('disconnect') as IDisconnectPacket).reasonCode, 0x97)
    assert.equal(h.audit.find({ reason: 'slow-subscriber' }).length, 1)
    assert.equal(pub.connected, true)
  })

  test('a subscriber that stops reading its socket has QoS 0 dropped; the publisher and other subscribers keep going', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxSocketBufferBytes: 64 * 1024, maxPayloadBytes: 128 * 1024 } })
    const stuck = await raw5(h, 'dev-a')
    stuck.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'bulk', qos: 0, nl: false, rap: false, rh: 0 }] })
    await stuck.next('suback')
    stuck.socket.pause()
    const fast = await h.client('dev-c')
    const inbox = new Inbox(fast)
    await fast.subscribeAsync('bulk', { qos: 0 })
    const pub = await h.client('dev-b')
    const n = 200
    const body = Buffer.alloc(100 * 1024, 1)
    for (let i = 0; i < n; i++) await pub.publishAsync('bulk', i === n - 1 ? Buffer.from('last') : body, { qos: 1 })
    await inbox.waitFor('bulk', 'last', 10_000)
    assert.ok(h.gw.metrics.messagesDropped > 0, 'the stuck subscriber lost QoS 0 messages instead of buffering 20 MB')
    assert.ok(stuck.socket.writableLength < 1024)
  })
})

describe('operator configuration (mqtt.limits / THINGWARD_MQTT_LIMITS)', () => {
  test('the configuration knows exactly the gateway\'s limits, and accepts each default', () => {
    const known = (() => {
      try { loadConfig({}, { mqtt: { limits: { notALimit: 1 } } }) } catch (err) {
        const m = /known: ([^)]*)\)/.exec(err instanceof Error ? err.message : '')
        if (m !== null) return m[1].split(', ').sort()
      }
      return []
    })()
    assert.deepEqual(known, Object.keys(DEFAULT_LIMITS).sort())
    for (const [key, value] of Object.entries(DEFAULT_LIMITS)) {
      assert.equal((loadConfig({}, { mqtt: { limits: { [key]: value } } }).mqtt.limits as Record<string, unknown>)[key], value, key)
    }
  })

  test('a configured payload limit is what the running gateway enforces: larger payloads are refused (0x95) and delivered to nobody', async (t) => {
    const p = await startPlatform(t, { gateway: true, env: { THINGWARD_MQTT_LIMITS: JSON.stringify({ maxPayloadBytes: 1024 }) } })
    assert.equal(p.gateway?.limits.maxPayloadBytes, 1024)
    assert.equal(p.gateway?.limits.publishesPerSecond, DEFAULT_LIMITS.publishesPerSecond, 'the others keep their defaults')
    const obs = await observer(p, t)
    const d = await p.device('temperature-sensor', 'temp-1')
    const c = await connectDevice(p, d, t)
    const topic = 'building/1/floor/1/temperature/temp-1'
    await c.publishAsync(topic, 'x'.repeat(1024), { qos: 1 })
    assert.equal((await obs.inbox.waitFor(topic)).payload.length, 1024)
    const disconnected = new Promise<number | undefined>(resolve => c.on('disconnect', pk => resolve(pk.reasonCode)))
    c.publish(topic, 'y'.repeat(1025), { qos: 1 })
    assert.equal(await disconnected, 0x95)
    await barrier(obs.client, obs.inbox)
    assert.deepEqual(obs.inbox.on(topic).map(m => m.payload.length), [1024])
  })
})

test('limits given in code are checked against each other, with the defaults filled in, and a payload limit carries the packet limit', () => {
  assert.throws(() => new Gateway({ tls: { cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert] }, authenticator: new PrefixPolicy(), authorizers: new PrefixPolicy(), limits: { keepAliveMinSec: 1500 } }),
    (e: unknown) => e instanceof AppError && e.code === 'ERR_GATEWAY_LIMITS_INVALID' && /keepAliveMinSec must not exceed keepAliveMaxSec \(1200\)/.test(e.message))
  assert.throws(() => loadConfig({}, { mqtt: { limits: { keepAliveMinSec: 1500 } } }), /mqtt\.limits\.keepAliveMinSec: must not exceed keepAliveMaxSec \(1200\)/)
  // A packet limit alone may sit below the default payload limit: it then caps payloads as well.
  assert.equal(loadConfig({}, { mqtt: { limits: { maxPacketBytes: 4096 } } }).mqtt.limits.maxPacketBytes, 4096)
  const g = new Gateway({ tls: { cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert] }, authenticator: new PrefixPolicy(), authorizers: new PrefixPolicy(), limits: { maxPayloadBytes: 256 * 1024 } })
  assert.equal(g.limits.maxPacketBytes, 256 * 1024 + 2048)
})
