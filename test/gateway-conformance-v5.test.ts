/**
 * MQTT 5.0 conformance, organised by the normative statements of OASIS MQTT Version 5.0 (2019). Real mTLS on
 * 127.0.0.1:0; MQTT.js v5 clients and raw TLS sockets (decoded with mqtt-packet) for exact reason codes.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { IConnackPacket, IDisconnectPacket, IPublishPacket, ISubackPacket, IUnsubackPacket, IPubackPacket } from 'mqtt-packet'
import { ManualClock } from '../src/core/index.ts'
import { barrier, cleanupPki, closed, createPki, Inbox, PrefixPolicy, startGateway, waitUntil } from './gateway-helpers.ts'
import type { RawClient, TestGateway, TestPki } from './gateway-helpers.ts'

let pki: TestPki
before(() => { pki = createPki(['dev-a', 'dev-b', 'dev-c', 'watcher']) })
after(() => { cleanupPki(pki) })

async function raw5 (h: TestGateway, name: string, clientId = name, props: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<[RawClient, IConnackPacket]> {
  const r = await h.raw(name)
  const ack = await r.connect(clientId, { protocolVersion: 5, properties: props, ...extra }) as IConnackPacket
  return [r, ack]
}

describe('MQTT 5 §3.1/3.2 CONNECT and CONNACK', () => {
  test('[MQTT-3.2.2-9] [MQTT-3.2.2-13] CONNACK advertises Maximum QoS 1, Retain Available, limits and capabilities', async (t) => {
    const h = await startGateway(t, pki)
    const [, ack] = await raw5(h, 'dev-a')
    assert.equal(ack.reasonCode, 0)
    assert.equal(ack.sessionPresent, false)
    const p = ack.properties ?? {}
    assert.equal(p.maximumQoS, 1)
    assert.equal(p.retainAvailable, true)
    assert.equal(p.maximumPacketSize, h.gw.limits.maxPacketBytes)
    assert.equal(p.topicAliasMaximum, h.gw.limits.topicAliasMaximum)
    assert.equal(p.receiveMaximum, 100)
    assert.equal(p.wildcardSubscriptionAvailable, true)
    assert.equal(p.subscriptionIdentifiersAvailable, true)
    assert.equal(p.sharedSubscriptionAvailable, true)
  })

  test('[MQTT-3.2.2-16] an empty Client Identifier is assigned and returned in Assigned Client Identifier', async (t) => {
    const h = await startGateway(t, pki)
    const [, ack] = await raw5(h, 'dev-a', '')
    const id = ack.properties?.assignedClientIdentifier
    assert.match(id ?? '', /^tw-/)
    assert.ok(h.gw.sessions.has(id ?? ''))
  })

  test('[MQTT-3.2.2-21] [MQTT-3.1.2-21] a changed keep-alive is announced as Server Keep Alive', async (t) => {
    const h = await startGateway(t, pki, { limits: { keepAliveMinSec: 30, keepAliveMaxSec: 1200 } })
    const [, a] = await raw5(h, 'dev-a', 'dev-a', {}, { keepalive: 0 })
    assert.equal(a.properties?.serverKeepAlive, 1200)
    const [, b] = await raw5(h, 'dev-b', 'dev-b', {}, { keepalive: 5 })
    assert.equal(b.properties?.serverKeepAlive, 30)
    const [, c] = await raw5(h, 'dev-c', 'dev-c', {}, { keepalive: 60 })
    assert.equal(c.properties?.serverKeepAlive, undefined)
  })

  test('MQTT 5 §3.2.2.3.2 a Session Expiry Interval above the maximum is lowered and announced', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxSessionExpirySec: 600 } })
    const [, ack] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 0xffffffff })
    assert.equal(ack.properties?.sessionExpiryInterval, 600)
    assert.equal(h.gw.sessions.get('dev-a')?.expiryIntervalSec, 600)
  })

  test('[MQTT-4.12.0-1] an unsupported Authentication Method is refused with CONNACK 0x8C', async (t) => {
    const h = await startGateway(t, pki)
    const [r, ack] = await raw5(h, 'dev-a', 'dev-a', { authenticationMethod: 'SCRAM-SHA-1' })
    assert.equal(ack.reasonCode, 0x8c)
    await r.waitClosed()
    assert.equal(h.gw.sessions.size, 0)
  })

  test('[MQTT-3.2.2-12] a Will QoS above Maximum QoS is refused with CONNACK 0x9B', async (t) => {
    const h = await startGateway(t, pki)
    const [r, ack] = await raw5(h, 'dev-a', 'dev-a', {}, { will: { topic: 'w', payload: Buffer.from('x'), qos: 2, retain: false } })
    assert.equal(ack.reasonCode, 0x9b)
    await r.waitClosed()
  })

  test('MQTT 5 §3.1.2.11.3 a Receive Maximum of 0 is a Protocol Error (CONNACK 0x82)', async (t) => {
    const h = await startGateway(t, pki)
    const [r, ack] = await raw5(h, 'dev-a', 'dev-a', { receiveMaximum: 0 })
    assert.equal(ack.reasonCode, 0x82)
    await r.waitClosed()
  })

  test('[MQTT-3.1.4-3] a new connection with the same ClientId takes over: the old one gets DISCONNECT 0x8E', async (t) => {
    const h = await startGateway(t, pki)
    const [old] = await raw5(h, 'dev-a')
    await raw5(h, 'dev-a')
    const d = await old.next('disconnect') as IDisconnectPacket
    assert.equal(d.reasonCode, 0x8e)
    await old.waitClosed()
    assert.equal(h.gw.sessions.size, 1)
    assert.equal(h.gw.sessions.get('dev-a')?.connected, true)
  })
})

describe('MQTT 5 §4.1 session state and expiry', () => {
  test('[MQTT-3.1.2-23] [MQTT-3.2.2-3] a session with expiry > 0 outlives the connection and resumes with Session Present', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', { clean: false, properties: { sessionExpiryInterval: 300 } })
    await sub.subscribeAsync('exp/#', { qos: 1 })
    sub.end()
    await closed(sub)
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    const pub = await h.client('dev-b')
    await pub.publishAsync('exp/1', 'kept', { qos: 1 })
    const again = await h.client('dev-a', { clean: false, properties: { sessionExpiryInterval: 300 }, manualConnect: false })
    const inbox = new Inbox(again)
    assert.equal((await inbox.waitFor('exp/1')).payload, 'kept')
  })

  test('[MQTT-3.1.2-23] the session is discarded once the Session Expiry Interval has passed', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const [r] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 60 }, { clean: false })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'x/#', qos: 1 }] })
    await r.next('suback')
    r.send({ cmd: 'disconnect', reasonCode: 0 })
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    clock.advance(59_000)
    h.gw.runHousekeeping()
    assert.equal(h.gw.sessions.has('dev-a'), true)
    clock.advance(1_000)
    h.gw.runHousekeeping()
    assert.equal(h.gw.sessions.has('dev-a'), false)
    const [, ack] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 60 }, { clean: false })
    assert.equal(ack.sessionPresent, false)
  })

  test('[MQTT-3.14.2-2] raising the Session Expiry Interval from 0 on DISCONNECT is a Protocol Error', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: 100 } })
    const d = await r.next('disconnect') as IDisconnectPacket
    assert.equal(d.reasonCode, 0x82)
    await r.waitClosed()
    assert.equal(h.gw.sessions.size, 0, 'the session was not kept')
  })
})

describe('MQTT 5 §3.1.2.5 Will and Will Delay', () => {
  async function watcher (h: TestGateway): Promise<Inbox> {
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync({ 'will/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    return inbox
  }

  test('[MQTT-3.1.3-9] the Will is published only after the Will Delay Interval', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const inbox = await watcher(h)
    const [r] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 100 }, {
      will: { topic: 'will/dev-a', payload: Buffer.from('late'), qos: 1, retain: false, properties: { willDelayInterval: 10 } },
    })
    r.socket.destroy()
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    const pub = await h.client('dev-b')
    await barrier(pub, inbox)
    assert.equal(inbox.on('will/dev-a').length, 0, 'not yet')
    clock.advance(10_000)
    h.gw.runHousekeeping()
    assert.equal((await inbox.waitFor('will/dev-a')).payload, 'late')
  })

  test('[MQTT-3.1.3-9] reconnecting before the Will Delay Interval passed cancels the Will', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const inbox = await watcher(h)
    const [r] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 100 }, {
      clean: false, will: { topic: 'will/dev-a', payload: Buffer.from('x'), qos: 1, retain: false, properties: { willDelayInterval: 10 } },
    })
    r.socket.destroy()
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 100 }, { clean: false })
    clock.advance(60_000)
    h.gw.runHousekeeping()
    const pub = await h.client('dev-b')
    await barrier(pub, inbox)
    assert.equal(inbox.on('will/dev-a').length, 0)
  })

  test('MQTT 5 §3.1.3.2.2 the Will is published when the session ends, if that comes before the Will Delay', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const inbox = await watcher(h)
    const [r] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 5 }, {
      will: { topic: 'will/dev-a', payload: Buffer.from('ended'), qos: 1, retain: false, properties: { willDelayInterval: 3600 } },
    })
    r.socket.destroy()
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    clock.advance(5_000)
    h.gw.runHousekeeping()
    assert.equal((await inbox.waitFor('will/dev-a')).payload, 'ended')
  })

  test('[MQTT-3.14.4-3] DISCONNECT 0x04 (Disconnect with Will Message) publishes the Will; 0x00 does not', async (t) => {
    const h = await startGateway(t, pki)
    const inbox = await watcher(h)
    const [a] = await raw5(h, 'dev-a', 'dev-a', {}, { will: { topic: 'will/a', payload: Buffer.from('a'), qos: 0, retain: false } })
    a.send({ cmd: 'disconnect', reasonCode: 0x04 })
    const [b] = await raw5(h, 'dev-b', 'dev-b', {}, { will: { topic: 'will/b', payload: Buffer.from('b'), qos: 0, retain: false } })
    b.send({ cmd: 'disconnect', reasonCode: 0x00 })
    await inbox.waitFor('will/a')
    await b.waitClosed()
    const pub = await h.client('dev-c')
    await barrier(pub, inbox)
    assert.equal(inbox.on('will/b').length, 0)
  })
})

describe('MQTT 5 §3.8.3.1 subscription options', () => {
  test('[MQTT-3.8.3-3] No Local: messages are not sent back to the publishing connection', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('nl/#', { qos: 1, nl: true })
    await c.subscribeAsync('sentinel/#', { qos: 1 })
    await c.publishAsync('nl/x', 'mine', { qos: 1 })
    const other = await h.client('dev-b')
    await other.publishAsync('nl/x', 'theirs', { qos: 1 })
    await barrier(c, inbox)
    assert.deepEqual(inbox.on('nl/x').map((m) => m.payload), ['theirs'])
  })

  test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps the RETAIN flag on forwarded messages', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('rap/keep/#', { qos: 1, rap: true })
    await c.subscribeAsync('rap/clear/#', { qos: 1, rap: false })
    const pub = await h.client('dev-b')
    await pub.publishAsync('rap/keep/x', 'k', { qos: 1, retain: true })
    await pub.publishAsync('rap/clear/x', 'c', { qos: 1, retain: true })
    assert.equal((await inbox.waitFor('rap/keep/x')).packet.retain, true)
    assert.equal((await inbox.waitFor('rap/clear/x')).packet.retain, false)
  })

  test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0 always, 1 only for new subscriptions, 2 never', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b')
    for (const k of ['rh0', 'rh1', 'rh2']) await pub.publishAsync(`${k}/x`, k, { qos: 1, retain: true })
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('sentinel/#', { qos: 1 })
    for (let round = 0; round < 2; round++) {
      await c.subscribeAsync('rh0/#', { qos: 1, rh: 0 })
      await c.subscribeAsync('rh1/#', { qos: 1, rh: 1 })
      await c.subscribeAsync('rh2/#', { qos: 1, rh: 2 })
    }
    await barrier(pub, inbox)
    assert.equal(inbox.on('rh0/x').length, 2)
    assert.equal(inbox.on('rh1/x').length, 1)
    assert.equal(inbox.on('rh2/x').length, 0)
  })

  test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] Subscription Identifiers of every matching subscription are sent with the message', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('sid/+', { qos: 1, properties: { subscriptionIdentifier: 11 } })
    await c.subscribeAsync('sid/#', { qos: 1, properties: { subscriptionIdentifier: 22 } })
    const pub = await h.client('dev-b')
    await pub.publishAsync('sid/x', 'v', { qos: 1 })
    const m = await inbox.waitFor('sid/x')
    assert.equal(inbox.on('sid/x').length, 1)
    const ids = m.packet.properties?.subscriptionIdentifier
    assert.deepEqual(Array.isArray(ids) ? [...ids].sort() : [ids], [11, 22])
  })

  test('[MQTT-3.11.3-1] UNSUBACK carries one reason code per filter: 0x00 or 0x11 No subscription existed', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'u/1', qos: 0, nl: false, rap: false, rh: 0 }] })
    await r.next('suback')
    r.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['u/1', 'u/2'] })
    const u = await r.next('unsuback') as IUnsubackPacket
    assert.deepEqual(u.granted, [0x00, 0x11])
  })

  test('MQTT 5 §3.9.3 SUBACK 0x8F for a malformed topic filter; the other filters are granted', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: 'ok/#', qos: 1, nl: false, rap: false, rh: 0 }, { topic: 'bad/#/x', qos: 1, nl: false, rap: false, rh: 0 }, { topic: '$share/g+/x', qos: 0, nl: false, rap: false, rh: 0 }] })
    const s = await r.next('suback') as ISubackPacket
    assert.deepEqual(s.granted, [1, 0x8f, 0x8f])
    assert.deepEqual(h.gw.sessions.get('dev-a')?.subscriptionFilters, ['ok/#'])
  })
})

describe('MQTT 5 §3.3.2.3 PUBLISH properties', () => {
  test('[MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties, Content Type, Response Topic and Correlation Data are forwarded unaltered', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('props/#', { qos: 1 })
    const pub = await h.client('dev-b')
    await pub.publishAsync('props/x', '{"a":1}', {
      qos: 1,
      properties: {
        userProperties: { region: 'eu', tag: ['one', 'two'] },
        contentType: 'application/json',
        responseTopic: 'props/reply',
        correlationData: Buffer.from('corr-1'),
        payloadFormatIndicator: true,
      },
    })
    const p = (await inbox.waitFor('props/x')).packet.properties as Record<string, unknown>
    assert.deepEqual({ ...(p.userProperties as object) }, { region: 'eu', tag: ['one', 'two'] })
    assert.equal(p.contentType, 'application/json')
    assert.equal(p.responseTopic, 'props/reply')
    assert.deepEqual(p.correlationData, Buffer.from('corr-1'))
    assert.equal(p.payloadFormatIndicator, true)
  })

  test('User Properties are not sent to MQTT 3.1.1 subscribers (no properties in 3.1.1), the message still is', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a', { protocolVersion: 4 })
    const inbox = new Inbox(c)
    await c.subscribeAsync('mixed/#', { qos: 1 })
    const pub = await h.client('dev-b')
    await pub.publishAsync('mixed/x', 'v', { qos: 1, properties: { userProperties: { a: 'b' } } })
    assert.equal((await inbox.waitFor('mixed/x')).payload, 'v')
  })

  test('[MQTT-3.3.2-5] an expired message is not delivered; [MQTT-3.3.2-6] the remaining Message Expiry Interval is sent', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const [r] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 3600 }, { clean: false })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'mx/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await r.next('suback')
    r.send({ cmd: 'disconnect', reasonCode: 0 })
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    const [pub] = await raw5(h, 'dev-b')
    pub.send({ cmd: 'publish', topic: 'mx/short', payload: Buffer.from('s'), qos: 1, messageId: 1, retain: false, dup: false, properties: { messageExpiryInterval: 10 } })
    pub.send({ cmd: 'publish', topic: 'mx/long', payload: Buffer.from('l'), qos: 1, messageId: 2, retain: false, dup: false, properties: { messageExpiryInterval: 100 } })
    await pub.next('puback')
    await pub.next('puback')
    clock.advance(30_000)
    const [again] = await raw5(h, 'dev-a', 'dev-a', { sessionExpiryInterval: 3600 }, { clean: false })
    const p = await again.next('publish') as IPublishPacket
    assert.equal(p.topic, 'mx/long')
    assert.equal(p.properties?.messageExpiryInterval, 70)
    again.send({ cmd: 'puback', messageId: p.messageId ?? 0, reasonCode: 0 })
    await assert.rejects(again.next('publish', 200), /timed out/)
  })

  test('[MQTT-3.3.2-12] inbound Topic Alias: a topic sent once can be replaced by its alias', async (t) => {
    const h = await startGateway(t, pki)
    const c = await h.client('dev-a')
    const inbox = new Inbox(c)
    await c.subscribeAsync('alias/#', { qos: 1 })
    const [r] = await raw5(h, 'dev-b')
    r.send({ cmd: 'publish', topic: 'alias/long/topic', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false, dup: false, properties: { topicAlias: 3 } })
    r.send({ cmd: 'publish', topic: '', payload: Buffer.from('2'), qos: 1, messageId: 2, retain: false, dup: false, properties: { topicAlias: 3 } })
    await inbox.waitFor('alias/long/topic', '2')
    assert.deepEqual(inbox.on('alias/long/topic').map((m) => m.payload), ['1', '2'])
  })

  test('[MQTT-3.3.2-9] a Topic Alias above Topic Alias Maximum is refused with DISCONNECT 0x94', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: h.gw.limits.topicAliasMaximum + 1 } })
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x94)
    await r.waitClosed()
  })

  test('MQTT 5 §3.3.2.3.4 an unknown Topic Alias with an empty topic is a Protocol Error (0x82)', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'publish', topic: '', payload: Buffer.from('1'), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } })
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x82)
  })

  test('[MQTT-3.2.2-11] MQTT 5 §3.2.2.3.4 a QoS 2 PUBLISH above Maximum QoS gets DISCONNECT 0x9B', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('1'), qos: 2, messageId: 5, retain: false, dup: false })
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x9b)
  })
})

describe('MQTT 5 §4.9 flow control and §3.1.2.11.4 maximum packet size', () => {
  test('[MQTT-3.3.4-9] the server sends no more unacknowledged QoS 1 PUBLISH packets than the client Receive Maximum', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a', 'dev-a', { receiveMaximum: 2 })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fc/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    await r.next('suback')
    const pub = await h.client('dev-b')
    for (let i = 0; i < 5; i++) await pub.publishAsync('fc/x', `m${i}`, { qos: 1 })
    const a = await r.next('publish') as IPublishPacket
    const b = await r.next('publish') as IPublishPacket
    await assert.rejects(r.next('publish', 150), /timed out/, 'third must wait for a PUBACK')
    assert.equal(h.gw.sessions.get('dev-a')?.queuedMessages, 3)
    r.send({ cmd: 'puback', messageId: a.messageId ?? 0, reasonCode: 0 })
    const c = await r.next('publish') as IPublishPacket
    assert.deepEqual([a, b, c].map((p) => p.payload.toString()), ['m0', 'm1', 'm2'])
  })

  test('[MQTT-3.1.2-25] a message larger than the client Maximum Packet Size is discarded for that client only', async (t) => {
    const h = await startGateway(t, pki)
    const small = await h.client('dev-a', { properties: { maximumPacketSize: 200 } })
    const big = await h.client('dev-c')
    const smallInbox = new Inbox(small)
    const bigInbox = new Inbox(big)
    await small.subscribeAsync('mps/#', { qos: 1 })
    await big.subscribeAsync('mps/#', { qos: 1 })
    const pub = await h.client('dev-b')
    await pub.publishAsync('mps/large', Buffer.alloc(500, 1), { qos: 1 })
    await pub.publishAsync('mps/small', 'tiny', { qos: 1 })
    await smallInbox.waitFor('mps/small')
    await bigInbox.waitFor('mps/large')
    assert.equal(smallInbox.on('mps/large').length, 0)
  })
})

describe('MQTT 5 §4.8.2 shared subscriptions', () => {
  test('MQTT 5 §4.8.2 each message to a share group goes to exactly one member (3.1.1 and 5 members mixed)', async (t) => {
    const h = await startGateway(t, pki)
    const a = await h.client('dev-a')
    const b = await h.client('dev-c', { protocolVersion: 4 })
    const ia = new Inbox(a)
    const ib = new Inbox(b)
    await a.subscribeAsync('$share/workers/jobs/#', { qos: 1 })
    await b.subscribeAsync('$share/workers/jobs/#', { qos: 1 })
    const pub = await h.client('dev-b')
    const n = 20
    for (let i = 0; i < n; i++) await pub.publishAsync('jobs/x', `j${i}`, { qos: 1 })
    const deadline = Date.now() + 3000
    while (ia.messages.length + ib.messages.length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
    const all = [...ia.messages, ...ib.messages].map((m) => m.payload).sort()
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => `j${i}`).sort())
    assert.ok(ia.messages.length > 0 && ib.messages.length > 0, 'both members got work')
  })

  test('MQTT 5 §4.8.2 retained messages are not sent to a new shared subscription; a plain one still gets them', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b')
    await pub.publishAsync('shr/x', 'r', { qos: 1, retain: true })
    const a = await h.client('dev-a')
    const inbox = new Inbox(a)
    await a.subscribeAsync({ '$share/g/shr/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    await barrier(pub, inbox)
    assert.equal(inbox.on('shr/x').length, 0)
  })

  test('[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error (DISCONNECT 0x82)', async (t) => {
    const h = await startGateway(t, pki)
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$share/g/a', qos: 0, nl: true, rap: false, rh: 0 }] })
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x82)
  })
})

describe('MQTT 5 §2.4 reason codes and reason strings on denials', () => {
  const rules = { connect: ['*'], publish: ['ok/*'], subscribe: ['ok/*'], receive: ['ok/*'] }

  test('PUBACK 0x87 with a short Reason String for an unauthorized QoS 1 publish; the message goes nowhere', async (t) => {
    const policy = new PrefixPolicy(rules)
    const h = await startGateway(t, pki, { policy })
    policy.register(pki.client('watcher'), 'watcher', { connect: ['*'], publish: ['*'], subscribe: ['*'], receive: ['*'] })
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync({ '#': { qos: 1 } })
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('no'), qos: 1, messageId: 3, retain: false, dup: false })
    const ack = await r.next('puback') as IPubackPacket
    assert.equal(ack.reasonCode, 0x87)
    assert.equal(ack.properties?.reasonString, 'Not authorized')
    r.send({ cmd: 'publish', topic: 'ok/x', payload: Buffer.from('yes'), qos: 1, messageId: 4, retain: false, dup: false })
    await inbox.waitFor('ok/x')
    assert.equal(inbox.on('secret/x').length, 0)
    assert.equal(h.gw.metrics.denials['publish:no-matching-statement'], 1)
  })

  test('[MQTT-3.1.2-29] with Request Problem Information 0 no Reason String is sent on PUBACK', async (t) => {
    const h = await startGateway(t, pki, { policy: new PrefixPolicy(rules) })
    const [r] = await raw5(h, 'dev-a', 'dev-a', { requestProblemInformation: false })
    r.send({ cmd: 'publish', topic: 'secret/x', payload: Buffer.from('no'), qos: 1, messageId: 3, retain: false, dup: false })
    const ack = await r.next('puback') as IPubackPacket
    assert.equal(ack.reasonCode, 0x87)
    assert.equal(ack.properties?.reasonString, undefined)
  })

  test('SUBACK 0x87 for an unauthorized filter, granted codes for the allowed ones', async (t) => {
    const h = await startGateway(t, pki, { policy: new PrefixPolicy(rules) })
    const [r] = await raw5(h, 'dev-a')
    r.send({ cmd: 'subscribe', messageId: 4, subscriptions: [{ topic: 'ok/+', qos: 1, nl: false, rap: false, rh: 0 }, { topic: 'secret/#', qos: 1, nl: false, rap: false, rh: 0 }] })
    const s = await r.next('suback') as ISubackPacket
    assert.deepEqual(s.granted, [1, 0x87])
    assert.equal(s.properties?.reasonString, 'Not authorized')
    assert.deepEqual(h.gw.sessions.get('dev-a')?.subscriptionFilters, ['ok/+'])
  })

  test('CONNACK 0x87 when iot:Connect is denied; no session is left', async (t) => {
    const h = await startGateway(t, pki, { policy: new PrefixPolicy({ ...rules, connect: ['${cn}'] }) })
    const [r, ack] = await raw5(h, 'dev-a', 'someone-else')
    assert.equal(ack.reasonCode, 0x87)
    await r.waitClosed()
    assert.equal(h.gw.sessions.size, 0)
    const denied = h.audit.find({ action: 'mqtt.connect', outcome: 'denied' })
    assert.equal(denied.length, 1)
    assert.equal(denied[0].reason, 'no-matching-statement')
    assert.equal(denied[0].clientId, 'someone-else')
  })
})
