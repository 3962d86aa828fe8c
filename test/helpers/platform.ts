import { mkdtempSync, rmSync } from 'node:fs'
import { Agent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { TestContext } from 'node:test'
import { IoTClient } from '@aws-sdk/client-iot'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { FastifyInstance } from 'fastify'
import { createApp, createGatewayServer, createHttpServer, initPlatform } from '../../src/app.ts'
import type { App } from '../../src/app.ts'
import { loadConfig } from '../../src/config/index.ts'
import type { Clock } from '../../src/core/index.ts'
import { ROLE_INFO, roleTemplates } from '../../src/policy/index.ts'
import type { RoleName } from '../../src/policy/index.ts'

export interface TestPlatform {
  readonly app: App
  readonly http: FastifyInstance
  readonly endpoint: string
  readonly port: number
  readonly caPem: string
  readonly dataDir: string
  readonly masterKey: string
  readonly creds: { accessKeyId: string, secretAccessKey: string }
  /** An AWS SDK IoT client signed with the admin key, trusting our CA. */
  iot (creds?: { accessKeyId: string, secretAccessKey: string }, opts?: { systemClockOffset?: number }): IoTClient
  /** Count of change events (records without a `kind`: requests, connections, key uses excluded), to assert that a refused request changed nothing. */
  auditCount (): Promise<number>
  /** The MQTT gateway, when started with `{ gateway: true }`. */
  readonly gateway: Awaited<ReturnType<typeof createGatewayServer>> | undefined
  readonly mqttPort: number
  /** Provisions one device with a role template (thing + generated key + ACTIVE certificate + role policy). */
  device (role: RoleName, thingName: string, attributes?: Record<string, string>): Promise<DeviceBundle>
}

export interface DeviceBundle {
  readonly thingName: string
  readonly certificateId: string
  readonly certificateArn: string
  readonly cert: string
  readonly key: string
  readonly ca: string
}

/**
 * A real platform for a test: temp data dir, SQLite file, keyring, CA made by `init`, HTTPS on 127.0.0.1:0.
 * Torn down (and the directory removed) when the test ends.
 */
export async function startPlatform (t: TestContext, opts: { clock?: Clock, dataDir?: string, masterKey?: string, env?: Record<string, string>, gateway?: boolean } = {}): Promise<TestPlatform> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'thingward-test-'))
  const masterKey = opts.masterKey ?? randomBytes(32).toString('base64')
  const config = loadConfig({ THINGWARD_MASTER_KEY: masterKey, THINGWARD_HTTP_PORT: '0', THINGWARD_MQTT_PORT: '0', THINGWARD_SQLITE_SYNCHRONOUS: 'NORMAL', ...opts.env }, {}, { dataDir })
  const app = await createApp(config, { logger: false, clock: opts.clock })
  const creds = await initPlatform(app) ?? await app.accessKeys.create({ actor: 'test' }, 'admin')
  const http = await createHttpServer(app)
  await http.listen({ host: '127.0.0.1', port: 0 })
  const address = http.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const caPem = await app.certificates.caChainPem()
  const gateway = opts.gateway === true ? await createGatewayServer(app, { housekeepingIntervalMs: 200 }) : undefined
  const mqttPort = gateway === undefined ? 0 : (await gateway.start({ host: '127.0.0.1', port: 0 })).port
  const agent = new Agent({ ca: caPem, keepAlive: true })
  const clients: IoTClient[] = []
  t.after(async () => {
    for (const c of clients) c.destroy()
    if (gateway !== undefined) await gateway.stop()
    agent.destroy()
    await http.close()
    await app.close()
    if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
  })
  const endpoint = `https://127.0.0.1:${port}`
  return {
    app, http, endpoint, port, caPem, dataDir, masterKey, creds,
    iot (c = creds, o = {}) {
      const client = new IoTClient({
        endpoint, region: config.region, credentials: c, maxAttempts: 1, systemClockOffset: o.systemClockOffset,
        requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
      })
      clients.push(client)
      return client
    },
    async auditCount () { return (await app.audit.rows()).filter(r => (JSON.parse(r.body) as { kind?: unknown }).kind === undefined).length },
    gateway,
    mqttPort,
    async device (role, thingName, attributes = { building: '1', floor: '1' }) {
      const caller = { actor: 'test' }
      const policyName = `role-${role}`
      if (await app.policies.getPolicy(policyName).then(() => true, () => false) === false) {
        await app.policies.createPolicy(caller, policyName, roleTemplates({ region: config.region, accountId: config.accountId })[role])
      }
      await app.things.createThingType(caller, { thingTypeName: ROLE_INFO[role].thingType })
      const [d] = await app.provisioning.provision(caller, { policyName, thingTypeName: ROLE_INFO[role].thingType, items: [{ thingName, attributes }] })
      return { thingName, certificateId: d.certificateId, certificateArn: d.certificateArn, cert: d.certificatePem, key: d.privateKeyPem ?? '', ca: caPem }
    },
  }
}
