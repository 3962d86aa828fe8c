import { AlreadyExistsError, AppError, InvalidRequestError, NotFoundError, iotArn, parseIotArn } from '../core/index.ts'
import { parsePolicy } from '../policy/index.ts'
import type { Caller, RegistryDeps } from './context.ts'
import { auditChange, decodeToken, pageSize, paginate } from './context.ts'
import type { RegistryUnit } from './ports.ts'
import type { Page, Policy, PolicyVersion, ThingPrincipal, ThingPrincipalType } from './types.ts'
import { checkName, checkPolicyName } from './validate.ts'

/** AWS IoT: at most 5 versions of a policy (VersionsLimitExceededException on the sixth). */
export const MAX_POLICY_VERSIONS = 5
/** Policies per target. AWS documents 10 per certificate; thing groups take at most 2 (DG thing-groups). */
const MAX_POLICIES_PER_CERT = 10
const MAX_POLICIES_PER_GROUP = 2

export interface PolicyWithDocument { readonly policy: Policy, readonly document: string }

/** Policies and their versions, policy attachments, and thing ↔ principal attachments. */
export class PolicyService {
  readonly #d: RegistryDeps
  constructor (deps: RegistryDeps) { this.#d = deps }

  policyArn (name: string): string { return iotArn(this.#d.arn, 'policy', name) }

  /** Validates with the policy engine (MalformedPolicyException naming the JSON path and rule). */
  #checkDocument (doc: unknown): string {
    if (typeof doc !== 'string' || doc.length === 0) throw new InvalidRequestError('policyDocument must be a non-empty string', { field: 'policyDocument' })
    parsePolicy(doc)
    return doc
  }

  async createPolicy (caller: Caller, name: unknown, document: unknown): Promise<PolicyWithDocument> {
    const policyName = checkPolicyName(name)
    const doc = this.#checkDocument(document)
    return this.#d.storage.transaction(async (u) => {
      if (await u.store.getPolicy(policyName) !== undefined) throw new AlreadyExistsError('policy', policyName, this.policyArn(policyName))
      const now = this.#d.clock.nowMs()
      const policy: Policy = { name: policyName, defaultVersion: 1, nextVersion: 2, createdMs: now, updatedMs: now, generation: 1 }
      await u.store.putPolicy(policy)
      await u.store.putPolicyVersion({ policyName, version: 1, document: doc, createdMs: now })
      await auditChange(u, caller, 'iot.CreatePolicy', this.policyArn(policyName))
      return { policy, document: doc }
    })
  }

  async getPolicy (name: string): Promise<PolicyWithDocument> {
    return this.#d.storage.read(async (s) => {
      const policy = await s.getPolicy(name)
      if (policy === undefined) throw new NotFoundError('policy', name)
      const v = await s.getPolicyVersion(name, policy.defaultVersion)
      if (v === undefined) throw new AppError('ERR_STORAGE_CORRUPT', 'policy default version is missing', { policyName: name })
      return { policy, document: v.document }
    })
  }

  async listPolicies (nextToken: string | undefined, pageSizeIn: number | undefined, ascending = true): Promise<Page<Policy>> {
    const limit = pageSize(pageSizeIn)
    const rows = await this.#d.storage.read(s => s.listPolicies({ after: decodeToken(nextToken), limit: 1_000_000 }))
    const ordered = ascending ? rows : rows.reverse()
    const after = decodeToken(nextToken)
    const filtered = after === undefined ? ordered : ordered.filter(p => ascending ? p.name > after : p.name < after)
    return paginate(filtered.slice(0, limit + 1), limit, p => p.name)
  }

  /** DeletePolicy: AWS refuses while attached or while non-default versions exist (DeleteConflictException). */
  async deletePolicy (caller: Caller, name: string): Promise<void> {
    await this.#d.storage.transaction(async (u) => {
      const p = await u.store.getPolicy(name)
      if (p === undefined) throw new NotFoundError('policy', name)
      if (await u.store.countTargetsForPolicy(name) > 0) throw new AppError('ERR_REGISTRY_DELETE_CONFLICT', 'the policy is attached to one or more targets: detach it first', { policyName: name })
      if ((await u.store.listPolicyVersions(name)).length > 1) throw new AppError('ERR_REGISTRY_DELETE_CONFLICT', 'the policy has non-default versions: delete them first', { policyName: name })
      await u.store.deletePolicy(name)
      await auditChange(u, caller, 'iot.DeletePolicy', this.policyArn(name))
    })
  }

  async createPolicyVersion (caller: Caller, name: string, document: unknown, setAsDefault: boolean): Promise<{ version: PolicyVersion, isDefault: boolean }> {
    const doc = this.#checkDocument(document)
    const result = await this.#d.storage.transaction(async (u) => {
      const p = await u.store.getPolicy(name)
      if (p === undefined) throw new NotFoundError('policy', name)
      if ((await u.store.listPolicyVersions(name)).length >= MAX_POLICY_VERSIONS) {
        throw new AppError('ERR_REGISTRY_VERSIONS_LIMIT', `a policy can have at most ${MAX_POLICY_VERSIONS} versions: delete one first`, { policyName: name })
      }
      const now = this.#d.clock.nowMs()
      const version: PolicyVersion = { policyName: name, version: p.nextVersion, document: doc, createdMs: now }
      await u.store.putPolicyVersion(version)
      await u.store.putPolicy({ ...p, nextVersion: p.nextVersion + 1, defaultVersion: setAsDefault ? version.version : p.defaultVersion, updatedMs: now, generation: p.generation + 1 })
      await auditChange(u, caller, 'iot.CreatePolicyVersion', this.policyArn(name), { policyVersionId: String(version.version), setAsDefault })
      return { version, isDefault: setAsDefault }
    })
    if (setAsDefault) this.#d.events.publish({ type: 'policy.default-version', policyName: name, versionId: result.version.version })
    return result
  }

  async getPolicyVersion (name: string, versionId: string): Promise<{ version: PolicyVersion, policy: Policy }> {
    const v = this.#versionNumber(versionId)
    return this.#d.storage.read(async (s) => {
      const policy = await s.getPolicy(name)
      if (policy === undefined) throw new NotFoundError('policy', name)
      const version = await s.getPolicyVersion(name, v)
      if (version === undefined) throw new NotFoundError('policy version', `${name}:${versionId}`)
      return { version, policy }
    })
  }

  #versionNumber (versionId: string): number {
    if (!/^[0-9]{1,9}$/.test(versionId)) throw new InvalidRequestError('policyVersionId must be a number', { field: 'policyVersionId' })
    return Number(versionId)
  }

  async listPolicyVersions (name: string): Promise<{ policy: Policy, versions: PolicyVersion[] }> {
    return this.#d.storage.read(async (s) => {
      const policy = await s.getPolicy(name)
      if (policy === undefined) throw new NotFoundError('policy', name)
      return { policy, versions: await s.listPolicyVersions(name) }
    })
  }

  async setDefaultPolicyVersion (caller: Caller, name: string, versionId: string): Promise<void> {
    const v = this.#versionNumber(versionId)
    await this.#d.storage.transaction(async (u) => {
      const p = await u.store.getPolicy(name)
      if (p === undefined) throw new NotFoundError('policy', name)
      if (await u.store.getPolicyVersion(name, v) === undefined) throw new NotFoundError('policy version', `${name}:${versionId}`)
      await u.store.putPolicy({ ...p, defaultVersion: v, updatedMs: this.#d.clock.nowMs(), generation: p.generation + 1 })
      await auditChange(u, caller, 'iot.SetDefaultPolicyVersion', this.policyArn(name), { policyVersionId: versionId })
    })
    this.#d.events.publish({ type: 'policy.default-version', policyName: name, versionId: v })
  }

  /** DeletePolicyVersion: the default version cannot be deleted (DeleteConflictException). */
  async deletePolicyVersion (caller: Caller, name: string, versionId: string): Promise<void> {
    const v = this.#versionNumber(versionId)
    await this.#d.storage.transaction(async (u) => {
      const p = await u.store.getPolicy(name)
      if (p === undefined) throw new NotFoundError('policy', name)
      if (await u.store.getPolicyVersion(name, v) === undefined) throw new NotFoundError('policy version', `${name}:${versionId}`)
      if (p.defaultVersion === v) throw new AppError('ERR_REGISTRY_DELETE_CONFLICT', 'the default version of a policy cannot be deleted', { policyName: name })
      await u.store.deletePolicyVersion(name, v)
      await auditChange(u, caller, 'iot.DeletePolicyVersion', this.policyArn(name), { policyVersionId: versionId })
    })
  }

  /** Checks a policy target: a certificate ARN or a thing group ARN that exists here. */
  async #checkTarget (u: RegistryUnit, target: unknown): Promise<{ target: string, kind: 'cert' | 'thinggroup' }> {
    if (typeof target !== 'string' || target.length === 0) throw new InvalidRequestError('target must be a certificate or thing group ARN', { field: 'target' })
    const arn = parseIotArn(target)
    if (arn === undefined || (arn.type !== 'cert' && arn.type !== 'thinggroup')) throw new InvalidRequestError('target must be a certificate or thing group ARN', { field: 'target' })
    if (arn.region !== this.#d.arn.region || arn.accountId !== this.#d.arn.accountId) throw new InvalidRequestError('target ARN names another region or account', { field: 'target' })
    if (arn.type === 'cert') {
      if (await u.store.getCertificate(arn.name) === undefined) throw new NotFoundError('certificate', arn.name)
    } else if (await u.store.getThingGroup(arn.name) === undefined) throw new NotFoundError('thing group', arn.name)
    return { target, kind: arn.type }
  }

  async attachPolicy (caller: Caller, policyName: string, targetIn: unknown): Promise<void> {
    const attached = await this.#d.storage.transaction(async (u) => {
      if (await u.store.getPolicy(policyName) === undefined) throw new NotFoundError('policy', policyName)
      const { target, kind } = await this.#checkTarget(u, targetIn)
      const current = await u.store.listPoliciesForTarget(target)
      if (current.includes(policyName)) return target
      const max = kind === 'cert' ? MAX_POLICIES_PER_CERT : MAX_POLICIES_PER_GROUP
      if (current.length >= max) throw new AppError('ERR_REGISTRY_LIMIT_EXCEEDED', `at most ${max} policies can be attached to this target`, { target })
      await u.store.attachPolicy(policyName, target, this.#d.clock.nowMs())
      await auditChange(u, caller, 'iot.AttachPolicy', this.policyArn(policyName), { target })
      return target
    })
    this.#d.events.publish({ type: 'policy.attachment', policyName, target: attached, attached: true })
  }

  async detachPolicy (caller: Caller, policyName: string, targetIn: unknown): Promise<void> {
    const target = await this.#d.storage.transaction(async (u) => {
      if (await u.store.getPolicy(policyName) === undefined) throw new NotFoundError('policy', policyName)
      if (typeof targetIn !== 'string' || parseIotArn(targetIn) === undefined) throw new InvalidRequestError('target must be a certificate or thing group ARN', { field: 'target' })
      await u.store.detachPolicy(policyName, targetIn)
      await auditChange(u, caller, 'iot.DetachPolicy', this.policyArn(policyName), { target: targetIn })
      return targetIn
    })
    this.#d.events.publish({ type: 'policy.attachment', policyName, target, attached: false })
  }

  /**
   * ListAttachedPolicies. With recursive=true on a thing group, the parents' policies are included (AWS:
   * "When true, recursively list attached policies" — group policies are inherited by child groups).
   */
  async listAttachedPolicies (target: string, recursive: boolean, marker: string | undefined, pageSizeIn: number | undefined): Promise<Page<string>> {
    const limit = pageSize(pageSizeIn)
    const names = await this.#d.storage.read(async (s) => {
      const arn = parseIotArn(target)
      if (arn === undefined) throw new InvalidRequestError('target must be an ARN', { field: 'target' })
      if (arn.type === 'cert' && await s.getCertificate(arn.name) === undefined) throw new NotFoundError('certificate', arn.name)
      if (arn.type === 'thinggroup') {
        const g = await s.getThingGroup(arn.name)
        if (g === undefined) throw new NotFoundError('thing group', arn.name)
        if (recursive) {
          const out = new Set<string>()
          let cur: string | undefined = arn.name
          while (cur !== undefined) {
            for (const p of await s.listPoliciesForTarget(iotArn(this.#d.arn, 'thinggroup', cur))) out.add(p)
            cur = (await s.getThingGroup(cur))?.parentName
          }
          return [...out].sort()
        }
      }
      return s.listPoliciesForTarget(target)
    })
    const after = decodeToken(marker)
    return paginate(names.filter(n => after === undefined || n > after).slice(0, limit + 1), limit, n => n)
  }

  async listTargetsForPolicy (policyName: string, marker: string | undefined, pageSizeIn: number | undefined): Promise<Page<string>> {
    const limit = pageSize(pageSizeIn)
    const rows = await this.#d.storage.read(async (s) => {
      if (await s.getPolicy(policyName) === undefined) throw new NotFoundError('policy', policyName)
      return s.listTargetsForPolicy(policyName, { after: decodeToken(marker), limit: limit + 1 })
    })
    return paginate(rows, limit, t => t)
  }

  /** AttachThingPrincipal. EXCLUSIVE_THING binds the certificate to this one thing (AWS exclusive association). */
  async attachThingPrincipal (caller: Caller, thingName: string, principal: unknown, typeIn: unknown): Promise<void> {
    checkName('thingName', thingName)
    const type: ThingPrincipalType = typeIn === undefined || typeIn === null || typeIn === '' ? 'NON_EXCLUSIVE_THING' : typeIn as ThingPrincipalType
    if (type !== 'EXCLUSIVE_THING' && type !== 'NON_EXCLUSIVE_THING') throw new InvalidRequestError('thingPrincipalType must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING')
    const p = this.#checkPrincipal(principal)
    await this.#d.storage.transaction(async (u) => {
      if (await u.store.getThing(thingName) === undefined) throw new NotFoundError('thing', thingName)
      if (await u.store.getCertificate(p.certificateId) === undefined) throw new NotFoundError('certificate', p.certificateId)
      const others = await u.store.listPrincipalThings(p.principal, { limit: 1000 })
      const elsewhere = others.filter(o => o.thingName !== thingName)
      if (type === 'EXCLUSIVE_THING' && elsewhere.length > 0) throw new InvalidRequestError('the principal is attached to another thing and cannot be attached exclusively', { thingName })
      if (elsewhere.some(o => o.type === 'EXCLUSIVE_THING')) throw new InvalidRequestError('the principal is exclusively attached to another thing', { thingName })
      const rec: ThingPrincipal = { thingName, principal: p.principal, type, createdMs: this.#d.clock.nowMs() }
      await u.store.attachThingPrincipal(rec)
      await auditChange(u, caller, 'iot.AttachThingPrincipal', iotArn(this.#d.arn, 'thing', thingName), { principal: p.principal, thingPrincipalType: type })
    })
    this.#d.events.publish({ type: 'thing.principal', thingName, principal: p.principal, attached: true })
  }

  async detachThingPrincipal (caller: Caller, thingName: string, principal: unknown): Promise<void> {
    checkName('thingName', thingName)
    const p = this.#checkPrincipal(principal)
    await this.#d.storage.transaction(async (u) => {
      if (await u.store.getThing(thingName) === undefined) throw new NotFoundError('thing', thingName)
      await u.store.detachThingPrincipal(thingName, p.principal)
      await auditChange(u, caller, 'iot.DetachThingPrincipal', iotArn(this.#d.arn, 'thing', thingName), { principal: p.principal })
    })
    this.#d.events.publish({ type: 'thing.principal', thingName, principal: p.principal, attached: false })
  }

  #checkPrincipal (principal: unknown): { principal: string, certificateId: string } {
    if (typeof principal !== 'string') throw new InvalidRequestError('principal must be a certificate ARN (x-amzn-principal header)', { field: 'principal' })
    const arn = parseIotArn(principal)
    if (arn === undefined || arn.type !== 'cert' || !/^[0-9a-f]{64}$/.test(arn.name)) throw new InvalidRequestError('principal must be a certificate ARN (x-amzn-principal header)', { field: 'principal' })
    return { principal, certificateId: arn.name }
  }

  async listThingPrincipals (thingName: string, nextToken: string | undefined, maxResults: number | undefined): Promise<Page<ThingPrincipal>> {
    const limit = pageSize(maxResults)
    const rows = await this.#d.storage.read(async (s) => {
      if (await s.getThing(thingName) === undefined) throw new NotFoundError('thing', thingName)
      return s.listThingPrincipals(thingName, { after: decodeToken(nextToken), limit: limit + 1 })
    })
    return paginate(rows, limit, r => r.principal)
  }

  async listPrincipalThings (principal: unknown, nextToken: string | undefined, maxResults: number | undefined): Promise<Page<ThingPrincipal>> {
    const p = this.#checkPrincipal(principal)
    const limit = pageSize(maxResults)
    const rows = await this.#d.storage.read(async (s) => {
      if (await s.getCertificate(p.certificateId) === undefined) throw new NotFoundError('certificate', p.certificateId)
      return s.listPrincipalThings(p.principal, { after: decodeToken(nextToken), limit: limit + 1 })
    })
    return paginate(rows, limit, r => r.thingName)
  }
}
