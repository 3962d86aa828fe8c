/**
 * Operator identities end to end with the real AWS SDKs (@aws-sdk/client-iot, @aws-sdk/client-sts) against the
 * HTTPS server: role-based authorization of every route through the one route table, AccessDenied that changes
 * nothing and is audited with the deciding statement, STS GetSessionToken/AssumeRole with expiry, MFA in policies
 * and trust policies, and SigV4 failure throttling with lockout.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CreateThingCommand, DeleteThingCommand, DescribeThingCommand, ListThingsCommand } from '@aws-sdk/client-iot'
import { AssumeRoleCommand, GetCallerIdentityCommand, GetSessionTokenCommand } from '@aws-sdk/client-sts'
import { startPlatform } from './helpers/platform.ts'
import { api, code, enrollMfa, sdk, userWithKey } from './helpers/iam.ts'
import type { Creds } from './helpers/iam.ts'
import { ApiError } from '../src/cli/client.ts'
import { ManualClock } from '../src/core/index.ts'
import { signRequest } from '../src/core/sigv4.ts'
import { createHttpServer } from '../src/app.ts'
import { ROUTE_ACTIONS, registeredRoutes, routesWithoutAuthorization } from '../src/http/authorization.ts'
import { PUBLIC_PREFIXES } from '../src/http/server.ts'

type SdkError = Error & { $metadata?: { httpStatusCode?: number } }

const tempCreds = (c: { AccessKeyId?: string, SecretAccessKey?: string, SessionToken?: string } | undefined): Creds => ({
  accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken ?? '',
})

test('an auditor can read the audit log and list things, gets AccessDeniedException on CreateThing, and nothing changes', async (t) => {
  const p = await startPlatform(t)
  const { iot } = sdk(t, p)
  const admin = iot(p.creds)
  await admin.send(new CreateThingCommand({ thingName: 'lamp-1' }))
  const auditor = await userWithKey(p, 'auditor-1', ['auditor'])

  const listed = await iot(auditor).send(new ListThingsCommand({}))
  assert.deepEqual(listed.things?.map(x => x.thingName), ['lamp-1'])
  assert.equal((await iot(auditor).send(new DescribeThingCommand({ thingName: 'lamp-1' }))).thingName, 'lamp-1')
  const events = await api(p, auditor).call<{ events: Array<{ action: string }> }>('GET', '/thingward/audit/events', { query: { action: 'iot.CreateThing' } })
  assert.equal(events.events.length, 1)

  const changesBefore = await p.auditCount()
  await assert.rejects(iot(auditor).send(new CreateThingCommand({ thingName: 'intruder' })), (e: SdkError) => {
    assert.equal(e.name, 'AccessDeniedException')
    assert.equal(e.$metadata?.httpStatusCode, 403)
    assert.match(e.message, /user\/auditor-1 is not authorized to perform: iot:CreateThing on resource: arn:aws:iot:local-1:000000000000:thing\/intruder/)
    assert.doesNotMatch(e.message, /Thingward(Auditor|Administrator)/, 'the client is not told which policy decided')
    return true
  })
  assert.deepEqual((await admin.send(new ListThingsCommand({}))).things?.map(x => x.thingName), ['lamp-1'])
  assert.equal(await p.auditCount(), changesBefore, 'no change event')
  const denial = (await p.app.audit.query({ action: 'iot.CreateThing', outcome: 'denied' })).at(-1)
  assert.equal(denial?.actor, 'user/auditor-1')
  assert.equal(denial?.target, 'arn:aws:iot:local-1:000000000000:thing/intruder')
  assert.equal(denial?.errorCode, 'ERR_AUTH_ACCESS_DENIED')
  assert.equal(denial?.statement, 'implicitDeny: no statement matched')

  // Audit administration and IAM administration are not the auditor's either.
  await assert.rejects(api(p, auditor).call('POST', '/thingward/audit/prune', { body: { before: 1 } }), (e: ApiError) => e.status === 403 && e.type === 'AccessDeniedException')
  await assert.rejects(api(p, auditor).call('POST', '/thingward/iam/users/eve', { body: {} }), (e: ApiError) => e.status === 403)
  assert.equal(await p.app.iam.users.getUserRecord('eve'), undefined)
  // Self-service: the auditor sees its own keys, not the admin's.
  assert.equal((await api(p, auditor).call<{ accessKeys: unknown[] }>('GET', '/thingward/iam/users/auditor-1/access-keys')).accessKeys.length, 1)
  await assert.rejects(api(p, auditor).call('POST', '/thingward/iam/users/admin/access-keys'), (e: ApiError) => e.status === 403)
})

test('an explicit Deny wins over the admin role and is audited with the deciding statement', async (t) => {
  const p = await startPlatform(t)
  const { iot } = sdk(t, p)
  const ops = await userWithKey(p, 'ops', ['admin'])
  await api(p).call('POST', '/thingward/iam/policies/NoDeletes', {
    body: { policyDocument: { Version: '2012-10-17', Statement: [{ Sid: 'NoThingDeletes', Effect: 'Deny', Action: 'iot:DeleteThing', Resource: 'arn:aws:iot:*:*:thing/prod-*' }] } },
  })
  await api(p).call('PUT', '/thingward/iam/users/ops/policies/NoDeletes')
  await iot(ops).send(new CreateThingCommand({ thingName: 'prod-1' }))
  await iot(ops).send(new CreateThingCommand({ thingName: 'lab-1' }))
  await iot(ops).send(new DeleteThingCommand({ thingName: 'lab-1' }))
  await assert.rejects(iot(ops).send(new DeleteThingCommand({ thingName: 'prod-1' })), (e: SdkError) => {
    assert.equal(e.name, 'AccessDeniedException')
    assert.match(e.message, /explicit deny/)
    return true
  })
  assert.equal((await iot(p.creds).send(new DescribeThingCommand({ thingName: 'prod-1' }))).thingName, 'prod-1')
  const denial = (await p.app.audit.query({ action: 'iot.DeleteThing', outcome: 'denied' })).at(-1)
  assert.equal(denial?.statement, 'explicitDeny by policy NoDeletes v1 statement NoThingDeletes')
})

test('STS GetSessionToken: temporary credentials work with the real SDKs until expiry and fail after it', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  const ops = await userWithKey(p, 'ops', ['operator'])
  let clients = sdk(t, p, clock)
  const got = await clients.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))
  assert.match(got.Credentials?.AccessKeyId ?? '', /^ASIA[A-Z2-7]{16}$/)
  assert.ok((got.Credentials?.SessionToken ?? '').length > 40)
  assert.equal(got.Credentials?.Expiration?.getTime(), clock.nowMs() + 900_000)
  const temp = tempCreds(got.Credentials)

  await clients.iot(temp).send(new CreateThingCommand({ thingName: 'made-with-sts' }))
  const who = await clients.sts(temp).send(new GetCallerIdentityCommand({}))
  assert.deepEqual([who.Arn, who.Account], ['arn:aws:iam::000000000000:user/ops', '000000000000'])
  assert.equal((await p.app.audit.query({ action: 'iot.CreateThing' })).at(-1)?.actor, 'user/ops')

  // The session token is required, and must be the one issued.
  await assert.rejects(clients.iot({ accessKeyId: temp.accessKeyId, secretAccessKey: temp.secretAccessKey }).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  await assert.rejects(clients.iot({ ...temp, sessionToken: `${temp.sessionToken ?? ''}x` }).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  // A long-term key with a session token is refused too.
  await assert.rejects(clients.iot({ ...ops, sessionToken: 'x' }).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  // GetSessionToken cannot be called with temporary credentials (AWS).
  await assert.rejects(clients.sts(temp).send(new GetSessionTokenCommand({})), (e: SdkError) => e.name === 'AccessDenied' && e.$metadata?.httpStatusCode === 403)
  // Durations outside 15 minutes to 12 hours are refused.
  await assert.rejects(clients.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 899 })), (e: SdkError) => e.name === 'ValidationError')
  await assert.rejects(clients.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 43_201 })), (e: SdkError) => e.name === 'ValidationError')

  clock.advance(899_000)
  clients = sdk(t, p, clock)
  assert.ok((await clients.iot(temp).send(new ListThingsCommand({}))).things?.some(x => x.thingName === 'made-with-sts'), 'valid just before expiry')
  clock.advance(1000)
  clients = sdk(t, p, clock)
  await assert.rejects(clients.iot(temp).send(new CreateThingCommand({ thingName: 'too-late' })), (e: SdkError) => {
    assert.equal(e.name, 'ExpiredTokenException')
    assert.equal(e.$metadata?.httpStatusCode, 403)
    return true
  })
  await assert.rejects(clients.sts(temp).send(new GetCallerIdentityCommand({})), (e: SdkError) => {
    assert.equal(e.name, 'ExpiredTokenException')
    assert.equal(e.$metadata?.httpStatusCode, 400)
    return true
  })
  await assert.rejects(p.app.things.describeThing('too-late'))
  assert.equal((await p.app.audit.query({ action: 'http.authenticate', outcome: 'denied' })).at(-1)?.errorCode, 'ERR_AUTH_TOKEN_EXPIRED')
  // The long-term key still works.
  await clients.iot(ops).send(new ListThingsCommand({}))
})

test('MFA: aws:MultiFactorAuthPresent is absent for keys, false for sessions without MFA, true only with a valid code', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  const ops = await userWithKey(p, 'ops', ['operator'])
  // Deleting things needs MFA (IAM UG reference_policies_examples_aws_mfa-dates): Deny when MFA is false or absent.
  await api(p).call('POST', '/thingward/iam/policies/DeleteNeedsMfa', {
    body: { policyDocument: { Version: '2012-10-17', Statement: [{ Sid: 'MfaForDelete', Effect: 'Deny', Action: 'iot:DeleteThing', Resource: '*', Condition: { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } } }] } },
  })
  await api(p).call('PUT', '/thingward/iam/users/ops/policies/DeleteNeedsMfa')
  const { secret } = await enrollMfa(p, 'ops', clock)
  clock.advance(30_000)
  let c = sdk(t, p, clock)
  await c.iot(ops).send(new CreateThingCommand({ thingName: 'a' }))
  await assert.rejects(c.iot(ops).send(new DeleteThingCommand({ thingName: 'a' })), { name: 'AccessDeniedException' }, 'long-term key: key absent, IfExists denies')
  const plain = tempCreds((await c.sts(ops).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials)
  await assert.rejects(c.iot(plain).send(new DeleteThingCommand({ thingName: 'a' })), { name: 'AccessDeniedException' }, 'session without MFA')
  assert.deepEqual(await api(p, plain).call('GET', '/thingward/iam/whoami').then(w => w.mfa), false)

  // A wrong code, a code for another serial, and a replayed code are refused, audited, and issue nothing.
  const serial = 'arn:aws:iam::000000000000:mfa/ops'
  const wrong = code(secret, clock) === '000000' ? '111111' : '000000'
  await assert.rejects(c.sts(ops).send(new GetSessionTokenCommand({ SerialNumber: serial, TokenCode: wrong })), { name: 'AccessDenied' })
  await assert.rejects(c.sts(ops).send(new GetSessionTokenCommand({ SerialNumber: 'arn:aws:iam::000000000000:mfa/admin', TokenCode: code(secret, clock) })), { name: 'AccessDenied' })
  const good = code(secret, clock)
  const mfa = tempCreds((await c.sts(ops).send(new GetSessionTokenCommand({ SerialNumber: serial, TokenCode: good, DurationSeconds: 900 }))).Credentials)
  await assert.rejects(c.sts(ops).send(new GetSessionTokenCommand({ SerialNumber: serial, TokenCode: good })), { name: 'AccessDenied' }, 'replay')
  assert.equal((await p.app.audit.query({ action: 'sts.GetSessionToken', outcome: 'denied' })).length, 3)
  assert.equal((await api(p, mfa).call('GET', '/thingward/iam/whoami')).mfa, true)
  await c.iot(mfa).send(new DeleteThingCommand({ thingName: 'a' }))
  await assert.rejects(p.app.things.describeThing('a'))

  // Role chaining keeps the MFA state; AssumeRole with a code gives an MFA session.
  await api(p).call('POST', '/thingward/iam/roles/deleter', {
    body: { assumeRolePolicyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::000000000000:user/ops' }, Action: 'sts:AssumeRole', Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } } }] } },
  })
  await api(p).call('PUT', '/thingward/iam/roles/deleter/policies/ThingwardOperator')
  const roleArn = 'arn:aws:iam::000000000000:role/deleter'
  await assert.rejects(c.sts(ops).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'no-mfa' })), (e: SdkError) => e.name === 'AccessDenied' && /sts:AssumeRole/.test(e.message))
  clock.advance(30_000)
  c = sdk(t, p, clock)
  const assumed = await c.sts(ops).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'with-mfa', SerialNumber: serial, TokenCode: code(secret, clock), DurationSeconds: 900 }))
  assert.equal(assumed.AssumedRoleUser?.Arn, 'arn:aws:sts::000000000000:assumed-role/deleter/with-mfa')
  const role = tempCreds(assumed.Credentials)
  const roleWho = await api(p, role).call<{ arn: string, mfa: boolean, type: string }>('GET', '/thingward/iam/whoami')
  assert.deepEqual([roleWho.arn, roleWho.mfa, roleWho.type], ['arn:aws:sts::000000000000:assumed-role/deleter/with-mfa', true, 'AssumedRole'])
  await c.iot(role).send(new CreateThingCommand({ thingName: 'b' }))
  assert.equal((await p.app.audit.query({ action: 'iot.CreateThing' })).at(-1)?.actor, 'assumed-role/deleter/with-mfa')
  const chained = await c.sts(mfa).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'chained', DurationSeconds: 900 }))
  assert.equal((await api(p, tempCreds(chained.Credentials)).call('GET', '/thingward/iam/whoami')).mfa, true)
  // Role chaining is limited to one hour.
  await assert.rejects(c.sts(mfa).send(new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: 'long', DurationSeconds: 3601 })), { name: 'ValidationError' })
})

test('AssumeRole: account trust needs sts:AssumeRole in the caller\'s policy; session policies are refused; deleting the role ends its sessions', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  const c = sdk(t, p, clock)
  const auditor = await userWithKey(p, 'aud', ['auditor'])
  await assert.rejects(c.sts(auditor).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/admin', RoleSessionName: 'escalate' })), (e: SdkError) => {
    assert.equal(e.name, 'AccessDenied')
    assert.equal(e.$metadata?.httpStatusCode, 403)
    return true
  })
  assert.equal((await p.app.audit.query({ action: 'sts.AssumeRole', outcome: 'denied' })).at(-1)?.reason, 'identity-policy-no-allow')
  await assert.rejects(c.sts(auditor).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/nope', RoleSessionName: 's1' })), { name: 'AccessDenied' })

  // The admin may assume a built-in role (account trust + Action "*").
  const prov = await c.sts(p.creds).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/provisioner', RoleSessionName: 'factory', DurationSeconds: 900 }))
  const provCreds = tempCreds(prov.Credentials)
  await c.iot(provCreds).send(new CreateThingCommand({ thingName: 'fresh' }))
  await assert.rejects(c.iot(provCreds).send(new DeleteThingCommand({ thingName: 'fresh' })), { name: 'AccessDeniedException' })
  await assert.rejects(c.sts(p.creds).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/provisioner', RoleSessionName: 'xx', Policy: '{"Version":"2012-10-17","Statement":[]}' })), { name: 'ValidationError' })
  await assert.rejects(c.sts(p.creds).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/provisioner', RoleSessionName: 'xx', DurationSeconds: 3601 })), { name: 'ValidationError' })

  await api(p).call('POST', '/thingward/iam/roles/temp', {})
  await api(p).call('PUT', '/thingward/iam/roles/temp/policies/ThingwardAuditor')
  const temp = tempCreds((await c.sts(p.creds).send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/temp', RoleSessionName: 'xx', DurationSeconds: 900 }))).Credentials)
  await c.iot(temp).send(new ListThingsCommand({}))
  await api(p).call('DELETE', '/thingward/iam/roles/temp')
  await assert.rejects(c.iot(temp).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
})

test('every registered route has an authorization entry, and a route without one is denied (fail closed)', async (t) => {
  const p = await startPlatform(t)
  assert.deepEqual(routesWithoutAuthorization(p.http), [])
  const routes = registeredRoutes(p.http)
  assert.ok(routes.length > 100, `${routes.length} routes`)
  // Only the public endpoints are public.
  for (const r of routes) {
    const [method, url] = r.split(' ')
    const entry = ROUTE_ACTIONS[`${method === 'HEAD' ? 'GET' : method} ${url}`]
    if (entry.kind === 'public') assert.ok(url === '/thingward/login' || PUBLIC_PREFIXES.some(x => url === x || url.startsWith(`${x}/`) || url.startsWith(`${x}.`)), r)
  }

  // A second server over the same app, with a route added that nobody mapped.
  const server = await createHttpServer(p.app)
  t.after(() => server.close())
  let ran = false
  server.post('/thingward/unmapped', async () => { ran = true; return {} })
  await server.ready()
  assert.deepEqual(routesWithoutAuthorization(server), ['POST /thingward/unmapped'])
  const host = 'localhost'
  const headers = signRequest({ method: 'POST', host, path: '/thingward/unmapped', query: '', headers: {}, body: Buffer.alloc(0), region: 'local-1', service: 'iot', accessKeyId: p.creds.accessKeyId, secretAccessKey: p.creds.secretAccessKey, nowMs: Date.now() })
  const res = await server.inject({ method: 'POST', url: '/thingward/unmapped', headers })
  assert.equal(res.statusCode, 403)
  assert.equal(res.headers['x-amzn-errortype'], 'AccessDeniedException')
  assert.equal(ran, false, 'the handler never ran, even for the admin')
  assert.equal((await p.app.audit.query({ outcome: 'denied' })).at(-1)?.reason, 'no-route-authorization')
})

test('SigV4 failures are throttled per access key and per address, with lockout and audit', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  let c = sdk(t, p, clock)
  const victim = await userWithKey(p, 'bot', ['operator'])
  for (let i = 0; i < 10; i++) {
    await assert.rejects(c.iot({ accessKeyId: victim.accessKeyId, secretAccessKey: 'x'.repeat(40) }).send(new ListThingsCommand({})), { name: 'SignatureDoesNotMatchException' })
  }
  // Locked: even the right secret is refused until the lockout ends; other keys still work.
  await assert.rejects(c.iot(victim).send(new ListThingsCommand({})), (e: SdkError) => e.name === 'ThrottlingException' && e.$metadata?.httpStatusCode === 429)
  await c.iot(p.creds).send(new ListThingsCommand({}))
  const lockout = (await p.app.audit.query({ action: 'iam.Lockout' })).at(-1)
  assert.equal(lockout?.target, `accessKey/${victim.accessKeyId}`)
  // An administrator can end it early; otherwise it ends by itself.
  await api(p).call('POST', '/thingward/iam/users/bot/unlock')
  await c.iot(victim).send(new ListThingsCommand({}))
  clock.advance(15 * 60_000)
  c = sdk(t, p, clock)

  // An address that keeps failing (unknown keys) is locked out for everyone behind it.
  for (let i = 0; i < 50; i++) {
    await assert.rejects(c.iot({ accessKeyId: `AKIAUNKNOWN${String(i).padStart(9, '0')}`, secretAccessKey: 'x'.repeat(40) }).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  }
  await assert.rejects(c.iot(p.creds).send(new ListThingsCommand({})), { name: 'ThrottlingException' })
  assert.equal((await p.app.audit.query({ action: 'iam.Lockout' })).length, 2)
  clock.advance(15 * 60_000)
  c = sdk(t, p, clock)
  await c.iot(p.creds).send(new ListThingsCommand({}))
})

test('access keys: at most two per user, rotation deactivates the old key, deactivation and deletion take effect at once, last use is recorded', async (t) => {
  const clock = new ManualClock(Date.now())
  const p = await startPlatform(t, { clock })
  const c = sdk(t, p, clock)
  const k1 = await userWithKey(p, 'ci', ['provisioner'])
  await c.iot(k1).send(new ListThingsCommand({}))
  const listed = await api(p).call<{ accessKeys: Array<{ accessKeyId: string, status: string, lastUsed: { date?: number, serviceName: string, region: string } }> }>('GET', '/thingward/iam/users/ci/access-keys')
  assert.equal(listed.accessKeys[0].lastUsed.serviceName, 'iot')
  assert.equal(listed.accessKeys[0].lastUsed.region, 'local-1')
  assert.ok(listed.accessKeys[0].lastUsed.date !== undefined)

  // The user rotates its own key (self-service), the old one stops working, the new one works.
  const rotated = await api(p, k1).call<{ accessKeyId: string, secretAccessKey: string }>('POST', `/thingward/iam/users/ci/access-keys/${k1.accessKeyId}/rotate`)
  await assert.rejects(c.iot(k1).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  const k2 = { accessKeyId: rotated.accessKeyId, secretAccessKey: rotated.secretAccessKey }
  await c.iot(k2).send(new ListThingsCommand({}))
  await assert.rejects(api(p).call('POST', '/thingward/iam/users/ci/access-keys'), (e: ApiError) => e.type === 'LimitExceededException')
  await api(p).call('DELETE', `/thingward/iam/users/ci/access-keys/${k1.accessKeyId}`)
  await api(p).call('PATCH', `/thingward/iam/users/ci/access-keys/${k2.accessKeyId}`, { body: { status: 'Inactive' } })
  await assert.rejects(c.iot(k2).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  await api(p).call('PATCH', `/thingward/iam/users/ci/access-keys/${k2.accessKeyId}`, { body: { status: 'Active' } })
  await c.iot(k2).send(new ListThingsCommand({}))
  // Deleting the user removes its keys at once; the last admin cannot be deleted.
  await api(p).call('DELETE', '/thingward/iam/users/ci')
  await assert.rejects(c.iot(k2).send(new ListThingsCommand({})), { name: 'UnrecognizedClientException' })
  await assert.rejects(api(p).call('DELETE', '/thingward/iam/users/admin'), (e: ApiError) => e.type === 'DeleteConflictException')
  const all = JSON.stringify(await p.app.audit.query({ limit: 100_000 }))
  assert.ok(!all.includes(k2.secretAccessKey) && !all.includes(k1.secretAccessKey), 'no secret in the audit log')
})

test('groups and policy changes take effect on the next request; delegated user administration cannot mint administrators', async (t) => {
  const p = await startPlatform(t)
  const { iot } = sdk(t, p)
  const dev = await userWithKey(p, 'dev', [])
  await assert.rejects(iot(dev).send(new ListThingsCommand({})), { name: 'AccessDeniedException' }, 'no role, no policy: nothing')
  const admin = api(p)
  await admin.call('POST', '/thingward/iam/groups/readers')
  await admin.call('PUT', '/thingward/iam/groups/readers/policies/ThingwardAuditor')
  await admin.call('PUT', '/thingward/iam/groups/readers/users/dev')
  await iot(dev).send(new ListThingsCommand({}))
  await admin.call('POST', '/thingward/iam/policies/LabThings', {
    body: { policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:CreateThing', Resource: 'arn:aws:iot:local-1:000000000000:thing/lab-${aws:username}-*' }] }) },
  })
  await admin.call('PUT', '/thingward/iam/users/dev/policies/LabThings')
  await iot(dev).send(new CreateThingCommand({ thingName: 'lab-dev-1' }))
  await assert.rejects(iot(dev).send(new CreateThingCommand({ thingName: 'lab-ops-1' })), { name: 'AccessDeniedException' })
  await assert.rejects(admin.call('DELETE', '/thingward/iam/policies/LabThings'), (e: ApiError) => e.type === 'DeleteConflictException')
  await admin.call('PUT', '/thingward/iam/policies/LabThings', { body: { policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:CreateThing', Resource: 'arn:aws:iot:local-1:000000000000:thing/sandbox-*' }] } } })
  await assert.rejects(iot(dev).send(new CreateThingCommand({ thingName: 'lab-dev-2' })), { name: 'AccessDeniedException' })
  await iot(dev).send(new CreateThingCommand({ thingName: 'sandbox-1' }))
  await assert.rejects(admin.call('PUT', '/thingward/iam/policies/LabThings', { body: { policyDocument: '{"Statement":[]}' } }), (e: ApiError) => e.type === 'MalformedPolicyException')
  await assert.rejects(admin.call('PUT', '/thingward/iam/policies/ThingwardAdministrator', { body: { policyDocument: '{}' } }), (e: ApiError) => e.type === 'UnmodifiableEntityException')
  await admin.call('DELETE', '/thingward/iam/groups/readers/users/dev')
  await assert.rejects(iot(dev).send(new ListThingsCommand({})), { name: 'AccessDeniedException' })

  // A user administrator (iam:CreateUser, iam:CreateAccessKey) who may not assign roles cannot create an admin.
  await admin.call('POST', '/thingward/iam/policies/UserAdmin', { body: { policyDocument: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iam:CreateUser', 'iam:CreateAccessKey'], Resource: '*' }] } } })
  const hr = await userWithKey(p, 'hr', [])
  await admin.call('PUT', '/thingward/iam/users/hr/policies/UserAdmin')
  await api(p, hr).call('POST', '/thingward/iam/users/newbie', { body: {} })
  await assert.rejects(api(p, hr).call('POST', '/thingward/iam/users/mallory', { body: { roles: ['admin'] } }), (e: ApiError) => {
    assert.equal(e.status, 403)
    assert.match(e.message, /thingward:AssignRole on resource: arn:aws:iam::000000000000:role\/admin/)
    return true
  })
  assert.equal(await p.app.iam.users.getUserRecord('mallory'), undefined)
  const simulated = await admin.call<{ results: Array<{ action: string, allowed: boolean, explanation: string }> }>('POST', '/thingward/iam/simulate', {
    body: { userName: 'hr', actions: ['iam:CreateUser', 'thingward:AssignRole'], resource: 'arn:aws:iam::000000000000:role/admin' },
  })
  assert.deepEqual(simulated.results.map(r => [r.action, r.allowed]), [['iam:CreateUser', true], ['thingward:AssignRole', false]])
  assert.match(simulated.results[0].explanation, /allowed by policy UserAdmin/)
})
