/**
 * Payload schemas end to end: attached through the API and the CLI, checked on every PUBLISH over MQTT (v5:
 * PUBACK 0x99 with a reason string; v3.1.1: connection closed) and HTTPS (400), refused payloads delivered to
 * nobody and audited with the schema path that failed; conforming payloads pass; schemas survive a restart.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { PublishCommand } from '@aws-sdk/client-iot-data-plane'
import { ApiClient, ApiError } from '../src/cli/client.ts'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { closed } from './gateway-helpers.ts'
import { JsonInbox, connectDevice, dataClient, provisionDevice } from './shadow-helpers.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')

const TELEMETRY_SCHEMA = {
  type: 'object',
  properties: { t: { type: 'number', minimum: -50, maximum: 100 }, unit: { enum: ['C', 'F'] } },
  required: ['t'],
  additionalProperties: false,
}

const api = (p: TestPlatform): ApiClient => new ApiClient({ endpoint: p.endpoint, region: 'local-1', accessKeyId: p.creds.accessKeyId, secretAccessKey: p.creds.secretAccessKey, ca: p.caPem })

test('MQTT: a non-conforming payload is refused (v5 PUBACK 0x99 + reason string, v3.1.1 close), delivered to nobody, audited with the schema path', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const created = await api(p).call('PUT', '/thingward/payload-schemas/telemetry', { body: { topicFilter: 'telemetry/+', schema: TELEMETRY_SCHEMA, description: 'lamp telemetry' } })
  assert.deepEqual([created.schemaName, created.topicFilter, created.version], ['telemetry', 'telemetry/+', 1])
  const d = await provisionDevice(p, 'lamp-1')
  const c = await connectDevice(p, d, t)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync('telemetry/lamp-1', { qos: 1 })

  await c.publishAsync('telemetry/lamp-1', '{"t":21.5,"unit":"C"}', { qos: 1 })
  assert.deepEqual(await inbox.next('telemetry/lamp-1'), { t: 21.5, unit: 'C' })

  const pubacks: Array<{ reasonCode?: number, properties?: { reasonString?: string } }> = []
  c.on('packetreceive', (pk) => { if (pk.cmd === 'puback') pubacks.push(pk as never) })
  const refused = await c.publishAsync('telemetry/lamp-1', '{"t":"hot"}', { qos: 1 }).then(() => undefined, (e: Error & { code?: number }) => e)
  assert.equal(refused?.code, 0x99)
  assert.deepEqual([pubacks.at(-1)?.reasonCode, pubacks.at(-1)?.properties], [0x99, { reasonString: 'Payload does not match the topic schema' }])
  await assert.rejects(c.publishAsync('telemetry/lamp-1', 'not json', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x99)
  await assert.rejects(c.publishAsync('telemetry/lamp-1', '{"t":20,"extra":1}', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x99)
  // Barrier: a conforming message published after them arrives, and it is the only other one.
  await c.publishAsync('telemetry/lamp-1', '{"t":22}', { qos: 1 })
  await inbox.next('telemetry/lamp-1', j => j.t === 22)
  assert.deepEqual(inbox.on('telemetry/lamp-1').map(m => m.raw.toString()), ['{"t":21.5,"unit":"C"}', '{"t":22}'])

  // MQTT 3.1.1 has no negative PUBACK: the connection is closed, as for any refused publish.
  const c4 = await connectDevice(p, await provisionDevice(p, 'lamp-4'), t, { protocolVersion: 4 })
  const gone = closed(c4)
  c4.publish('telemetry/lamp-4', '{"t":1000}', { qos: 1 })
  await gone

  await p.gateway?.flushAudit()
  const denied = (await p.app.audit.query({ action: 'mqtt.publish', outcome: 'denied' })).filter(e => e.reason === 'payload-schema-mismatch')
  assert.ok(denied.some(e => e.target === 'telemetry/lamp-1' && String(e.statement).includes('schema telemetry #/properties/t/type at /t')))
  assert.ok(denied.some(e => String(e.statement).includes('#/additionalProperties')))
  const closedV4 = (await p.app.audit.query({ action: 'mqtt.publish' })).find(e => e.target === 'telemetry/lamp-4')
  assert.ok(String(closedV4?.statement).includes('#/properties/t/maximum'))
  assert.ok((p.gateway?.metrics.denials['publish:payload-schema-mismatch'] ?? 0) >= 4)
  assert.ok(p.app.payloadSchemas.registry.stats.validations >= 6)
})

test('HTTPS Publish: a non-conforming payload is a 400 and reaches nobody; a conforming one passes; other topics are not checked', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  await api(p).call('PUT', '/thingward/payload-schemas/telemetry', { body: { topicFilter: 'telemetry/#', schema: TELEMETRY_SCHEMA } })
  const c = await connectDevice(p, await provisionDevice(p, 'lamp-1'), t)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync('telemetry/lamp-1', { qos: 1 })
  const iot = dataClient(p, t)
  const bad = await iot.send(new PublishCommand({ topic: 'telemetry/lamp-1', qos: 1, payload: Buffer.from('{"unit":"K"}') })).then(() => undefined, (e: Error & { $metadata?: { httpStatusCode?: number } }) => e)
  assert.equal(bad?.name, 'InvalidRequestException')
  assert.equal(bad?.$metadata?.httpStatusCode, 400)
  await iot.send(new PublishCommand({ topic: 'telemetry/lamp-1', qos: 1, payload: Buffer.from('{"t":3}') }))
  await inbox.next('telemetry/lamp-1')
  assert.deepEqual(inbox.messages.map(m => m.json), [{ t: 3 }])
  const audited = await p.app.audit.query({ action: 'iot.Publish', outcome: 'denied' })
  assert.equal(audited[0]?.details?.schemaPath, '#/required')
  assert.equal(audited[0]?.target, 'telemetry/lamp-1')
})

test('the API refuses invalid schemas and filters; schemas are listed, tested, deleted and survive a restart', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-schemas-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const masterKey = randomBytes(32).toString('base64')
  await t.test('first run', async (t1) => {
    const p = await startPlatform(t1, { dataDir, masterKey })
    const a = api(p)
    const refuse = async (body: unknown, field: string): Promise<void> => {
      await assert.rejects(a.call('PUT', '/thingward/payload-schemas/bad', { body }), (e: unknown) => e instanceof ApiError && e.status === 400 && e.type === 'InvalidRequestException' && e.body.code === 'ERR_SCHEMA_INVALID' && JSON.stringify(e.body).length > 0 && field.length > 0)
    }
    await refuse({ topicFilter: 'a/#/b', schema: { type: 'object' } }, 'topicFilter')
    await refuse({ topicFilter: 'a/+', schema: { type: 'nope' } }, 'schema')
    await refuse({ topicFilter: 'a/+', schema: { typo_keyword: 1 } }, 'schema')
    await refuse({ topicFilter: 'a/+', schema: 'string' }, 'schema')
    assert.deepEqual(await a.call('GET', '/thingward/payload-schemas'), { payloadSchemas: [] })
    await a.call('PUT', '/thingward/payload-schemas/telemetry', { body: { topicFilter: 'telemetry/+', schema: TELEMETRY_SCHEMA } })
    await a.call('PUT', '/thingward/payload-schemas/status', { body: { topicFilter: 'status/#', schema: { type: 'object' } } })
    const replaced = await a.call('PUT', '/thingward/payload-schemas/status', { body: { topicFilter: 'status/+', schema: { type: 'object', required: ['on'] } } })
    assert.equal(replaced.version, 2)
    assert.deepEqual((await a.call<{ payloadSchemas: Array<{ schemaName: string }> }>('GET', '/thingward/payload-schemas')).payloadSchemas.map(s => s.schemaName), ['status', 'telemetry'])
    assert.deepEqual(await a.call('POST', '/thingward/payload-schemas/telemetry/test', { body: { t: 'x' } }), { valid: false, schemaPath: '#/properties/t/type', instancePath: '/t', message: 'must be number' })
    assert.deepEqual(await a.call('POST', '/thingward/payload-schemas/telemetry/test', { body: { t: 1 } }), { valid: true })
    await a.call('DELETE', '/thingward/payload-schemas/status')
    await assert.rejects(a.call('GET', '/thingward/payload-schemas/status'), (e: unknown) => e instanceof ApiError && e.status === 404)
    assert.equal(p.app.payloadSchemas.validate('status/1', Buffer.from('{}')).allowed, true)
    assert.equal((await p.app.audit.query({ action: 'thingward.PutPayloadSchema' })).filter(e => e.kind === undefined).length, 3, 'three change events (refused requests are request events)')
  })
  await t.test('second run: the stored schema is compiled again at start', async (t2) => {
    const p = await startPlatform(t2, { dataDir, masterKey })
    assert.equal(p.app.payloadSchemas.validate('telemetry/x', Buffer.from('{"t":"x"}')).allowed, false)
    assert.equal(p.app.payloadSchemas.validate('telemetry/x', Buffer.from('{"t":1}')).allowed, true)
    assert.equal(p.app.payloadSchemas.registry.size, 1)
  })
})

test('CLI: thingward schemas put / list / test / delete', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-cli-schemas-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  writeFileSync(join(dir, 'schema.json'), JSON.stringify(TELEMETRY_SCHEMA))
  const env = { PATH: process.env.PATH ?? '', THINGWARD_ACCESS_KEY_ID: p.creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: p.creds.secretAccessKey, THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  const cli = async (...args: string[]): Promise<string> => (await run(process.execPath, [MAIN, ...args], { env })).stdout
  const put = JSON.parse(await cli('schemas', 'put', 'telemetry', '--topic-filter', 'telemetry/+', '--schema-file', join(dir, 'schema.json'), '--description', 'lamps')) as { version: number, description: string }
  assert.deepEqual([put.version, put.description], [1, 'lamps'])
  assert.deepEqual((JSON.parse(await cli('schemas', 'list')) as { payloadSchemas: Array<{ topicFilter: string }> }).payloadSchemas.map(s => s.topicFilter), ['telemetry/+'])
  assert.deepEqual(JSON.parse(await cli('schemas', 'test', 'telemetry', '--payload', '{"t":5}')), { valid: true })
  await assert.rejects(run(process.execPath, [MAIN, 'schemas', 'test', 'telemetry', '--payload', '{"t":500}'], { env }), (e: Error & { stdout?: string, code?: number }) => {
    assert.equal(e.code, 2)
    assert.equal((JSON.parse(e.stdout ?? '{}') as { schemaPath?: string }).schemaPath, '#/properties/t/maximum')
    return true
  })
  await cli('schemas', 'delete', 'telemetry')
  assert.deepEqual(JSON.parse(await cli('schemas', 'list')), { payloadSchemas: [] })
})
