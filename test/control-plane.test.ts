import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  AddThingToThingGroupCommand, AttachPolicyCommand, AttachThingPrincipalCommand, CreateCertificateFromCsrCommand,
  CreateKeysAndCertificateCommand, CreatePolicyCommand, CreatePolicyVersionCommand, CreateThingCommand, CreateThingGroupCommand,
  CreateThingTypeCommand, DeleteCertificateCommand, DeletePolicyCommand, DeletePolicyVersionCommand, DeleteThingCommand,
  DescribeCACertificateCommand, DescribeCertificateCommand, DescribeEndpointCommand, DescribeThingCommand, DescribeThingGroupCommand,
  DescribeThingTypeCommand, DetachPolicyCommand, DetachThingPrincipalCommand, GetPolicyCommand, GetPolicyVersionCommand,
  GetRegistrationCodeCommand, ListAttachedPoliciesCommand, ListCACertificatesCommand, ListCertificatesCommand, ListPoliciesCommand,
  ListPolicyVersionsCommand, ListPrincipalThingsCommand, ListTargetsForPolicyCommand, ListThingGroupsCommand, ListThingPrincipalsCommand,
  ListThingsCommand, ListThingsInThingGroupCommand, ListThingTypesCommand, RegisterCACertificateCommand, RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand, RemoveThingFromThingGroupCommand, SetDefaultPolicyVersionCommand, UpdateCACertificateCommand,
  UpdateCertificateCommand, UpdateThingCommand,
} from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'

const policyDoc = (topic: string): string => JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:local-1:000000000000:topic/${topic}` }],
})

/** Runs openssl in a temp dir and returns the dir. */
function openssl (dir: string, ...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

test('things: create, describe, update, list with filters and pagination, delete (real AWS SDK)', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  await iot.send(new CreateThingTypeCommand({ thingTypeName: 'Sensor', thingTypeProperties: { thingTypeDescription: 'temperature', searchableAttributes: ['floor'] } }))
  const created = await iot.send(new CreateThingCommand({ thingName: 'sensor-1', thingTypeName: 'Sensor', attributePayload: { attributes: { floor: '3', building: 'A' } } }))
  assert.equal(created.thingName, 'sensor-1')
  assert.equal(created.thingArn, 'arn:aws:iot:local-1:000000000000:thing/sensor-1')
  assert.match(created.thingId ?? '', /^[0-9a-f-]{36}$/)
  // Idempotent for the same definition (AWS), same id back.
  const again = await iot.send(new CreateThingCommand({ thingName: 'sensor-1', thingTypeName: 'Sensor', attributePayload: { attributes: { floor: '3', building: 'A' } } }))
  assert.equal(again.thingId, created.thingId)

  const d = await iot.send(new DescribeThingCommand({ thingName: 'sensor-1' }))
  assert.deepEqual({ name: d.thingName, type: d.thingTypeName, attrs: d.attributes, version: d.version, client: d.defaultClientId },
    { name: 'sensor-1', type: 'Sensor', attrs: { floor: '3', building: 'A' }, version: 1, client: 'sensor-1' })

  await iot.send(new UpdateThingCommand({ thingName: 'sensor-1', attributePayload: { attributes: { floor: '4', building: '' }, merge: true }, expectedVersion: 1 }))
  const d2 = await iot.send(new DescribeThingCommand({ thingName: 'sensor-1' }))
  assert.deepEqual(d2.attributes, { floor: '4' })
  assert.equal(d2.version, 2)

  for (let i = 2; i <= 5; i++) await iot.send(new CreateThingCommand({ thingName: `sensor-${i}`, thingTypeName: 'Sensor', attributePayload: { attributes: { floor: String(i) } } }))
  await iot.send(new CreateThingCommand({ thingName: 'untyped' }))
  const page1 = await iot.send(new ListThingsCommand({ maxResults: 2 }))
  assert.equal(page1.things?.length, 2)
  assert.ok(page1.nextToken !== undefined)
  const names: string[] = []
  let token: string | undefined
  do {
    const page = await iot.send(new ListThingsCommand({ maxResults: 2, nextToken: token }))
    names.push(...(page.things ?? []).map(x => x.thingName ?? ''))
    token = page.nextToken
  } while (token !== undefined)
  assert.deepEqual(names, ['sensor-1', 'sensor-2', 'sensor-3', 'sensor-4', 'sensor-5', 'untyped'])
  const typed = await iot.send(new ListThingsCommand({ thingTypeName: 'Sensor' }))
  assert.equal(typed.things?.length, 5)
  const byAttr = await iot.send(new ListThingsCommand({ attributeName: 'floor', attributeValue: '4' }))
  assert.deepEqual(byAttr.things?.map(x => x.thingName), ['sensor-1', 'sensor-4'])

  await iot.send(new DeleteThingCommand({ thingName: 'untyped' }))
  await assert.rejects(iot.send(new DescribeThingCommand({ thingName: 'untyped' })), { name: 'ResourceNotFoundException' })
  // AWS: deleting an absent thing succeeds.
  await iot.send(new DeleteThingCommand({ thingName: 'untyped' }))
})

test('things: failures are AWS exceptions and change nothing', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  await iot.send(new CreateThingCommand({ thingName: 'dup', attributePayload: { attributes: { a: '1' } } }))
  const before = await p.auditCount()
  await assert.rejects(iot.send(new CreateThingCommand({ thingName: 'dup', attributePayload: { attributes: { a: '2' } } })), (e: Error & { resourceId?: string }) => {
    assert.equal(e.name, 'ResourceAlreadyExistsException')
    return true
  })
  assert.deepEqual((await iot.send(new DescribeThingCommand({ thingName: 'dup' }))).attributes, { a: '1' })
  await assert.rejects(iot.send(new CreateThingCommand({ thingName: 'bad name!' })), { name: 'InvalidRequestException' })
  await assert.rejects(iot.send(new CreateThingCommand({ thingName: 'x', thingTypeName: 'NoSuchType' })), { name: 'ResourceNotFoundException' })
  await assert.rejects(iot.send(new CreateThingCommand({ thingName: 'y', attributePayload: { attributes: { a: '1', b: '2', c: '3', d: '4' } } })), { name: 'InvalidRequestException' })
  await assert.rejects(iot.send(new UpdateThingCommand({ thingName: 'dup', attributePayload: { attributes: { a: '9' } }, expectedVersion: 7 })), { name: 'VersionConflictException' })
  await assert.rejects(iot.send(new UpdateThingCommand({ thingName: 'missing', attributePayload: { attributes: { a: '9' } } })), { name: 'ResourceNotFoundException' })
  await assert.rejects(iot.send(new DescribeThingCommand({ thingName: 'missing' })), { name: 'ResourceNotFoundException' })
  assert.deepEqual((await iot.send(new DescribeThingCommand({ thingName: 'dup' }))).attributes, { a: '1' })
  assert.deepEqual((await iot.send(new ListThingsCommand({}))).things?.map(x => x.thingName), ['dup'])
  assert.equal(await p.auditCount(), before, 'refused requests write no audit event of a change')
})

test('thing types and thing groups: hierarchy, membership, recursive listing', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  await iot.send(new CreateThingTypeCommand({ thingTypeName: 'Lock' }))
  await iot.send(new CreateThingTypeCommand({ thingTypeName: 'Light', thingTypeProperties: { thingTypeDescription: 'smart light' } }))
  const tt = await iot.send(new DescribeThingTypeCommand({ thingTypeName: 'Light' }))
  assert.equal(tt.thingTypeProperties?.thingTypeDescription, 'smart light')
  assert.equal(tt.thingTypeMetadata?.deprecated, false)
  assert.ok(tt.thingTypeMetadata?.creationDate instanceof Date)
  assert.deepEqual((await iot.send(new ListThingTypesCommand({}))).thingTypes?.map(x => x.thingTypeName), ['Light', 'Lock'])
  await assert.rejects(iot.send(new CreateThingTypeCommand({ thingTypeName: 'Light', thingTypeProperties: { thingTypeDescription: 'other' } })), { name: 'ResourceAlreadyExistsException' })

  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'building-A', thingGroupProperties: { thingGroupDescription: 'HQ', attributePayload: { attributes: { city: 'Oslo' } } } }))
  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'floor-1', parentGroupName: 'building-A' }))
  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'floor-2', parentGroupName: 'building-A' }))
  const g = await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'floor-1' }))
  assert.equal(g.thingGroupMetadata?.parentGroupName, 'building-A')
  assert.deepEqual(g.thingGroupMetadata?.rootToParentThingGroups?.map(x => x.groupName), ['building-A'])
  const root = await iot.send(new DescribeThingGroupCommand({ thingGroupName: 'building-A' }))
  assert.deepEqual(root.thingGroupProperties?.attributePayload?.attributes, { city: 'Oslo' })
  assert.deepEqual((await iot.send(new ListThingGroupsCommand({}))).thingGroups?.map(x => x.groupName), ['building-A', 'floor-1', 'floor-2'])
  assert.deepEqual((await iot.send(new ListThingGroupsCommand({ parentGroup: 'building-A' }))).thingGroups?.map(x => x.groupName), ['floor-1', 'floor-2'])
  assert.deepEqual((await iot.send(new ListThingGroupsCommand({ namePrefixFilter: 'floor' }))).thingGroups?.map(x => x.groupName), ['floor-1', 'floor-2'])

  await iot.send(new CreateThingCommand({ thingName: 'lock-1', thingTypeName: 'Lock' }))
  await iot.send(new CreateThingCommand({ thingName: 'lock-2', thingTypeName: 'Lock' }))
  await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'floor-1', thingName: 'lock-1' }))
  await iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'floor-2', thingArn: 'arn:aws:iot:local-1:000000000000:thing/lock-2' }))
  assert.deepEqual((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'floor-1' }))).things, ['lock-1'])
  assert.deepEqual((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'building-A', recursive: true }))).things, ['lock-1', 'lock-2'])
  assert.deepEqual((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'building-A' }))).things, [])
  // AWS: a thing cannot be in two groups of one hierarchy.
  await assert.rejects(iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'floor-2', thingName: 'lock-1' })), { name: 'InvalidRequestException' })
  assert.deepEqual((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'floor-2' }))).things, ['lock-2'])
  await assert.rejects(iot.send(new AddThingToThingGroupCommand({ thingGroupName: 'nope', thingName: 'lock-1' })), { name: 'ResourceNotFoundException' })
  await iot.send(new RemoveThingFromThingGroupCommand({ thingGroupName: 'floor-1', thingName: 'lock-1' }))
  assert.deepEqual((await iot.send(new ListThingsInThingGroupCommand({ thingGroupName: 'floor-1' }))).things, [])
  await assert.rejects(iot.send(new CreateThingGroupCommand({ thingGroupName: 'orphan', parentGroupName: 'missing' })), { name: 'ResourceNotFoundException' })
  assert.deepEqual((await iot.send(new ListThingGroupsCommand({}))).thingGroups?.map(x => x.groupName), ['building-A', 'floor-1', 'floor-2'])
})

test('certificates: keys, CSR, describe, list, status rules, delete rules, openssl verify', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  const kc = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  assert.match(kc.certificateId ?? '', /^[0-9a-f]{64}$/)
  assert.match(kc.keyPair?.PrivateKey ?? '', /-----END PRIVATE KEY-----/)
  assert.equal(kc.certificateArn, `arn:aws:iot:local-1:000000000000:cert/${kc.certificateId}`)
  // The id is the SHA-256 of the DER (AWS style): compare with openssl's fingerprint.
  const dir = mkdtempSync(join(tmpdir(), 'tw-cert-'))
  writeFileSync(join(dir, 'leaf.pem'), kc.certificatePem ?? '')
  writeFileSync(join(dir, 'chain.pem'), p.caPem)
  const fp = openssl(dir, 'x509', '-in', 'leaf.pem', '-noout', '-fingerprint', '-sha256').split('=')[1].trim().replace(/:/g, '').toLowerCase()
  assert.equal(fp, kc.certificateId)
  const [issuing, root] = p.caPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter(s => s.includes('BEGIN'))
  writeFileSync(join(dir, 'root.pem'), root)
  writeFileSync(join(dir, 'issuing.pem'), issuing)
  assert.match(openssl(dir, 'verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'leaf.pem'), /leaf.pem: OK/)

  openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'dev.key')
  openssl(dir, 'req', '-new', '-key', 'dev.key', '-subj', '/CN=device-csr', '-out', 'dev.csr')
  const { readFileSync } = await import('node:fs')
  const fromCsr = await iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: readFileSync(join(dir, 'dev.csr'), 'utf8'), setAsActive: false }))
  const desc = (await iot.send(new DescribeCertificateCommand({ certificateId: fromCsr.certificateId }))).certificateDescription
  assert.equal(desc?.status, 'INACTIVE')
  assert.equal(desc?.certificateMode, 'DEFAULT')
  assert.ok(desc?.validity?.notAfter instanceof Date && desc.validity.notAfter.getTime() > Date.now())
  assert.equal(desc?.caCertificateId !== undefined, true)

  // A weak key is refused with a message naming the reason, and nothing is stored.
  openssl(dir, 'genrsa', '-out', 'weak.key', '1024')
  openssl(dir, 'req', '-new', '-key', 'weak.key', '-subj', '/CN=weak', '-out', 'weak.csr')
  const countBefore = (await iot.send(new ListCertificatesCommand({}))).certificates?.length
  await assert.rejects(iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: readFileSync(join(dir, 'weak.csr'), 'utf8') })), (e: Error) => {
    assert.equal(e.name, 'InvalidRequestException')
    assert.match(e.message, /1024/)
    assert.match(e.message, /2048/)
    return true
  })
  await assert.rejects(iot.send(new CreateCertificateFromCsrCommand({ certificateSigningRequest: 'garbage' })), { name: 'InvalidRequestException' })
  assert.equal((await iot.send(new ListCertificatesCommand({}))).certificates?.length, countBefore)

  const list = await iot.send(new ListCertificatesCommand({ pageSize: 1, ascendingOrder: true }))
  assert.equal(list.certificates?.length, 1)
  assert.equal(list.certificates?.[0].certificateId, kc.certificateId)
  const list2 = await iot.send(new ListCertificatesCommand({ pageSize: 1, ascendingOrder: true, marker: list.nextMarker }))
  assert.equal(list2.certificates?.[0].certificateId, fromCsr.certificateId)
  assert.equal(list2.nextMarker, undefined)

  // Status rules: ACTIVE cannot be deleted; REVOKED is final; PENDING_* cannot be set.
  await assert.rejects(iot.send(new DeleteCertificateCommand({ certificateId: kc.certificateId })), { name: 'CertificateStateException' })
  await assert.rejects(iot.send(new UpdateCertificateCommand({ certificateId: kc.certificateId, newStatus: 'PENDING_TRANSFER' })), { name: 'InvalidRequestException' })
  await iot.send(new UpdateCertificateCommand({ certificateId: kc.certificateId, newStatus: 'REVOKED' }))
  await assert.rejects(iot.send(new UpdateCertificateCommand({ certificateId: kc.certificateId, newStatus: 'ACTIVE' })), { name: 'CertificateStateException' })
  assert.equal((await iot.send(new DescribeCertificateCommand({ certificateId: kc.certificateId }))).certificateDescription?.status, 'REVOKED')
  await assert.rejects(iot.send(new DescribeCertificateCommand({ certificateId: 'f'.repeat(64) })), { name: 'ResourceNotFoundException' })

  // Delete: blocked by a policy unless forceDelete; blocked by a thing attachment.
  await iot.send(new CreatePolicyCommand({ policyName: 'p1', policyDocument: policyDoc('a') }))
  await iot.send(new AttachPolicyCommand({ policyName: 'p1', target: fromCsr.certificateArn }))
  await assert.rejects(iot.send(new DeleteCertificateCommand({ certificateId: fromCsr.certificateId })), { name: 'DeleteConflictException' })
  await iot.send(new CreateThingCommand({ thingName: 'dev' }))
  await iot.send(new AttachThingPrincipalCommand({ thingName: 'dev', principal: fromCsr.certificateArn }))
  await assert.rejects(iot.send(new DeleteCertificateCommand({ certificateId: fromCsr.certificateId, forceDelete: true })), { name: 'DeleteConflictException' })
  assert.equal((await iot.send(new DescribeCertificateCommand({ certificateId: fromCsr.certificateId }))).certificateDescription?.status, 'INACTIVE')
  await iot.send(new DetachThingPrincipalCommand({ thingName: 'dev', principal: fromCsr.certificateArn }))
  await iot.send(new DeleteCertificateCommand({ certificateId: fromCsr.certificateId, forceDelete: true }))
  await assert.rejects(iot.send(new DescribeCertificateCommand({ certificateId: fromCsr.certificateId })), { name: 'ResourceNotFoundException' })
  assert.deepEqual((await iot.send(new ListTargetsForPolicyCommand({ policyName: 'p1' }))).targets, [])
})

test('external CAs: registration code, proof of possession, register certificates with and without CA', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  const dir = mkdtempSync(join(tmpdir(), 'tw-extca-'))
  const { readFileSync } = await import('node:fs')
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30',
    '-subj', '/CN=Factory CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  const code = (await iot.send(new GetRegistrationCodeCommand({}))).registrationCode ?? ''
  assert.match(code, /^[0-9a-f]{64}$/)
  // Wrong CN: refused, nothing registered.
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'v.key', '-out', 'bad.csr', '-subj', '/CN=not-the-code')
  openssl(dir, 'x509', '-req', '-in', 'bad.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'bad.pem', '-days', '1')
  await assert.rejects(iot.send(new RegisterCACertificateCommand({ caCertificate: readFileSync(join(dir, 'ca.pem'), 'utf8'), verificationCertificate: readFileSync(join(dir, 'bad.pem'), 'utf8') })), { name: 'CertificateValidationException' })
  const casBefore = (await iot.send(new ListCACertificatesCommand({}))).certificates?.length
  openssl(dir, 'req', '-new', '-key', 'v.key', '-out', 'v.csr', '-subj', `/CN=${code}`)
  openssl(dir, 'x509', '-req', '-in', 'v.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'v.pem', '-days', '1')
  const reg = await iot.send(new RegisterCACertificateCommand({ caCertificate: readFileSync(join(dir, 'ca.pem'), 'utf8'), verificationCertificate: readFileSync(join(dir, 'v.pem'), 'utf8'), setAsActive: true }))
  assert.match(reg.certificateId ?? '', /^[0-9a-f]{64}$/)
  assert.equal((await iot.send(new ListCACertificatesCommand({}))).certificates?.length, (casBefore ?? 0) + 1)
  const caDesc = (await iot.send(new DescribeCACertificateCommand({ certificateId: reg.certificateId }))).certificateDescription
  assert.equal(caDesc?.status, 'ACTIVE')
  assert.equal(caDesc?.autoRegistrationStatus, 'DISABLE')
  await assert.rejects(iot.send(new RegisterCACertificateCommand({ caCertificate: readFileSync(join(dir, 'ca.pem'), 'utf8'), verificationCertificate: readFileSync(join(dir, 'v.pem'), 'utf8') })), { name: 'ResourceAlreadyExistsException' })

  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'd.key', '-out', 'd.csr', '-subj', '/CN=factory-device-1')
  openssl(dir, 'x509', '-req', '-in', 'd.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'd.pem', '-days', '30')
  const dev = await iot.send(new RegisterCertificateCommand({ certificatePem: readFileSync(join(dir, 'd.pem'), 'utf8'), caCertificatePem: readFileSync(join(dir, 'ca.pem'), 'utf8'), setAsActive: true }))
  const devDesc = (await iot.send(new DescribeCertificateCommand({ certificateId: dev.certificateId }))).certificateDescription
  assert.equal(devDesc?.status, 'ACTIVE')
  assert.equal(devDesc?.caCertificateId, reg.certificateId)

  // A certificate from an unregistered CA is refused by RegisterCertificate but accepted without CA (SNI_ONLY).
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'o.key', '-out', 'o.pem', '-days', '30', '-subj', '/CN=Other CA',
    '-addext', 'basicConstraints=critical,CA:TRUE')
  openssl(dir, 'x509', '-req', '-in', 'd.csr', '-CA', 'o.pem', '-CAkey', 'o.key', '-CAcreateserial', '-out', 'od.pem', '-days', '30')
  await assert.rejects(iot.send(new RegisterCertificateCommand({ certificatePem: readFileSync(join(dir, 'od.pem'), 'utf8') })), { name: 'CertificateValidationException' })
  const noCa = await iot.send(new RegisterCertificateWithoutCACommand({ certificatePem: readFileSync(join(dir, 'od.pem'), 'utf8'), status: 'ACTIVE' }))
  assert.equal((await iot.send(new DescribeCertificateCommand({ certificateId: noCa.certificateId }))).certificateDescription?.certificateMode, 'SNI_ONLY')

  // Deactivating the CA blocks new registrations under it.
  await iot.send(new UpdateCACertificateCommand({ certificateId: reg.certificateId, newStatus: 'INACTIVE', newAutoRegistrationStatus: 'ENABLE' }))
  const after = (await iot.send(new DescribeCACertificateCommand({ certificateId: reg.certificateId }))).certificateDescription
  assert.deepEqual([after?.status, after?.autoRegistrationStatus], ['INACTIVE', 'ENABLE'])
  openssl(dir, 'x509', '-req', '-in', 'd.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'd2.pem', '-days', '29')
  await assert.rejects(iot.send(new RegisterCertificateCommand({ certificatePem: readFileSync(join(dir, 'd2.pem'), 'utf8') })), { name: 'CertificateStateException' })
})

test('policies: versions (limit 5), default version, attach/detach, targets, thing principals', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  const cp = await iot.send(new CreatePolicyCommand({ policyName: 'sensor', policyDocument: policyDoc('t/1') }))
  assert.equal(cp.policyVersionId, '1')
  assert.equal(cp.policyArn, 'arn:aws:iot:local-1:000000000000:policy/sensor')
  await assert.rejects(iot.send(new CreatePolicyCommand({ policyName: 'sensor', policyDocument: policyDoc('t/1') })), { name: 'ResourceAlreadyExistsException' })
  await assert.rejects(iot.send(new CreatePolicyCommand({ policyName: 'bad', policyDocument: '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"iot:*","Resource":"*"}]}' })), { name: 'MalformedPolicyException' })
  await assert.rejects(iot.send(new CreatePolicyCommand({ policyName: 'bad', policyDocument: '{not json' })), { name: 'MalformedPolicyException' })
  await assert.rejects(iot.send(new GetPolicyCommand({ policyName: 'bad' })), { name: 'ResourceNotFoundException' })

  for (let v = 2; v <= 5; v++) {
    const r = await iot.send(new CreatePolicyVersionCommand({ policyName: 'sensor', policyDocument: policyDoc(`t/${v}`), setAsDefault: v === 3 }))
    assert.equal(r.policyVersionId, String(v))
    assert.equal(r.isDefaultVersion, v === 3)
  }
  const before = await p.auditCount()
  await assert.rejects(iot.send(new CreatePolicyVersionCommand({ policyName: 'sensor', policyDocument: policyDoc('t/6') })), { name: 'VersionsLimitExceededException' })
  assert.equal(await p.auditCount(), before)
  const versions = await iot.send(new ListPolicyVersionsCommand({ policyName: 'sensor' }))
  assert.equal(versions.policyVersions?.length, 5)
  assert.deepEqual(versions.policyVersions?.filter(v => v.isDefaultVersion === true).map(v => v.versionId), ['3'])
  const got = await iot.send(new GetPolicyCommand({ policyName: 'sensor' }))
  assert.equal(got.defaultVersionId, '3')
  assert.equal(got.policyDocument, policyDoc('t/3'))
  await assert.rejects(iot.send(new DeletePolicyVersionCommand({ policyName: 'sensor', policyVersionId: '3' })), { name: 'DeleteConflictException' })
  await iot.send(new SetDefaultPolicyVersionCommand({ policyName: 'sensor', policyVersionId: '5' }))
  const v5 = await iot.send(new GetPolicyVersionCommand({ policyName: 'sensor', policyVersionId: '5' }))
  assert.equal(v5.isDefaultVersion, true)
  await iot.send(new DeletePolicyVersionCommand({ policyName: 'sensor', policyVersionId: '1' }))
  await assert.rejects(iot.send(new GetPolicyVersionCommand({ policyName: 'sensor', policyVersionId: '1' })), { name: 'ResourceNotFoundException' })
  const v6 = await iot.send(new CreatePolicyVersionCommand({ policyName: 'sensor', policyDocument: policyDoc('t/6') }))
  assert.equal(v6.policyVersionId, '6', 'version ids are never reused')

  const cert = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'fleet' }))
  await iot.send(new CreateThingGroupCommand({ thingGroupName: 'floor', parentGroupName: 'fleet' }))
  await iot.send(new CreatePolicyCommand({ policyName: 'fleet-wide', policyDocument: policyDoc('fleet/*') }))
  await iot.send(new AttachPolicyCommand({ policyName: 'sensor', target: cert.certificateArn }))
  await iot.send(new AttachPolicyCommand({ policyName: 'fleet-wide', target: 'arn:aws:iot:local-1:000000000000:thinggroup/fleet' }))
  await assert.rejects(iot.send(new AttachPolicyCommand({ policyName: 'sensor', target: 'arn:aws:iot:local-1:000000000000:cert/' + 'a'.repeat(64) })), { name: 'ResourceNotFoundException' })
  await assert.rejects(iot.send(new AttachPolicyCommand({ policyName: 'sensor', target: 'not-an-arn' })), { name: 'InvalidRequestException' })
  assert.deepEqual((await iot.send(new ListAttachedPoliciesCommand({ target: cert.certificateArn }))).policies?.map(x => x.policyName), ['sensor'])
  assert.deepEqual((await iot.send(new ListAttachedPoliciesCommand({ target: 'arn:aws:iot:local-1:000000000000:thinggroup/floor', recursive: true }))).policies?.map(x => x.policyName), ['fleet-wide'])
  assert.deepEqual((await iot.send(new ListAttachedPoliciesCommand({ target: 'arn:aws:iot:local-1:000000000000:thinggroup/floor' }))).policies, [])
  assert.deepEqual((await iot.send(new ListTargetsForPolicyCommand({ policyName: 'sensor' }))).targets, [cert.certificateArn])
  await assert.rejects(iot.send(new DeletePolicyCommand({ policyName: 'fleet-wide' })), { name: 'DeleteConflictException' })
  await iot.send(new DetachPolicyCommand({ policyName: 'fleet-wide', target: 'arn:aws:iot:local-1:000000000000:thinggroup/fleet' }))
  await iot.send(new DeletePolicyCommand({ policyName: 'fleet-wide' }))
  assert.deepEqual((await iot.send(new ListPoliciesCommand({}))).policies?.map(x => x.policyName), ['sensor'])

  await iot.send(new CreateThingCommand({ thingName: 'thermo-1' }))
  await iot.send(new CreateThingCommand({ thingName: 'thermo-2' }))
  await iot.send(new AttachThingPrincipalCommand({ thingName: 'thermo-1', principal: cert.certificateArn, thingPrincipalType: 'EXCLUSIVE_THING' }))
  await assert.rejects(iot.send(new AttachThingPrincipalCommand({ thingName: 'thermo-2', principal: cert.certificateArn })), { name: 'InvalidRequestException' })
  assert.deepEqual((await iot.send(new ListThingPrincipalsCommand({ thingName: 'thermo-1' }))).principals, [cert.certificateArn])
  assert.deepEqual((await iot.send(new ListThingPrincipalsCommand({ thingName: 'thermo-2' }))).principals, [])
  assert.deepEqual((await iot.send(new ListPrincipalThingsCommand({ principal: cert.certificateArn }))).things, ['thermo-1'])
  await assert.rejects(iot.send(new DeleteThingCommand({ thingName: 'thermo-1' })), { name: 'InvalidRequestException' })
  await iot.send(new DetachThingPrincipalCommand({ thingName: 'thermo-1', principal: cert.certificateArn }))
  assert.deepEqual((await iot.send(new ListPrincipalThingsCommand({ principal: cert.certificateArn }))).things, [])
  await iot.send(new DeleteThingCommand({ thingName: 'thermo-1' }))

  const ep = await iot.send(new DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }))
  assert.match(ep.endpointAddress ?? '', /^127\.0\.0\.1:\d+$/)
})

test('SigV4: bad signature, unknown key and a stale timestamp are 403 and change nothing', async (t) => {
  const p = await startPlatform(t)
  await p.iot().send(new CreateThingCommand({ thingName: 'existing' }))
  const thingsBefore = (await p.iot().send(new ListThingsCommand({}))).things?.map(x => x.thingName)
  const cases: Array<[string, ReturnType<typeof p.iot>, string]> = [
    ['wrong secret', p.iot({ accessKeyId: p.creds.accessKeyId, secretAccessKey: 'x'.repeat(40) }), 'SignatureDoesNotMatchException'],
    ['unknown key', p.iot({ accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: p.creds.secretAccessKey }), 'UnrecognizedClientException'],
    ['stale timestamp', p.iot(p.creds, { systemClockOffset: -10 * 60_000 }), 'InvalidSignatureException'],
  ]
  for (const [label, client, errorName] of cases) {
    const auditBefore = await p.app.audit.query({ outcome: 'denied' })
    await assert.rejects(client.send(new CreateThingCommand({ thingName: `intruder-${label.replace(/ /g, '-')}` })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, errorName, label)
      assert.equal(e.$metadata?.httpStatusCode, 403, label)
      return true
    })
    const denied = await p.app.audit.query({ outcome: 'denied' })
    assert.equal(denied.length, auditBefore.length + 1, `${label}: the denial is audited`)
    assert.equal(denied[denied.length - 1].action, 'http.authenticate')
  }
  assert.deepEqual((await p.iot().send(new ListThingsCommand({}))).things?.map(x => x.thingName), thingsBefore)
  // Never a secret in an audit record.
  const all = JSON.stringify(await p.app.audit.query({}))
  assert.ok(!all.includes(p.creds.secretAccessKey))
})
