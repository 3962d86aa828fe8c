/**
 * Backend side of the data plane with the real @aws-sdk/client-iot-data-plane (and boto3 iot-data) against the
 * HTTPS server, SigV4-signed with an operator key: shadows, ListNamedShadowsForThing, Publish (percent-encoded
 * topics, MQTT 5 properties, retain), retained-message reads, our maxAgeSeconds extension, and denied calls that
 * change nothing. Devices are real MQTT.js clients on the gateway.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DeleteThingShadowCommand, GetRetainedMessageCommand, GetThingShadowCommand, ListNamedShadowsForThingCommand,
  ListRetainedMessagesCommand, PublishCommand, UpdateThingShadowCommand,
} from '@aws-sdk/client-iot-data-plane'
import { ManualClock } from '../src/core/index.ts'
import { startPlatform } from './helpers/platform.ts'
import { JsonInbox, connectDevice, dataClient, json, provisionDevice, shadowRequest } from './shadow-helpers.ts'

const run = promisify(execFile)
const doc = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v))
const errName = (name: string, status: number) => (e: Error & { $metadata?: { httpStatusCode?: number } }): boolean =>
  e.name === name && e.$metadata?.httpStatusCode === status

test('UpdateThingShadow / GetThingShadow / DeleteThingShadow / ListNamedShadowsForThing with the AWS SDK; the device gets the delta', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const d = await provisionDevice(p, 'lamp-1')
  const c = await connectDevice(p, d, t)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync('$aws/things/lamp-1/shadow/#', { qos: 1 })
  const iot = dataClient(p, t)

  const up = json((await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { desired: { power: 'on' } }, clientToken: 'ops' }) }))).payload)
  assert.equal(up.version, 1)
  assert.deepEqual(up.state, { desired: { power: 'on' } })
  const delta = await inbox.next('$aws/things/lamp-1/shadow/update/delta')
  assert.deepEqual([delta.state, delta.version, delta.clientToken], [{ power: 'on' }, 1, 'ops'])
  await inbox.next('$aws/things/lamp-1/shadow/update/accepted', j => j.clientToken === 'ops')

  await shadowRequest(c, inbox, '$aws/things/lamp-1/shadow', 'update', { state: { reported: { power: 'on' } } })
  const got = await iot.send(new GetThingShadowCommand({ thingName: 'lamp-1' }))
  const g = json(got.payload)
  assert.deepEqual(g.state, { desired: { power: 'on' }, reported: { power: 'on' } })
  assert.equal(g.version, 2)

  await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', shadowName: 'config', payload: doc({ state: { desired: { interval: 10 } } }) }))
  await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', shadowName: 'alarms', payload: doc({ state: { reported: { active: [] } } }) }))
  const list = await iot.send(new ListNamedShadowsForThingCommand({ thingName: 'lamp-1' }))
  assert.deepEqual(list.results, ['alarms', 'config'])
  assert.equal(typeof list.timestamp, 'number')
  const page1 = await iot.send(new ListNamedShadowsForThingCommand({ thingName: 'lamp-1', pageSize: 1 }))
  assert.deepEqual(page1.results, ['alarms'])
  const page2 = await iot.send(new ListNamedShadowsForThingCommand({ thingName: 'lamp-1', pageSize: 1, nextToken: page1.nextToken }))
  assert.deepEqual([page2.results, page2.nextToken], [['config'], undefined])

  const del = json((await iot.send(new DeleteThingShadowCommand({ thingName: 'lamp-1', shadowName: 'config' }))).payload)
  assert.equal(del.version, 1)
  assert.deepEqual((await iot.send(new ListNamedShadowsForThingCommand({ thingName: 'lamp-1' }))).results, ['alarms'])
  await assert.rejects(iot.send(new GetThingShadowCommand({ thingName: 'lamp-1', shadowName: 'config' })), errName('ResourceNotFoundException', 404))
  await assert.rejects(iot.send(new GetThingShadowCommand({ thingName: 'no-such-thing' })), errName('ResourceNotFoundException', 404))

  // AWS's errors, by exception name and status.
  await assert.rejects(iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { reported: { x: 1 } }, version: 99 }) })), errName('ConflictException', 409))
  await assert.rejects(iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: Buffer.from('{"state":') })), errName('InvalidRequestException', 400))
  await assert.rejects(iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { reported: { x: 'y'.repeat(9000) } } }) })), errName('RequestEntityTooLargeException', 413))
  assert.equal(json((await iot.send(new GetThingShadowCommand({ thingName: 'lamp-1' }))).payload).version, 2, 'refused updates changed nothing')
})

test('GET ?maxAgeSeconds=N (our extension) refuses stale reported state with a clear error', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { gateway: true, clock })
  const d = await provisionDevice(p, 'lamp-1')
  const c = await connectDevice(p, d, t)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync('$aws/things/lamp-1/shadow/update/+', { qos: 1 })
  await shadowRequest(c, inbox, '$aws/things/lamp-1/shadow', 'update', { state: { reported: { temp: 21 } } })
  // Two minutes pass (within SigV4's 5-minute skew; the SDK's clock follows the server's).
  clock.advance(120_000)
  const iot = dataClient(p, t)
  iot.config.systemClockOffset = clock.nowMs() - Date.now()
  const getWithMaxAge = (maxAge: number): GetThingShadowCommand => {
    const cmd = new GetThingShadowCommand({ thingName: 'lamp-1' })
    cmd.middlewareStack.add((next) => async (args) => {
      (args.request as { query: Record<string, string> }).query.maxAgeSeconds = String(maxAge)
      return next(args)
    }, { step: 'build', name: 'maxAgeSeconds' })
    return cmd
  }
  const stale = await iot.send(getWithMaxAge(60)).then(() => undefined, (e: Error & { $metadata?: { httpStatusCode?: number } }) => e)
  assert.ok(stale !== undefined, 'a stale shadow is refused')
  assert.equal(stale.$metadata?.httpStatusCode, 412)
  assert.equal(stale.name, 'PreconditionFailedException')
  assert.equal(stale.message, 'Reported state is older than maxAgeSeconds')
  const fresh = json((await iot.send(getWithMaxAge(300))).payload)
  assert.deepEqual(fresh.thingward, { reportedAgeSeconds: { temp: 120 }, oldestReportedAgeSeconds: 120 })
  // Over MQTT, the same extension in the /get request.
  await c.subscribeAsync('$aws/things/lamp-1/shadow/get/+', { qos: 1 })
  const r = await shadowRequest(c, inbox, '$aws/things/lamp-1/shadow', 'get', { maxAgeSeconds: 30 })
  assert.deepEqual([r.outcome, r.doc.code, r.doc.message], ['rejected', 412, 'Reported state is older than maxAgeSeconds'])
})

test('Publish with the SDK: percent-encoded topic, MQTT 5 properties, QoS 1, retain; GetRetainedMessage and ListRetainedMessages', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const d = await provisionDevice(p, 'lamp-1')
  const c = await connectDevice(p, d, t)
  const got: Array<{ topic: string, payload: string, packet: { qos: number, properties?: Record<string, unknown> } }> = []
  const arrived = new Promise<void>(resolve => c.on('message', (topic, payload, packet) => { got.push({ topic, payload: payload.toString(), packet: packet as never }); resolve() }))
  await c.subscribeAsync('telemetry/lamp-1', { qos: 1 })
  const iot = dataClient(p, t)
  await iot.send(new PublishCommand({
    topic: 'telemetry/lamp-1', qos: 1, payload: Buffer.from('{"cmd":"blink"}'), contentType: 'application/json', responseTopic: 'telemetry/lamp-1',
    userProperties: JSON.stringify([{ origin: 'ops' }, { origin: 'console' }]), payloadFormatIndicator: 'UTF8_DATA', correlationData: Buffer.from('corr-1').toString('base64'),
  }))
  await arrived
  assert.equal(got[0].topic, 'telemetry/lamp-1')
  assert.equal(got[0].payload, '{"cmd":"blink"}')
  assert.equal(got[0].packet.qos, 1)
  const props = got[0].packet.properties ?? {}
  assert.equal(props.contentType, 'application/json')
  assert.equal(props.responseTopic, 'telemetry/lamp-1')
  assert.equal(props.payloadFormatIndicator, true)
  assert.equal(Buffer.from(props.correlationData as Buffer).toString(), 'corr-1')
  assert.deepEqual({ ...(props.userProperties as object) }, { origin: ['ops', 'console'] })

  await iot.send(new PublishCommand({ topic: 'fleet/config/v1', retain: true, qos: 1, payload: Buffer.from('cfg-1'), userProperties: JSON.stringify([{ rev: '7' }]) }))
  await iot.send(new PublishCommand({ topic: 'fleet/config/v2', retain: true, payload: Buffer.from('cfg-22') }))
  const r = await iot.send(new GetRetainedMessageCommand({ topic: 'fleet/config/v1' }))
  assert.equal(r.topic, 'fleet/config/v1')
  assert.equal(Buffer.from(r.payload ?? new Uint8Array()).toString(), 'cfg-1')
  assert.equal(r.qos, 1)
  assert.ok(typeof r.lastModifiedTime === 'number' && r.lastModifiedTime > Date.now() - 60_000)
  assert.deepEqual(JSON.parse(Buffer.from(r.userProperties ?? new Uint8Array()).toString()), [{ rev: '7' }])
  const listed = await iot.send(new ListRetainedMessagesCommand({}))
  // The gateway's own retained message (the command verification keys) is listed too, first by topic order.
  assert.deepEqual(listed.retainedTopics?.map(m => [m.topic, (m.topic ?? '').startsWith('$thingward/') ? 'system' : m.payloadSize, m.qos]),
    [['$thingward/command-keys', 'system', 1], ['fleet/config/v1', 5, 1], ['fleet/config/v2', 6, 0]])
  const first = await iot.send(new ListRetainedMessagesCommand({ maxResults: 2 }))
  assert.deepEqual(first.retainedTopics?.map(m => m.topic), ['$thingward/command-keys', 'fleet/config/v1'])
  assert.deepEqual((await iot.send(new ListRetainedMessagesCommand({ maxResults: 2, nextToken: first.nextToken }))).retainedTopics?.map(m => m.topic), ['fleet/config/v2'])
  await assert.rejects(iot.send(new GetRetainedMessageCommand({ topic: 'fleet/none' })), errName('ResourceNotFoundException', 404))

  // A publish to a shadow request topic acts as the request, as over MQTT.
  const inbox = new JsonInbox(c)
  await c.subscribeAsync('$aws/things/lamp-1/shadow/update/accepted', { qos: 1 })
  await iot.send(new PublishCommand({ topic: '$aws/things/lamp-1/shadow/update', payload: doc({ state: { desired: { power: 'off' } }, clientToken: 'via-publish' }) }))
  assert.equal((await inbox.next('$aws/things/lamp-1/shadow/update/accepted', j => j.clientToken === 'via-publish')).version, 1)
  await assert.rejects(iot.send(new PublishCommand({ topic: '$aws/things/lamp-1/shadow/update/accepted', payload: doc({}) })), errName('ForbiddenException', 403))
})

test('a denied call changes nothing: a wrongly signed update and publish are refused and reach no device', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const d = await provisionDevice(p, 'lamp-1')
  const c = await connectDevice(p, d, t)
  const inbox = new JsonInbox(c)
  await c.subscribeAsync(['$aws/things/lamp-1/shadow/#', 'telemetry/lamp-1'], { qos: 1 })
  const iot = dataClient(p, t)
  await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { desired: { power: 'on' } } }) }))
  const bad = dataClient(p, t, { accessKeyId: p.creds.accessKeyId, secretAccessKey: 'x'.repeat(40) })
  const unknown = dataClient(p, t, { accessKeyId: 'AKIANOTAREALKEY00000', secretAccessKey: 'x'.repeat(40) })
  const changes = async (): Promise<number> => (await p.app.audit.query({ action: 'iot.UpdateThingShadow' })).length + (await p.app.audit.query({ action: 'iot.DeleteThingShadow' })).length
  const changesBefore = await changes()
  await assert.rejects(bad.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { desired: { power: 'off' } }, clientToken: 'evil' }) })),
    (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403)
  await assert.rejects(unknown.send(new DeleteThingShadowCommand({ thingName: 'lamp-1' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403)
  await assert.rejects(bad.send(new PublishCommand({ topic: 'telemetry/lamp-1', qos: 1, payload: Buffer.from('evil') })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 403)
  // Barriers: a good publish and a good update, each arriving after anything the refused calls could have caused.
  await iot.send(new PublishCommand({ topic: 'telemetry/lamp-1', qos: 1, payload: Buffer.from('sentinel') }))
  await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { reported: { seen: true } }, clientToken: 'barrier' }) }))
  await inbox.next('$aws/things/lamp-1/shadow/update/accepted', j => j.clientToken === 'barrier')
  await inbox.next('telemetry/lamp-1', () => true)
  assert.deepEqual(inbox.on('telemetry/lamp-1').map(m => m.raw.toString()), ['sentinel'])
  assert.equal(inbox.messages.some(m => m.json.clientToken === 'evil'), false)
  const g = json((await iot.send(new GetThingShadowCommand({ thingName: 'lamp-1' }))).payload)
  assert.deepEqual([g.version, (g.state as { desired: unknown }).desired], [2, { power: 'on' }])
  // Only the barrier update changed state (one change event); the refused calls were audited as refusals.
  assert.equal(await changes(), changesBefore + 1)
  assert.equal((await p.app.audit.query({ action: 'http.authenticate', outcome: 'denied' })).length, 3)
})

test('boto3 iot-data works unchanged with an endpoint override', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  await provisionDevice(p, 'lamp-1')
  const dir = mkdtempSync(join(tmpdir(), 'tw-boto3-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const script = [
    'import boto3, json, os',
    "c = boto3.client('iot-data', endpoint_url=os.environ['EP'], region_name='local-1')",
    "r = c.update_thing_shadow(thingName='lamp-1', shadowName='cfg', payload=json.dumps({'state': {'desired': {'a': 1}}}))",
    "v = json.loads(r['payload'].read())['version']",
    "g = json.loads(c.get_thing_shadow(thingName='lamp-1', shadowName='cfg')['payload'].read())",
    "n = c.list_named_shadows_for_thing(thingName='lamp-1')['results']",
    "c.publish(topic='fleet/boto3', qos=1, retain=True, payload=b'hello')",
    "m = c.get_retained_message(topic='fleet/boto3')",
    "print(json.dumps({'v': v, 'desired': g['state']['desired'], 'names': n, 'retained': m['payload'].decode()}))",
  ].join('\n')
  const { stdout } = await run('python3', ['-c', script], {
    env: { ...process.env, EP: p.endpoint, AWS_ACCESS_KEY_ID: p.creds.accessKeyId, AWS_SECRET_ACCESS_KEY: p.creds.secretAccessKey, AWS_CA_BUNDLE: join(dir, 'ca.pem'), AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
  })
  assert.deepEqual(JSON.parse(stdout), { v: 1, desired: { a: 1 }, names: ['cfg'], retained: 'hello' })
})

test('without an MQTT gateway in the process, Publish is a 503 and retained reads are too; shadows still work', async (t) => {
  const p = await startPlatform(t)
  await provisionDevice(p, 'lamp-1')
  const iot = dataClient(p, t)
  await assert.rejects(iot.send(new PublishCommand({ topic: 'telemetry/lamp-1', payload: Buffer.from('x') })), errName('ServiceUnavailableException', 503))
  await assert.rejects(iot.send(new ListRetainedMessagesCommand({})), errName('ServiceUnavailableException', 503))
  const up = json((await iot.send(new UpdateThingShadowCommand({ thingName: 'lamp-1', payload: doc({ state: { reported: { ok: true } } }) }))).payload)
  assert.equal(up.version, 1)
})
