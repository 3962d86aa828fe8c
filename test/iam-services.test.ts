/**
 * IAM services over real SQLite storage: which commits invalidate the in-memory caches and which must not, that a
 * policy recreated under the same name is never decided with its predecessor's parsed document, and that trust
 * policies see the caller's principal facts.
 */
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ManualClock } from '../src/core/index.ts'
import {
  AccessKeyService, AuthThrottle, IAM_SYSTEM_CALLER, IamAuthenticator, IamAuthorizer, IamCacheState, IamService, StsService,
} from '../src/iam/index.ts'
import type { IamDeps, IamServices, Principal, SecretSealer } from '../src/iam/index.ts'
import { SqliteAuditStore } from '../src/storage/sqlite/audit-store.ts'
import { SqliteDb } from '../src/storage/sqlite/db.ts'
import { SqliteIamStorage } from '../src/storage/sqlite/iam-store.ts'

/** A sealer that binds the context but does not encrypt (the keyring is not what these tests are about). */
const sealer: SecretSealer = {
  encrypt: (p, ctx) => Buffer.concat([Buffer.from(`${JSON.stringify(ctx)}\n`), p]),
  decrypt: (b, ctx) => {
    const buf = Buffer.from(b)
    const i = buf.indexOf(10)
    assert.equal(buf.subarray(0, i).toString(), JSON.stringify(ctx))
    return buf.subarray(i + 1)
  },
}

function open (t: TestContext): { iam: IamServices, cache: IamCacheState, clock: ManualClock } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-iam-cache-'))
  const db = new SqliteDb({ path: join(dir, 'x.db') })
  t.after(() => { db.close(); rmSync(dir, { recursive: true, force: true }) })
  const clock = new ManualClock(1_700_000_000_000)
  const cache = new IamCacheState()
  const deps: IamDeps = {
    storage: new SqliteIamStorage(db, new SqliteAuditStore(db, clock)), clock, arn: { region: 'eu-west-1', accountId: '000000000000' },
    sealer, cache, record: async () => {}, scryptLogN: 10,
  }
  // Wired as app.ts wires them.
  const authorizer = new IamAuthorizer(deps)
  const accessKeys = new AccessKeyService(deps)
  const sts = new StsService(deps, authorizer, new AuthThrottle(clock))
  const authenticator = new IamAuthenticator({ accessKeys, sts, authorizer, throttle: new AuthThrottle(clock), arn: deps.arn, record: deps.record })
  return { iam: { users: new IamService(deps), accessKeys, sts, authorizer, authenticator }, cache, clock }
}

const facts = { secureTransport: true }

test('a policy deleted and created again under the same name is decided by its new document', async (t) => {
  const { iam } = open(t)
  const { users, authenticator } = iam
  await users.createUser(IAM_SYSTEM_CALLER, { userName: 'alice' })
  const key = await iam.accessKeys.create(IAM_SYSTEM_CALLER, 'alice')
  const alice: Principal = await authenticator.principal(key.accessKeyId, undefined)
  const thing = (name: string): string => `arn:aws:iot:eu-west-1:000000000000:thing/${name}`
  // Two documents of the same length, both version 1 of policy "p".
  const doc = (name: string): string => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:DescribeThing', Resource: thing(name) }] })

  await users.createPolicy(IAM_SYSTEM_CALLER, 'p', doc('lamp-a'))
  await users.attachPolicy(IAM_SYSTEM_CALLER, 'user', 'alice', 'p')
  assert.equal((await iam.authorizer.authorize(alice, 'iot:DescribeThing', thing('lamp-a'), facts)).allowed, true)

  await users.detachPolicy(IAM_SYSTEM_CALLER, 'user', 'alice', 'p')
  await users.deletePolicy(IAM_SYSTEM_CALLER, 'p')
  const recreated = await users.createPolicy(IAM_SYSTEM_CALLER, 'p', doc('lamp-b'))
  assert.equal(recreated.version, 1)
  await users.attachPolicy(IAM_SYSTEM_CALLER, 'user', 'alice', 'p')
  assert.equal((await iam.authorizer.authorize(alice, 'iot:DescribeThing', thing('lamp-b'), facts)).allowed, true, 'the new document allows lamp-b')
  assert.equal((await iam.authorizer.authorize(alice, 'iot:DescribeThing', thing('lamp-a'), facts)).allowed, false, 'the old document is gone')
})

test('issuing temporary credentials keeps the IAM caches; changing a principal invalidates them', async (t) => {
  const { iam, cache } = open(t)
  const { users, authenticator, sts } = iam
  await users.createUser(IAM_SYSTEM_CALLER, { userName: 'alice', roles: ['admin'] })
  const key = await iam.accessKeys.create(IAM_SYSTEM_CALLER, 'alice')
  const alice = await authenticator.principal(key.accessKeyId, undefined)

  const before = cache.generation
  const creds = await sts.getSessionToken(alice, {}, {})
  const assumed = await sts.assumeRole(alice, { roleArn: users.roleArn('operator'), roleSessionName: 'ci' }, { secureTransport: true })
  assert.equal(cache.generation, before, 'GetSessionToken and AssumeRole write sessions only: no cached view changed')
  // The new sessions resolve all the same.
  assert.equal((await authenticator.principal(creds.accessKeyId, creds.sessionToken)).arn, alice.arn)
  assert.equal((await authenticator.principal(assumed.credentials.accessKeyId, assumed.credentials.sessionToken)).arn, assumed.assumedRoleArn)

  await users.revokeSessions(IAM_SYSTEM_CALLER, 'alice')
  assert.ok(cache.generation > before, 'revoking sessions invalidates the session cache')
  await assert.rejects(authenticator.principal(creds.accessKeyId, creds.sessionToken), { code: 'ERR_AUTH_INVALID_TOKEN' })
  await assert.rejects(authenticator.principal(assumed.credentials.accessKeyId, assumed.credentials.sessionToken), { code: 'ERR_AUTH_INVALID_TOKEN' })
})

test('AssumeRole: trust policy conditions see the caller\'s principal facts, tags included', async (t) => {
  const { iam } = open(t)
  const { users, authenticator, sts } = iam
  const caller = async (userName: string, team: string): Promise<Principal> => {
    await users.createUser(IAM_SYSTEM_CALLER, { userName, tags: { team } })
    return authenticator.principal((await iam.accessKeys.create(IAM_SYSTEM_CALLER, userName)).accessKeyId, undefined)
  }
  const bob = await caller('bob', 'ops')
  const carol = await caller('carol', 'dev')
  await users.createRole(IAM_SYSTEM_CALLER, {
    roleName: 'deployer',
    trustPolicy: {
      Version: '2012-10-17',
      Statement: [{
        Effect: 'Allow', Principal: { AWS: [bob.arn, carol.arn] }, Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:PrincipalTag/team': 'ops', 'aws:PrincipalType': 'User' } },
      }],
    },
  })
  const input = { roleArn: users.roleArn('deployer'), roleSessionName: 'deploy' }
  const assumed = await sts.assumeRole(bob, input, { secureTransport: true })
  assert.equal(assumed.assumedRoleArn, 'arn:aws:sts::000000000000:assumed-role/deployer/deploy')
  await assert.rejects(sts.assumeRole(carol, input, { secureTransport: true }), { code: 'ERR_AUTH_ACCESS_DENIED' })
})
