import { InvalidRequestError, NotFoundError, parseIotArn } from '../core/index.ts'
import type { AuthInfo, BlastRadiusReport, Finding, FleetPrincipal, FleetThing, NamedPolicy, RoleName } from '../policy/index.ts'
import {
  AUTH_ACTION_TYPES, ROLES, ROLE_INFO, buildSessionVariables, collectEffectivePolicies, computeBlastRadius, lintPolicy, parsePolicy, testAuthorization,
} from '../policy/index.ts'
import type { RegistryDeps } from './context.ts'
import type { DeviceDirectory, DeviceIdentity } from './devices.ts'
import type { Thing } from './types.ts'

/** AWS TestAuthorization input (botocore iot TestAuthorization). */
export interface TestAuthorizationRequest {
  readonly principal?: unknown
  readonly authInfos?: unknown
  readonly clientId?: string
  readonly policyNamesToAdd?: unknown
  readonly policyNamesToSkip?: unknown
}

const ROLE_BY_TYPE = new Map<string, RoleName>(ROLES.map(r => [ROLE_INFO[r].thingType, r]))

/**
 * The topics a thing owns under the seed layout `building/{b}/floor/{f}/{segment}/{thing}` (telemetry for sensors,
 * status/audit and cmd for lights and locks), for blast-radius shares over the real registry.
 */
function thingTopics (t: Thing): string[] {
  const role = t.typeName === undefined ? undefined : ROLE_BY_TYPE.get(t.typeName)
  const b = t.attributes.building
  const f = t.attributes.floor
  if (role === undefined || b === undefined || f === undefined) return []
  const base = `building/${b}/floor/${f}/${ROLE_INFO[role].segment}/${t.name}`
  if (role === 'temperature-sensor' || role === 'occupancy-sensor') return [base]
  return [role === 'smart-light' ? `${base}/status` : `${base}/audit`, `${base}/cmd`]
}

/** Explanations and analysis over the registry: TestAuthorization, policy lint, fleet blast radius. */
export class AuthorizationService {
  readonly #d: RegistryDeps
  readonly #devices: DeviceDirectory
  constructor (deps: RegistryDeps, devices: DeviceDirectory) { this.#d = deps; this.#devices = devices }

  async #effective (identity: DeviceIdentity, clientId: string): Promise<NamedPolicy[]> {
    const loaded = await this.#devices.policiesFor(identity)
    return collectEffectivePolicies({
      certificatePolicies: loaded.certificatePolicies, thingGroups: loaded.thingGroups, thingName: identity.thing?.name, clientId, exclusiveThing: identity.exclusiveThing,
    })
  }

  /**
   * TestAuthorization: evaluates the principal's effective policies (plus policyNamesToAdd, minus
   * policyNamesToSkip) with the same compiled evaluator the gateway uses, and says which policies decided.
   */
  async testAuthorization (req: TestAuthorizationRequest): Promise<ReturnType<typeof testAuthorization>> {
    if (!Array.isArray(req.authInfos) || req.authInfos.length < 1 || req.authInfos.length > 10) {
      throw new InvalidRequestError('authInfos must hold 1-10 entries', { field: 'authInfos' })
    }
    const authInfos: AuthInfo[] = req.authInfos.map((a: unknown, i) => {
      const o = a as { actionType?: unknown, resources?: unknown }
      if (typeof o !== 'object' || o === null || typeof o.actionType !== 'string' || !(o.actionType in AUTH_ACTION_TYPES)) {
        throw new InvalidRequestError('actionType must be PUBLISH, SUBSCRIBE, RECEIVE or CONNECT', { field: `authInfos[${i}].actionType` })
      }
      if (!Array.isArray(o.resources) || o.resources.length < 1 || !o.resources.every(r => typeof r === 'string')) {
        throw new InvalidRequestError('resources must be a non-empty list of ARNs', { field: `authInfos[${i}].resources` })
      }
      return { actionType: o.actionType as AuthInfo['actionType'], resources: o.resources as string[] }
    })
    const names = (v: unknown, field: string): string[] => {
      if (v === undefined || v === null) return []
      if (!Array.isArray(v) || !v.every(n => typeof n === 'string')) throw new InvalidRequestError('must be a list of policy names', { field })
      return v as string[]
    }
    const add = names(req.policyNamesToAdd, 'policyNamesToAdd')
    const skip = new Set(names(req.policyNamesToSkip, 'policyNamesToSkip'))
    let identity: DeviceIdentity | undefined
    if (req.principal !== undefined && req.principal !== null) {
      const arn = typeof req.principal === 'string' ? parseIotArn(req.principal) : undefined
      if (arn === undefined || arn.type !== 'cert') throw new InvalidRequestError('principal must be a certificate ARN', { field: 'principal' })
      identity = await this.#devices.describe(arn.name)
      if (identity === undefined) throw new NotFoundError('certificate', arn.name)
    } else if (add.length === 0) {
      throw new InvalidRequestError('principal or policyNamesToAdd is required', { field: 'principal' })
    }
    const clientId = req.clientId ?? identity?.thing?.name ?? 'test-client'
    const base = identity === undefined ? [] : await this.#effective(identity, clientId)
    const extra = await this.#devices.namedPolicies(add)
    if (extra.length !== add.length) {
      const missing = add.find(n => !extra.some(p => p.name === n)) ?? ''
      throw new NotFoundError('policy', missing)
    }
    const policies = [...base, ...extra.filter(p => !base.some(b => b.name === p.name))].filter(p => !skip.has(p.name))
    const thing = identity?.thing
    const session = buildSessionVariables({
      clientId, exclusiveThing: identity?.exclusiveThing,
      thing: thing === undefined ? undefined : { name: thing.name, typeName: thing.typeName, attributes: thing.attributes },
    })
    return testAuthorization({ authInfos, policies, session, arn: this.#d.arn, clock: this.#d.clock })
  }

  /** Lint findings for a policy's default version, or for a document not yet stored. */
  async lint (input: { policyName?: string, policyDocument?: unknown }): Promise<{ policyName?: string, policyVersionId?: string, findings: Finding[] }> {
    if (input.policyDocument !== undefined) {
      if (typeof input.policyDocument !== 'string') throw new InvalidRequestError('policyDocument must be a string', { field: 'policyDocument' })
      return { findings: lintPolicy(parsePolicy(input.policyDocument)) }
    }
    if (input.policyName === undefined) throw new InvalidRequestError('policyName or policyDocument is required')
    const [p] = await this.#devices.namedPolicies([input.policyName])
    if (p === undefined) throw new NotFoundError('policy', input.policyName)
    return { policyName: p.name, policyVersionId: p.versionId, findings: lintPolicy(p.document) }
  }

  /** The fleet as the analysis sees it: every thing, and every ACTIVE certificate with its effective policies. */
  async fleetSnapshot (): Promise<{ things: FleetThing[], principals: FleetPrincipal[] }> {
    const things: FleetThing[] = []
    const thingList: Thing[] = await this.#d.storage.read(async (s) => {
      const out: Thing[] = []
      let after: string | undefined
      for (;;) {
        const page = await s.listThings({}, { after, limit: 5000 })
        out.push(...page)
        if (page.length < 5000) return out
        after = page[page.length - 1].name
      }
    })
    for (const t of thingList) {
      things.push({ name: t.name, typeName: t.typeName, attributes: t.attributes, groups: await this.#d.storage.read(s => s.listGroupsForThing(t.name)), topics: thingTopics(t) })
    }
    const certIds: string[] = await this.#d.storage.read(async (s) => {
      const ids: string[] = []
      let after: string | undefined
      for (;;) {
        const page = await s.listCertificates({ status: 'ACTIVE', ascending: true }, { after, limit: 5000 })
        ids.push(...page.map(c => c.id))
        if (page.length < 5000) return ids
        const last = page[page.length - 1]
        after = `${last.createdMs}:${last.id}`
      }
    })
    const principals: FleetPrincipal[] = []
    for (const id of certIds) {
      const identity = await this.#devices.describe(id)
      if (identity === undefined) continue
      const clientId = identity.thing?.name ?? identity.certificateArn
      principals.push({
        id: identity.certificateArn, label: identity.thing?.typeName ?? 'unattached', thingName: identity.thing?.name, clientId,
        exclusiveThing: identity.exclusiveThing, policies: await this.#effective(identity, clientId),
      })
    }
    return { things, principals }
  }

  /** Blast radius of every ACTIVE certificate over the actual registry, ranked (largest first). */
  async blastRadius (): Promise<BlastRadiusReport> {
    const snap = await this.fleetSnapshot()
    return computeBlastRadius({ arn: this.#d.arn, things: snap.things, principals: snap.principals })
  }
}
