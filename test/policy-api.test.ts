import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { AttachPolicyCommand, CreateKeysAndCertificateCommand, CreatePolicyCommand, TestAuthorizationCommand } from '@aws-sdk/client-iot'
import { ROLES, ROLE_INFO, roleTemplates, SHARED_CREDENTIAL_POLICY } from '../src/policy/index.ts'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')
const ARN = 'arn:aws:iot:local-1:000000000000'

async function cli (p: TestPlatform, t: { after: (fn: () => void) => void }, ...args: string[]): Promise<{ stdout: string, code: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-pol-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const env = { PATH: process.env.PATH ?? '', THINGWARD_ACCESS_KEY_ID: p.creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: p.creds.secretAccessKey, THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  return run(process.execPath, [MAIN, ...args], { env, maxBuffer: 16 * 1024 * 1024 }).then(r => ({ stdout: r.stdout, code: 0 }), (e: { stdout: string, code: number }) => ({ stdout: e.stdout, code: e.code }))
}

test('blast radius over the registry: the 2,000-device seed fleet gives 0.05 % per device, a shared wildcard credential 100 %', { timeout: 240_000 }, async (t) => {
  const p = await startPlatform(t)
  const caller = { actor: 'test' }
  const templates = roleTemplates({ region: 'local-1', accountId: '000000000000' })
  for (const role of ROLES) {
    await p.app.policies.createPolicy(caller, `role-${role}`, templates[role])
    await p.app.things.createThingType(caller, { thingTypeName: ROLE_INFO[role].thingType })
    for (let f = 1; f <= 20; f++) {
      const items = []
      for (let n = 1; n <= ROLE_INFO[role].perFloor; n++) items.push({ thingName: `${ROLE_INFO[role].prefix}-${f}-${n}`, attributes: { building: '1', floor: String(f) } })
      await p.app.provisioning.provision(caller, { policyName: `role-${role}`, thingTypeName: ROLE_INFO[role].thingType, items })
    }
  }
  const iot = p.iot()
  await iot.send(new CreatePolicyCommand({ policyName: 'fleet-wide', policyDocument: SHARED_CREDENTIAL_POLICY }))
  const shared = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  await iot.send(new AttachPolicyCommand({ policyName: 'fleet-wide', target: shared.certificateArn }))

  const { stdout } = await cli(p, t, 'blast-radius', '--top', '3', '--json')
  const report = JSON.parse(stdout) as { totalThings: number, principals: Array<{ principalId: string, things: { share: number } }>, lines: string[] }
  assert.equal(report.totalThings, 2000)
  assert.equal(report.principals[0].principalId, shared.certificateArn, 'the shared credential ranks first')
  assert.equal(report.principals[0].things.share, 1)
  const text = report.lines.join('\n')
  assert.match(text, /things 2000\/2000 \(100 %\)/)
  for (const role of ['TemperatureSensor', 'OccupancySensor', 'SmartLight', 'DoorLock']) {
    assert.match(text, new RegExp(`${role}\\s+×\\d+\\s+every principal reaches 1/2000 things \\(0\\.05 %\\)`), role)
  }
})

test('TestAuthorization (real AWS SDK) explains allow, implicit deny and explicit deny with the deciding policies', async (t) => {
  const p = await startPlatform(t)
  const d = await p.device('temperature-sensor', 'temp-1')
  const iot = p.iot()
  const own = `${ARN}:topic/building/1/floor/1/temperature/temp-1`
  const other = `${ARN}:topic/building/1/floor/1/temperature/temp-2`
  const r = await iot.send(new TestAuthorizationCommand({
    principal: d.certificateArn, clientId: 'temp-1',
    authInfos: [{ actionType: 'PUBLISH', resources: [own] }, { actionType: 'PUBLISH', resources: [other] }, { actionType: 'CONNECT', resources: [`${ARN}:client/temp-1`] }],
  }))
  assert.deepEqual(r.authResults?.map(a => a.authDecision), ['ALLOWED', 'IMPLICIT_DENY', 'ALLOWED'])
  assert.deepEqual(r.authResults?.[0].allowed?.policies?.map(x => x.policyName), ['role-temperature-sensor'])
  await iot.send(new CreatePolicyCommand({ policyName: 'deny-publish', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iot:Publish', Resource: '*' }] }) }))
  const r2 = await iot.send(new TestAuthorizationCommand({ principal: d.certificateArn, clientId: 'temp-1', policyNamesToAdd: ['deny-publish'], authInfos: [{ actionType: 'PUBLISH', resources: [own] }] }))
  assert.equal(r2.authResults?.[0].authDecision, 'EXPLICIT_DENY')
  assert.deepEqual(r2.authResults?.[0].denied?.explicitDeny?.policies?.map(x => x.policyName), ['deny-publish'])
  await assert.rejects(iot.send(new TestAuthorizationCommand({ principal: `${ARN}:cert/${'0'.repeat(64)}`, authInfos: [{ actionType: 'PUBLISH', resources: [own] }] })), { name: 'ResourceNotFoundException' })
  await assert.rejects(iot.send(new TestAuthorizationCommand({ principal: d.certificateArn, authInfos: [] })), { name: 'InvalidRequestException' })
  const cmd = await cli(p, t, 'policies', 'test', d.certificateArn, '--action', 'publish', '--resource', other, '--client-id', 'temp-1')
  assert.equal((JSON.parse(cmd.stdout) as { authResults: Array<{ authDecision: string }> }).authResults[0].authDecision, 'IMPLICIT_DENY')
})

test('policy lint through the API and CLI: the role templates are clean, a wildcard policy is flagged and exits 1', async (t) => {
  const p = await startPlatform(t)
  await p.device('door-lock', 'lock-1')
  const clean = await cli(p, t, 'policy', 'lint', 'role-door-lock')
  assert.equal(clean.code, 0, clean.stdout)
  const dir = mkdtempSync(join(tmpdir(), 'tw-lint-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'bad.json'), SHARED_CREDENTIAL_POLICY)
  const bad = await cli(p, t, 'policy', 'lint', '--file', join(dir, 'bad.json'))
  assert.equal(bad.code, 1)
  assert.match(bad.stdout, /TWP001/)
  assert.match(bad.stdout, /TWP002/)
})
