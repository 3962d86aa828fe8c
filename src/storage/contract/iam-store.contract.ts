import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AuditReader } from '../../audit/index.ts'
import type { IamAccessKey, IamStorage, IamUser, StsSession } from '../../iam/index.ts'

/** What each storage implementation hands the suite: IAM storage over a fresh, empty database. */
export interface IamStorageHarness {
  readonly storage: IamStorage
  readonly audit: AuditReader
  close (): Promise<void>
}

const user = (name: string, extra: Partial<IamUser> = {}): IamUser => ({
  name, id: `AIDA${name.toUpperCase().padEnd(17, 'X')}`, createdMs: 1000, tags: {}, passwordHash: undefined, passwordChangedMs: undefined, ...extra,
})
const key = (id: string, userName: string, createdMs: number): IamAccessKey => ({
  id, userName, sealedSecret: Buffer.from([0, 1, 255, id.length]), status: 'Active', createdMs, lastUsedMs: undefined, lastUsedService: undefined, lastUsedRegion: undefined,
})
const session = (id: string, extra: Partial<StsSession> = {}): StsSession => ({
  accessKeyId: id, sealedSecret: Buffer.from([9, 0, 9]), tokenHash: 'ab'.repeat(32), principalType: 'user', principalName: 'alice', sessionName: undefined,
  sourceUser: 'alice', mfa: false, mfaMs: undefined, origin: 'GetSessionToken', createdMs: 10, expiresMs: 1000, sourceIp: '127.0.0.1', ...extra,
})

/**
 * The {@link IamStorage} contract (iam/ports.ts). Every implementation runs it with its own opener; `opts.skip`
 * lets one that needs an external server skip when none is configured.
 */
export function iamStorageContract (name: string, open: () => Promise<IamStorageHarness>, opts: { skip?: boolean } = {}): void {
  const it = (title: string, fn: (h: IamStorageHarness) => Promise<void>): void => {
    test(`${name} IamStorage: ${title}`, opts, async (t) => {
      const h = await open()
      t.after(() => h.close())
      await fn(h)
    })
  }

  it('getters resolve undefined for absent records', async ({ storage }) => {
    await storage.read(async (s) => {
      assert.equal(await s.getUser('nope'), undefined)
      assert.equal(await s.getGroup('nope'), undefined)
      assert.equal(await s.getRole('nope'), undefined)
      assert.equal(await s.getPolicy('nope'), undefined)
      assert.equal(await s.getAccessKey('nope'), undefined)
      assert.equal(await s.getMfaDevice('nope'), undefined)
      assert.equal(await s.getSession('nope'), undefined)
      assert.deepEqual(await s.listAttachedPolicies('user', 'nope'), [])
    })
  })

  it('a transaction that throws leaves nothing behind, audit events included', async ({ storage, audit }) => {
    await assert.rejects(storage.transaction(async (u) => {
      await u.store.putUser(user('alice'))
      await u.audit.append({ action: 'iam.CreateUser', actor: 't', outcome: 'success' })
      throw new Error('boom')
    }), /boom/)
    assert.equal(await storage.read(s => s.getUser('alice')), undefined)
    assert.deepEqual(await audit.rows(), [])
  })

  it('users round-trip (tags, password hash), list in name order by page, and update keeps id and creation time', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      for (const n of ['carol', 'alice', 'bob']) await store.putUser(user(n, { tags: { team: n } }))
      await store.putUser({ ...user('alice'), id: 'AIDAOTHER', createdMs: 5, passwordHash: '$scrypt$x', passwordChangedMs: 77, tags: { team: 'ops' } })
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.getUser('alice'), { ...user('alice'), passwordHash: '$scrypt$x', passwordChangedMs: 77, tags: { team: 'ops' } })
      assert.deepEqual((await s.listUsers({ limit: 2 })).map(u => u.name), ['alice', 'bob'])
      assert.deepEqual((await s.listUsers({ after: 'bob', limit: 10 })).map(u => u.name), ['carol'])
      assert.equal(await s.countUsers(), 3)
    })
  })

  it('deleting a user removes its memberships, role assignments, attachments, MFA device and recovery codes', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putUser(user('alice'))
      await store.putUser(user('bob'))
      await store.putGroup({ name: 'ops', id: 'AGPA1', createdMs: 1 })
      await store.addUserToGroup('ops', 'alice')
      await store.addUserToGroup('ops', 'bob')
      await store.assignRole('alice', 'admin')
      await store.attachPolicy('P', 'user', 'alice')
      await store.attachPolicy('P', 'user', 'bob')
      await store.putMfaDevice({ userName: 'alice', sealedSecret: Buffer.from([1]), status: 'active', lastStep: 3, createdMs: 1, enabledMs: 2 })
      await store.putRecoveryCodes('alice', ['h1', 'h2'], 1)
      await store.deleteUser('alice')
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.listUsersInGroup('ops'), ['bob'])
      assert.deepEqual(await s.listUsersWithRole('admin'), [])
      assert.deepEqual(await s.listPolicyAttachments('P'), [{ type: 'user', name: 'bob' }])
      assert.equal(await s.getMfaDevice('alice'), undefined)
      assert.equal(await s.countUnusedRecoveryCodes('alice'), 0)
    })
  })

  it('groups, roles and policies: membership, assignment and attachments in name order; deletes cascade', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putUser(user('alice'))
      await store.putGroup({ name: 'ops', id: 'AGPA1', createdMs: 1 })
      await store.putGroup({ name: 'dev', id: 'AGPA2', createdMs: 1 })
      await store.addUserToGroup('ops', 'alice')
      await store.addUserToGroup('dev', 'alice')
      await store.addUserToGroup('dev', 'alice')
      await store.putRole({ name: 'deployer', id: 'AROA1', description: 'd', trustPolicy: '{}', maxSessionSec: 3600, createdMs: 1, tags: { a: 'b' }, builtin: false })
      await store.assignRole('alice', 'deployer')
      await store.assignRole('alice', 'auditor')
      await store.putPolicy({ name: 'P', id: 'ANPA1', description: undefined, document: '{"Version":"2012-10-17"}', version: 1, createdMs: 1, updatedMs: 1, builtin: false })
      await store.putPolicy({ name: 'P', id: 'ANPA1', description: 'x', document: '{}', version: 2, createdMs: 1, updatedMs: 9, builtin: false })
      await store.attachPolicy('P', 'group', 'ops')
      await store.attachPolicy('P', 'role', 'deployer')
      await store.attachPolicy('ThingwardAuditor', 'group', 'ops')
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.listGroupsForUser('alice'), ['dev', 'ops'])
      assert.deepEqual(await s.listRolesForUser('alice'), ['auditor', 'deployer'])
      assert.deepEqual(await s.listAttachedPolicies('group', 'ops'), ['P', 'ThingwardAuditor'])
      assert.deepEqual(await s.getPolicy('P'), { name: 'P', id: 'ANPA1', description: 'x', document: '{}', version: 2, createdMs: 1, updatedMs: 9, builtin: false })
      assert.deepEqual((await s.getRole('deployer'))?.tags, { a: 'b' })
      assert.deepEqual((await s.listGroups({ limit: 10 })).map(g => g.name), ['dev', 'ops'])
    })
    await storage.transaction(async ({ store }) => {
      assert.equal(await store.removeUserFromGroup('dev', 'alice'), true)
      assert.equal(await store.removeUserFromGroup('dev', 'alice'), false)
      assert.equal(await store.detachPolicy('P', 'group', 'nope'), false)
      await store.deleteRole('deployer')
      await store.deleteGroup('ops')
      await store.deletePolicy('P')
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.listRolesForUser('alice'), ['auditor'])
      assert.deepEqual(await s.listGroupsForUser('alice'), [])
      assert.deepEqual(await s.listPolicyAttachments('ThingwardAuditor'), [])
      assert.equal(await s.getPolicy('P'), undefined)
    })
  })

  it('access keys round-trip sealed bytes exactly, list per user in creation order, and record last use', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putAccessKey(key('AKIA2', 'alice', 20))
      await store.putAccessKey(key('AKIA1', 'alice', 10))
      await store.putAccessKey(key('AKIA3', 'bob', 5))
      await store.touchAccessKey('AKIA1', 99, 'iot', 'local-1')
      await store.putAccessKey({ ...key('AKIA2', 'alice', 20), status: 'Inactive' })
    })
    await storage.read(async (s) => {
      assert.deepEqual((await s.listAccessKeys('alice')).map(k => [k.id, k.status]), [['AKIA1', 'Active'], ['AKIA2', 'Inactive']])
      const k = await s.getAccessKey('AKIA1')
      assert.deepEqual(k?.sealedSecret, key('AKIA1', 'alice', 10).sealedSecret)
      assert.deepEqual([k?.lastUsedMs, k?.lastUsedService, k?.lastUsedRegion], [99, 'iot', 'local-1'])
    })
    await storage.transaction(async ({ store }) => { await store.deleteAccessKey('AKIA1') })
    assert.equal(await storage.read(s => s.getAccessKey('AKIA1')), undefined)
  })

  it('MFA devices replace, recovery codes are used once', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putUser(user('alice'))
      await store.putMfaDevice({ userName: 'alice', sealedSecret: Buffer.from([1, 2]), status: 'pending', lastStep: 0, createdMs: 1, enabledMs: undefined })
      await store.putMfaDevice({ userName: 'alice', sealedSecret: Buffer.from([3]), status: 'active', lastStep: 42, createdMs: 2, enabledMs: 3 })
      await store.putRecoveryCodes('alice', ['a', 'b', 'c'], 1)
      assert.equal(await store.useRecoveryCode('alice', 'b', 5), true)
      assert.equal(await store.useRecoveryCode('alice', 'b', 6), false)
      assert.equal(await store.useRecoveryCode('alice', 'zz', 6), false)
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.getMfaDevice('alice'), { userName: 'alice', sealedSecret: Buffer.from([3]), status: 'active', lastStep: 42, createdMs: 2, enabledMs: 3 })
      assert.equal(await s.countUnusedRecoveryCodes('alice'), 2)
    })
    await storage.transaction(async ({ store }) => { await store.putRecoveryCodes('alice', ['d'], 9) })
    assert.equal(await storage.read(s => s.countUnusedRecoveryCodes('alice')), 1)
  })

  it('sessions round-trip, are revoked per user (own and assumed) or per role, and expire', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putSession(session('ASIA1', { mfa: true, mfaMs: 10 }))
      await store.putSession(session('ASIA2', { principalType: 'role', principalName: 'deployer', sessionName: 's1', sourceUser: 'alice', origin: 'AssumeRole' }))
      await store.putSession(session('ASIA3', { principalType: 'role', principalName: 'deployer', sessionName: 's2', sourceUser: 'bob', expiresMs: 50 }))
      await store.putSession(session('ASIA4', { principalName: 'bob', sourceUser: 'bob', expiresMs: 40 }))
    })
    assert.deepEqual(await storage.read(s => s.getSession('ASIA1')), session('ASIA1', { mfa: true, mfaMs: 10 }))
    await storage.transaction(async ({ store }) => {
      assert.equal(await store.deleteSessionsOf('user', 'alice'), 2)
      assert.equal(await store.deleteExpiredSessions(45), 1)
      assert.equal(await store.deleteSessionsOf('role', 'deployer'), 1)
    })
    await storage.read(async (s) => {
      for (const id of ['ASIA1', 'ASIA2', 'ASIA3', 'ASIA4']) assert.equal(await s.getSession(id), undefined, id)
    })
  })
}
