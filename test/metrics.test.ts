/**
 * /metrics, /healthz and /readyz: Prometheus scraped over HTTPS without credentials while the test drives real
 * traffic (MQTT 5 and 3.1.1 devices, a refused publish, shadow operations, a payload refused by a schema, a failed
 * TLS handshake, a revocation); the counters move accordingly.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:https'
import { connect as tlsConnect } from 'node:tls'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { closed } from './gateway-helpers.ts'
import { JsonInbox, connectDevice, provisionDevice, shadowRequest } from './shadow-helpers.ts'

function get (p: TestPlatform, path: string): Promise<{ status: number, type: string, body: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: p.port, path, method: 'GET', ca: p.caPem, servername: 'localhost' }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString() }))
    }).on('error', reject).end()
  })
}

/** The value of one sample (`name{a="b",…}`) in a Prometheus text exposition; 0 when absent. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4])
  }
  return 0
}

async function scrape (p: TestPlatform): Promise<string> {
  const r = await get(p, '/metrics')
  assert.equal(r.status, 200)
  assert.match(r.type, /^text\/plain/)
  return r.body
}

/** Scrapes until `pred` holds (server-side effects of a client-side failure land asynchronously). */
async function scrapeUntil (p: TestPlatform, pred: (text: string) => boolean): Promise<string> {
  const deadline = Date.now() + 5000
  for (;;) {
    const text = await scrape(p)
    if (pred(text)) return text
    if (Date.now() > deadline) throw new Error('metric condition not reached')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

test('/healthz and /readyz answer without credentials', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  assert.deepEqual(JSON.parse((await get(p, '/healthz')).body), { status: 'ok' })
  const ready = await get(p, '/readyz')
  assert.equal(ready.status, 200)
  assert.deepEqual(JSON.parse(ready.body), { status: 'ready', checks: { database: 'ok', audit: 'ok', gateway: 'running' } })
})

test('/metrics counters move as traffic flows: connections by protocol, messages, bytes, denials, shadows, schemas, TLS failures, revocations', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const before = await scrape(p)
  assert.equal(sample(before, 'thingward_mqtt_connections', { protocol: '5.0' }), 0)
  assert.ok(before.includes('thingward_audit_queue_depth'))
  assert.ok(before.includes('# TYPE thingward_revoke_to_disconnect_seconds histogram'))
  // No client id, thing name or topic in any label.
  assert.equal(/lamp-|telemetry\//.test(before), false)

  await p.app.payloadSchemas.put({ actor: 'test' }, 'telemetry', { topicFilter: 'telemetry/+', schema: { type: 'object', required: ['t'] } })
  const d5 = await provisionDevice(p, 'lamp-5')
  const d4 = await provisionDevice(p, 'lamp-4')
  const c5 = await connectDevice(p, d5, t)
  const c4 = await connectDevice(p, d4, t, { protocolVersion: 4 })
  const inbox = new JsonInbox(c5)
  await c5.subscribeAsync(['telemetry/lamp-5', '$aws/things/lamp-5/shadow/update/+'], { qos: 1 })
  await c5.publishAsync('telemetry/lamp-5', '{"t":1}', { qos: 1 })
  await inbox.next('telemetry/lamp-5')
  await assert.rejects(c5.publishAsync('telemetry/lamp-4', '{"t":1}', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await assert.rejects(c5.publishAsync('telemetry/lamp-5', '{"x":1}', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x99)
  assert.equal((await shadowRequest(c5, inbox, '$aws/things/lamp-5/shadow', 'update', { state: { reported: { on: true } } })).outcome, 'accepted')
  assert.equal((await shadowRequest(c5, inbox, '$aws/things/lamp-5/shadow', 'update', { state: { reported: { on: false } }, version: 9 })).outcome, 'rejected')

  // A TLS client without a certificate fails the handshake.
  await new Promise<void>((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port: p.mqttPort, ca: p.caPem, servername: 'localhost' })
    s.on('error', () => resolve())
    s.on('close', () => resolve())
    s.on('secureConnect', () => { s.write(Buffer.from([0x10, 0x00])) })
  })

  // Revocation closes the v3.1.1 device's session and observes the latency.
  const gone = closed(c4)
  await p.app.certificates.updateStatus({ actor: 'test' }, d4.certificateId, 'REVOKED')
  await gone

  const final = await scrapeUntil(p, text => sample(text, 'thingward_tls_handshake_failures_total', { cause: 'no-client-certificate' }) >= 1)
  assert.equal(sample(final, 'thingward_mqtt_connections', { protocol: '5.0' }), 1)
  assert.equal(sample(final, 'thingward_mqtt_connections', { protocol: '3.1.1' }), 0, 'the revoked device is gone')
  assert.ok(sample(final, 'thingward_mqtt_connections_accepted_total') >= 2)
  assert.ok(sample(final, 'thingward_mqtt_messages_in_total') >= 5)
  assert.ok(sample(final, 'thingward_mqtt_messages_out_total') >= 3)
  assert.ok(sample(final, 'thingward_mqtt_bytes_in_total') > sample(before, 'thingward_mqtt_bytes_in_total'))
  assert.ok(sample(final, 'thingward_mqtt_bytes_out_total') > sample(before, 'thingward_mqtt_bytes_out_total'))
  assert.equal(sample(final, 'thingward_mqtt_denials_total', { action: 'publish', reason: 'no-matching-statement' }), 1)
  assert.equal(sample(final, 'thingward_mqtt_denials_total', { action: 'publish', reason: 'payload-schema-mismatch' }), 1)
  assert.equal(sample(final, 'thingward_shadow_operations_total', { operation: 'update', outcome: 'accepted' }), 1)
  assert.equal(sample(final, 'thingward_shadow_operations_total', { operation: 'update', outcome: '409' }), 1)
  assert.equal(sample(final, 'thingward_payload_validations_total', { result: 'accepted' }), 1)
  assert.equal(sample(final, 'thingward_payload_validations_total', { result: 'refused' }), 1)
  assert.ok(sample(final, 'thingward_payload_validation_seconds_total') > 0)
  assert.equal(sample(final, 'thingward_payload_schemas'), 1)
  assert.equal(sample(final, 'thingward_revoke_to_disconnect_seconds_count'), 1)
  assert.ok(sample(final, 'thingward_revoke_to_disconnect_seconds_bucket', { le: '+Inf' }) === 1)
})
