/**
 * OCSF export: every record of a real log (registry changes, control-plane requests, a refused signature, key
 * uses, gateway connection events and decisions, a mitigation, a key rotation), exported through the API, validates
 * against the OCSF 1.3.0 schema excerpt of its class (test/data/ocsf, checked with Ajv).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import AjvModule from 'ajv'
import {
  AttachPolicyCommand, CreateKeysAndCertificateCommand, CreatePolicyCommand, CreateThingCommand, DeleteThingCommand, DescribeThingCommand,
  ListThingsCommand, UpdateCertificateCommand,
} from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'
import { ApiClient } from '../src/cli/client.ts'
import { GatewayAuditAdapter, mitigationEvent, OCSF_VERSION, toOcsf } from '../src/audit/index.ts'
import type { AuditRecord, OcsfEvent } from '../src/audit/index.ts'

const SCHEMAS = resolve(import.meta.dirname, 'data', 'ocsf')
const Ajv = AjvModule.default

function validators (): Map<number, (e: unknown) => string | undefined> {
  // strictRequired is off: the at_least_one constraints name in anyOf branches attributes declared beside them.
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false })
  for (const f of readdirSync(SCHEMAS).filter(n => n.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(join(SCHEMAS, f), 'utf8')) as object)
  const byClass = new Map<number, (e: unknown) => string | undefined>()
  for (const [uid, name] of [[3002, 'authentication'], [3004, 'entity_management'], [6003, 'api_activity']] as const) {
    const v = ajv.getSchema(`https://thingward.test/ocsf/1.3.0/${name}.json`)
    assert.ok(v !== undefined)
    byClass.set(uid, (e) => v(e) ? undefined : ajv.errorsText(v.errors))
  }
  return byClass
}

test('the OCSF validator has teeth: missing required attributes, a wrong type_uid or an unknown attribute fail', () => {
  const v = validators()
  const record: AuditRecord = { seq: 3, prevHash: '0'.repeat(64), timeMs: 1_700_000_000_000, action: 'mqtt.connect', actor: 'cert/abc', outcome: 'success', thing: 'lamp-1', sourceIp: '10.0.0.7' }
  const good = toOcsf(record)
  assert.equal(v.get(3002)?.(good), undefined)
  const broken: Array<[string, (e: OcsfEvent) => OcsfEvent]> = [
    ['no user', ({ user: _u, ...e }) => e],
    ['no metadata.product', e => ({ ...e, metadata: { version: OCSF_VERSION } })],
    ['wrong type_uid', e => ({ ...e, type_uid: 300202 })],
    ['unknown attribute', e => ({ ...e, colour: 'blue' })],
    ['activity not in the class', e => ({ ...e, activity_id: 42, type_uid: 300242 })],
    ['a user with neither name nor uid', e => ({ ...e, user: { type_id: 1 } })],
    ['time as a string', e => ({ ...e, time: '2026-01-01T00:00:00Z' })],
    ['neither service nor dst_endpoint', ({ service: _s, ...e }) => e],
  ]
  for (const [what, mutate] of broken) assert.notEqual(v.get(3002)?.(mutate(good)), undefined, what)
  assert.notEqual(v.get(3004)?.(good), undefined, 'an authentication event is not an entity management event')
})

test('every record of a real log exports as a valid OCSF event of its class', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  await iot.send(new CreateThingCommand({ thingName: 'lamp-1' }))
  await iot.send(new DescribeThingCommand({ thingName: 'lamp-1' }))
  await iot.send(new ListThingsCommand({}))
  await assert.rejects(iot.send(new DescribeThingCommand({ thingName: 'nope' })))
  await assert.rejects(p.iot({ accessKeyId: p.creds.accessKeyId, secretAccessKey: 'x'.repeat(40) }).send(new ListThingsCommand({})))
  const cert = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  await iot.send(new CreatePolicyCommand({ policyName: 'p', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }))
  await iot.send(new AttachPolicyCommand({ policyName: 'p', target: cert.certificateArn }))
  await iot.send(new UpdateCertificateCommand({ certificateId: cert.certificateId, newStatus: 'REVOKED' }))
  await iot.send(new DeleteThingCommand({ thingName: 'lamp-1' }))
  // Gateway events in the gateway's own shape (src/gateway/ports.ts GatewayAuditEvent), every message-level one kept.
  const gw = new GatewayAuditAdapter(p.app.auditLog.recorder, { messageSampleRate: 1 })
  const now = Date.now()
  const fp = 'AB:CD:EF'
  gw.record({ action: 'mqtt.connect', outcome: 'allowed', timeMs: now, clientId: 'lamp-1', principalId: 'cert/1', certificateFingerprint256: fp, sourceAddress: '10.0.0.7', reason: 'connected', resource: 'lamp-1', reasonCode: 0, statement: 'p:1:0' })
  gw.record({ action: 'mqtt.connect', outcome: 'denied', timeMs: now, clientId: 'lamp-2', certificateFingerprint256: fp, sourceAddress: '10.0.0.8', reason: 'certificate-revoked', reasonCode: 135 })
  gw.record({ action: 'mqtt.connect', outcome: 'denied', timeMs: now, sourceAddress: '10.0.0.9', reason: 'tls-handshake-failed' })
  gw.record({ action: 'mqtt.publish', outcome: 'denied', timeMs: now, clientId: 'lamp-1', principalId: 'cert/1', reason: 'no-matching-statement', resource: 'building/1/x', reasonCode: 135 })
  gw.record({ action: 'mqtt.receive', outcome: 'allowed', timeMs: now, clientId: 'lamp-1', principalId: 'cert/1', reason: 'delivered', resource: 'building/1/cmd' })
  gw.record({ action: 'mqtt.limit', outcome: 'limited', timeMs: now, clientId: 'lamp-1', principalId: 'cert/1', reason: 'publish-rate-exceeded', resource: 'building/1/x' })
  gw.record({ action: 'mqtt.session', outcome: 'closed', timeMs: now, clientId: 'lamp-1', principalId: 'cert/1', reason: 'closed-by-server', reasonCode: 152 })
  gw.record({ action: 'mqtt.disconnect', outcome: 'closed', timeMs: now, clientId: 'lamp-3', principalId: 'cert/3', reason: 'keep-alive-timeout', reasonCode: 141 })
  await p.app.db.transaction(() => p.app.audit.append(mitigationEvent({ mitigation: 'quarantine', thing: 'lamp-3', target: 'arn:aws:iot:local-1:000000000000:thing/lamp-3', alarm: 'msg-rate' })))
  await p.app.auditLog.rotateSigningKey({ actor: 'user/admin' })
  await p.app.auditLog.recorder.flush()

  const api = new ApiClient({ endpoint: p.endpoint, region: 'local-1', accessKeyId: p.creds.accessKeyId, secretAccessKey: p.creds.secretAccessKey, ca: p.caPem })
  const { lines } = await api.call<{ lines: string[] }>('GET', '/thingward/audit/export', { query: { format: 'ocsf', envelope: 'json' } })
  const stored = await p.app.audit.rows()
  assert.ok(lines.length >= stored.length - 1, 'every record is exported')
  const v = validators()
  const events = lines.map(l => JSON.parse(l) as OcsfEvent & { class_uid: number, activity_id: number, status_id: number, metadata: { sequence: number }, unmapped: { thingward: { action: string, hash: string } } })
  const seen = new Set<number>()
  for (const e of events) {
    const check = v.get(e.class_uid)
    assert.ok(check !== undefined, `class ${e.class_uid} is one of the three`)
    assert.equal(check(e), undefined, `${e.unmapped.thingward.action}: ${check(e) ?? ''}`)
    seen.add(e.class_uid)
    const s = stored.find(r => r.seq === e.metadata.sequence)
    assert.equal(e.unmapped.thingward.hash, s?.hash, 'the record hash travels with the event')
  }
  assert.deepEqual([...seen].sort(), [3002, 3004, 6003])

  const of = (action: string, pred: (e: (typeof events)[number]) => boolean = () => true): Array<[number, number, number]> =>
    events.filter(e => e.unmapped.thingward.action === action && pred(e)).map(e => [e.class_uid, e.activity_id, e.status_id])
  assert.deepEqual(of('mqtt.connect'), [[3002, 1, 1], [3002, 1, 2], [3002, 1, 2]])
  assert.deepEqual(of('mqtt.session'), [[3002, 2, 1]])
  assert.deepEqual(of('http.authenticate'), [[3002, 1, 2]])
  assert.deepEqual(of('iot.CreateThing'), [[3004, 1, 1]])
  assert.deepEqual(of('iot.DeleteThing'), [[3004, 4, 1]])
  assert.deepEqual(of('iot.AttachPolicy'), [[3004, 3, 1]])
  assert.deepEqual(of('iot.UpdateCertificate'), [[3004, 9, 1]], 'revocation disables the certificate entity')
  assert.deepEqual(of('detect.Mitigate'), [[3004, 12, 1]], 'quarantine suspends the device')
  assert.deepEqual(of('iot.DescribeThing'), [[6003, 2, 1], [6003, 2, 2]])
  assert.deepEqual(of('mqtt.publish'), [[6003, 1, 2]])
  assert.deepEqual(of('mqtt.receive'), [[6003, 2, 1]])
  assert.ok(of('kms.decrypt').every(([c, a, s]) => c === 6003 && a === 2 && s === 1) && of('kms.decrypt').length > 0)
  assert.deepEqual(of('audit.RotateSigningKey'), [[6003, 3, 1]])
})
