import { createHash } from 'node:crypto'
import { AlreadyExistsError, InvalidRequestError, NotFoundError, iotArn, newUuid } from '../core/index.ts'
import type { CertificateService } from './certificates.ts'
import type { Caller, RegistryDeps } from './context.ts'
import type { Certificate, Thing } from './types.ts'
import { MAX_ATTRIBUTES_TYPED, MAX_ATTRIBUTES_UNTYPED, checkAttributes, checkName, checkPolicyName } from './validate.ts'

export interface ProvisionItem {
  readonly thingName: string
  readonly attributes?: Record<string, string>
  /** PEM CSR made on the operator's machine; when absent the key pair is generated here and returned once. */
  readonly csr?: string
}

export interface ProvisionedDevice {
  readonly thingName: string
  readonly certificateId: string
  readonly certificateArn: string
  readonly certificatePem: string
  readonly privateKeyPem?: string
}

/** At most this many devices per call: one transaction, bounded memory, bounded latency. */
export const MAX_PROVISION_BATCH = 1000

/**
 * Bulk provisioning: for each device a thing, an ACTIVE certificate attached to it exclusively, and the role
 * policy on the certificate — all of a batch in one transaction with one audit event per device. A crash
 * mid-batch leaves none of it; a committed batch is complete.
 */
export class ProvisioningService {
  readonly #d: RegistryDeps
  readonly #certs: CertificateService
  constructor (deps: RegistryDeps, certs: CertificateService) { this.#d = deps; this.#certs = certs }

  async provision (caller: Caller, input: { policyName: unknown, thingTypeName?: unknown, items: unknown }): Promise<ProvisionedDevice[]> {
    const policyName = checkPolicyName(input.policyName)
    const typeName = input.thingTypeName === undefined || input.thingTypeName === null ? undefined : checkName('thingTypeName', input.thingTypeName)
    if (!Array.isArray(input.items) || input.items.length === 0 || input.items.length > MAX_PROVISION_BATCH) {
      throw new InvalidRequestError(`items must be an array of 1-${MAX_PROVISION_BATCH} devices`, { field: 'items' })
    }
    const seen = new Set<string>()
    const items: ProvisionItem[] = (input.items as unknown[]).map((raw, i) => {
      if (typeof raw !== 'object' || raw === null) throw new InvalidRequestError('each item must be an object', { field: `items[${i}]` })
      const r = raw as Record<string, unknown>
      const thingName = checkName('thingName', r.thingName)
      if (seen.has(thingName)) throw new InvalidRequestError('duplicate thingName in batch', { field: `items[${i}].thingName` })
      seen.add(thingName)
      const attributes = checkAttributes(r.attributes, typeName === undefined ? MAX_ATTRIBUTES_UNTYPED : MAX_ATTRIBUTES_TYPED, `items[${i}].attributes`)
      if (r.csr !== undefined && typeof r.csr !== 'string') throw new InvalidRequestError('csr must be a PEM string', { field: `items[${i}].csr` })
      return { thingName, attributes, csr: r.csr as string | undefined }
    })

    // Sign outside the transaction: CPU work must not hold the write lock. The thing name is the certificate's CN
    // when it fits the 64-character limit of RFC 5280 (ub-common-name); longer names get a stable digest instead.
    const cn = (thingName: string): string => thingName.length <= 64 ? thingName : `thing-${createHash('sha256').update(thingName).digest('hex').slice(0, 40)}`
    const issued: Array<{ cert: Certificate, privateKeyPem?: string }> = []
    for (const item of items) {
      if (item.csr !== undefined) {
        const { issued: c, caId } = await this.#certs.issueFromCsr(item.csr, cn(item.thingName))
        issued.push({ cert: this.#certs.issuedRecord(c, caId, 'ACTIVE') })
      } else {
        const g = await this.#certs.issueWithGeneratedKey(cn(item.thingName))
        issued.push({ cert: this.#certs.issuedRecord(g.issued, g.caId, 'ACTIVE'), privateKeyPem: g.privateKeyPem })
      }
    }

    await this.#d.storage.transaction(async (u) => {
      if (await u.store.getPolicy(policyName) === undefined) throw new NotFoundError('policy', policyName)
      if (typeName !== undefined) {
        const t = await u.store.getThingType(typeName)
        if (t === undefined) throw new NotFoundError('thing type', typeName)
        if (t.deprecated) throw new InvalidRequestError('thing type is deprecated: things cannot be given it', { thingTypeName: typeName })
      }
      const now = this.#d.clock.nowMs()
      for (let i = 0; i < items.length; i++) {
        const item = items[i]
        const { cert } = issued[i]
        const certArn = this.#certs.certArn(cert.id)
        const existing = await u.store.getThing(item.thingName)
        if (existing !== undefined && (await u.store.listThingPrincipals(item.thingName, { limit: 1 })).length > 0) {
          throw new AlreadyExistsError('thing', item.thingName, iotArn(this.#d.arn, 'thing', item.thingName))
        }
        if (existing === undefined) {
          const thing: Thing = { name: item.thingName, id: newUuid(), typeName, attributes: item.attributes ?? {}, version: 1, createdMs: now, updatedMs: now }
          await u.store.putThing(thing)
        }
        await u.store.putCertificate(cert)
        await u.store.attachPolicy(policyName, certArn, now)
        await u.store.attachThingPrincipal({ thingName: item.thingName, principal: certArn, type: 'EXCLUSIVE_THING', createdMs: now })
        await u.audit.append({
          action: 'thingward.ProvisionDevice', actor: caller.actor, outcome: 'success', target: iotArn(this.#d.arn, 'thing', item.thingName),
          sourceIp: caller.sourceIp, requestId: caller.requestId, details: { certificateId: cert.id, policyName, keyGenerated: item.csr === undefined },
        })
      }
    })
    return items.map((item, i) => ({
      thingName: item.thingName, certificateId: issued[i].cert.id, certificateArn: this.#certs.certArn(issued[i].cert.id),
      certificatePem: issued[i].cert.pem, privateKeyPem: issued[i].privateKeyPem,
    }))
  }
}
