import type { FastifyPluginAsync } from 'fastify'
import { InvalidRequestError, isRecord } from '../../core/index.ts'
import type { CaCertificate, Certificate, ThingGroup, ThingType } from '../../registry/index.ts'
import type { HttpDeps } from '../server.ts'
import { jsonBody } from '../server.ts'
import { compact, epoch, params, qBool, qInt, qString } from './shapes.ts'

/**
 * The AWS IoT control plane (service `iot`, protocol rest-json), with the SDK's paths, verbs, query names and
 * response fields (botocore service-2.json, @aws-sdk/client-iot schemas).
 */
export const controlPlaneRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  const { things, policies, certificates } = deps
  const header = (h: string | string[] | undefined): string | undefined => Array.isArray(h) ? h[0] : h

  const thingTypeShape = (t: ThingType): Record<string, unknown> => ({
    thingTypeName: t.name, thingTypeArn: things.thingTypeArn(t.name),
    thingTypeProperties: compact({ thingTypeDescription: t.description, searchableAttributes: t.searchableAttributes.length > 0 ? [...t.searchableAttributes] : undefined }),
    thingTypeMetadata: compact({ deprecated: t.deprecated, deprecationDate: epoch(t.deprecationMs), creationDate: epoch(t.createdMs) }),
  })
  const certShape = (c: Certificate): Record<string, unknown> => compact({
    certificateArn: certificates.certArn(c.id), certificateId: c.id, caCertificateId: c.caId, status: c.status, certificatePem: c.pem,
    ownedBy: deps.accountId, creationDate: epoch(c.createdMs), lastModifiedDate: epoch(c.updatedMs), customerVersion: 1,
    generationId: String(c.generation), validity: { notBefore: epoch(c.notBeforeMs), notAfter: epoch(c.notAfterMs) },
    certificateMode: c.mode, transferData: {},
  })
  const caShape = (c: CaCertificate): Record<string, unknown> => ({
    certificateArn: certificates.caArn(c.id), certificateId: c.id, status: c.status, certificatePem: c.pem, ownedBy: deps.accountId,
    creationDate: epoch(c.createdMs), autoRegistrationStatus: c.autoRegistration, lastModifiedDate: epoch(c.updatedMs), customerVersion: 1,
    generationId: String(c.generation), validity: { notBefore: epoch(c.notBeforeMs), notAfter: epoch(c.notAfterMs) }, certificateMode: c.mode,
  })

  // ---- Things -------------------------------------------------------------------------------------------
  app.post('/things/:thingName', async (req) => {
    const b = jsonBody(req)
    const t = await things.createThing(req.caller, { thingName: params(req).thingName, thingTypeName: b.thingTypeName, attributePayload: isRecord(b.attributePayload) ? b.attributePayload : undefined })
    return { thingName: t.name, thingArn: things.thingArn(t.name), thingId: t.id }
  })
  app.get('/things/:thingName', async (req) => {
    const t = await things.describeThing(params(req).thingName)
    return compact({ defaultClientId: t.name, thingName: t.name, thingId: t.id, thingArn: things.thingArn(t.name), thingTypeName: t.typeName, attributes: { ...t.attributes }, version: t.version })
  })
  app.patch('/things/:thingName', async (req) => {
    const b = jsonBody(req)
    await things.updateThing(req.caller, params(req).thingName, { thingTypeName: b.thingTypeName, attributePayload: isRecord(b.attributePayload) ? b.attributePayload : undefined, expectedVersion: b.expectedVersion, removeThingType: b.removeThingType })
    return {}
  })
  app.delete('/things/:thingName', async (req) => {
    await things.deleteThing(req.caller, params(req).thingName, qInt(req, 'expectedVersion'))
    return {}
  })
  app.get('/things', async (req) => {
    const page = await things.listThings({
      typeName: qString(req, 'thingTypeName'), attributeName: qString(req, 'attributeName'), attributeValue: qString(req, 'attributeValue'),
      usePrefixAttributeValue: qBool(req, 'usePrefixAttributeValue'),
    }, qString(req, 'nextToken'), qInt(req, 'maxResults'))
    return compact({ things: page.items.map(t => compact({ thingName: t.name, thingTypeName: t.typeName, thingArn: things.thingArn(t.name), attributes: { ...t.attributes }, version: t.version })), nextToken: page.nextToken })
  })

  // ---- Thing types --------------------------------------------------------------------------------------
  app.post('/thing-types/:thingTypeName', async (req) => {
    const b = jsonBody(req)
    const props = isRecord(b.thingTypeProperties) ? b.thingTypeProperties : {}
    const t = await things.createThingType(req.caller, { thingTypeName: params(req).thingTypeName, description: props.thingTypeDescription, searchableAttributes: props.searchableAttributes })
    return { thingTypeName: t.name, thingTypeArn: things.thingTypeArn(t.name), thingTypeId: t.id }
  })
  app.get('/thing-types/:thingTypeName', async (req) => {
    const t = await things.describeThingType(params(req).thingTypeName)
    return { ...thingTypeShape(t), thingTypeId: t.id }
  })
  app.get('/thing-types', async (req) => {
    const page = await things.listThingTypes(qString(req, 'nextToken'), qInt(req, 'maxResults'), qString(req, 'thingTypeName'))
    return compact({ thingTypes: page.items.map(thingTypeShape), nextToken: page.nextToken })
  })
  app.post('/thing-types/:thingTypeName/deprecate', async (req) => {
    await things.deprecateThingType(req.caller, params(req).thingTypeName, jsonBody(req).undoDeprecate === true)
    return {}
  })
  app.delete('/thing-types/:thingTypeName', async (req) => {
    await things.deleteThingType(req.caller, params(req).thingTypeName)
    return {}
  })

  // ---- Thing groups -------------------------------------------------------------------------------------
  const groupName = (b: Record<string, unknown>): unknown => b.thingGroupName ?? (typeof b.thingGroupArn === 'string' ? b.thingGroupArn.split('thinggroup/')[1] : undefined)
  const thingName = (b: Record<string, unknown>): unknown => b.thingName ?? (typeof b.thingArn === 'string' ? b.thingArn.split(':thing/')[1] : undefined)
  const requireString = (v: unknown, field: string): string => {
    if (typeof v !== 'string' || v === '') throw new InvalidRequestError(`${field} is required`, { field })
    return v
  }

  app.post('/thing-groups/:thingGroupName', async (req) => {
    const b = jsonBody(req)
    const props = isRecord(b.thingGroupProperties) ? b.thingGroupProperties : {}
    const attrs = isRecord(props.attributePayload) ? props.attributePayload.attributes : undefined
    const g = await things.createThingGroup(req.caller, { thingGroupName: params(req).thingGroupName, parentGroupName: b.parentGroupName, description: props.thingGroupDescription, attributes: attrs })
    return { thingGroupName: g.name, thingGroupArn: things.thingGroupArn(g.name), thingGroupId: g.id }
  })
  app.get('/thing-groups/:thingGroupName', async (req) => {
    const { group: g, ancestors } = await things.describeThingGroup(params(req).thingGroupName)
    return groupShape(g, ancestors)
  })
  const groupShape = (g: ThingGroup, ancestors: ThingGroup[]): Record<string, unknown> => ({
    thingGroupName: g.name, thingGroupId: g.id, thingGroupArn: things.thingGroupArn(g.name), version: g.version,
    thingGroupProperties: compact({ thingGroupDescription: g.description, attributePayload: { attributes: { ...g.attributes } } }),
    thingGroupMetadata: compact({
      parentGroupName: g.parentName,
      rootToParentThingGroups: ancestors.length > 0 ? ancestors.map(a => ({ groupName: a.name, groupArn: things.thingGroupArn(a.name) })) : undefined,
      creationDate: epoch(g.createdMs),
    }),
  })
  app.patch('/thing-groups/:thingGroupName', async (req) => {
    const b = jsonBody(req)
    const props = isRecord(b.thingGroupProperties) ? b.thingGroupProperties : {}
    const ap = isRecord(props.attributePayload) ? props.attributePayload : undefined
    const version = await things.updateThingGroup(req.caller, params(req).thingGroupName, { description: props.thingGroupDescription, attributes: ap?.attributes, merge: ap?.merge === true, expectedVersion: b.expectedVersion })
    return { version }
  })
  app.delete('/thing-groups/:thingGroupName', async (req) => {
    await things.deleteThingGroup(req.caller, params(req).thingGroupName, qInt(req, 'expectedVersion'))
    return {}
  })
  app.get('/thing-groups', async (req) => {
    const page = await things.listThingGroups({ parentGroup: qString(req, 'parentGroup'), namePrefixFilter: qString(req, 'namePrefixFilter'), recursive: qBool(req, 'recursive') }, qString(req, 'nextToken'), qInt(req, 'maxResults'))
    return compact({ thingGroups: page.items.map(g => ({ groupName: g.name, groupArn: things.thingGroupArn(g.name) })), nextToken: page.nextToken })
  })
  app.put('/thing-groups/addThingToThingGroup', async (req) => {
    const b = jsonBody(req)
    await things.addThingToThingGroup(req.caller, requireString(groupName(b), 'thingGroupName'), requireString(thingName(b), 'thingName'))
    return {}
  })
  app.put('/thing-groups/removeThingFromThingGroup', async (req) => {
    const b = jsonBody(req)
    await things.removeThingFromThingGroup(req.caller, requireString(groupName(b), 'thingGroupName'), requireString(thingName(b), 'thingName'))
    return {}
  })
  app.get('/thing-groups/:thingGroupName/things', async (req) => {
    const page = await things.listThingsInThingGroup(params(req).thingGroupName, qBool(req, 'recursive') === true, qString(req, 'nextToken'), qInt(req, 'maxResults'))
    return compact({ things: page.items, nextToken: page.nextToken })
  })

  // ---- Certificates -------------------------------------------------------------------------------------
  app.post('/keys-and-certificate', async (req) => {
    const r = await certificates.createKeysAndCertificate(req.caller, qBool(req, 'setAsActive') === true)
    return {
      certificateArn: certificates.certArn(r.certificate.id), certificateId: r.certificate.id, certificatePem: r.certificate.pem,
      keyPair: { PublicKey: r.keyPair?.publicKeyPem, PrivateKey: r.keyPair?.privateKeyPem },
    }
  })
  app.post('/certificates', async (req) => {
    const c = await certificates.createFromCsr(req.caller, jsonBody(req).certificateSigningRequest, qBool(req, 'setAsActive') === true)
    return { certificateArn: certificates.certArn(c.id), certificateId: c.id, certificatePem: c.pem }
  })
  app.get('/certificates/:certificateId', async (req) => ({ certificateDescription: certShape(await certificates.describe(params(req).certificateId)) }))
  const listCerts = async (caId: string | undefined, req: Parameters<typeof qString>[0]): Promise<Record<string, unknown>> => {
    const page = await certificates.list({ caId, ascending: qBool(req, 'isAscendingOrder') === true, marker: qString(req, 'marker'), pageSize: qInt(req, 'pageSize') })
    return compact({
      certificates: page.items.map(c => ({ certificateArn: certificates.certArn(c.id), certificateId: c.id, status: c.status, certificateMode: c.mode, creationDate: epoch(c.createdMs) })),
      nextMarker: page.nextToken,
    })
  }
  app.get('/certificates', async (req) => listCerts(undefined, req))
  app.get('/certificates-by-ca/:caCertificateId', async (req) => listCerts(params(req).caCertificateId, req))
  app.put('/certificates/:certificateId', async (req) => {
    await certificates.updateStatus(req.caller, params(req).certificateId, qString(req, 'newStatus'))
    return {}
  })
  app.delete('/certificates/:certificateId', async (req) => {
    await certificates.delete(req.caller, params(req).certificateId, qBool(req, 'forceDelete') === true)
    return {}
  })
  app.post('/cacertificate', async (req) => {
    const b = jsonBody(req)
    const ca = await certificates.registerCa(req.caller, {
      caCertificate: b.caCertificate, verificationCertificate: b.verificationCertificate, certificateMode: b.certificateMode,
      setAsActive: qBool(req, 'setAsActive') === true, allowAutoRegistration: qBool(req, 'allowAutoRegistration') === true,
    })
    return { certificateArn: certificates.caArn(ca.id), certificateId: ca.id }
  })
  app.get('/cacertificate/:certificateId', async (req) => ({ certificateDescription: caShape(await certificates.describeCa(params(req).certificateId)) }))
  app.get('/cacertificates', async (req) => {
    const page = await certificates.listCas(qString(req, 'marker'), qInt(req, 'pageSize'), qBool(req, 'isAscendingOrder') === true)
    return compact({
      certificates: page.items.map(c => ({ certificateArn: certificates.caArn(c.id), certificateId: c.id, status: c.status, creationDate: epoch(c.createdMs) })),
      nextMarker: page.nextToken,
    })
  })
  app.put('/cacertificate/:certificateId', async (req) => {
    await certificates.updateCa(req.caller, params(req).certificateId, qString(req, 'newStatus'), qString(req, 'newAutoRegistrationStatus'))
    return {}
  })
  app.post('/certificate/register', async (req) => {
    const b = jsonBody(req)
    const c = await certificates.register(req.caller, { certificatePem: b.certificatePem, caCertificatePem: b.caCertificatePem, status: b.status, setAsActive: qBool(req, 'setAsActive'), withoutCa: false })
    return { certificateArn: certificates.certArn(c.id), certificateId: c.id }
  })
  app.post('/certificate/register-no-ca', async (req) => {
    const b = jsonBody(req)
    const c = await certificates.register(req.caller, { certificatePem: b.certificatePem, status: b.status, withoutCa: true })
    return { certificateArn: certificates.certArn(c.id), certificateId: c.id }
  })
  app.get('/registrationcode', async () => ({ registrationCode: await certificates.getRegistrationCode() }))

  // ---- Policies -----------------------------------------------------------------------------------------
  app.post('/policies/:policyName', async (req) => {
    const r = await policies.createPolicy(req.caller, params(req).policyName, jsonBody(req).policyDocument)
    return { policyName: r.policy.name, policyArn: policies.policyArn(r.policy.name), policyDocument: r.document, policyVersionId: String(r.policy.defaultVersion) }
  })
  app.get('/policies/:policyName', async (req) => {
    const r = await policies.getPolicy(params(req).policyName)
    return {
      policyName: r.policy.name, policyArn: policies.policyArn(r.policy.name), policyDocument: r.document, defaultVersionId: String(r.policy.defaultVersion),
      creationDate: epoch(r.policy.createdMs), lastModifiedDate: epoch(r.policy.updatedMs), generationId: String(r.policy.generation),
    }
  })
  app.get('/policies', async (req) => {
    const page = await policies.listPolicies(qString(req, 'marker'), qInt(req, 'pageSize'), qBool(req, 'isAscendingOrder') !== false)
    return compact({ policies: page.items.map(p => ({ policyName: p.name, policyArn: policies.policyArn(p.name) })), nextMarker: page.nextToken })
  })
  app.delete('/policies/:policyName', async (req) => {
    await policies.deletePolicy(req.caller, params(req).policyName)
    return {}
  })
  app.post('/policies/:policyName/version', async (req) => {
    const r = await policies.createPolicyVersion(req.caller, params(req).policyName, jsonBody(req).policyDocument, qBool(req, 'setAsDefault') === true)
    return { policyArn: policies.policyArn(r.version.policyName), policyDocument: r.version.document, policyVersionId: String(r.version.version), isDefaultVersion: r.isDefault }
  })
  app.get('/policies/:policyName/version', async (req) => {
    const r = await policies.listPolicyVersions(params(req).policyName)
    return { policyVersions: r.versions.map(v => ({ versionId: String(v.version), isDefaultVersion: v.version === r.policy.defaultVersion, createDate: epoch(v.createdMs) })) }
  })
  app.get('/policies/:policyName/version/:policyVersionId', async (req) => {
    const { version: v, policy } = await policies.getPolicyVersion(params(req).policyName, params(req).policyVersionId)
    return {
      policyArn: policies.policyArn(v.policyName), policyName: v.policyName, policyDocument: v.document, policyVersionId: String(v.version),
      isDefaultVersion: v.version === policy.defaultVersion, creationDate: epoch(v.createdMs), lastModifiedDate: epoch(v.createdMs), generationId: String(policy.generation),
    }
  })
  app.patch('/policies/:policyName/version/:policyVersionId', async (req) => {
    await policies.setDefaultPolicyVersion(req.caller, params(req).policyName, params(req).policyVersionId)
    return {}
  })
  app.delete('/policies/:policyName/version/:policyVersionId', async (req) => {
    await policies.deletePolicyVersion(req.caller, params(req).policyName, params(req).policyVersionId)
    return {}
  })
  app.put('/target-policies/:policyName', async (req) => {
    await policies.attachPolicy(req.caller, params(req).policyName, jsonBody(req).target)
    return {}
  })
  app.post('/target-policies/:policyName', async (req) => {
    await policies.detachPolicy(req.caller, params(req).policyName, jsonBody(req).target)
    return {}
  })
  app.post('/attached-policies/:target', async (req) => {
    const page = await policies.listAttachedPolicies(params(req).target, qBool(req, 'recursive') === true, qString(req, 'marker'), qInt(req, 'pageSize'))
    return compact({ policies: page.items.map(n => ({ policyName: n, policyArn: policies.policyArn(n) })), nextMarker: page.nextToken })
  })
  app.post('/policy-targets/:policyName', async (req) => {
    const page = await policies.listTargetsForPolicy(params(req).policyName, qString(req, 'marker'), qInt(req, 'pageSize'))
    return compact({ targets: page.items, nextMarker: page.nextToken })
  })

  // ---- Thing principals ---------------------------------------------------------------------------------
  app.put('/things/:thingName/principals', async (req) => {
    await policies.attachThingPrincipal(req.caller, params(req).thingName, header(req.headers['x-amzn-principal']), qString(req, 'thingPrincipalType'))
    return {}
  })
  app.delete('/things/:thingName/principals', async (req) => {
    await policies.detachThingPrincipal(req.caller, params(req).thingName, header(req.headers['x-amzn-principal']))
    return {}
  })
  app.get('/things/:thingName/principals', async (req) => {
    const page = await policies.listThingPrincipals(params(req).thingName, qString(req, 'nextToken'), qInt(req, 'maxResults'))
    return compact({ principals: page.items.map(p => p.principal), nextToken: page.nextToken })
  })
  app.get('/principals/things', async (req) => {
    const page = await policies.listPrincipalThings(header(req.headers['x-amzn-principal']), qString(req, 'nextToken'), qInt(req, 'maxResults'))
    return compact({ things: page.items.map(p => p.thingName), nextToken: page.nextToken })
  })

  // ---- TestAuthorization (AWS shape; our compiled evaluator explains each decision) ---------------------
  app.post('/test-authorization', async (req) => {
    const b = jsonBody(req)
    return deps.authorization.testAuthorization({
      principal: b.principal, authInfos: b.authInfos, clientId: qString(req, 'clientId'), policyNamesToAdd: b.policyNamesToAdd, policyNamesToSkip: b.policyNamesToSkip,
    })
  })

  // ---- Endpoint -----------------------------------------------------------------------------------------
  app.get('/endpoint', async (req) => {
    const type = qString(req, 'endpointType') ?? 'iot:Data-ATS'
    if (!['iot:Data', 'iot:Data-ATS', 'iot:CredentialProvider', 'iot:Jobs'].includes(type)) {
      throw new InvalidRequestError('endpointType must be iot:Data, iot:Data-ATS, iot:CredentialProvider or iot:Jobs', { field: 'endpointType' })
    }
    return { endpointAddress: deps.mqttEndpoint }
  })
}
