import { AppError, iotArn } from '../core/index.ts'
import type { NamedPolicy } from '../policy/index.ts'
import { parsePolicy } from '../policy/index.ts'
import type { RegistryDeps } from './context.ts'
import type { RegistryStore } from './ports.ts'
import type { Certificate, Policy, Thing } from './types.ts'

/** Who a verified device certificate belongs to, as the registry knows it at this moment. */
export interface DeviceIdentity {
  readonly certificate: Certificate
  readonly certificateArn: string
  /** The thing the certificate is attached to (the exclusive one, else the first by name). */
  readonly thing: Thing | undefined
  readonly exclusiveThing: boolean
}

export type IdentifyResult = { readonly ok: true, readonly identity: DeviceIdentity } | { readonly ok: false, readonly reason: string }

/** The policies a device session compiles, with what they came from (for invalidation). */
export interface DevicePolicies {
  readonly certificatePolicies: NamedPolicy[]
  /** The thing's groups, nearest first, each followed by its ancestors, with their policies. */
  readonly thingGroups: Array<{ groupName: string, policies: NamedPolicy[] }>
}

/**
 * Device lookups for the gateway: identity by certificate on every connection (never cached: a revoked or
 * deactivated certificate must fail its next connection, resumed TLS sessions included), and the policies a
 * session compiles. Parsed policy versions are cached by name and version, which never change once written.
 */
export class DeviceDirectory {
  readonly #d: RegistryDeps
  readonly #parsed = new Map<string, NamedPolicy>()
  constructor (deps: RegistryDeps) { this.#d = deps }

  /**
   * Looks a certificate up by the SHA-256 of its DER (= its id, AWS style). Refuses unknown certificates, any
   * status but ACTIVE, certificates outside their validity, and certificates whose registered CA is not ACTIVE.
   */
  async identify (certificateId: string): Promise<IdentifyResult> {
    const now = this.#d.clock.nowMs()
    return this.#d.storage.read(async (s) => {
      const r = await s.getCertificateWithCaStatus(certificateId)
      if (r === undefined) return { ok: false, reason: 'certificate-unknown' }
      const c = r.certificate
      if (c.status !== 'ACTIVE') return { ok: false, reason: `certificate-${c.status.toLowerCase()}` }
      if (now < c.notBeforeMs) return { ok: false, reason: 'certificate-not-yet-valid' }
      if (now > c.notAfterMs) return { ok: false, reason: 'certificate-expired' }
      if (c.caId !== undefined && r.caStatus !== 'ACTIVE') return { ok: false, reason: 'ca-inactive' }
      return { ok: true, identity: await this.#identity(s, c) }
    })
  }

  /** The identity of a certificate whatever its status (for TestAuthorization and analysis), or undefined. */
  async describe (certificateId: string): Promise<DeviceIdentity | undefined> {
    return this.#d.storage.read(async (s) => {
      const c = await s.getCertificate(certificateId)
      return c === undefined ? undefined : this.#identity(s, c)
    })
  }

  async #identity (s: RegistryStore, c: Certificate): Promise<DeviceIdentity> {
    const arn = iotArn(this.#d.arn, 'cert', c.id)
    const attached = await s.getPrincipalThing(arn)
    return { certificate: c, certificateArn: arn, thing: attached?.thing, exclusiveThing: attached?.type === 'EXCLUSIVE_THING' }
  }

  /** The certificate's policies and its thing's group policies (ancestors included), default versions. */
  async policiesFor (identity: DeviceIdentity): Promise<DevicePolicies> {
    return this.#d.storage.read(async (s) => {
      const certificatePolicies = await this.#loadVersions(s, await s.listAttachedPolicies(identity.certificateArn))
      const thingGroups: Array<{ groupName: string, policies: NamedPolicy[] }> = []
      if (identity.thing !== undefined) {
        const seen = new Set<string>()
        for (const direct of await s.listGroupsForThing(identity.thing.name)) {
          let name: string | undefined = direct
          while (name !== undefined && !seen.has(name)) {
            seen.add(name)
            thingGroups.push({ groupName: name, policies: await this.#loadVersions(s, await s.listAttachedPolicies(iotArn(this.#d.arn, 'thinggroup', name))) })
            name = (await s.getThingGroup(name))?.parentName
          }
        }
      }
      return { certificatePolicies, thingGroups }
    })
  }

  /** Loads named policies at their default version (parsed once per version; a policy deleted and re-created under the same name is a new cache entry). */
  async #load (s: RegistryStore, names: string[]): Promise<NamedPolicy[]> {
    const policies: Policy[] = []
    for (const name of names) {
      const p = await s.getPolicy(name)
      if (p !== undefined) policies.push(p)
    }
    return this.#loadVersions(s, policies)
  }

  /** The parsed default version of each policy, from the cache when this version was parsed before. */
  async #loadVersions (s: RegistryStore, policies: readonly Policy[]): Promise<NamedPolicy[]> {
    const out: NamedPolicy[] = []
    for (const p of policies) {
      const name = p.name
      const key = `${name}\0${p.defaultVersion}\0${p.createdMs}`
      let np = this.#parsed.get(key)
      if (np === undefined) {
        const v = await s.getPolicyVersion(name, p.defaultVersion)
        if (v === undefined) throw new AppError('ERR_STORAGE_CORRUPT', 'policy default version is missing', { policyName: name })
        np = { name, versionId: String(v.version), document: parsePolicy(v.document) }
        if (this.#parsed.size > 10_000) this.#parsed.clear()
        this.#parsed.set(key, np)
      }
      out.push(np)
    }
    return out
  }

  /** Policies by name at their default versions (for TestAuthorization's policyNamesToAdd). */
  async namedPolicies (names: string[]): Promise<NamedPolicy[]> {
    return this.#d.storage.read(s => this.#load(s, names))
  }
}
