/**
 * Thingward as its own process for the bench (so its CPU and memory are measured apart from the load generator):
 * createApp + initPlatform on a fresh data directory, the bench fleet provisioned in bulk with the role
 * templates, then createGatewayServer. It also writes the files the load generator and Mosquitto need (device
 * credentials, our CA chain, the server certificate, Mosquitto's ACL). Revocation runs here, through the registry
 * (`app.certificates.updateStatus`), exactly as the API would. Started with --expose-gc so memory can be read
 * after a full collection.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { writeHeapSnapshot } from 'node:v8'
import { join } from 'node:path'
import { Session } from 'node:inspector/promises'
import pino from 'pino'
import { createApp, createGatewayServer, initPlatform } from '../../src/app.ts'
import type { App } from '../../src/app.ts'
import { loadConfig } from '../../src/config/index.ts'
import { TELEMETRY_SCHEMA } from './telemetry.ts'
import type { GatewayMetricsSnapshot } from '../../src/gateway/index.ts'
import { ROLE_INFO, roleTemplates } from '../../src/policy/index.ts'
import type { RoleName } from '../../src/policy/index.ts'
import { absNowMs, serve } from './ipc.ts'
import type { DeviceFile } from './loadgen.ts'

/** The provisioned bench fleet: where its files are and each device's certificate id (by device index). */
export interface Fleet {
  readonly dir: string
  readonly devicesFile: string
  readonly certificateIds: readonly string[]
  readonly mosquittoFiles: { readonly ca: string, readonly cert: string, readonly key: string, readonly acl: string }
  readonly provisionMs: number
}

/** Commands the broker process serves. */
export type BrokerApi = {
  start: { req: { dir: string, devices: number }, res: { port: number, fleet: Fleet } }
  gc: { req: Record<string, never>, res: { rssKb: number, heapUsedKb: number, externalKb: number } }
  revoke: { req: { certificateIds: string[], gapMs: number }, res: { startedAtMs: number[], updateStatusMs: number[] } }
  metrics: { req: Record<string, never>, res: GatewayMetricsSnapshot }
  /**
   * Puts (`on`) or deletes the payload schema `bench-telemetry` (telemetry.ts) on every device's telemetry topic,
   * through the platform's PayloadSchemaService as an operator would (neither when `on` is absent); returns how many
   * payloads were validated so far.
   */
  telemetrySchema: { req: { on?: boolean }, res: { validations: number } }
  /** CPU profile of this process between the two calls (node:inspector), written as a .cpuprofile file. */
  profileStart: { req: Record<string, never>, res: { started: true } }
  profileStop: { req: { file: string }, res: { file: string } }
  /** A V8 heap snapshot of this process (after a full GC), for --profile. */
  heapSnapshot: { req: { file: string }, res: { file: string } }
  stop: { req: Record<string, never>, res: { stopped: true } }
}

let app: App | undefined
let gateway: Awaited<ReturnType<typeof createGatewayServer>> | undefined
let inspector: Session | undefined

const collect = (globalThis as { gc?: () => void }).gc
const sleep = (ms: number): Promise<void> => new Promise(resolve => { setTimeout(resolve, ms) })

const OBSERVER = 'bench-observer'
const ROLES_USED: readonly RoleName[] = ['temperature-sensor', 'occupancy-sensor']

/** Device i: alternately a temperature and an occupancy sensor, on floor 1 + i % 20, named `{prefix}-{i}`. */
async function provisionFleet (a: App, dir: string, count: number): Promise<Fleet> {
  const caller = { actor: 'bench' }
  const { region, accountId } = a.config
  const templates = roleTemplates({ region, accountId })
  for (const role of ROLES_USED) {
    await a.policies.createPolicy(caller, `role-${role}`, templates[role])
    await a.things.createThingType(caller, { thingTypeName: ROLE_INFO[role].thingType })
  }
  const arn = `arn:aws:iot:${region}:${accountId}`
  // The fan-in subscriber: may subscribe to and receive everything under building/.
  await a.policies.createPolicy(caller, OBSERVER, JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: `${arn}:client/${OBSERVER}` },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${arn}:topicfilter/building/*` },
      { Effect: 'Allow', Action: 'iot:Receive', Resource: `${arn}:topic/building/*` },
    ],
  }))
  const t0 = performance.now()
  const [obs] = await a.provisioning.provision(caller, { policyName: OBSERVER, items: [{ thingName: OBSERVER }] })
  const devices: Array<DeviceFile['devices'][number]> = new Array(count)
  const certificateIds: string[] = new Array(count)
  for (let start = 0; start < count; start += 1000) {
    for (const role of ROLES_USED) {
      const idx: number[] = []
      for (let i = start; i < Math.min(count, start + 1000); i++) if (ROLES_USED[i % ROLES_USED.length] === role) idx.push(i)
      if (idx.length === 0) continue
      const info = ROLE_INFO[role]
      const items = idx.map(i => ({ thingName: `${info.prefix}-${i}`, attributes: { building: '1', floor: String(1 + (i % 20)) } }))
      const made = await a.provisioning.provision(caller, { policyName: `role-${role}`, thingTypeName: info.thingType, items })
      made.forEach((d, k) => {
        const i = idx[k]
        devices[i] = { name: d.thingName, topic: `building/1/floor/${items[k].attributes.floor}/${info.segment}/${d.thingName}`, cert: d.certificatePem, key: d.privateKeyPem ?? '' }
        certificateIds[i] = d.certificateId
      })
    }
  }
  const provisionMs = performance.now() - t0
  const caPem = await a.certificates.caChainPem()
  const server = await a.certificates.tlsServerCredentials()
  const file: DeviceFile = { caPem, devices, observer: { name: OBSERVER, cert: obs.certificatePem, key: obs.privateKeyPem ?? '' } }
  const devicesFile = join(dir, 'devices.json')
  writeFileSync(devicesFile, JSON.stringify(file), { mode: 0o600 })
  // Mosquitto gets the same server certificate (issued by our CA for localhost/127.0.0.1) and trusts the same chain.
  const mosquittoFiles = { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), acl: join(dir, 'acl') }
  writeFileSync(mosquittoFiles.ca, caPem)
  writeFileSync(mosquittoFiles.cert, server.certChainPem)
  writeFileSync(mosquittoFiles.key, server.keyPem, { mode: 0o600 })
  // The role templates' topics with the identity (certificate CN = thing name) as %u. Mosquitto cannot bind
  // building/floor to thing attributes, so those levels are `+` (looser than Thingward's policies).
  writeFileSync(mosquittoFiles.acl, [
    'pattern write building/+/floor/+/temperature/%u',
    'pattern write building/+/floor/+/occupancy/%u',
    'pattern write building/+/floor/+/light/%u/status',
    'pattern read building/+/floor/+/light/%u/cmd',
    'pattern write building/+/floor/+/lock/%u/audit',
    'pattern read building/+/floor/+/lock/%u/cmd',
    `user ${OBSERVER}`,
    'topic read building/#',
    '',
  ].join('\n'))
  return { dir, devicesFile, certificateIds, mosquittoFiles, provisionMs }
}

serve<BrokerApi>({
  async start ({ dir, devices }) {
    // Production defaults (SQLite synchronous=FULL); errors only, to stderr (fd 2): the bench's stdout is the report.
    // One limit is raised, as an operator would for this fleet: the closed-loop fan-in drives each of its 500
    // devices above AWS's 100 publishes/s once the machine passes 50,000 msg/s, and throttled (dropped) messages
    // would stall the loop; Mosquitto has no such limit. Everything else keeps AWS's defaults.
    const config = loadConfig({
      THINGWARD_MASTER_KEY: randomBytes(32).toString('base64'), THINGWARD_MQTT_PORT: '0', THINGWARD_MQTT_LIMITS: JSON.stringify({ publishesPerSecond: 10_000 }),
    }, {}, { dataDir: join(dir, 'data') })
    app = await createApp(config, { logger: pino({ level: 'error' }, pino.destination(2)) })
    await initPlatform(app)
    const fleet = await provisionFleet(app, dir, devices)
    gateway = await createGatewayServer(app)
    const { port } = await gateway.start({ host: '127.0.0.1', port: 0 })
    return { port, fleet }
  },

  async gc () {
    for (let i = 0; i < 3; i++) { collect?.(); await sleep(50) }
    const m = process.memoryUsage()
    return { rssKb: Math.round(m.rss / 1024), heapUsedKb: Math.round(m.heapUsed / 1024), externalKb: Math.round(m.external / 1024) }
  },

  async telemetrySchema ({ on }) {
    if (app === undefined) throw new Error('start first')
    const present = (await app.payloadSchemas.list()).some(x => x.schemaName === 'bench-telemetry')
    if (on === true && !present) await app.payloadSchemas.put({ actor: 'bench' }, 'bench-telemetry', { topicFilter: 'building/+/floor/+/+/+', schema: TELEMETRY_SCHEMA })
    if (on === false && present) await app.payloadSchemas.delete({ actor: 'bench' }, 'bench-telemetry')
    return { validations: app.payloadSchemas.registry.stats.validations }
  },

  async revoke ({ certificateIds, gapMs }) {
    if (app === undefined) throw new Error('start first')
    const startedAtMs: number[] = []
    const updateStatusMs: number[] = []
    for (const id of certificateIds) {
      const t0 = absNowMs()
      await app.certificates.updateStatus({ actor: 'bench' }, id, 'REVOKED')
      startedAtMs.push(t0)
      updateStatusMs.push(absNowMs() - t0)
      await sleep(gapMs)
    }
    return { startedAtMs, updateStatusMs }
  },

  async metrics () {
    if (gateway === undefined) throw new Error('start first')
    return gateway.metrics
  },

  async profileStart () {
    inspector ??= new Session()
    inspector.connect()
    await inspector.post('Profiler.enable')
    await inspector.post('Profiler.setSamplingInterval', { interval: 200 })
    await inspector.post('Profiler.start')
    return { started: true }
  },

  async profileStop ({ file }) {
    if (inspector === undefined) throw new Error('profileStart first')
    const { profile } = await inspector.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
    inspector.disconnect()
    inspector = undefined
    return { file }
  },

  async heapSnapshot ({ file }) {
    collect?.()
    return { file: writeHeapSnapshot(file) }
  },

  async stop () {
    await gateway?.stop()
    await app?.close()
    setImmediate(() => process.exit(0))
    return { stopped: true }
  },
})
