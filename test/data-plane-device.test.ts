/**
 * Devices publishing over HTTPS with their client certificate (AWS: the data endpoint on 8443), on the dedicated
 * mutual-TLS listener: authorized per request with the same compiled per-device policy as the MQTT gateway,
 * refusals audited and delivered to nobody, revocation effective at once.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { createDeviceHttpServer } from '../src/app.ts'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { JsonInbox, connectDevice, provisionDevice } from './shadow-helpers.ts'
import type { Device } from './shadow-helpers.ts'

interface Reply { readonly status: number, readonly type: string | undefined, readonly body: string }

function devicePost (port: number, p: TestPlatform, d: Device | undefined, path: string, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, method: 'POST', ca: p.caPem, servername: 'localhost',
      ...(d === undefined ? {} : { cert: d.cert, key: d.key }), headers: { 'content-type': 'application/octet-stream' },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, type: res.headers['x-amzn-errortype'] as string | undefined, body: Buffer.concat(chunks).toString() }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function deviceEndpoint (p: TestPlatform, t: { after: (fn: () => unknown) => void }): Promise<number> {
  const server = await createDeviceHttpServer(p.app)
  await server.listen({ host: '127.0.0.1', port: 0 })
  t.after(() => server.close())
  const a = server.server.address()
  return typeof a === 'object' && a !== null ? a.port : 0
}

test('a device publishes over HTTPS with its certificate; its policy decides; a refusal reaches nobody and is audited', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const port = await deviceEndpoint(p, t)
  const d1 = await provisionDevice(p, 'lamp-1')
  const d2 = await provisionDevice(p, 'lamp-2')
  const c1 = await connectDevice(p, d1, t)
  const c2 = await connectDevice(p, d2, t)
  const in1 = new JsonInbox(c1)
  const in2 = new JsonInbox(c2)
  await c1.subscribeAsync('telemetry/lamp-1', { qos: 1 })
  await c2.subscribeAsync('telemetry/lamp-2', { qos: 1 })

  const ok = await devicePost(port, p, d1, '/topics/telemetry%2Flamp-1?qos=1', '{"t":21}')
  assert.equal(ok.status, 200)
  assert.deepEqual((await in1.next('telemetry/lamp-1')), { t: 21 })

  const denied = await devicePost(port, p, d1, '/topics/telemetry%2Flamp-2?qos=1', '{"t":"spoof"}')
  assert.deepEqual([denied.status, denied.type], [403, 'ForbiddenException'])
  assert.equal(JSON.parse(denied.body).message, 'not authorized')
  // Retaining needs iot:RetainPublish, which the policy does not grant.
  const retained = await devicePost(port, p, d1, '/topics/telemetry%2Flamp-1?retain=true', '{"t":1}')
  assert.equal(retained.status, 403)
  // Barrier: lamp-2's own publish arrives after anything the refused one could have caused.
  assert.equal((await devicePost(port, p, d2, '/topics/telemetry%2Flamp-2', '{"t":"own"}')).status, 200)
  await in2.next('telemetry/lamp-2', j => j.t === 'own')
  assert.deepEqual(in2.messages.map(m => m.json), [{ t: 'own' }])
  assert.deepEqual(p.gateway?.retainedMessages().filter(m => !m.topic.startsWith('$thingward/')), [], 'nothing retained beyond the system keys message')

  const audit = await p.app.audit.query({ action: 'iot.Publish', outcome: 'denied' })
  const refusal = audit.find(e => e.target === 'arn:aws:iot:local-1:000000000000:topic/telemetry/lamp-2')
  assert.equal(refusal?.actor, `arn:aws:iot:local-1:000000000000:cert/${d1.certificateId}`)
  assert.equal(refusal?.reason, 'no-matching-statement')
})

test('the device endpoint requires a client certificate, and a revoked certificate is refused on the next request', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const port = await deviceEndpoint(p, t)
  const d1 = await provisionDevice(p, 'lamp-1')
  await assert.rejects(devicePost(port, p, undefined, '/topics/telemetry%2Flamp-1', 'x'))
  assert.equal((await devicePost(port, p, d1, '/topics/telemetry%2Flamp-1', 'x')).status, 200)
  await p.app.certificates.updateStatus({ actor: 'test' }, d1.certificateId, 'REVOKED')
  const after = await devicePost(port, p, d1, '/topics/telemetry%2Flamp-1', 'x')
  assert.deepEqual([after.status, after.type], [403, 'ForbiddenException'])
  const audit = await p.app.audit.query({ action: 'iot.Publish', outcome: 'denied' })
  assert.ok(audit.some(e => e.reason === 'certificate-revoked'))
})

function deviceCall (port: number, p: TestPlatform, d: { cert: string, key: string }, method: string, path: string, body = ''): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, ca: p.caPem, servername: 'localhost', cert: d.cert, key: d.key }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, type: res.headers['x-amzn-errortype'] as string | undefined, body: Buffer.concat(chunks).toString() }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

test('a device reads and updates its own shadow over HTTPS as its role policy allows (iot:GetThingShadow / UpdateThingShadow); nothing else', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const port = await deviceEndpoint(p, t)
  const l1 = await p.device('smart-light', 'light-1')
  const l2 = await p.device('smart-light', 'light-2')
  assert.equal((await deviceCall(port, p, l1, 'GET', '/things/light-1/shadow')).status, 404)
  const up = await deviceCall(port, p, l1, 'POST', '/things/light-1/shadow', JSON.stringify({ state: { reported: { on: true } } }))
  assert.equal(up.status, 200)
  assert.equal(JSON.parse(up.body).version, 1)
  const got = JSON.parse((await deviceCall(port, p, l1, 'GET', '/things/light-1/shadow')).body) as { state: unknown }
  assert.deepEqual(got.state, { reported: { on: true } })
  // Not in the role policy: deleting, another light's shadow, a named shadow.
  assert.deepEqual((await deviceCall(port, p, l1, 'DELETE', '/things/light-1/shadow')).status, 403)
  assert.deepEqual((await deviceCall(port, p, l1, 'GET', '/things/light-2/shadow')).status, 403)
  const spoof = await deviceCall(port, p, l1, 'POST', '/things/light-2/shadow', JSON.stringify({ state: { desired: { on: false } } }))
  assert.deepEqual([spoof.status, spoof.type], [403, 'ForbiddenException'])
  assert.equal((await deviceCall(port, p, l1, 'POST', '/things/light-1/shadow?name=cfg', JSON.stringify({ state: { reported: { a: 1 } } }))).status, 403)
  // Nothing changed for light-2 (it has no shadow at all), and light-1's shadow still exists at version 1.
  assert.equal((await deviceCall(port, p, l2, 'GET', '/things/light-2/shadow')).status, 404)
  assert.equal((await p.app.shadows.get({ thingName: 'light-1' })).version, 1)
  const denied = await p.app.audit.query({ action: 'iot.UpdateThingShadow', outcome: 'denied' })
  assert.ok(denied.some(e => e.target === 'arn:aws:iot:local-1:000000000000:thing/light-2' && e.actor === l1.certificateArn))
})
