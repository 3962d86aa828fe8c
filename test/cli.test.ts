import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { randomBytes } from 'node:crypto'
import { startPlatform } from './helpers/platform.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')
const BIN = resolve(import.meta.dirname, '..', 'bin', 'thingward.js')

test('init --json prints credentials once; a second init creates nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-cli-init-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const env = { PATH: process.env.PATH ?? '', THINGWARD_MASTER_KEY: randomBytes(32).toString('hex') }
  const first = JSON.parse((await run(process.execPath, [MAIN, 'init', '--data', dir, '--json'], { env })).stdout) as Record<string, string>
  assert.match(first.accessKeyId, /^AKIA[A-Z2-7]{16}$/)
  assert.equal(first.secretAccessKey.length, 40)
  assert.equal(first.caFile, join(dir, 'ca.pem'))
  assert.match(readFileSync(first.caFile, 'utf8'), /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/)
  assert.equal(first.endpoint, 'https://127.0.0.1:8443')
  const second = JSON.parse((await run(process.execPath, [MAIN, 'init', '--data', dir, '--json'], { env })).stdout) as Record<string, unknown>
  assert.equal(second.initialized, false)
  assert.equal(second.secretAccessKey, undefined)
  const exported = (await run(process.execPath, [BIN, 'ca', 'export', '--data', dir], { env })).stdout
  assert.equal(exported.trim(), readFileSync(first.caFile, 'utf8').trim())
  // No master key, no dev mode: refused with a message that says what to do.
  await assert.rejects(run(process.execPath, [MAIN, 'init', '--data', join(dir, 'other')], { env: { PATH: env.PATH } }), (e: Error & { stderr?: string, code?: number }) => {
    assert.equal(e.code, 2)
    assert.match(e.stderr ?? '', /THINGWARD_MASTER_KEY/)
    return true
  })
})

test('operator commands call the API with SigV4', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-cli-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const env = { PATH: process.env.PATH ?? '', THINGWARD_ACCESS_KEY_ID: p.creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: p.creds.secretAccessKey, THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  const cli = async (...args: string[]): Promise<string> => (await run(process.execPath, [MAIN, ...args], { env })).stdout
  const created = JSON.parse(await cli('things', 'create', 'lamp-1', '--attr', 'floor=2')) as { thingArn: string }
  assert.equal(created.thingArn, 'arn:aws:iot:local-1:000000000000:thing/lamp-1')
  assert.deepEqual((JSON.parse(await cli('things', 'describe', 'lamp-1')) as { attributes: unknown }).attributes, { floor: '2' })
  const cert = JSON.parse(await cli('certificates', 'create')) as { certificateId: string, keyPair: { PrivateKey: string } }
  assert.match(cert.keyPair.PrivateKey, /PRIVATE KEY/)
  await cli('certificates', 'revoke', cert.certificateId)
  assert.equal((await p.app.certificates.describe(cert.certificateId)).status, 'REVOKED')
  writeFileSync(join(dir, 'p.json'), JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }))
  await cli('policies', 'create', 'open', join(dir, 'p.json'))
  assert.deepEqual((JSON.parse(await cli('policies', 'list')) as { policies: Array<{ policyName: string }> }).policies.map(x => x.policyName), ['open'])
  // API errors come out as the AWS exception name, exit code 1, and change nothing.
  await assert.rejects(run(process.execPath, [MAIN, 'things', 'create', 'bad name'], { env }), (e: Error & { stderr?: string, code?: number }) => {
    assert.equal(e.code, 1)
    assert.match(e.stderr ?? '', /InvalidRequestException/)
    return true
  })
  // Without credentials: a clear message, nothing sent.
  await assert.rejects(run(process.execPath, [MAIN, 'things', 'list'], { env: { PATH: env.PATH, THINGWARD_ENDPOINT: p.endpoint } }), /THINGWARD_ACCESS_KEY_ID/)
})

test('provision writes 0600 bundles that openssl verifies against the chain, and refuses an unknown role', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-prov-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const env = { PATH: process.env.PATH ?? '', THINGWARD_ACCESS_KEY_ID: p.creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: p.creds.secretAccessKey, THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  const out = join(dir, 'fleet')
  const r = await run(process.execPath, [MAIN, 'provision', '--count', '12', '--role', 'smart-light', '--out', out, '--batch', '5', '--building', '7', '--floor', '3'], { env })
  assert.match(r.stderr, /provisioned 12 devices/)
  const name = 'light-00'
  for (const f of ['cert.pem', 'key.pem', 'ca.pem']) assert.equal(statSync(join(out, name, f)).mode & 0o777, 0o600, f)
  const [issuing, root] = p.caPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter(s => s.includes('BEGIN'))
  writeFileSync(join(dir, 'root.pem'), root)
  writeFileSync(join(dir, 'issuing.pem'), issuing)
  const v = await run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), '-purpose', 'sslclient', join(out, name, 'cert.pem')])
  assert.match(v.stdout, /OK/)
  const thing = await p.app.things.describeThing(name)
  assert.deepEqual([thing.typeName, thing.attributes], ['SmartLight', { building: '7', floor: '3' }])
  // A rerun skips what exists.
  const again = await run(process.execPath, [MAIN, 'provision', '--count', '12', '--role', 'smart-light', '--out', out], { env })
  assert.match(again.stderr, /provisioned 0 devices \(12 already present\)/)
  const before = (await p.app.things.listThings({}, undefined, 250)).items.length
  await assert.rejects(run(process.execPath, [MAIN, 'provision', '--count', '2', '--role', 'toaster', '--out', out], { env }), /unknown role/)
  assert.equal((await p.app.things.listThings({}, undefined, 250)).items.length, before)
})
