/**
 * MQTT 3.1.1 conformance, organised by the normative statements of OASIS MQTT 3.1.1 (2014). Real mTLS on
 * 127.0.0.1:0; MQTT.js v4 clients and raw TLS sockets for byte-level cases.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { IConnackPacket, IPublishPacket, ISubackPacket, IUnsubackPacket } from 'mqtt-packet'
import { ManualClock } from '../src/core/index.ts'
import { barrier, cleanupPki, closed, createPki, Inbox, startGateway, waitUntil } from './gateway-helpers.ts'
import type { TestGateway, TestPki } from './gateway-helpers.ts'

let pki: TestPki
before(() => { pki = createPki(['dev-a', 'dev-b', 'dev-c', 'watcher']) })
after(() => { cleanupPki(pki) })

const V4 = { protocolVersion: 4 as const }

/** dev-a subscribes at QoS 1 on a persistent 3.1.1 session (CleanSession 0), then goes offline. */
async function offlineSubscriber (h: TestGateway, filter: string): Promise<void> {
  const sub = await h.client('dev-a', { ...V4, clean: false })
  await sub.subscribeAsync(filter, { qos: 1 })
  sub.end()
  await closed(sub)
  await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
}

describe('MQTT 3.1.1 §3.1 CONNECT', () => {
  test('[MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes the connection without CONNACK', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    r.write([0xc0, 0x00]) // PINGREQ
    await r.waitClosed()
    assert.equal(r.packets.length, 0)
    assert.equal(h.gw.sessions.size, 0)
  })

  test('[MQTT-3.1.0-2] a second CONNECT is a protocol violation and closes the connection', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    const ack = await r.connect('dev-a') as IConnackPacket
    assert.equal(ack.returnCode, 0)
    r.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'dev-a' })
    await r.waitClosed()
    assert.equal(h.gw.sessions.size, 0)
  })

  test('[MQTT-3.1.2-2] an unsupported protocol level gets CONNACK 0x01 and the connection is closed', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    // CONNECT, protocol "MQTT" level 6.
    r.write([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78])
    const ack = await r.next('connack') as IConnackPacket
    assert.equal(ack.returnCode, 1)
    await r.waitClosed()
  })

  test('[MQTT-3.1.2-3] the reserved CONNECT flag must be 0, else the connection is closed', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    r.write([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x03, 0x00, 0x00, 0x00, 0x01, 0x78])
    await r.waitClosed()
    assert.equal(r.packets.length, 0)
  })

  test('[MQTT-3.1.3-8] a zero-byte ClientId with CleanSession 0 is refused with CONNACK 0x02', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    // CONNECT level 4, flags 0 (CleanSession 0), keep-alive 0, zero-length client id (MQTT.js refuses to encode it).
    r.write([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00])
    const ack = await r.next('connack') as IConnackPacket
    assert.equal(ack.returnCode, 2)
    await r.waitClosed()
    assert.equal(h.gw.sessions.size, 0)
  })

  test('[MQTT-3.1.3-6] [MQTT-3.1.3-7] a zero-byte ClientId with CleanSession 1 is accepted and given a unique id', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    const ack = await r.connect('') as IConnackPacket
    assert.equal(ack.returnCode, 0)
    const ids = [...h.gw.sessions.keys()]
    assert.equal(ids.length, 1)
    assert.match(ids[0], /^tw-[0-9a-f]{24}$/)
  })

  test('[MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-3.2.2-3] Session Present: 0 for clean sessions and new sessions, 1 when resuming', async (t) => {
    const h = await startGateway(t, pki)
    let r = await h.raw('dev-a')
    assert.equal((await r.connect('dev-a', { clean: false }) as IConnackPacket).sessionPresent, false)
    r.send({ cmd: 'disconnect' })
    await r.waitClosed()
    r = await h.raw('dev-a')
    assert.equal((await r.connect('dev-a', { clean: false }) as IConnackPacket).sessionPresent, true)
    r.send({ cmd: 'disconnect' })
    await r.waitClosed()
    r = await h.raw('dev-a')
    assert.equal((await r.connect('dev-a', { clean: true }) as IConnackPacket).sessionPresent, false, 'clean session discards it')
  })

  test('[MQTT-3.1.2-6] [MQTT-3.1.2-4] CleanSession 1 discards the previous session: no subscriptions, no queued messages', async (t) => {
    const h = await startGateway(t, pki)
    await offlineSubscriber(h, 'q/#')
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('q/1', 'offline', { qos: 1 })
    assert.equal(h.gw.sessions.get('dev-a')?.queuedMessages, 1)
    const again = await h.client('dev-a', { ...V4, clean: true })
    const inbox = new Inbox(again)
    await again.subscribeAsync('sentinel/#', { qos: 1 })
    await barrier(pub, inbox)
    assert.equal(inbox.on('q/1').length, 0)
    assert.deepEqual(h.gw.sessions.get('dev-a')?.subscriptionFilters, ['sentinel/#'])
  })

  test('[MQTT-3.1.4-2] a second client with the same ClientId takes over; the old connection is closed', async (t) => {
    const h = await startGateway(t, pki)
    const first = await h.client('dev-a', V4)
    const gone = closed(first)
    const second = await h.client('dev-a', V4)
    await gone
    assert.equal(second.connected, true)
    assert.equal(h.gw.sessions.size, 1)
    assert.equal(h.audit.find({ reason: 'session-taken-over' }).length, 1)
  })
})

describe('MQTT 3.1.1 §3.3 PUBLISH and QoS flows', () => {
  test('[MQTT-4.3.2-1] [MQTT-3.4.0-1] QoS 1 publish is acknowledged with PUBACK carrying the same Packet Identifier', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, messageId: 4242, retain: false, dup: false })
    const ack = await r.next('puback')
    assert.equal(ack.messageId, 4242)
  })

  test('[MQTT-3.3.5-1] overlapping subscriptions deliver one copy at the highest granted QoS', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync({ 'o/+': { qos: 0 }, 'o/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('o/x', 'once', { qos: 1 })
    await barrier(pub, inbox)
    const got = inbox.on('o/x')
    assert.equal(got.length, 1)
    assert.equal(got[0].packet.qos, 1)
  })

  test('[MQTT-3.8.4-6] [MQTT-3.3.5-1] delivery QoS is the minimum of the published and the granted QoS', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync({ 'low/#': { qos: 0 }, 'high/#': { qos: 1 } })
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('low/x', 'a', { qos: 1 })
    await pub.publishAsync('high/x', 'b', { qos: 0 })
    assert.equal((await inbox.waitFor('low/x')).packet.qos, 0)
    assert.equal((await inbox.waitFor('high/x')).packet.qos, 0)
  })

  test('[MQTT-3.9.3-2] SUBACK grants at most QoS 1 (no QoS 2) and [MQTT-3.3.1-4] a QoS 2 PUBLISH closes a 3.1.1 connection', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'q2/#', qos: 2 }] })
    const suback = await r.next('suback') as ISubackPacket
    assert.deepEqual(suback.granted, [1])
    r.send({ cmd: 'publish', topic: 'q2/x', payload: Buffer.from('x'), qos: 2, messageId: 7, retain: false, dup: false })
    await r.waitClosed()
  })

  test('[MQTT-4.4.0-1] [MQTT-3.3.1-1] unacknowledged QoS 1 messages are re-sent with DUP=1 when the session resumes', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { clean: false })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'redo/#', qos: 1 }] })
    await r.next('suback')
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('redo/1', 'first', { qos: 1 })
    const p1 = await r.next('publish') as IPublishPacket
    assert.equal(p1.dup, false)
    r.socket.destroy() // no PUBACK
    await r.closed
    const r2 = await h.raw('dev-a')
    const ack = await r2.connect('dev-a', { clean: false }) as IConnackPacket
    assert.equal(ack.sessionPresent, true)
    const p2 = await r2.next('publish') as IPublishPacket
    assert.equal(p2.topic, 'redo/1')
    assert.equal(p2.dup, true)
    assert.equal(p2.messageId, p1.messageId)
    r2.send({ cmd: 'puback', messageId: p2.messageId ?? 0 })
  })

  test('[MQTT-3.1.2-5] QoS 1 messages published while a persistent session is offline are delivered on reconnect, in order', async (t) => {
    const h = await startGateway(t, pki)
    await offlineSubscriber(h, 'off/#')
    const pub = await h.client('dev-b', V4)
    for (let i = 0; i < 5; i++) await pub.publishAsync('off/x', `m${i}`, { qos: 1 })
    await pub.publishAsync('off/x', 'qos0-dropped', { qos: 0 })
    const again = await h.client('dev-a', { ...V4, clean: false })
    const inbox = new Inbox(again)
    await inbox.waitFor('off/x', 'm4')
    assert.deepEqual(inbox.on('off/x').map((m) => m.payload), ['m0', 'm1', 'm2', 'm3', 'm4'])
  })

  test('[MQTT-4.6.0-2] a backlog of 3,000 queued QoS 1 messages drains in order across a reconnect mid-stream', async (t) => {
    const h = await startGateway(t, pki, { limits: { maxQueuedMessages: 5000, maxInflightOutbound: 10 } })
    await offlineSubscriber(h, 'bulk/#')
    const pub = await h.client('dev-b', V4)
    const sent = Array.from({ length: 3000 }, (_, i) => `b${i}`)
    for (let i = 0; i < sent.length; i += 500) await Promise.all(sent.slice(i, i + 500).map(p => pub.publishAsync('bulk/x', p, { qos: 1 })))
    assert.equal(h.gw.sessions.get('dev-a')?.queuedMessages, 3000)
    // First connection takes part of the backlog, then drops; the rest (and anything unacknowledged) follows.
    const first = await h.client('dev-a', { ...V4, clean: false })
    const firstInbox = new Inbox(first)
    await firstInbox.waitFor('bulk/x', 'b1500', 10_000)
    first.end(true)
    await closed(first)
    await waitUntil(() => h.gw.sessions.get('dev-a')?.connected === false)
    const again = await h.client('dev-a', { ...V4, clean: false })
    const inbox = new Inbox(again)
    await inbox.waitFor('bulk/x', 'b2999', 10_000)
    const got = [...firstInbox.on('bulk/x'), ...inbox.on('bulk/x')].map(m => m.payload)
    // At least once [MQTT-4.3.2]: re-sent messages may repeat, but every message arrives and none out of order
    // within each connection.
    assert.deepEqual([...new Set(got)].sort(), [...sent].sort())
    for (const list of [firstInbox.on('bulk/x'), inbox.on('bulk/x')]) {
      const idx = list.map(m => Number(m.payload.slice(1)))
      assert.deepEqual(idx, [...idx].sort((a, b) => a - b))
    }
    assert.equal(h.gw.sessions.get('dev-a')?.queuedMessages, 0)
  })

  test('[MQTT-4.6.0-6] messages from one publisher on one topic arrive in order', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('ord', { qos: 1 })
    const pub = await h.client('dev-b', V4)
    const sent = Array.from({ length: 50 }, (_, i) => `n${i}`)
    await Promise.all(sent.map((p, i) => pub.publishAsync('ord', p, { qos: (i % 2) as 0 | 1 })))
    await inbox.waitFor('ord', 'n49')
    assert.deepEqual(inbox.on('ord').map((m) => m.payload), sent)
  })
})

describe('MQTT 3.1.1 §3.3.1.3 retained messages', () => {
  test('[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] a retained message is sent to new subscribers with RETAIN=1; the newest replaces the older', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('ret/a', 'old', { qos: 1, retain: true })
    await pub.publishAsync('ret/a', 'new', { qos: 1, retain: true })
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('ret/+', { qos: 1 })
    const m = await inbox.waitFor('ret/a')
    assert.equal(m.payload, 'new')
    assert.equal(m.packet.retain, true)
    assert.equal(inbox.on('ret/a').length, 1)
  })

  test('[MQTT-3.3.1-9] a retained publish forwarded to an existing subscription has RETAIN=0', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('live/#', { qos: 1 })
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('live/x', 'r', { qos: 1, retain: true })
    assert.equal((await inbox.waitFor('live/x')).packet.retain, false)
  })

  test('[MQTT-3.3.1-10] [MQTT-3.3.1-11] a zero-byte retained publish deletes the retained message and is not stored', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('del/x', 'keep', { qos: 1, retain: true })
    await pub.publishAsync('del/x', '', { qos: 1, retain: true })
    assert.equal(h.gw.metrics.retainedMessages, 0)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync({ 'del/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    await barrier(pub, inbox)
    assert.equal(inbox.on('del/x').length, 0)
  })

  test('[MQTT-3.8.4-3] re-subscribing with an identical filter replaces the subscription and re-sends retained messages', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('rs/x', 'r', { qos: 0, retain: true })
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync('rs/#', { qos: 1 })
    await inbox.waitFor('rs/x')
    await sub.subscribeAsync('rs/#', { qos: 0 })
    await new Promise<void>((resolve) => { const tick = (): void => { if (inbox.on('rs/x').length === 2) resolve(); else setTimeout(tick, 5) }; tick() })
    assert.equal(h.gw.sessions.get('dev-a')?.subscriptionFilters.length, 1)
  })
})

describe('MQTT 3.1.1 §3.8-3.12 SUBSCRIBE, UNSUBSCRIBE, PING', () => {
  test('[MQTT-3.8.4-1] [MQTT-3.8.4-2] [MQTT-3.8.4-5] SUBACK has the same Packet Identifier and one return code per filter, in order', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'subscribe', messageId: 77, subscriptions: [{ topic: 'a', qos: 1 }, { topic: 'b/#', qos: 0 }, { topic: 'c/#/d', qos: 1 }] })
    const suback = await r.next('suback') as ISubackPacket
    assert.equal(suback.messageId, 77)
    assert.deepEqual(suback.granted, [1, 0, 0x80])
  })

  test('[MQTT-3.8.3-3] a SUBSCRIBE without any filter is a protocol violation', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.write([0x82, 0x02, 0x00, 0x01])
    await r.waitClosed()
  })

  test('[MQTT-3.10.4-4] [MQTT-3.10.4-5] UNSUBACK is sent even when nothing matched; [MQTT-3.10.4-2] no further messages after it', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'u/#', qos: 0 }, { topic: 'sentinel/#', qos: 0 }] })
    await r.next('suback')
    r.send({ cmd: 'unsubscribe', messageId: 2, unsubscriptions: ['u/#', 'never/subscribed'] })
    const unsuback = await r.next('unsuback') as IUnsubackPacket
    assert.equal(unsuback.messageId, 2)
    const pub = await h.client('dev-b', V4)
    await pub.publishAsync('u/x', 'gone', { qos: 1 })
    await pub.publishAsync('sentinel/x', 'here', { qos: 1 })
    const p = await r.next('publish') as IPublishPacket
    assert.equal(p.topic, 'sentinel/x')
    assert.equal(r.packets.filter((x) => x.cmd === 'publish').length, 0)
  })

  test('[MQTT-3.12.4-1] the server answers PINGREQ with PINGRESP', async (t) => {
    const h = await startGateway(t, pki)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.write([0xc0, 0x00])
    await r.next('pingresp')
  })

  test('[MQTT-3.1.2-24] with no packet within 1.5 × Keep Alive the server closes the connection and publishes the Will', async (t) => {
    const clock = new ManualClock()
    const h = await startGateway(t, pki, { clock, housekeepingIntervalMs: 0 })
    const watcher = await h.client('watcher', V4)
    const inbox = new Inbox(watcher)
    await watcher.subscribeAsync('will/#', { qos: 1 })
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { keepalive: 10, will: { topic: 'will/dev-a', payload: Buffer.from('gone'), qos: 1, retain: false } })
    clock.advance(15_000)
    h.gw.runHousekeeping()
    assert.equal(r.socket.destroyed, false, 'exactly 1.5 × keep-alive is still allowed')
    clock.advance(1)
    h.gw.runHousekeeping()
    await r.waitClosed()
    assert.equal((await inbox.waitFor('will/dev-a')).payload, 'gone')
  })
})

describe('MQTT 3.1.1 §3.1.2.5 Will', () => {
  test('[MQTT-3.1.2-8] the Will is published when the network connection closes without DISCONNECT', async (t) => {
    const h = await startGateway(t, pki)
    const watcher = await h.client('watcher', V4)
    const inbox = new Inbox(watcher)
    await watcher.subscribeAsync('will/#', { qos: 1 })
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { will: { topic: 'will/dev-a', payload: Buffer.from('bye'), qos: 1, retain: true } })
    r.socket.destroy()
    const m = await inbox.waitFor('will/dev-a')
    assert.equal(m.payload, 'bye')
    assert.equal(h.gw.metrics.retainedMessages, 1, 'Will Retain honoured [MQTT-3.1.2-17]')
  })

  test('[MQTT-3.1.2-10] [MQTT-3.14.4-3] a DISCONNECT discards the Will', async (t) => {
    const h = await startGateway(t, pki)
    const watcher = await h.client('watcher', V4)
    const inbox = new Inbox(watcher)
    await watcher.subscribeAsync({ 'will/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const dev = await h.client('dev-a', { ...V4, will: { topic: 'will/dev-a', payload: Buffer.from('bye'), qos: 1, retain: false } })
    dev.end()
    await closed(dev)
    const pub = await h.client('dev-b', V4)
    await barrier(pub, inbox)
    assert.equal(inbox.on('will/dev-a').length, 0)
  })
})

describe('MQTT 3.1.1 §4.7 topic names and filters', () => {
  test('[MQTT-4.7.2-1] filters starting with a wildcard do not match topics starting with $', async (t) => {
    const h = await startGateway(t, pki)
    const pub = await h.client('dev-b', V4)
    h.gw.publish({ topic: '$SYS/broker/uptime', payload: 'x', retain: true })
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync({ '#': { qos: 1 }, '+/broker/+': { qos: 1 } })
    h.gw.publish({ topic: '$SYS/broker/load', payload: 'y' })
    await barrier(pub, inbox)
    assert.equal(inbox.messages.filter((m) => m.topic.startsWith('$')).length, 0)
    const sys = await h.client('dev-c', V4)
    const sysInbox = new Inbox(sys)
    await sys.subscribeAsync('$SYS/#', { qos: 1 })
    assert.equal((await sysInbox.waitFor('$SYS/broker/uptime')).payload, 'x', '$SYS/# does match')
  })

  test('[MQTT-4.7.1-2] [MQTT-4.7.1-3] wildcard semantics: # includes the parent level, + exactly one level', async (t) => {
    const h = await startGateway(t, pki)
    const sub = await h.client('dev-a', V4)
    const inbox = new Inbox(sub)
    await sub.subscribeAsync({ 'sport/tennis/player1/#': { qos: 1 }, 'sport/+': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const pub = await h.client('dev-b', V4)
    for (const topic of ['sport/tennis/player1', 'sport/tennis/player1/ranking', 'sport/', 'sport', 'sport/tennis/player2']) {
      await pub.publishAsync(topic, topic, { qos: 1 })
    }
    await barrier(pub, inbox)
    assert.deepEqual(inbox.messages.filter((m) => !m.topic.startsWith('sentinel')).map((m) => m.topic).sort(),
      ['sport/', 'sport/tennis/player1', 'sport/tennis/player1/ranking'])
  })

  test('[MQTT-3.3.2-2] a PUBLISH topic with wildcards closes the connection; other sessions are untouched', async (t) => {
    const h = await startGateway(t, pki)
    const other = await h.client('dev-b', V4)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'publish', topic: 'a/+', payload: Buffer.from('x'), qos: 0, retain: false, dup: false })
    await r.waitClosed()
    assert.equal(other.connected, true)
    assert.deepEqual([...h.gw.sessions.keys()], ['dev-b'])
  })
})

describe('MQTT 3.1.1 §1.5 / §2 malformed packets', () => {
  const cases: Array<[string, number[]]> = [
    ['[MQTT-2.2.2-2] invalid fixed-header flags on SUBSCRIBE', [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x00]],
    ['[MQTT-3.3.1-4] PUBLISH with both QoS bits set', [0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]],
    ['[MQTT-1.5.3-1] PUBLISH topic that is not well-formed UTF-8', [0x30, 0x04, 0x00, 0x02, 0xc3, 0x28]],
    ['[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH', [0x38, 0x04, 0x00, 0x01, 0x61, 0x62]],
    ['[MQTT-2.3.1-1] QoS 1 PUBLISH with Packet Identifier 0', [0x32, 0x05, 0x00, 0x01, 0x61, 0x00, 0x00]],
    ['[MQTT-2.3.1-1] QoS 1 PUBLISH whose Packet Identifier is cut off', [0x32, 0x04, 0x00, 0x01, 0x61, 0x00]],
    ['MQTT 3.1.1 §3.4.2 PUBACK whose Packet Identifier is cut off', [0x40, 0x01, 0x00]],
    ['[MQTT-2.3.1-1] PUBACK with Packet Identifier 0', [0x40, 0x02, 0x00, 0x00]],
    ['MQTT 3.1.1 §3.8.2 SUBSCRIBE whose Packet Identifier is cut off', [0x82, 0x01, 0x00]],
    ['MQTT 3.1.1 §2.2.3 a Remaining Length longer than four bytes', [0x30, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['MQTT 3.1.1 §2.2.1 reserved packet type 0', [0x00, 0x00]],
    ['MQTT 3.1.1 §2.2.1 a server-to-client packet (CONNACK) sent by a client', [0x20, 0x02, 0x00, 0x00]],
    ['MQTT 3.1.1 §4.3.3 PUBREL for a QoS 2 flow the server never started', [0x62, 0x02, 0x00, 0x01]],
  ]
  for (const [name, bytes] of cases) {
    test(`${name} closes that connection only`, async (t) => {
      const h = await startGateway(t, pki)
      const bystander = await h.client('dev-b', V4)
      const inbox = new Inbox(bystander)
      await bystander.subscribeAsync('alive', { qos: 1 })
      const r = await h.raw('dev-a')
      await r.connect('dev-a')
      r.write(bytes)
      await r.waitClosed()
      assert.equal(h.gw.sessions.has('dev-a'), false)
      await bystander.publishAsync('alive', 'yes', { qos: 1 })
      await inbox.waitFor('alive', 'yes')
      assert.ok(h.gw.metrics.protocolErrors >= 1)
    })
  }
})
