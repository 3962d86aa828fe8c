/**
 * Pure parts of operator identities: HOTP/TOTP against the RFC test vectors, base32, recovery codes, scrypt
 * passwords and the password rules, the lockout throttle, trust policies, built-in policies and the route table.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ManualClock } from '../src/core/index.ts'
import {
  AuthThrottle, BUILTIN_POLICY_NAMES, FailureThrottle, base32Decode, base32Encode, builtinPolicy, checkPasswordPolicy, evaluateTrust, hashPassword,
  hashRecoveryCode, hotp, newRecoveryCodes, otpauthUri, parseIdentityPolicy, parseTrustPolicy, totp, verifyPassword, verifyTotp,
} from '../src/iam/index.ts'
import { ROUTE_ACTIONS, queryAction, routeAuthorization } from '../src/http/authorization.ts'
import { compilePolicies } from '../src/policy/index.ts'

const RFC_SECRET = Buffer.from('12345678901234567890')

test('HOTP matches RFC 4226 Appendix D for counters 0-9', () => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']
  expected.forEach((code, counter) => assert.equal(hotp(RFC_SECRET, counter), code, `counter ${counter}`))
})

test('TOTP matches RFC 6238 Appendix B (SHA-1, 8 digits) at every listed time', () => {
  const table: Array<[number, string]> = [[59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'], [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130']]
  for (const [t, code] of table) assert.equal(hotp(RFC_SECRET, Math.floor(t / 30), 8), code, `T=${t}`)
})

test('TOTP verification: one step of drift either side, not two; a code is accepted once (RFC 6238 §5.2)', () => {
  const now = 1_700_000_000_000
  const step = Math.floor(now / 30_000)
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now), now, 0), step)
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now - 30_000), now, 0), step - 1)
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now + 30_000), now, 0), step + 1)
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now - 60_000), now, 0), undefined)
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now), now, step), undefined, 'replay of an accepted step')
  assert.equal(verifyTotp(RFC_SECRET, totp(RFC_SECRET, now - 30_000), now, step), undefined, 'an older step after a newer one')
  for (const bad of ['', '12345', '1234567', 'abcdef', ' 123456']) assert.equal(verifyTotp(RFC_SECRET, bad, now, 0), undefined, bad)
})

test('base32 (RFC 4648 §10 vectors) round-trips and refuses foreign characters; otpauth URIs carry the parameters', () => {
  const vectors: Array<[string, string]> = [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']]
  for (const [plain, enc] of vectors) {
    assert.equal(base32Encode(Buffer.from(plain)), enc)
    assert.equal(base32Decode(`${enc.toLowerCase()}===`)?.toString(), plain)
  }
  assert.equal(base32Decode('MZ1W'), undefined)
  const uri = new URL(otpauthUri('Thingward', 'alice', RFC_SECRET))
  assert.equal(uri.protocol, 'otpauth:')
  assert.deepEqual([uri.host, uri.pathname], ['totp', '/Thingward:alice'])
  assert.deepEqual([uri.searchParams.get('secret'), uri.searchParams.get('digits'), uri.searchParams.get('period'), uri.searchParams.get('algorithm')], [base32Encode(RFC_SECRET), '6', '30', 'SHA1'])
})

test('recovery codes: 10 distinct 80-bit codes; the stored hash ignores case, spaces and dashes', () => {
  const codes = newRecoveryCodes()
  assert.equal(new Set(codes).size, 10)
  for (const c of codes) assert.match(c, /^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/)
  assert.equal(hashRecoveryCode(codes[0]), hashRecoveryCode(` ${codes[0].toLowerCase().replace(/-/g, ' ')} `))
  assert.notEqual(hashRecoveryCode(codes[0]), hashRecoveryCode(codes[1]))
})

test('passwords: scrypt hashes verify, are salted, refuse tampering; the policy wants 12+ characters without the user name', async () => {
  const h = await hashPassword('correct horse battery', 12)
  assert.match(h, /^\$scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/)
  assert.equal(await verifyPassword('correct horse battery', h), true)
  assert.equal(await verifyPassword('correct horse batterY', h), false)
  assert.notEqual(await hashPassword('correct horse battery', 12), h)
  assert.equal(await verifyPassword('correct horse battery', h.replace('ln=12', 'ln=30')), false, 'absurd cost refused')
  assert.equal(await verifyPassword('correct horse battery', 'plain'), false)
  assert.throws(() => checkPasswordPolicy('short', 'alice'), { code: 'ERR_IAM_PASSWORD_POLICY' })
  assert.throws(() => checkPasswordPolicy('alice-is-the-best', 'alice'), { code: 'ERR_IAM_PASSWORD_POLICY' })
  assert.throws(() => checkPasswordPolicy(123456789012, 'alice'), { code: 'ERR_IAM_PASSWORD_POLICY' })
  assert.equal(checkPasswordPolicy('a long enough passphrase', 'alice'), 'a long enough passphrase')
})

test('throttle: the Nth failure in the window locks the key for the lockout period; old failures slide out', () => {
  const clock = new ManualClock(0)
  const t = new FailureThrottle(clock, { maxFailures: 3, windowMs: 60_000, lockoutMs: 300_000 })
  assert.equal(t.fail('k'), undefined)
  clock.advance(61_000)
  assert.equal(t.fail('k'), undefined)
  assert.equal(t.fail('k'), undefined, 'the first failure slid out of the window')
  assert.equal(t.fail('k'), 61_000 + 300_000, 'third failure in the window: locked')
  assert.equal(t.lockedUntil('k'), 361_000)
  assert.equal(t.lockedUntil('other'), undefined)
  t.succeed('k')
  assert.equal(t.lockedUntil('k'), 361_000, 'a success does not end a lockout')
  clock.set(361_000)
  assert.equal(t.lockedUntil('k'), undefined)
  const both = new AuthThrottle(clock, { maxFailures: 2, windowMs: 60_000, lockoutMs: 1000 }, { maxFailures: 3, windowMs: 60_000, lockoutMs: 1000 })
  both.fail('user:a', '10.0.0.1')
  assert.deepEqual(both.fail('user:b', '10.0.0.1'), {})
  assert.deepEqual(both.fail('user:c', '10.0.0.1'), { lockedAddressUntilMs: 362_000 })
  assert.deepEqual(both.locked('user:z', '10.0.0.1'), { scope: 'address', untilMs: 362_000 })
  assert.equal(both.locked('user:a', '10.0.0.2'), undefined)
})

test('trust policies: Principal is required and checked; a statement naming the caller, the account, or a Deny decides', () => {
  const roleArn = 'arn:aws:iam::000000000000:role/deployer'
  const alice = 'arn:aws:iam::000000000000:user/alice'
  const trust = parseTrustPolicy(JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: alice }, Action: 'sts:AssumeRole', Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } },
      { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:root' }, Action: 'sts:AssumeRole' },
      { Effect: 'Deny', Principal: '*', Action: 'sts:AssumeRole', Condition: { IpAddress: { 'aws:SourceIp': '203.0.113.0/24' } } },
    ],
  }))
  assert.deepEqual(evaluateTrust(trust, roleArn, [alice], '000000000000', { 'aws:MultiFactorAuthPresent': true }), { explicitDeny: false, allowedDirectly: true, allowedForAccount: true })
  assert.deepEqual(evaluateTrust(trust, roleArn, [alice], '000000000000', { 'aws:MultiFactorAuthPresent': false }), { explicitDeny: false, allowedDirectly: false, allowedForAccount: true })
  assert.equal(evaluateTrust(trust, roleArn, [alice], '000000000000', { 'aws:SourceIp': '203.0.113.9' }).explicitDeny, true)
  assert.deepEqual(evaluateTrust(trust, roleArn, [alice], '111111111111', {}), { explicitDeny: false, allowedDirectly: false, allowedForAccount: false }, 'another account')
  for (const bad of [
    { Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole' }] },
    { Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] },
    { Statement: [{ Effect: 'Allow', Principal: { AWS: 'alice' }, Action: 'sts:AssumeRole' }] },
    { Statement: [{ Effect: 'Allow', Principal: '*', Action: 'iot:*' }] },
  ]) assert.throws(() => parseTrustPolicy(JSON.stringify(bad)), { code: 'ERR_POLICY_MALFORMED' }, JSON.stringify(bad))
})

test('built-in policies parse with the engine and say what their roles promise', () => {
  const authorize = (name: (typeof BUILTIN_POLICY_NAMES)[number], action: string, resource = '*', username = 'bob'): boolean => {
    const p = builtinPolicy(name)
    return compilePolicies([{ name, versionId: '1', document: parseIdentityPolicy(p.document) }], { 'aws:username': username }).authorize(action, resource).allowed
  }
  for (const n of BUILTIN_POLICY_NAMES) parseIdentityPolicy(builtinPolicy(n).document)
  assert.equal(authorize('ThingwardAdministrator', 'iam:DeleteUser'), true)
  assert.equal(authorize('ThingwardAuditor', 'iot:ListThings'), true)
  assert.equal(authorize('ThingwardAuditor', 'thingward:ReadAudit'), true)
  assert.equal(authorize('ThingwardAuditor', 'iot:CreateThing', 'arn:aws:iot:r:1:thing/x'), false)
  assert.equal(authorize('ThingwardAuditor', 'thingward:PruneAudit'), false)
  assert.equal(authorize('ThingwardProvisioner', 'iot:CreateThing', 'arn:aws:iot:r:1:thing/x'), true)
  assert.equal(authorize('ThingwardProvisioner', 'iot:CreatePolicy', 'arn:aws:iot:r:1:policy/p'), false)
  assert.equal(authorize('ThingwardProvisioner', 'thingward:ReadAudit'), false)
  assert.equal(authorize('ThingwardOperator', 'iot:DeletePolicy', 'arn:aws:iot:r:1:policy/p'), true)
  assert.equal(authorize('ThingwardOperator', 'iam:CreateUser', 'arn:aws:iam::1:user/eve'), false)
  // Self-service: one's own keys, nobody else's.
  assert.equal(authorize('ThingwardOperator', 'iam:CreateAccessKey', 'arn:aws:iam::1:user/bob'), true)
  assert.equal(authorize('ThingwardOperator', 'iam:CreateAccessKey', 'arn:aws:iam::1:user/alice'), false)
})

test('route table: lookups by method and pattern, HEAD falls back to GET, STS dispatches on Action, unknown is undefined', () => {
  assert.equal(routeAuthorization('POST', '/things/:thingName')?.kind, 'action')
  assert.equal(routeAuthorization('HEAD', '/things'), ROUTE_ACTIONS['GET /things'])
  assert.equal(routeAuthorization('GET', '/no-such-route'), undefined)
  assert.equal(routeAuthorization('POST', '/thingward/login')?.kind, 'public')
  const sts = routeAuthorization('POST', '/')
  assert.ok(sts?.kind === 'dispatch')
  const input = (body: string): Parameters<typeof sts.resolve>[0] => ({ params: {}, query: {}, body: Buffer.from(body), arn: { region: 'r', accountId: '1' } })
  assert.equal(sts.resolve(input('Action=GetSessionToken&Version=2011-06-15'))?.kind, 'authenticated')
  assert.equal(sts.resolve(input('Action=DeleteEverything&Version=2011-06-15')), undefined)
  assert.equal(queryAction(Buffer.from('Version=2011-06-15&Action=AssumeRole')), 'AssumeRole')
  const create = ROUTE_ACTIONS['POST /things/:thingName']
  assert.ok(create.kind === 'action')
  assert.deepEqual(create.permissions({ params: { thingName: 'lamp' }, query: {}, body: Buffer.alloc(0), arn: { region: 'r', accountId: '1' } }), [{ action: 'iot:CreateThing', resource: 'arn:aws:iot:r:1:thing/lamp' }])
})
