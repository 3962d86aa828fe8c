/**
 * Authentication, authorization, revocation and TLS policy of the gateway, over real mTLS with certificates
 * minted by openssl during the test. Negative tests assert the side effect that must not happen.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect as tlsConnect } from 'node:tls'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import type { IConnackPacket, IDisconnectPacket, IPubackPacket, IPublishPacket, ISubackPacket } from 'mqtt-packet'
import { ALLOW_ALL, barrier, cleanupPki, closed, createPki, Inbox, PrefixPolicy, RawClient, startGateway, waitUntil } from './gateway-helpers.ts'
import type { TestGateway, TestPki } from './gateway-helpers.ts'
import type { ReservedPublish } from '../src/gateway/index.ts'
import { ManualClock } from '../src/core/index.ts'

let pki: TestPki
before(() => { pki = createPki(['dev-a', 'dev-b', 'dev-c', 'watcher', 'unregistered']) })
after(() => { cleanupPki(pki) })

/** A TLS handshake attempt; resolves with the socket or the error. */
function handshake (port: number, opts: ConnectionOptions): Promise<{ socket?: TLSSocket, error?: Error }> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...opts })
    s.once('secureConnect', () => {
      // TLS 1.3: a refused client certificate only shows up after the handshake, as an alert on first read.
      s.once('data', () => {})
      s.once('error', (error) => { resolve({ error }) })
      s.once('close', () => { resolve({ error: new Error('closed by server') }) })
      setTimeout(() => { resolve({ socket: s }) }, 100)
    })
    s.once('error', (error) => { resolve({ error }) })
  })
}

async function withPolicy (t: import('node:test').TestContext, rules = ALLOW_ALL, clock?: ManualClock): Promise<TestGateway> {
  const policy = new PrefixPolicy(rules)
  for (const name of ['dev-a', 'dev-b', 'dev-c', 'watcher']) policy.register(pki.client(name), name)
  return startGateway(t, pki, { policy, registerAll: false, ...(clock === undefined ? {} : { clock, housekeepingIntervalMs: 0 }) })
}

describe('authentication: the certificate is looked up on every connection', () => {
  test('a certificate from our CA that is not registered gets CONNACK 0x87 (v5) / 5 (3.1.1); no session; audited', async (t) => {
    const h = await withPolicy(t)
    const r5 = await h.raw('unregistered')
    const a5 = await r5.connect('unregistered', { protocolVersion: 5 }) as IConnackPacket
    assert.equal(a5.reasonCode, 0x87)
    await r5.waitClosed()
    const r4 = await h.raw('unregistered')
    const a4 = await r4.connect('unregistered') as IConnackPacket
    assert.equal(a4.returnCode, 5)
    await r4.waitClosed()
    assert.equal(h.gw.sessions.size, 0)
    const denied = h.audit.find({ action: 'mqtt.connect', outcome: 'denied', reason: 'certificate-not-registered' })
    assert.equal(denied.length, 2)
    assert.equal(denied[0].certificateFingerprint256, undefined, 'no session: the fingerprint is not attributed to one')
  })

  test('expired certificate, foreign CA, and no certificate at all fail the TLS handshake; nothing reaches MQTT', async (t) => {
    const h = await withPolicy(t)
    const cases: Array<[string, ConnectionOptions]> = [
      ['expired', { key: pki.expired.key, cert: pki.expired.cert, ca: pki.caCert }],
      ['foreign CA', { key: pki.foreign.key, cert: pki.foreign.cert, ca: pki.caCert }],
      ['no client certificate', { ca: pki.caCert }],
    ]
    for (const [name, opts] of cases) {
      const r = await handshake(h.port, opts)
      assert.ok(r.error !== undefined, `${name} must be refused`)
    }
    assert.equal(h.policy.requests.length, 0, 'the authenticator never ran')
    assert.ok(h.gw.metrics.tlsHandshakeFailures >= 2)
    assert.equal(h.gw.sessions.size, 0)
  })

  test('TLS 1.0/1.1 and weak TLS 1.2 suites are refused; TLS 1.2 with ECDHE-GCM and TLS 1.3 work', async (t) => {
    const h = await withPolicy(t)
    const id = pki.client('dev-a')
    const base = { key: id.key, cert: id.cert, ca: pki.caCert }
    const old = await handshake(h.port, { ...base, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })
    assert.ok(old.error !== undefined, 'TLS 1.1 refused')
    const weak = await handshake(h.port, { ...base, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES256-SHA256' })
    assert.ok(weak.error !== undefined, 'non-ECDHE, non-AEAD suites refused')
    const v12 = await handshake(h.port, { ...base, maxVersion: 'TLSv1.2' })
    assert.equal(v12.socket?.getProtocol(), 'TLSv1.2')
    assert.match(v12.socket?.getCipher().name ?? '', /ECDHE-.*-(GCM|CHACHA20)/)
    v12.socket?.destroy()
    const v13 = await handshake(h.port, base)
    assert.equal(v13.socket?.getProtocol(), 'TLSv1.3')
    v13.socket?.destroy()
  })

  test('a resumed TLS session does not bypass revocation: the certificate is looked up again', async (t) => {
    const h = await withPolicy(t)
    const id = pki.client('dev-a')
    const tls = { key: id.key, cert: id.cert, ca: pki.caCert }
    const first = await RawClient.open(h.port, tls)
    const sessionTicket = new Promise<Buffer>((resolve) => { first.socket.once('session', resolve) })
    assert.equal((await first.connect('dev-a') as IConnackPacket).returnCode, 0)
    const session = await sessionTicket
    first.socket.destroy()
    h.policy.revoke(id)
    const second = await RawClient.open(h.port, tls, { session })
    assert.equal(second.socket.isSessionReused(), true, 'the TLS session was resumed')
    const ack = await second.connect('dev-a') as IConnackPacket
    assert.equal(ack.returnCode, 5)
    await second.waitClosed()
    const last = h.policy.requests.at(-1)
    assert.equal(last?.tlsSessionReused, true)
    assert.equal(last?.fingerprint256, id.fingerprint256, 'the resumed session still yields the peer certificate')
  })

  test('trusted CAs are hot-swapped: registering a foreign CA admits its devices, deactivating it refuses new handshakes', async (t) => {
    const h = await withPolicy(t)
    h.policy.register(pki.foreign, 'foreign-device')
    const foreignTls = { key: pki.foreign.key, cert: pki.foreign.cert, ca: pki.caCert }
    assert.ok((await handshake(h.port, foreignTls)).error !== undefined, 'unknown CA refused')
    h.gw.setTrustedCAs([pki.caCert, pki.foreignCaCert])
    const r = await RawClient.open(h.port, foreignTls)
    assert.equal((await r.connect('foreign-device') as IConnackPacket).returnCode, 0)
    h.gw.setTrustedCAs([pki.caCert])
    assert.ok((await handshake(h.port, foreignTls)).error !== undefined, 'deactivated CA refused for new handshakes')
    const ours = await h.raw('dev-a')
    assert.equal((await ours.connect('dev-a') as IConnackPacket).returnCode, 0, 'our CA unaffected')
  })
})

describe('authorization: publish, subscribe, receive', () => {
  const rules = { connect: ['${cn}'], publish: ['dev/${cn}/*', 'shared/*'], subscribe: ['shared/*', 'cmd/${cn}'], receive: ['shared/*', 'cmd/${cn}'] }

  test('3.1.1: an unauthorized publish closes the connection (AWS) and is delivered to nobody', async (t) => {
    const h = await withPolicy(t, rules)
    h.policy.setRules('watcher', ALLOW_ALL)
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync('#', { qos: 1 })
    const dev = await h.client('dev-a', { protocolVersion: 4 })
    const gone = closed(dev)
    dev.publish('dev/dev-b/temp', 'spoofed', { qos: 1 })
    await gone
    await barrier(w, inbox)
    assert.equal(inbox.on('dev/dev-b/temp').length, 0)
    const a = h.audit.find({ action: 'mqtt.publish', outcome: 'closed' })
    assert.equal(a.length, 1)
    assert.equal(a[0].resource, 'dev/dev-b/temp')
    assert.equal(a[0].reason, 'no-matching-statement')
    assert.equal(a[0].principalId, 'dev-a')
  })

  test('3.1.1: an unauthorized subscribe gets SUBACK 0x80 and the connection stays', async (t) => {
    const h = await withPolicy(t, rules)
    const r = await h.raw('dev-a')
    await r.connect('dev-a')
    r.send({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'cmd/dev-b', qos: 1 }, { topic: 'cmd/dev-a', qos: 1 }] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [0x80, 1])
    r.write([0xc0, 0x00])
    await r.next('pingresp')
  })

  test('3.1.1: a denied iot:Connect gets CONNACK 5', async (t) => {
    const h = await withPolicy(t, rules)
    const r = await h.raw('dev-a')
    assert.equal((await r.connect('dev-b') as IConnackPacket).returnCode, 5)
    await r.waitClosed()
  })

  test('iot:Receive is checked on every delivery: a wildcard subscription does not leak topics the device may not receive', async (t) => {
    const h = await withPolicy(t, { connect: ['*'], publish: ['*'], subscribe: ['*'], receive: ['a/public/*', 'sentinel/*'] })
    const dev = await h.client('dev-a')
    const inbox = new Inbox(dev)
    await dev.subscribeAsync({ 'a/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const pub = await h.client('dev-b')
    await pub.publishAsync('a/public/x', 'ok', { qos: 1 })
    await pub.publishAsync('a/restricted/x', 'secret', { qos: 1 })
    await barrier(pub, inbox)
    assert.deepEqual(inbox.messages.filter((m) => m.topic.startsWith('a/')).map((m) => m.payload), ['ok'])
    const denied = h.audit.find({ action: 'mqtt.receive', outcome: 'denied' })
    assert.equal(denied.length, 1)
    assert.equal(denied[0].resource, 'a/restricted/x')
    assert.equal(denied[0].clientId, 'dev-a')
  })

  test('iot:RetainPublish: a retained publish needs the retain right; nothing is retained or routed when denied', async (t) => {
    const h = await withPolicy(t, { connect: ['*'], publish: ['*'], subscribe: ['*'], receive: ['*'], retain: ['r/ok/*'] })
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync('#', { qos: 1 })
    const dev = await h.client('dev-a')
    await dev.publishAsync('r/ok/x', 'kept', { qos: 1, retain: true })
    await assert.rejects(dev.publishAsync('r/no/x', 'refused', { qos: 1, retain: true }), /Not authorized/)
    await barrier(dev, inbox)
    assert.equal(inbox.on('r/no/x').length, 0)
    assert.equal(h.gw.metrics.retainedMessages, 1)
  })

  test('a Will is authorized when it is published: a Will on a forbidden topic is not published, and that is audited', async (t) => {
    const h = await withPolicy(t, { connect: ['*'], publish: ['dev/*', 'sentinel/*'], subscribe: ['*'], receive: ['*'] })
    h.policy.setRules('watcher', ALLOW_ALL)
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync('#', { qos: 1 })
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { will: { topic: 'alarm/all', payload: Buffer.from('x'), qos: 1, retain: false } })
    r.socket.destroy()
    await waitUntil(() => h.audit.find({ action: 'mqtt.will' }).length > 0)
    await barrier(w, inbox)
    assert.equal(inbox.on('alarm/all').length, 0)
    assert.equal(h.audit.find({ action: 'mqtt.will', outcome: 'denied' })[0]?.resource, 'alarm/all')
  })
})

describe('revocation and policy change take effect on live sessions', () => {
  test('closeSessionsForCertificate: v5 DISCONNECT 0x98, no Will published, no session left', async (t) => {
    const h = await withPolicy(t)
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync({ 'will/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { protocolVersion: 5, will: { topic: 'will/dev-a', payload: Buffer.from('last words'), qos: 1, retain: true } })
    const other = await h.client('dev-b')
    const t0 = process.hrtime.bigint()
    const n = h.gw.closeSessionsForCertificate({ fingerprint256: pki.client('dev-a').fingerprint256 })
    assert.equal(n, 1)
    assert.equal(h.gw.sessions.has('dev-a'), false, 'state is final when the call returns')
    assert.ok(Number(process.hrtime.bigint() - t0) / 1e6 < 100, 'within 100 ms')
    const d = await r.next('disconnect') as IDisconnectPacket
    assert.equal(d.reasonCode, 0x98)
    await r.waitClosed()
    await barrier(other, inbox)
    assert.equal(inbox.on('will/dev-a').length, 0, 'no Will')
    assert.equal(h.gw.metrics.retainedMessages, 0, 'no retained Will either')
    assert.equal(other.connected, true, 'other devices untouched')
  })

  test('closeSessionsForCertificate by certificate id closes 3.1.1 sessions too (socket closed), and cancels a delayed Will', async (t) => {
    const clock = new ManualClock()
    const h = await withPolicy(t, ALLOW_ALL, clock)
    const w = await h.client('watcher')
    const inbox = new Inbox(w)
    await w.subscribeAsync({ 'will/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const v4 = await h.raw('dev-a')
    await v4.connect('dev-a', { will: { topic: 'will/dev-a', payload: Buffer.from('x'), qos: 0, retain: false } })
    const v5 = await h.raw('dev-c')
    await v5.connect('dev-c', { protocolVersion: 5, properties: { sessionExpiryInterval: 60 }, will: { topic: 'will/dev-c', payload: Buffer.from('y'), qos: 0, retain: false, properties: { willDelayInterval: 1 } } })
    v5.socket.destroy()
    await waitUntil(() => h.gw.sessions.get('dev-c')?.connected === false)
    assert.equal(h.gw.closeSessionsForCertificate({ certificateId: 'cert-dev-a' }), 1)
    assert.equal(h.gw.closeSessionsForCertificate({ certificateId: 'cert-dev-c' }), 0, 'offline: nothing to close, Will cancelled')
    await v4.waitClosed()
    clock.advance(2_000)
    h.gw.runHousekeeping()
    const pub = await h.client('dev-b')
    await barrier(pub, inbox)
    assert.equal(inbox.on('will/dev-a').length + inbox.on('will/dev-c').length, 0)
  })

  test('reauthorizeSessions: subscriptions no longer allowed are removed, Receive uses the new policy, denied sessions are closed with 0x87', async (t) => {
    const h = await withPolicy(t)
    const dev = await h.client('dev-a')
    const inbox = new Inbox(dev)
    await dev.subscribeAsync({ 'room/#': { qos: 1 }, 'hall/#': { qos: 1 }, 'sentinel/#': { qos: 1 } })
    const r = await h.raw('dev-c')
    await r.connect('dev-c', { protocolVersion: 5, will: { topic: 'will/dev-c', payload: Buffer.from('x'), qos: 0, retain: false } })
    h.policy.setRules('dev-a', { connect: ['*'], publish: ['*'], subscribe: ['hall/*', 'sentinel/*'], receive: ['hall/*', 'sentinel/*'] })
    h.policy.setRules('dev-c', { connect: [], publish: [], subscribe: [], receive: [] })
    const result = await h.gw.reauthorizeSessions((s) => s.clientId === 'dev-a' || s.clientId === 'dev-c')
    assert.deepEqual(result, { reauthorized: 1, closed: 1, subscriptionsRemoved: 1 })
    assert.deepEqual(h.gw.sessions.get('dev-a')?.subscriptionFilters, ['hall/#', 'sentinel/#'])
    assert.equal((await r.next('disconnect') as IDisconnectPacket).reasonCode, 0x87)
    const pub = await h.client('dev-b')
    await pub.publishAsync('room/1', 'no', { qos: 1 })
    await pub.publishAsync('hall/1', 'yes', { qos: 1 })
    await barrier(pub, inbox)
    assert.deepEqual(inbox.messages.filter((m) => !m.topic.startsWith('sentinel')).map((m) => m.topic), ['hall/1'])
  })

  test('duplicate client id across principals: the newer connection wins (0x8E to the old one)', async (t) => {
    const h = await withPolicy(t)
    const first = await h.client('dev-a', { clientId: 'shared-id' })
    const gone = new Promise<number | undefined>((resolve) => { first.once('disconnect', (p) => { resolve(p.reasonCode) }) })
    await h.client('dev-b', { clientId: 'shared-id' })
    assert.equal(await gone, 0x8e)
    assert.equal(h.gw.sessions.get('shared-id')?.principal?.id, 'dev-b')
  })
})

describe('reserved topics and server publishes', () => {
  test('handleReserved routes $aws/… publishes to the in-gateway handler (after iot:Publish); other $ topics are refused', async (t) => {
    const h = await withPolicy(t, { connect: ['*'], publish: ['$aws/things/${cn}/*', 'x/*'], subscribe: ['*'], receive: ['*'] })
    const got: ReservedPublish[] = []
    const off = h.gw.handleReserved('$aws/things/', (m) => {
      got.push(m)
      h.gw.publish({ topic: `${m.topic}/accepted`, payload: m.payload, qos: 1 })
    })
    t.after(off)
    const dev = await h.client('dev-a')
    const inbox = new Inbox(dev)
    await dev.subscribeAsync('$aws/things/dev-a/shadow/update/accepted', { qos: 1 })
    await dev.publishAsync('$aws/things/dev-a/shadow/update', '{"state":{}}', { qos: 1 })
    assert.equal((await inbox.waitFor('$aws/things/dev-a/shadow/update/accepted')).payload, '{"state":{}}')
    assert.equal(got.length, 1)
    assert.equal(got[0].clientId, 'dev-a')
    assert.equal(got[0].principal?.id, 'dev-a')
    await assert.rejects(dev.publishAsync('$aws/things/dev-b/shadow/update', '{}', { qos: 1 }), /Not authorized/)
    assert.equal(got.length, 1, 'a denied publish never reaches the handler')
    const r = await h.raw('dev-a')
    await r.connect('dev-a2', { protocolVersion: 5 })
    r.send({ cmd: 'publish', topic: '$SYS/fake', payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false })
    assert.equal((await r.next('puback') as IPubackPacket).reasonCode, 0x90)
  })

  test('public topics: every session subscribes to and receives them whatever its policy; devices cannot publish there', async (t) => {
    const policy = new PrefixPolicy({ connect: ['*'], publish: ['*'], subscribe: ['x/*'], receive: ['x/*'] })
    for (const name of ['dev-a', 'dev-b']) policy.register(pki.client(name), name)
    await assert.rejects(startGateway(t, pki, { policy, registerAll: false, publicTopics: ['not/reserved'] }), /public topic/)
    const h = await startGateway(t, pki, { policy, registerAll: false, publicTopics: ['$thingward/keys'] })
    h.gw.publish({ topic: '$thingward/keys', payload: 'k1', qos: 1, retain: true })
    const r = await h.raw('dev-a')
    await r.connect('dev-a', { protocolVersion: 5 })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '$thingward/keys', qos: 1 }, { topic: '$thingward/#', qos: 1 }, { topic: 'y/z', qos: 1 }] })
    assert.deepEqual((await r.next('suback') as ISubackPacket).granted, [1, 0x87, 0x87], 'only the exact public topic is granted beyond the policy')
    assert.equal((await r.next('publish') as IPublishPacket).payload.toString(), 'k1')
    h.gw.publish({ topic: '$thingward/keys', payload: 'k2', qos: 0 })
    assert.equal((await r.next('publish') as IPublishPacket).payload.toString(), 'k2')
    const b = await h.raw('dev-b')
    await b.connect('dev-b', { protocolVersion: 5 })
    b.send({ cmd: 'publish', topic: '$thingward/keys', payload: Buffer.from('forged'), qos: 1, messageId: 1, retain: true, dup: false })
    assert.equal((await b.next('puback') as IPubackPacket).reasonCode, 0x90)
    assert.equal(h.gw.retainedMessage('$thingward/keys')?.message.payload.toString(), 'k1')
  })
})
