import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { AuditReader } from '../../audit/index.ts'
import type { CaCertificate, Certificate, Policy, RegistryStorage, Thing } from '../../registry/index.ts'

/** What each storage implementation hands the suite: registry storage over a fresh, empty database. */
export interface RegistryStorageHarness {
  readonly storage: RegistryStorage
  readonly audit: AuditReader
  close (): Promise<void>
}

const thing = (name: string, attrs: Record<string, string> = {}, typeName?: string): Thing => ({
  name, id: `id-${name}`, typeName, attributes: attrs, version: 1, createdMs: 1000, updatedMs: 1000,
})
const cert = (id: string, createdMs: number, status: Certificate['status'] = 'ACTIVE', caId = 'ca1'): Certificate => ({
  id, pem: `pem-${id}`, caId, serialHex: `s${id}`, status, mode: 'DEFAULT', notBeforeMs: 0, notAfterMs: 10_000, revokedMs: undefined,
  revocationReason: undefined, createdMs, updatedMs: createdMs, generation: 1,
})

/**
 * The {@link RegistryStorage} contract (registry/ports.ts). Every implementation runs it with its own opener;
 * `opts.skip` lets one that needs an external server skip when none is configured.
 */
export function registryStorageContract (name: string, open: () => Promise<RegistryStorageHarness>, opts: { skip?: boolean } = {}): void {
  const it = (title: string, fn: (h: RegistryStorageHarness) => Promise<void>): void => {
    test(`${name} RegistryStorage: ${title}`, opts, async (t) => {
      const h = await open()
      t.after(() => h.close())
      await fn(h)
    })
  }

  it('getters resolve undefined for absent records', async ({ storage }) => {
    await storage.read(async (s) => {
      assert.equal(await s.getThing('nope'), undefined)
      assert.equal(await s.getCertificate('nope'), undefined)
      assert.equal(await s.getPolicy('nope'), undefined)
      assert.equal(await s.getThingGroup('nope'), undefined)
      assert.equal(await s.getCaCertificate('nope'), undefined)
      assert.equal(await s.getCertificateWithCaStatus('nope'), undefined)
      assert.equal(await s.getPrincipalThing('nope'), undefined)
      assert.deepEqual(await s.listAttachedPolicies('nope'), [])
      assert.equal(await s.getMeta('nope'), undefined)
    })
  })

  it('a transaction that throws leaves nothing behind, audit events included', async ({ storage, audit }) => {
    await assert.rejects(storage.transaction(async (u) => {
      await u.store.putThing(thing('a'))
      await u.audit.append({ action: 'test', actor: 't', outcome: 'success' })
      throw new Error('boom')
    }), /boom/)
    assert.equal(await storage.read(s => s.getThing('a')), undefined)
    assert.deepEqual(await audit.rows(), [])
  })

  it('a committed transaction keeps the change and its audit event together', async ({ storage, audit }) => {
    await storage.transaction(async (u) => {
      await u.store.putThing(thing('a', { k: 'v' }))
      await u.audit.append({ action: 'test', actor: 't', outcome: 'success', target: 'a' })
    })
    assert.deepEqual(await storage.read(s => s.getThing('a')), thing('a', { k: 'v' }))
    const rows = await audit.rows()
    assert.equal(rows.length, 1)
    assert.equal(rows[0].seq, 1)
  })

  it('things list in name order, page by key, and filter by type and attribute (exact and prefix, literal %)', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putThingType({ name: 'T', id: 't', description: undefined, searchableAttributes: [], deprecated: false, deprecationMs: undefined, createdMs: 1 })
      for (const [n, v] of [['c', '10'], ['a', '1%'], ['b', '100'], ['d', 'x']]) await store.putThing(thing(n, { floor: v }, n === 'd' ? undefined : 'T'))
    })
    await storage.read(async (s) => {
      assert.deepEqual((await s.listThings({}, { limit: 2 })).map(t => t.name), ['a', 'b'])
      assert.deepEqual((await s.listThings({}, { after: 'b', limit: 10 })).map(t => t.name), ['c', 'd'])
      assert.deepEqual((await s.listThings({ typeName: 'T' }, { limit: 10 })).map(t => t.name), ['a', 'b', 'c'])
      assert.deepEqual((await s.listThings({ attributeName: 'floor', attributeValue: '10' }, { limit: 10 })).map(t => t.name), ['c'])
      assert.deepEqual((await s.listThings({ attributeName: 'floor', attributeValue: '10', usePrefixAttributeValue: true }, { limit: 10 })).map(t => t.name), ['b', 'c'])
      assert.deepEqual((await s.listThings({ attributeName: 'floor', attributeValue: '1%', usePrefixAttributeValue: true }, { limit: 10 })).map(t => t.name), ['a'])
      assert.equal(await s.countThingsOfType('T'), 3)
    })
  })

  it('certificates page by (createdMs, id) both ways, and updates keep immutable fields', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putCertificate(cert('b', 2))
      await store.putCertificate(cert('a', 2))
      await store.putCertificate(cert('c', 1))
      await store.putCertificate({ ...cert('c', 1), status: 'REVOKED', revokedMs: 5, revocationReason: 1, generation: 2, pem: 'changed?' })
    })
    await storage.read(async (s) => {
      assert.deepEqual((await s.listCertificates({ ascending: true }, { limit: 10 })).map(c => c.id), ['c', 'a', 'b'])
      assert.deepEqual((await s.listCertificates({ ascending: false }, { limit: 10 })).map(c => c.id), ['b', 'a', 'c'])
      assert.deepEqual((await s.listCertificates({ ascending: true }, { after: '2:a', limit: 10 })).map(c => c.id), ['b'])
      assert.deepEqual((await s.listCertificates({ ascending: false }, { after: '2:a', limit: 10 })).map(c => c.id), ['c'])
      const c = await s.getCertificate('c')
      assert.equal(c?.status, 'REVOKED')
      assert.equal(c?.pem, 'pem-c', 'the PEM of a certificate never changes')
      assert.equal((await s.findCertificateBySerial('ca1', 'sa'))?.id, 'a')
    })
  })

  it('revocations outlive the certificate and expire from the list after notAfter', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putCertificate(cert('a', 1))
      await store.recordRevocation({ caId: 'ca1', serialHex: 'sa', certificateId: 'a', revokedMs: 50, reason: 1, notAfterMs: 10_000 })
      await store.recordRevocation({ caId: 'ca1', serialHex: 'old', certificateId: 'x', revokedMs: 10, reason: undefined, notAfterMs: 100 })
      await store.deleteCertificate('a')
    })
    assert.deepEqual(await storage.read(s => s.listRevocations('ca1', 500)), [{ serialHex: 'sa', revokedMs: 50, reason: 1 }])
    assert.deepEqual(await storage.read(s => s.listRevocations('ca1', 0)), [{ serialHex: 'old', revokedMs: 10, reason: undefined }, { serialHex: 'sa', revokedMs: 50, reason: 1 }])
  })

  it('groups, membership and policy targets', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putThing(thing('t1'))
      await store.putThingGroup({ name: 'root', id: 'r', parentName: undefined, description: undefined, attributes: {}, version: 1, createdMs: 1 })
      await store.putThingGroup({ name: 'child', id: 'c', parentName: 'root', description: 'd', attributes: { a: 'b' }, version: 1, createdMs: 1 })
      await store.addThingToGroup('child', 't1')
      await store.addThingToGroup('child', 't1')
      await store.putPolicy({ name: 'p', defaultVersion: 1, nextVersion: 2, createdMs: 1, updatedMs: 1, generation: 1 })
      await store.putPolicyVersion({ policyName: 'p', version: 1, document: '{}', createdMs: 1 })
      await store.attachPolicy('p', 'arn:g', 1)
      await store.attachPolicy('p', 'arn:g', 2)
    })
    await storage.read(async (s) => {
      assert.deepEqual(await s.listThingsInGroup('child', { limit: 10 }), ['t1'])
      assert.deepEqual(await s.listGroupsForThing('t1'), ['child'])
      assert.equal(await s.countGroupChildren('root'), 1)
      assert.deepEqual((await s.listThingGroups({ parentName: 'root' }, { limit: 10 })).map(g => g.name), ['child'])
      assert.deepEqual(await s.listPoliciesForTarget('arn:g'), ['p'])
      assert.equal(await s.countTargetsForPolicy('p'), 1)
    })
    assert.equal(await storage.transaction(({ store }) => store.detachPolicy('p', 'arn:g')), true)
    assert.equal(await storage.transaction(({ store }) => store.detachPolicy('p', 'arn:g')), false)
  })

  it('thing principals are listed from both sides', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putThing(thing('t1'))
      await store.putThing(thing('t2'))
      await store.attachThingPrincipal({ thingName: 't1', principal: 'arn:c1', type: 'EXCLUSIVE_THING', createdMs: 1 })
      await store.attachThingPrincipal({ thingName: 't2', principal: 'arn:c2', type: 'NON_EXCLUSIVE_THING', createdMs: 1 })
    })
    await storage.read(async (s) => {
      assert.deepEqual((await s.listThingPrincipals('t1', { limit: 10 })).map(p => [p.principal, p.type]), [['arn:c1', 'EXCLUSIVE_THING']])
      assert.deepEqual((await s.listPrincipalThings('arn:c2', { limit: 10 })).map(p => p.thingName), ['t2'])
    })
  })

  it('the connection reads: certificate with its CA status, the principal\'s thing, attached policies in name order', async ({ storage }) => {
    const ca = (id: string, status: 'ACTIVE' | 'INACTIVE'): CaCertificate => ({
      id, pem: `pem-${id}`, subject: `CN=${id}`, status, autoRegistration: 'DISABLE', mode: 'DEFAULT', own: false, sealedKey: undefined,
      notBeforeMs: 0, notAfterMs: 10_000, createdMs: 1, updatedMs: 1, generation: 1,
    })
    const policy = (name: string): Policy => ({ name, defaultVersion: 2, nextVersion: 3, createdMs: 5, updatedMs: 6, generation: 1 })
    await storage.transaction(async ({ store }) => {
      await store.putCaCertificate(ca('ca1', 'ACTIVE'))
      await store.putCaCertificate(ca('ca2', 'INACTIVE'))
      await store.putCertificate(cert('c1', 1, 'ACTIVE', 'ca1'))
      await store.putCertificate(cert('c2', 2, 'REVOKED', 'ca2'))
      await store.putCertificate(cert('c3', 3, 'ACTIVE', 'ca-unregistered'))
      for (const n of ['t-b', 't-a', 't-c', 't-x']) await store.putThing(thing(n))
      // arn:c1 is on two things without exclusivity: the first by name wins; arn:c2 is exclusive to t-c, which
      // wins over t-a although t-a sorts first.
      await store.attachThingPrincipal({ thingName: 't-b', principal: 'arn:c1', type: 'NON_EXCLUSIVE_THING', createdMs: 1 })
      await store.attachThingPrincipal({ thingName: 't-a', principal: 'arn:c1', type: 'NON_EXCLUSIVE_THING', createdMs: 1 })
      await store.attachThingPrincipal({ thingName: 't-a', principal: 'arn:c2', type: 'NON_EXCLUSIVE_THING', createdMs: 1 })
      await store.attachThingPrincipal({ thingName: 't-c', principal: 'arn:c2', type: 'EXCLUSIVE_THING', createdMs: 1 })
      for (const n of ['p-z', 'p-a', 'p-m']) await store.putPolicy(policy(n))
      await store.attachPolicy('p-z', 'arn:c1', 1)
      await store.attachPolicy('p-a', 'arn:c1', 1)
      await store.attachPolicy('p-m', 'arn:other', 1)
    })
    await storage.read(async (s) => {
      const c1 = await s.getCertificateWithCaStatus('c1')
      assert.deepEqual(c1, { certificate: await s.getCertificate('c1'), caStatus: 'ACTIVE' })
      const c2 = await s.getCertificateWithCaStatus('c2')
      assert.equal(c2?.certificate.status, 'REVOKED')
      assert.equal(c2?.caStatus, 'INACTIVE')
      assert.equal((await s.getCertificateWithCaStatus('c3'))?.caStatus, undefined)
      assert.deepEqual(await s.getPrincipalThing('arn:c1'), { thing: await s.getThing('t-a'), type: 'NON_EXCLUSIVE_THING' })
      assert.deepEqual(await s.getPrincipalThing('arn:c2'), { thing: await s.getThing('t-c'), type: 'EXCLUSIVE_THING' })
      assert.deepEqual(await s.listAttachedPolicies('arn:c1'), [policy('p-a'), policy('p-z')])
      assert.deepEqual(await s.listAttachedPolicies('arn:c3'), [])
    })
  })

  it('meta values are replaced in place', async ({ storage }) => {
    await storage.transaction(async ({ store }) => {
      await store.putMeta('k', 'v1')
      await store.putMeta('k', 'v2')
    })
    assert.equal(await storage.read(s => s.getMeta('k')), 'v2')
  })
}
