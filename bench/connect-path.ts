/**
 * Issue #4: the registry and policy work of one device connection, without TLS or MQTT — what the gateway does
 * between reading the client certificate and deciding iot:Connect: look the certificate up (status, validity,
 * CA), find its thing, load its policies and its groups' policies, bind the session variables and compile
 * (RegistryAuthenticator.authenticate + PolicyAuthorizerFactory.create + authorizeConnect). Real SQLite file
 * (WAL, synchronous=FULL) with the provisioned fleet; the certificates are parsed once beforehand, as node:tls
 * hands the gateway a parsed peer certificate.
 *
 * Usage: node_modules/.bin/node bench/connect-path.ts [--devices 3000] [--connects 5000]
 */
import { randomBytes, X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createApp, initPlatform } from '../src/app.ts'
import { loadConfig } from '../src/config/index.ts'
import { PolicyAuthorizerFactory, RegistryAuthenticator } from '../src/gateway/index.ts'
import { ROLE_INFO, roleTemplates } from '../src/policy/index.ts'

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : Number(process.argv[i + 1])
}
const DEVICES = arg('devices', 3000)
const CONNECTS = arg('connects', 5000)
const ROLE = 'temperature-sensor'

const dir = mkdtempSync(join(tmpdir(), 'thingward-connect-path-'))
const config = loadConfig({ THINGWARD_MASTER_KEY: randomBytes(32).toString('base64'), THINGWARD_MQTT_PORT: '0' }, {}, { dataDir: join(dir, 'data') })
const app = await createApp(config, { logger: pino({ level: 'error' }, pino.destination(2)) })
try {
  await initPlatform(app)
  const caller = { actor: 'bench' }
  await app.policies.createPolicy(caller, `role-${ROLE}`, roleTemplates({ region: config.region, accountId: config.accountId })[ROLE])
  await app.things.createThingType(caller, { thingTypeName: ROLE_INFO[ROLE].thingType })
  const devices: Array<{ thingName: string, certificate: X509Certificate }> = []
  for (let start = 0; start < DEVICES; start += 1000) {
    const items = Array.from({ length: Math.min(1000, DEVICES - start) }, (_, k) => ({ thingName: `temp-${start + k}`, attributes: { building: '1', floor: String(1 + (start + k) % 20) } }))
    const made = await app.provisioning.provision(caller, { policyName: `role-${ROLE}`, thingTypeName: ROLE_INFO[ROLE].thingType, items })
    for (const d of made) devices.push({ thingName: d.thingName, certificate: new X509Certificate(d.certificatePem) })
  }
  const authenticator = new RegistryAuthenticator(app.devices)
  const authorizers = new PolicyAuthorizerFactory({ devices: app.devices, arn: { region: config.region, accountId: config.accountId }, clock: app.clock, authenticator })
  const connect = async (i: number): Promise<void> => {
    const { thingName, certificate } = devices[i]
    const r = await authenticator.authenticate({ certificate, fingerprint256: certificate.fingerprint256, clientId: thingName, sourceAddress: '127.0.0.1', protocolVersion: 4, tlsSessionReused: false })
    if (!r.ok) throw new Error(`${thingName} refused: ${r.reason}`)
    const a = await authorizers.create(r.principal, { clientId: thingName, sourceAddress: '127.0.0.1', protocolVersion: 4, certificateFingerprint256: certificate.fingerprint256 })
    if (!a.authorizeConnect({ clientId: thingName, sourceAddress: '127.0.0.1', protocolVersion: 4, persistent: false, cleanStart: true }).allowed) throw new Error(`${thingName} may not connect`)
  }
  for (let i = 0; i < Math.min(500, devices.length); i++) await connect(i) // JIT, statement cache
  const rounds: number[] = []
  for (let round = 0; round < 3; round++) {
    const cpu0 = process.cpuUsage()
    // A stride coprime with the fleet size visits devices in scattered order, like a fleet reconnecting.
    for (let k = 0; k < CONNECTS; k++) await connect((k * 7919 + round) % devices.length)
    const cpu = process.cpuUsage(cpu0)
    rounds.push((cpu.user + cpu.system) / CONNECTS)
  }
  const sorted = [...rounds].sort((a, b) => a - b)
  process.stdout.write(`connect path (registry + policy, no TLS/MQTT): ${DEVICES} devices, ${CONNECTS} connects × 3 rounds\n`)
  process.stdout.write(`  CPU per connect: median ${sorted[1].toFixed(1)} µs (rounds: ${rounds.map(r => r.toFixed(1)).join(', ')})\n`)
} finally {
  await app.close()
  rmSync(dir, { recursive: true, force: true })
}
