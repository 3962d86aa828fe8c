/**
 * Issue #6: what payload-schema validation costs on the gateway's publish path, at 1 KB JSON payloads (goal:
 * ≤ 10 % of throughput). One gateway in this process — mutual TLS, each session authorized by a compiled AWS IoT
 * policy (iot:Publish / iot:Subscribe / iot:Receive per message, as in production), AWS's per-connection rate
 * limits lifted so one connection can saturate it; the
 * load in a child process (raw MQTT 3.1.1 over TLS, so the client library is not what is measured): publishers
 * keep a window of QoS 1 PUBLISHes in flight and one subscriber takes every message at QoS 0. Phases alternate
 * "no schema on the topic" and "a schema on the topic" (same payload, which conforms), several rounds; the
 * gateway process's CPU per message is reported too, as it is steadier than throughput on a shared machine.
 *
 * Usage: node_modules/.bin/node bench/schemas.ts [--seconds 3] [--rounds 3] [--publishers 4]
 */
import { isUtf8 } from 'node:buffer'
import { spawn } from 'node:child_process'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { generate } from 'mqtt-packet'
import { Gateway, payloadSchemaValidator } from '../src/gateway/index.ts'
import type { ConnectionRequest, GatewayDecision, SessionAuthorizer, SessionAuthorizerFactory, SessionContext, SessionPrincipal } from '../src/gateway/index.ts'
import { buildSessionVariables, compilePolicies, parsePolicy } from '../src/policy/index.ts'
import type { Decision } from '../src/policy/index.ts'
import { PayloadSchemaRegistry } from '../src/shadow/index.ts'
import { cleanupPki, createPki } from '../test/gateway-helpers.ts'
import { mqttFrames } from './gateway/frames.ts'
import { TELEMETRY_SCHEMA, telemetryPayload } from './gateway/telemetry.ts'

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}

const TOPIC = 'building/1/floor/1/temperature/sensor-0001'
const FILTER = 'building/+/floor/+/temperature/+'
const WINDOW = 50

const ARN = { region: 'local-1', accountId: '000000000000' }
const POLICY = parsePolicy(JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:local-1:000000000000:client/${iot:ClientId}' },
    { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: 'arn:aws:iot:local-1:000000000000:topic/building/*/floor/*/temperature/*' },
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: 'arn:aws:iot:local-1:000000000000:topicfilter/building/*' },
    { Effect: 'Deny', Action: 'iot:Publish', Resource: 'arn:aws:iot:local-1:000000000000:topic/building/*/restricted/*' },
  ],
}))

/** Every certificate is accepted; each session's rights come from the compiled policy above (policy engine hot path). */
const policyAuth = {
  authenticate: (req: ConnectionRequest) => ({ ok: true as const, principal: { id: req.clientId } }),
  create (_principal: SessionPrincipal, ctx: SessionContext): SessionAuthorizer {
    const compiled = compilePolicies([{ name: 'bench', versionId: '1', document: POLICY }], buildSessionVariables({ clientId: ctx.clientId }), { arn: ARN })
    const shaped = new WeakMap<Decision, GatewayDecision>()
    const g = (d: Decision): GatewayDecision => {
      let x = shaped.get(d)
      if (x === undefined) { x = Object.freeze({ allowed: d.allowed, reason: d.allowed ? undefined : 'denied' }); shaped.set(d, x) }
      return x
    }
    const clientArn = `arn:aws:iot:local-1:000000000000:client/${ctx.clientId}`
    return {
      authorizeConnect: () => g(compiled.authorize('iot:Connect', clientArn)),
      authorizePublish: (topic: string) => g(compiled.authorizeTopic('iot:Publish', topic)),
      authorizeSubscribe: (filter: string) => g(compiled.authorize('iot:Subscribe', `arn:aws:iot:local-1:000000000000:topicfilter/${filter}`)),
      authorizeReceive: (topic: string) => g(compiled.authorizeTopic('iot:Receive', topic)),
    }
  },
} satisfies SessionAuthorizerFactory & { authenticate (req: ConnectionRequest): { ok: true, principal: SessionPrincipal } }

/**
 * Validation alone (no gateway), for three 1 KB payload shapes against schemas of the same style: the registry as
 * the gateway runs it (the byte-level fast path when it accepts, else JSON.parse + Ajv), and for comparison the
 * full path (isUtf8 + JSON.parse + the compiled Ajv validator) and JSON.parse alone.
 */
function shapes (): Array<{ name: string, path: string, parseUs: number, fullUs: number, validateUs: number }> {
  const pad = (o: Record<string, unknown>): Buffer => { o.note = ''; o.note = 'x'.repeat(1024 - Buffer.byteLength(JSON.stringify(o))); return Buffer.from(JSON.stringify(o)) }
  const flat = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`m${i}`, i % 3 === 0 ? 21.5 + i : i % 3 === 1 ? `v${i}` : i * 7]))
  const cases: Array<{ name: string, payload: Buffer, schema: Record<string, unknown> }> = [
    { name: 'sample batch (80 floats)', payload: telemetryPayload(), schema: TELEMETRY_SCHEMA },
    { name: 'flat telemetry (30 fields)', payload: pad(flat), schema: { type: 'object', required: ['m0', 'm1', 'm2'], properties: Object.fromEntries(Object.keys(flat).filter(k => k !== 'note').map((k, i) => [k, { type: i % 3 === 1 ? 'string' : 'number' }])) } },
    { name: 'mostly one string', payload: pad({ deviceId: 'sensor-0001', ts: 1767225600000, temp: 21.5 }), schema: { type: 'object', required: ['deviceId', 'ts'], properties: { deviceId: { type: 'string' }, ts: { type: 'integer' }, temp: { type: 'number' }, note: { type: 'string' } } } },
  ]
  return cases.map(({ name, payload, schema }) => {
    const r = new PayloadSchemaRegistry()
    const entry = PayloadSchemaRegistry.compile('s', '#', schema)
    r.set(entry)
    const text = payload.toString('utf8')
    const full = (): boolean => isUtf8(payload) && entry.validate(JSON.parse(payload.toString('utf8')))
    const N = 100_000
    for (let i = 0; i < 10_000; i++) { JSON.parse(text); r.validate('t', payload); full() }
    let t0 = performance.now()
    for (let i = 0; i < N; i++) JSON.parse(text)
    const parseUs = (performance.now() - t0) / N * 1000
    t0 = performance.now()
    for (let i = 0; i < N; i++) if (!full()) throw new Error(`${name} does not conform`)
    const fullUs = (performance.now() - t0) / N * 1000
    t0 = performance.now()
    for (let i = 0; i < N; i++) if (!r.validate('t', payload).allowed) throw new Error(`${name} does not conform`)
    const validateUs = (performance.now() - t0) / N * 1000
    return { name, path: pathOf(entry, payload), parseUs, fullUs, validateUs }
  })
}

/** Which path the registry takes for this schema and payload. */
function pathOf (entry: ReturnType<typeof PayloadSchemaRegistry.compile>, payload: Buffer): string {
  if (entry.fast === undefined) return 'JSON.parse + compiled Ajv validator: schema outside the fast subset'
  return entry.fast.accept(payload) ? 'byte-level fast path, no JSON.parse, no Ajv' : 'JSON.parse + compiled Ajv validator: the fast path declined'
}

// ---- load generator (child process) ---------------------------------------------------------------------

interface LoadConfig { port: number, ca: string, subscriber: { cert: string, key: string }, publishers: Array<{ cert: string, key: string }> }
interface PhaseResult { acked: number, received: number, elapsedMs: number }

/** Calls `onFrame` with each MQTT frame's type and body offsets (bench/gateway/frames.ts). */
function frames (socket: TLSSocket, onFrame: (type: number, buf: Buffer, bodyAt: number, end: number) => void): void {
  socket.on('data', mqttFrames((b, start, body, len) => { onFrame(b[start] >> 4, b, body, body + len) }))
}

function connectRaw (port: number, ca: string, id: { cert: string, key: string }, clientId: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, cert: id.cert, key: id.key, servername: 'localhost' }, () => {
      s.setNoDelay(true)
      s.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId }))
    })
    s.once('data', (b: Buffer) => { if (b[0] === 0x20 && b[3] === 0) resolve(s); else reject(new Error('CONNACK refused')) })
    s.once('error', reject)
  })
}

async function loadgen (): Promise<void> {
  const cfg = await new Promise<LoadConfig>(resolve => process.once('message', m => resolve(m as LoadConfig)))
  const payload = telemetryPayload()
  const sub = await connectRaw(cfg.port, cfg.ca, cfg.subscriber, 'bench-sub')
  let received = 0
  frames(sub, (type) => { if (type === 3) received++ })
  await new Promise<void>((resolve) => {
    sub.once('data', () => resolve())
    sub.write(generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: TOPIC, qos: 0 }] }))
  })
  const template = generate({ cmd: 'publish', topic: TOPIC, payload, qos: 1, messageId: 1, retain: false, dup: false })
  const idAt = 2 + (template[1] & 0x80 ? 1 : 0) + 2 + Buffer.byteLength(TOPIC)
  let running = false
  let acked = 0
  const pubs = await Promise.all(cfg.publishers.map((id, n) => connectRaw(cfg.port, cfg.ca, id, `bench-pub-${n}`)))
  const sends = pubs.map((s) => {
    let nextId = 1
    const send = (): void => {
      const f = Buffer.from(template)
      f.writeUInt16BE(nextId, idAt)
      nextId = nextId === 0xffff ? 1 : nextId + 1
      s.write(f)
    }
    frames(s, (type) => {
      if (type !== 4) return
      acked++
      if (running) send()
    })
    return (): void => { for (let i = 0; i < WINDOW; i++) send() }
  })
  process.on('message', (m) => {
    const { ms } = m as { ms: number }
    // Let the previous phase's in-flight messages drain before counting.
    setTimeout(() => {
      acked = 0
      received = 0
      running = true
      const t0 = performance.now()
      for (const start of sends) start()
      setTimeout(() => {
        running = false
        const r: PhaseResult = { acked, received, elapsedMs: performance.now() - t0 }
        process.send?.(r)
      }, ms)
    }, 200)
  })
  process.send?.({ ready: true })
}

// ---- orchestrator -----------------------------------------------------------------------------------------

async function main (): Promise<void> {
  const seconds = arg('seconds', 3)
  const rounds = arg('rounds', 3)
  const nPub = arg('publishers', 4)
  const names = ['sub', ...Array.from({ length: nPub }, (_, i) => `pub-${i}`)]
  const pki = createPki(names)
  const registry = new PayloadSchemaRegistry()
  const schema = PayloadSchemaRegistry.compile('telemetry', FILTER, TELEMETRY_SCHEMA)
  const gateway = new Gateway({
    tls: { cert: pki.server.cert, key: pki.server.key, ca: [pki.caCert] },
    authenticator: policyAuth, authorizers: policyAuth, payloadValidator: payloadSchemaValidator(registry), housekeepingIntervalMs: 0,
    limits: { publishesPerSecond: 1e9, publishBytesPerSecond: 1e12, connectAttemptsPerClientIdPerSecond: 1e6, maxQueuedMessages: 1e6 },
  })
  const { port } = await gateway.start({ host: '127.0.0.1', port: 0 })
  const child = spawn(process.execPath, [import.meta.filename, '--loadgen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const nextMessage = (): Promise<unknown> => new Promise(resolve => child.once('message', resolve))
  const ready = nextMessage()
  child.send({ port, ca: pki.caCert, subscriber: pki.client('sub'), publishers: names.slice(1).map(n => pki.client(n)) } satisfies LoadConfig)
  await ready

  const results: Record<'none' | 'schema', Array<{ rate: number, cpuUsPerMsg: number, delivered: number }>> = { none: [], schema: [] }
  let validationSeconds = 0
  let validations = 0
  const phase = async (kind: 'none' | 'schema'): Promise<void> => {
    if (kind === 'schema') registry.set(schema); else registry.remove('telemetry')
    const stats0 = registry.stats
    const cpu0 = process.cpuUsage()
    const done = nextMessage()
    child.send({ ms: seconds * 1000 })
    const r = await done as PhaseResult
    const cpu = process.cpuUsage(cpu0)
    const stats1 = registry.stats
    validationSeconds += stats1.seconds - stats0.seconds
    validations += stats1.validations - stats0.validations
    results[kind].push({ rate: r.acked / (r.elapsedMs / 1000), cpuUsPerMsg: (cpu.user + cpu.system) / Math.max(1, r.acked), delivered: r.received / Math.max(1, r.acked) })
  }
  await phase('none') // warm-up (JIT, TLS sessions)
  results.none.length = 0
  for (let i = 0; i < rounds; i++) {
    const order: Array<'none' | 'schema'> = i % 2 === 0 ? ['none', 'schema'] : ['schema', 'none']
    for (const k of order) await phase(k)
  }
  child.kill()
  await gateway.stop()
  cleanupPki(pki)

  const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
  const none = median(results.none.map(r => r.rate))
  const withSchema = median(results.schema.map(r => r.rate))
  const cpuNone = median(results.none.map(r => r.cpuUsPerMsg))
  const cpuSchema = median(results.schema.map(r => r.cpuUsPerMsg))
  const out = (s: string): void => { process.stdout.write(`${s}\n`) }
  out(`payload-schema validation cost — 1 KB JSON, QoS 1 publish, ${nPub} publishers × ${WINDOW} in flight, 1 QoS 0 subscriber, compiled IoT policies, ${rounds} rounds × ${seconds} s per phase`)
  out(`  no schema on the topic:   ${Math.round(none).toLocaleString('en-US')} msg/s   gateway CPU ${cpuNone.toFixed(1)} µs/msg   (rounds: ${results.none.map(r => Math.round(r.rate)).join(', ')})`)
  out(`  schema on the topic:      ${Math.round(withSchema).toLocaleString('en-US')} msg/s   gateway CPU ${cpuSchema.toFixed(1)} µs/msg   (rounds: ${results.schema.map(r => Math.round(r.rate)).join(', ')})`)
  out(`  throughput cost:          ${((1 - withSchema / none) * 100).toFixed(1)} %   (goal ≤ 10 %)`)
  out(`  CPU cost per message:     ${((cpuSchema / cpuNone - 1) * 100).toFixed(1)} %`)
  out(`  validation alone:         ${(validationSeconds / Math.max(1, validations) * 1e6).toFixed(2)} µs per message (${pathOf(schema, telemetryPayload())}), ${validations.toLocaleString('en-US')} validated`)
  for (const x of shapes()) {
    out(`  validation by shape:      ${x.name}: ${x.validateUs.toFixed(2)} µs/msg (${x.path}); full path ${x.fullUs.toFixed(2)} µs (isUtf8 + JSON.parse + Ajv), of which JSON.parse ${x.parseUs.toFixed(2)} µs`)
  }
  out(`  delivered/acked:          ${median(results.none.map(r => r.delivered)).toFixed(3)} without, ${median(results.schema.map(r => r.delivered)).toFixed(3)} with (QoS 0 drops under backpressure)`)
}

if (process.argv.includes('--loadgen')) await loadgen()
else await main()
