/**
 * End to end: the real platform (registry, CA, policy engine, SQLite) behind the MQTT gateway, with certificates
 * issued by our CA and real clients (MQTT.js v5 and v3.1.1, mosquitto_pub/sub, raw TLS with session resumption).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { generate, parser as createParser } from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import { ManualClock } from '../src/core/index.ts'
import { startPlatform } from './helpers/platform.ts'
import { TEST_ARN as ARN, connectDevice, observer } from './helpers/devices.ts'
import type { DeviceBundle, TestPlatform } from './helpers/platform.ts'
import { Inbox, barrier, closed } from './gateway-helpers.ts'

const run = promisify(execFile)



const own = (d: DeviceBundle, segment: string): string => `building/1/floor/1/${segment}/${d.thingName}`

/** Connects a device (MQTT 5) with a Will on its own topic; resolves the server's DISCONNECT reason and the close. */
async function connectWithWill (p: TestPlatform, d: DeviceBundle, t: Parameters<typeof connectDevice>[2]): Promise<{ disconnect: Promise<number | undefined>, gone: Promise<void> }> {
  const c = await connectDevice(p, d, t, { will: { topic: own(d, 'temperature'), payload: Buffer.from('offline'), qos: 1, retain: false } })
  const disconnect = new Promise<number | undefined>(resolve => c.on('disconnect', (pk) => resolve(pk.reasonCode)))
  return { disconnect, gone: closed(c) }
}

test('a temperature sensor publishes only to its own topic; other topics are refused (v5 0x87) and delivered to nobody', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const s2 = await p.device('temperature-sensor', 'temp-2')
  const c1 = await connectDevice(p, s1, t)
  await c1.publishAsync(own(s1, 'temperature'), '21.5', { qos: 1 })
  assert.equal((await obs.inbox.waitFor(own(s1, 'temperature'))).payload, '21.5')
  await assert.rejects(c1.publishAsync(own(s2, 'temperature'), 'spoof', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await c1.publishAsync('building/1/floor/1/temperature/temp-1/../temp-2', 'x', { qos: 1 }).catch(() => {})
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(obs.inbox.on(own(s2, 'temperature')), [])
  // The denial is audited with the deciding statement (none matched).
  await p.gateway?.flushAudit()
  const denials = await p.app.audit.query({ action: 'mqtt.publish', outcome: 'denied' })
  assert.ok(denials.some(e => e.target === own(s2, 'temperature') && String(e.statement).includes('no statement matched')))
  // Another device's client id is refused at CONNECT (policy pins Connect to the thing name).
  await assert.rejects(connectDevice(p, { ...s1, thingName: 'temp-2' }, t), /Not authorized/i)
})

test('wildcard subscriptions are refused: v5 SUBACK 0x87, v3.1.1 SUBACK 0x80; the light receives only its own commands', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const l1 = await p.device('smart-light', 'light-1')
  const l2 = await p.device('smart-light', 'light-2')
  const c5 = await connectDevice(p, l1, t)
  // MQTT.js rejects a SUBSCRIBE with any failed grant and carries the SUBACK.
  const granted = (e: unknown): number[] => ((e as { packet?: { granted?: number[] } }).packet?.granted ?? [])
  const g5 = await c5.subscribeAsync([own(l1, 'light') + '/cmd', 'building/#'], { qos: 1 }).then(() => [] as number[], granted)
  assert.deepEqual(g5, [1, 0x87])
  const c4 = await connectDevice(p, l2, t, { protocolVersion: 4 })
  const g4 = await c4.subscribeAsync('building/1/floor/1/light/+/cmd', { qos: 1 }).then(g => g.map(x => x.qos), granted)
  assert.deepEqual(g4, [0x80])
  const inbox = new Inbox(c5)
  await obs.client.publishAsync(own(l1, 'light') + '/cmd', 'on', { qos: 1 })
  await obs.client.publishAsync(own(l2, 'light') + '/cmd', 'on', { qos: 1 })
  assert.equal((await inbox.waitFor(own(l1, 'light') + '/cmd')).payload, 'on')
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(inbox.on(own(l2, 'light') + '/cmd'), [])
})

test('MQTT 3.1.1: an unauthorized publish closes the connection (AWS behaviour)', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const c = await connectDevice(p, s1, t, { protocolVersion: 4 })
  const gone = closed(c)
  c.publish('building/1/floor/1/temperature/temp-9', 'x', { qos: 1 })
  await gone
  assert.equal(p.gateway?.sessions.get('temp-1')?.connected ?? false, false)
})

test('revoking a connected device closes its session at once (v5 DISCONNECT 0x98) without publishing its Will; it cannot reconnect', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const { disconnect, gone } = await connectWithWill(p, s1, t)
  await p.iot().send(new (await import('@aws-sdk/client-iot')).UpdateCertificateCommand({ certificateId: s1.certificateId, newStatus: 'REVOKED' }))
  await gone
  assert.equal(await disconnect, 0x98)
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(obs.inbox.on(own(s1, 'temperature')), [], 'no Will after revocation')
  await assert.rejects(connectDevice(p, s1, t), /Not authorized/i)
  await p.gateway?.flushAudit()
  const refused = await p.app.audit.query({ action: 'mqtt.connect', outcome: 'denied' })
  assert.ok(refused.some(e => e.reason === 'certificate-revoked'))
})

test('a resumed TLS session after revocation is refused (revocation checked by certificate on every connection)', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const rawConnect = (session?: Buffer): Promise<{ socket: TLSSocket, connack: Packet, session: Promise<Buffer> }> => new Promise((resolve, reject) => {
    let sessionResolve: (b: Buffer) => void = () => {}
    const sessionP = new Promise<Buffer>(r => { sessionResolve = r })
    const socket = tlsConnect({ host: '127.0.0.1', port: p.mqttPort, key: s1.key, cert: s1.cert, ca: s1.ca, servername: 'localhost', session, maxVersion: 'TLSv1.3' }, () => {
      socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId: 'temp-1' }))
    })
    socket.on('session', (s: Buffer) => sessionResolve(s))
    const parser = createParser({ protocolVersion: 4 })
    parser.on('packet', (pk: Packet) => { if (pk.cmd === 'connack') resolve({ socket, connack: pk, session: sessionP }) })
    socket.on('data', (b: Buffer) => parser.parse(b))
    socket.on('error', reject)
  })
  const first = await rawConnect()
  assert.equal((first.connack as { returnCode?: number }).returnCode, 0)
  const ticket = await first.session
  first.socket.destroy()
  await p.app.certificates.updateStatus({ actor: 'test' }, s1.certificateId, 'REVOKED')
  const second = await rawConnect(ticket)
  assert.equal(second.socket.isSessionReused(), true, 'the TLS session was resumed')
  assert.equal((second.connack as { returnCode?: number }).returnCode, 5, 'CONNACK 5 Not authorized')
  second.socket.destroy()
})

test('inactive and expired certificates and a foreign CA are refused', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { gateway: true, clock })
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const s2 = await p.device('temperature-sensor', 'temp-2')
  await p.app.certificates.updateStatus({ actor: 'test' }, s1.certificateId, 'INACTIVE')
  await assert.rejects(connectDevice(p, s1, t), /Not authorized/i)
  clock.advance(400 * 24 * 3600_000)
  await assert.rejects(connectDevice(p, s2, t), /Not authorized/i)
  await p.gateway?.flushAudit()
  const reasons = (await p.app.audit.query({ action: 'mqtt.connect', outcome: 'denied' })).map(e => e.reason)
  assert.ok(reasons.includes('certificate-inactive'))
  assert.ok(reasons.includes('certificate-expired'))
  const dir = mkdtempSync(join(tmpdir(), 'tw-foreign-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '2', '-subj', '/CN=temp-3'], { cwd: dir })
  const { readFileSync } = await import('node:fs')
  await assert.rejects(connectDevice(p, { ...s1, thingName: 'temp-3', key: readFileSync(join(dir, 'k.pem'), 'utf8'), cert: readFileSync(join(dir, 'c.pem'), 'utf8') }, t))
  assert.equal(p.gateway?.sessions.size, 0)
})

test('a policy change narrows a live session: subscriptions no longer allowed are removed and stop receiving', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const l1 = await p.device('smart-light', 'light-1')
  const c = await connectDevice(p, l1, t)
  const inbox = new Inbox(c)
  const cmd = own(l1, 'light') + '/cmd'
  await c.subscribeAsync(cmd, { qos: 1 })
  await obs.client.publishAsync(cmd, 'on', { qos: 1 })
  await inbox.waitFor(cmd, 'on')
  // New default version: the light may still connect and publish status, but no longer take commands.
  const narrowed = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/\${iot:Connection.Thing.ThingName}` },
      { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/building/*/floor/*/light/\${iot:Connection.Thing.ThingName}/status` },
    ],
  })
  await p.app.policies.createPolicyVersion({ actor: 'test' }, 'role-smart-light', narrowed, true)
  // Re-authorization runs on the event; wait until the subscription is gone.
  for (let i = 0; i < 200 && (p.gateway?.sessions.get('light-1')?.subscriptionFilters.length ?? 0) > 0; i++) await new Promise(r => setTimeout(r, 5))
  assert.deepEqual(p.gateway?.sessions.get('light-1')?.subscriptionFilters, [])
  assert.equal(c.connected, true, 'still connected: Connect is still allowed')
  await obs.client.publishAsync(cmd, 'off', { qos: 1 })
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(inbox.on(cmd).map(m => m.payload), ['on'])
})

test('mosquitto_pub and mosquitto_sub with --cert/--key/--cafile from a provisioned bundle', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const dir = mkdtempSync(join(tmpdir(), 'tw-mosq-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'cert.pem'), s1.cert)
  writeFileSync(join(dir, 'key.pem'), s1.key, { mode: 0o600 })
  writeFileSync(join(dir, 'ca.pem'), s1.ca)
  const args = ['-h', '127.0.0.1', '-p', String(p.mqttPort), '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '-i', 'temp-1', '-q', '1']
  await run('mosquitto_pub', [...args, '-V', 'mqttv5', '-t', own(s1, 'temperature'), '-m', 'from-mosquitto'])
  assert.equal((await obs.inbox.waitFor(own(s1, 'temperature'), 'from-mosquitto')).payload, 'from-mosquitto')
  // A subscription the sensor's policy does not grant: mosquitto_sub reports the refusal and exits non-zero.
  await assert.rejects(run('mosquitto_sub', [...args, '-V', 'mqttv5', '-t', 'building/#', '-C', '1', '-W', '3']))
})

test('detaching the certificate from its thing closes the live session (Connect requires IsAttached), without its Will', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const { disconnect, gone } = await connectWithWill(p, s1, t)
  await p.app.policies.detachThingPrincipal({ actor: 'test' }, 'temp-1', s1.certificateArn)
  await gone
  assert.equal(await disconnect, 0x87)
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(obs.inbox.on(own(s1, 'temperature')), [])
})

test('moving a device into a thing group whose policy denies publishing narrows it at once', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const s1 = await p.device('temperature-sensor', 'temp-1')
  const c = await connectDevice(p, s1, t)
  await c.publishAsync(own(s1, 'temperature'), 'before', { qos: 1 })
  await obs.inbox.waitFor(own(s1, 'temperature'), 'before')
  const caller = { actor: 'test' }
  await p.app.things.createThingGroup(caller, { thingGroupName: 'quarantine' })
  await p.app.policies.createPolicy(caller, 'deny-all', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iot:Publish', Resource: '*' }] }))
  await p.app.policies.attachPolicy(caller, 'deny-all', `${ARN}:thinggroup/quarantine`)
  await p.app.things.addThingToThingGroup(caller, 'quarantine', 'temp-1')
  for (let i = 0; i < 200; i++) {
    const r = await c.publishAsync(own(s1, 'temperature'), `probe-${i}`, { qos: 1 }).then(() => 'ok', (e: { code?: number }) => e.code)
    if (r === 0x87) break
    await new Promise(res => setTimeout(res, 5))
  }
  await assert.rejects(c.publishAsync(own(s1, 'temperature'), 'after', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await barrier(obs.client, obs.inbox)
  assert.deepEqual(obs.inbox.on(own(s1, 'temperature')).filter(m => m.payload === 'after'), [])
})

test('a policy that reads the clock is evaluated on every message: a time-limited grant ends on time for topics already used', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { gateway: true, clock })
  const obs = await observer(p, t)
  const l1 = await p.device('smart-light', 'light-1')
  const caller = { actor: 'test' }
  // A maintenance window: 30 s from now the light may no longer publish its status nor receive commands. (Less
  // than the clients' keep-alive, so advancing the clock past it does not time the sessions out.)
  const end = new Date(clock.nowMs() + 30_000).toISOString()
  await p.app.policies.createPolicy(caller, 'window', JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Deny', Action: ['iot:Publish', 'iot:Receive'], Resource: '*', Condition: { DateGreaterThan: { 'aws:CurrentTime': end } } }],
  }))
  await p.app.policies.attachPolicy(caller, 'window', l1.certificateArn)
  const c = await connectDevice(p, l1, t)
  const inbox = new Inbox(c)
  const status = `${own(l1, 'light')}/status`
  const cmd = `${own(l1, 'light')}/cmd`
  await c.subscribeAsync(cmd, { qos: 1 })
  for (const n of [1, 2]) {
    await c.publishAsync(status, `on-${n}`, { qos: 1 })
    await obs.client.publishAsync(cmd, `dim-${n}`, { qos: 1 })
    await inbox.waitFor(cmd, `dim-${n}`)
  }
  await obs.inbox.waitFor(status, 'on-2')
  clock.advance(40_000)
  await assert.rejects(c.publishAsync(status, 'late', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await obs.client.publishAsync(cmd, 'late-cmd', { qos: 1 })
  await barrier(obs.client, obs.inbox)
  await p.gateway?.flushAudit()
  const receiveDenials = await p.app.audit.query({ action: 'mqtt.receive', outcome: 'denied' })
  assert.ok(receiveDenials.some(e => e.target === cmd), 'the late command was refused on delivery')
  assert.deepEqual(inbox.on(cmd).map(m => m.payload), ['dim-1', 'dim-2'])
  assert.deepEqual(obs.inbox.on(status).map(m => m.payload), ['on-1', 'on-2'])
})
