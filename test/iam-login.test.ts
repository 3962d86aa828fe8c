/**
 * Password sign-in (POST /thingward/login and `thingward login`): no default password, TOTP enrollment at first
 * use, recovery codes, MFA sessions, throttling with lockout, and the CLI end to end with temporary credentials.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { CreateThingCommand, ListThingsCommand } from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'
import type { TestPlatform } from './helpers/platform.ts'
import { api, code, sdk, userWithKey } from './helpers/iam.ts'
import type { Creds } from './helpers/iam.ts'
import { ApiError } from '../src/cli/client.ts'
import { ManualClock } from '../src/core/index.ts'

const run = promisify(execFile)
const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts')
const PASSWORD = 'a long and unguessable passphrase'

interface Login { status: string, credentials?: { accessKeyId: string, secretAccessKey: string, sessionToken: string, expiration: string }, secretBase32?: string, otpauthUri?: string, recoveryCodes?: string[], serialNumber?: string }

const login = async (p: TestPlatform, body: Record<string, unknown>): Promise<Login> => api(p, { accessKeyId: '', secretAccessKey: '' }).call<Login>('POST', '/thingward/login', { unsigned: true, body })
const credsOf = (l: Login): Creds => ({ accessKeyId: l.credentials?.accessKeyId ?? '', secretAccessKey: l.credentials?.secretAccessKey ?? '', sessionToken: l.credentials?.sessionToken ?? '' })
const denied = (e: unknown): boolean => e instanceof ApiError && e.status === 403 && e.type === 'AccessDeniedException' && /sign-in failed/.test(e.message)

test('password sign-in: no default password, TOTP enrollment at first use, MFA sessions, recovery codes used once', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  // The admin made by init has no password: nothing signs in with one.
  assert.equal((await api(p).call<{ passwordEnabled: boolean }>('GET', '/thingward/iam/users/admin')).passwordEnabled, false)
  await assert.rejects(login(p, { userName: 'admin', password: PASSWORD }), denied)
  await assert.rejects(login(p, { userName: 'admin', password: 'admin' }), denied)
  await assert.rejects(login(p, { userName: 'nobody', password: PASSWORD }), denied)

  await userWithKey(p, 'alice', ['operator'])
  await assert.rejects(api(p).call('PUT', '/thingward/iam/users/alice/login-profile', { body: { password: 'short' } }), (e: ApiError) => e.type === 'PasswordPolicyViolationException')
  await api(p).call('PUT', '/thingward/iam/users/alice/login-profile', { body: { password: PASSWORD } })
  await assert.rejects(login(p, { userName: 'alice', password: `${PASSWORD}!` }), denied)

  // First sign-in: the right password gets an enrollment, not credentials.
  const enroll = await login(p, { userName: 'alice', password: PASSWORD })
  assert.equal(enroll.status, 'MFA_ENROLLMENT_REQUIRED')
  assert.equal(enroll.credentials, undefined)
  assert.match(enroll.otpauthUri ?? '', /^otpauth:\/\/totp\/Thingward:alice\?secret=[A-Z2-7]+&/)
  const secret = enroll.secretBase32 ?? ''
  // A wrong code completes nothing.
  const wrong = code(secret, clock) === '123456' ? '654321' : '123456'
  await assert.rejects(login(p, { userName: 'alice', password: PASSWORD, totpCode: wrong }), denied)
  assert.equal((await api(p).call<{ mfa: string }>('GET', '/thingward/iam/users/alice')).mfa, 'pending')
  const first = await login(p, { userName: 'alice', password: PASSWORD, totpCode: code(secret, clock), durationSeconds: 900 })
  assert.equal(first.status, 'OK')
  assert.equal(first.recoveryCodes?.length, 10)
  assert.match(first.credentials?.accessKeyId ?? '', /^ASIA/)
  assert.equal((await api(p).call<{ mfa: string }>('GET', '/thingward/iam/users/alice')).mfa, 'active')

  const c = sdk(t, p, clock)
  await c.iot(credsOf(first)).send(new CreateThingCommand({ thingName: 'by-alice' }))
  const who = await api(p, credsOf(first)).call<{ arn: string, mfa: boolean, temporary: boolean }>('GET', '/thingward/iam/whoami')
  assert.deepEqual([who.arn, who.mfa, who.temporary], ['arn:aws:iam::000000000000:user/alice', true, true])

  // Enrolled: the password alone is not enough; the same code is not accepted twice.
  assert.equal((await login(p, { userName: 'alice', password: PASSWORD })).status, 'MFA_REQUIRED')
  await assert.rejects(login(p, { userName: 'alice', password: PASSWORD, totpCode: code(secret, clock) }), denied)
  clock.advance(30_000)
  assert.equal((await login(p, { userName: 'alice', password: PASSWORD, totpCode: code(secret, clock) })).status, 'OK')
  const rc = first.recoveryCodes?.[0] ?? ''
  assert.equal((await login(p, { userName: 'alice', password: PASSWORD, recoveryCode: rc.toLowerCase() })).status, 'OK')
  await assert.rejects(login(p, { userName: 'alice', password: PASSWORD, recoveryCode: rc }), denied)
  assert.equal((await p.app.audit.query({ action: 'iam.UseRecoveryCode' })).length, 1)
  // A password is required even with a valid code.
  clock.advance(30_000)
  await assert.rejects(login(p, { userName: 'alice', password: 'wrong password here', totpCode: code(secret, clock) }), denied)

  // Sign-ins are audited; no password, code or secret is in the log.
  assert.ok((await p.app.audit.query({ action: 'iam.Login', outcome: 'success' })).length >= 3)
  assert.ok((await p.app.audit.query({ action: 'iam.Login', outcome: 'denied' })).length >= 5)
  const all = JSON.stringify(await p.app.audit.query({ limit: 100_000 }))
  for (const s of [PASSWORD, secret, rc, first.credentials?.secretAccessKey ?? '?', first.credentials?.sessionToken ?? '?']) assert.ok(!all.includes(s), 'no secret in the audit log')

  // Changing one's password needs the current one.
  const session = api(p, credsOf(first))
  await assert.rejects(session.call('POST', '/thingward/iam/users/alice/password', { body: { oldPassword: 'not it at all', newPassword: 'another long passphrase' } }), (e: ApiError) => e.status === 403)
  await session.call('POST', '/thingward/iam/users/alice/password', { body: { oldPassword: PASSWORD, newPassword: 'another long passphrase' } })
  clock.advance(30_000)
  assert.equal((await login(p, { userName: 'alice', password: 'another long passphrase', totpCode: code(secret, clock) })).status, 'OK')
})

test('sign-in failures lock the user out (even with the right password), audited; an administrator can unlock', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  await userWithKey(p, 'bob', ['auditor'])
  await api(p).call('PUT', '/thingward/iam/users/bob/login-profile', { body: { password: PASSWORD } })
  for (let i = 0; i < 10; i++) await assert.rejects(login(p, { userName: 'bob', password: `guess number ${i} is wrong` }), denied)
  await assert.rejects(login(p, { userName: 'bob', password: PASSWORD }), (e: ApiError) => e.status === 429 && e.type === 'ThrottlingException')
  assert.equal((await p.app.iam.users.getUser('bob')).mfa, 'none', 'a locked-out sign-in starts no enrollment')
  const lockout = await p.app.audit.query({ action: 'iam.Lockout' })
  assert.equal(lockout.length, 1)
  assert.equal(lockout[0].target, 'arn:aws:iam::000000000000:user/bob')
  // Another user from the same address is not locked (the address limit is higher).
  await assert.rejects(login(p, { userName: 'nobody', password: PASSWORD }), denied)
  await api(p).call('POST', '/thingward/iam/users/bob/unlock')
  assert.equal((await login(p, { userName: 'bob', password: PASSWORD })).status, 'MFA_ENROLLMENT_REQUIRED')
  for (let i = 0; i < 10; i++) await assert.rejects(login(p, { userName: 'bob', password: `again ${i} wrong` }), denied)
  clock.advance(15 * 60_000)
  assert.equal((await login(p, { userName: 'bob', password: PASSWORD })).status, 'MFA_ENROLLMENT_REQUIRED', 'the lockout ends by itself')
})

test('CLI: init makes an admin user; iam users/keys commands; login enrolls TOTP and prints temporary credentials that the CLI then uses', async (t) => {
  const p = await startPlatform(t)
  const dir = mkdtempSync(join(tmpdir(), 'tw-iam-cli-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'ca.pem'), p.caPem)
  const base = { PATH: process.env.PATH ?? '', THINGWARD_ENDPOINT: p.endpoint, THINGWARD_CA_FILE: join(dir, 'ca.pem') }
  const admin = { ...base, THINGWARD_ACCESS_KEY_ID: p.creds.accessKeyId, THINGWARD_SECRET_ACCESS_KEY: p.creds.secretAccessKey }
  const cli = async (env: Record<string, string>, ...args: string[]): Promise<string> => (await run(process.execPath, [MAIN, ...args], { env })).stdout

  const admins = JSON.parse(await cli(admin, 'iam', 'users', 'get', 'admin')) as { roles: string[], passwordEnabled: boolean }
  assert.deepEqual([admins.roles, admins.passwordEnabled], [['admin'], false])
  await cli(admin, 'iam', 'users', 'create', 'carol', '--role', 'auditor')
  await cli({ ...admin, THINGWARD_PASSWORD: PASSWORD }, 'iam', 'users', 'set-password', 'carol')
  const key = JSON.parse(await cli(admin, 'iam', 'keys', 'create', 'carol')) as { accessKeyId: string }
  assert.match(key.accessKeyId, /^AKIA/)
  assert.equal((JSON.parse(await cli(admin, 'iam', 'keys', 'list', 'carol')) as { accessKeys: unknown[] }).accessKeys.length, 1)

  const first = JSON.parse(await cli({ ...base, THINGWARD_PASSWORD: PASSWORD }, 'login', '--user', 'carol', '--json')) as Login
  assert.equal(first.status, 'MFA_ENROLLMENT_REQUIRED')
  const out = await cli({ ...base, THINGWARD_PASSWORD: PASSWORD }, 'login', '--user', 'carol', '--totp', code(first.secretBase32 ?? '', p.app.clock))
  const exported = Object.fromEntries([...out.matchAll(/^export (\w+)=(.+)$/gm)].map(m => [m[1], m[2]]))
  assert.match(exported.AWS_ACCESS_KEY_ID ?? '', /^ASIA/)
  const session = { ...base, ...exported }
  assert.equal((JSON.parse(await cli(session, 'iam', 'whoami')) as { mfa: boolean }).mfa, true)
  await cli(session, 'things', 'list')
  await assert.rejects(run(process.execPath, [MAIN, 'things', 'create', 'nope'], { env: session }), (e: Error & { stderr?: string, code?: number }) => {
    assert.equal(e.code, 1)
    assert.match(e.stderr ?? '', /AccessDeniedException/)
    return true
  })
  assert.deepEqual((await p.iot().send(new ListThingsCommand({}))).things, [])
})
