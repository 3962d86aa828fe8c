/**
 * Issue #2 figures: certificates per second from CSRs and with generated keys (one thread, issuance only), and
 * the wall time to provision a 50,000-device fleet end to end in-process (key generation + CSR-free issuance +
 * SQLite storage of thing, certificate, policy attachment, principal attachment and audit event per device).
 * Usage: node_modules/.bin/node bench/issue.ts [devices=50000]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createApp, initPlatform } from '../src/app.ts'
import { loadConfig } from '../src/config/index.ts'
import { CertificateIssuer, createCaHierarchy, createCsr, generateKeyPair } from '../src/pki/index.ts'

const devices = Number(process.argv[2] ?? 50_000)

function issuanceRates (): { csrPerSec: number, generatedPerSec: number, csrs: number } {
  const { issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: Date.now() })
  const issuer = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, crlUrl: 'https://127.0.0.1:8443/crl', ocspUrl: 'https://127.0.0.1:8443/ocsp' })
  const n = 20_000
  const csrs: string[] = []
  for (let i = 0; i < n; i++) {
    const kp = generateKeyPair('EC-P256')
    csrs.push(createCsr({ privateKey: kp.privateKey, publicKey: kp.publicKey, commonName: `device-${i}` }))
  }
  const now = Date.now()
  for (let i = 0; i < 500; i++) issuer.issueFromCsr(csrs[i], { nowMs: now }) // warm-up
  let t0 = performance.now()
  for (const csr of csrs) issuer.issueFromCsr(csr, { nowMs: now })
  const csrPerSec = n / ((performance.now() - t0) / 1000)
  t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const kp = generateKeyPair('EC-P256')
    issuer.issueForPublicKey(kp.publicKey, { nowMs: now, commonName: `device-${i}` })
  }
  const generatedPerSec = n / ((performance.now() - t0) / 1000)
  return { csrPerSec, generatedPerSec, csrs: n }
}

async function fleet (): Promise<{ seconds: number, perSec: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'thingward-bench-'))
  try {
    const config = loadConfig({ THINGWARD_MASTER_KEY: randomBytes(32).toString('base64') }, {}, { dataDir })
    const app = await createApp(config, { logger: false })
    await initPlatform(app)
    const caller = { actor: 'bench' }
    await app.policies.createPolicy(caller, 'role', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:local-1:000000000000:topic/${iot:Connection.Thing.ThingName}' }] }))
    await app.things.createThingType(caller, { thingTypeName: 'TemperatureSensor' })
    const t0 = performance.now()
    const batch = 1000
    for (let i = 0; i < devices; i += batch) {
      const items = []
      for (let j = i; j < Math.min(devices, i + batch); j++) items.push({ thingName: `temp-${j}`, attributes: { building: '1', floor: String(j % 20) } })
      await app.provisioning.provision(caller, { policyName: 'role', thingTypeName: 'TemperatureSensor', items })
    }
    const seconds = (performance.now() - t0) / 1000
    const rows = app.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM certificates')
    if (rows?.n !== devices) throw new Error(`expected ${devices} certificates, found ${rows?.n}`)
    await app.close()
    return { seconds, perSec: devices / seconds }
  } finally { rmSync(dataDir, { recursive: true, force: true }) }
}

const rates = issuanceRates()
process.stdout.write(`issuance from CSRs (parse + verify signature + sign), 1 thread: ${Math.round(rates.csrPerSec)} certificates/s over ${rates.csrs}\n`)
process.stdout.write(`issuance with generated EC P-256 keys (keygen + sign), 1 thread: ${Math.round(rates.generatedPerSec)} certificates/s over ${rates.csrs}\n`)
const f = await fleet()
process.stdout.write(`fleet of ${devices} devices (keygen + issuance + thing/cert/policy/principal/audit rows, synchronous=FULL): ${f.seconds.toFixed(1)} s (${Math.round(f.perSec)} devices/s)\n`)
