/**
 * Issue #5 §5, MFA-gated commands (the seed's door locks): a sensitive topic takes commands only from operators
 * whose credentials carry MFA, through the data plane; the lock receives a command token it can verify.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { GetSessionTokenCommand } from '@aws-sdk/client-sts'
import { IoTDataPlaneClient, PublishCommand } from '@aws-sdk/client-iot-data-plane'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Agent } from 'node:https'
import { ManualClock } from '../src/core/index.ts'
import { COMMAND_KEYS_TOPIC, verifyCommandToken } from '../src/command/index.ts'
import { startPlatform } from './helpers/platform.ts'
import { connectDevice, observer } from './helpers/devices.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { api, code, enrollMfa, sdk, userWithKey } from './helpers/iam.ts'
import type { Creds } from './helpers/iam.ts'
import { Inbox } from './gateway-helpers.ts'

const LOCK_FILTER = 'building/+/floor/+/lock/+/cmd'


function dataPlane (t: { after: (fn: () => unknown) => void }, p: TestPlatform, creds: Creds, clock: ManualClock): IoTDataPlaneClient {
  const agent = new Agent({ ca: p.caPem, keepAlive: true })
  const c = new IoTDataPlaneClient({ endpoint: p.endpoint, region: 'local-1', credentials: creds, maxAttempts: 1, systemClockOffset: clock.nowMs() - Date.now(), requestHandler: new NodeHttpHandler({ httpsAgent: agent }) })
  t.after(() => { c.destroy(); agent.destroy() })
  return c
}

test('commands to a sensitive topic need MFA; the lock receives a token it verifies; devices can never publish there', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { gateway: true, clock })
  await api(p).call('PUT', '/thingward/sensitive-topics', { body: { filters: [LOCK_FILTER] } })
  const lock = await p.device('door-lock', 'lock-1')
  const lock4 = await p.device('door-lock', 'lock-2')
  const cmd1 = 'building/1/floor/1/lock/lock-1/cmd'
  const cmd2 = 'building/1/floor/1/lock/lock-2/cmd'
  const device = await connectDevice(p, lock, t)
  const inbox = new Inbox(device)
  await device.subscribeAsync([cmd1, COMMAND_KEYS_TOPIC], { qos: 1 })
  const jwks = JSON.parse((await inbox.waitFor(COMMAND_KEYS_TOPIC)).payload) as { keys: Array<Record<string, string>> }
  const v311 = await connectDevice(p, lock4, t, { protocolVersion: 4 })
  const inbox4 = new Inbox(v311)
  await v311.subscribeAsync(cmd2, { qos: 1 })

  const ops = await userWithKey(p, 'ops', ['operator'])
  const { secret } = await enrollMfa(p, 'ops', clock)
  clock.advance(30_000) // RFC 6238 §5.2: the enrollment code is spent; use the next time step's
  const clients = sdk(t, p, clock)
  const noMfa = (await clients.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials
  const withMfa = (await clients.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 900, SerialNumber: 'arn:aws:iam::000000000000:mfa/ops', TokenCode: code(secret, clock) }))).Credentials
  const creds = (c: typeof noMfa): Creds => ({ accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken })

  // Without MFA (session without a code, and a long-term key): refused, audited, delivered to nobody.
  for (const c of [creds(noMfa), ops]) {
    await assert.rejects(dataPlane(t, p, c, clock).send(new PublishCommand({ topic: cmd1, qos: 1, payload: Buffer.from('{"unlock":true}') })), { name: 'ForbiddenException' })
  }
  // A device publishing to a sensitive topic is refused before its policy is consulted.
  await assert.rejects(device.publishAsync(cmd1, 'self-unlock', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  const denied = await p.app.audit.query({ action: 'iot.Publish', outcome: 'denied' })
  assert.ok(denied.some(e => (e.details as Record<string, unknown> | undefined)?.reason === 'mfa-required' || e.reason === 'mfa-required'))

  // With MFA: delivered with a command token (MQTT 5 user property) that verifies for this topic and payload.
  const payload = Buffer.from('{"unlock":true}')
  await dataPlane(t, p, creds(withMfa), clock).send(new PublishCommand({ topic: cmd1, qos: 1, payload }))
  const got = await inbox.waitFor(cmd1, '{"unlock":true}')
  // Messages are routed in order, so the refused publishes above would have arrived before this one.
  assert.deepEqual(inbox.on(cmd1).map(m => m.payload), ['{"unlock":true}'], 'only the MFA-backed command was delivered')
  const props = got.packet.properties as { userProperties?: Record<string, string> } | undefined
  const token = props?.userProperties?.['thingward-command-token'] ?? ''
  const verified = verifyCommandToken(token, jwks, cmd1, got.packet.payload as unknown as Buffer ?? payload, clock.nowMs())
  assert.equal(verified.ok, true, JSON.stringify(verified))
  assert.equal(verified.ok && verified.claims.sub, 'user/ops')
  assert.equal(verifyCommandToken(token, jwks, cmd1, payload, clock.nowMs() + 61_000).ok, false, 'expires within 60 s')

  // MQTT 3.1.1 lock: the command comes in a JSON envelope with the token.
  await dataPlane(t, p, creds(withMfa), clock).send(new PublishCommand({ topic: cmd2, qos: 1, payload }))
  const env = JSON.parse((await inbox4.waitFor(cmd2)).payload) as { commandToken: string, payloadBase64: string }
  assert.equal(Buffer.from(env.payloadBase64, 'base64').toString(), '{"unlock":true}')
  assert.equal(verifyCommandToken(env.commandToken, jwks, cmd2, Buffer.from(env.payloadBase64, 'base64'), clock.nowMs()).ok, true)
})

test('marking a topic sensitive takes effect on the next publish of a device that already published there, and unmarking it too', async (t) => {
  const p = await startPlatform(t, { gateway: true })
  const obs = await observer(p, t)
  const light = await p.device('smart-light', 'light-1')
  const c = await connectDevice(p, light, t)
  const status = 'building/1/floor/1/light/light-1/status'
  await c.publishAsync(status, 'on-1', { qos: 1 })
  await obs.inbox.waitFor(status, 'on-1')
  await api(p).call('PUT', '/thingward/sensitive-topics', { body: { filters: ['building/+/floor/+/light/+/status'] } })
  await assert.rejects(c.publishAsync(status, 'on-2', { qos: 1 }), (e: Error & { code?: number }) => e.code === 0x87)
  await api(p).call('PUT', '/thingward/sensitive-topics', { body: { filters: [] } })
  await c.publishAsync(status, 'on-3', { qos: 1 })
  await obs.inbox.waitFor(status, 'on-3')
  assert.deepEqual(obs.inbox.on(status).map(m => m.payload), ['on-1', 'on-3'])
})
