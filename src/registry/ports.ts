import type { AuditAppender } from '../audit/index.ts'
import type {
  CaCertificate, CaStatus, Certificate, CertificateStatus, Policy, PolicyVersion, Thing, ThingGroup, ThingPrincipal, ThingPrincipalType,
  ThingType,
} from './types.ts'

/** Keyset pagination: `after` is the last key of the previous page; `limit` is the page size. */
export interface ListArgs { readonly after?: string, readonly limit: number }

export interface ThingFilter {
  readonly typeName?: string
  readonly attributeName?: string
  readonly attributeValue?: string
  readonly usePrefixAttributeValue?: boolean
}

/**
 * Registry persistence, as seen inside one unit of work. Implemented by storage/sqlite (and later postgres); both
 * must pass storage/contract/registry-store.contract.ts. Getters resolve `undefined` when absent and never
 * reject for "not found". Writers assume the caller validated the input and checked existence inside the
 * same transaction; a uniqueness violation is a programming error.
 */
export interface RegistryStore {
  getThing (name: string): Promise<Thing | undefined>
  putThing (thing: Thing): Promise<void>
  deleteThing (name: string): Promise<void>
  listThings (filter: ThingFilter, page: ListArgs): Promise<Thing[]>
  countThingsOfType (typeName: string): Promise<number>

  getThingType (name: string): Promise<ThingType | undefined>
  putThingType (t: ThingType): Promise<void>
  deleteThingType (name: string): Promise<void>
  listThingTypes (page: ListArgs): Promise<ThingType[]>

  getThingGroup (name: string): Promise<ThingGroup | undefined>
  putThingGroup (g: ThingGroup): Promise<void>
  deleteThingGroup (name: string): Promise<void>
  listThingGroups (filter: { parentName?: string, namePrefix?: string }, page: ListArgs): Promise<ThingGroup[]>
  addThingToGroup (groupName: string, thingName: string): Promise<void>
  removeThingFromGroup (groupName: string, thingName: string): Promise<void>
  listThingsInGroup (groupName: string, page: ListArgs): Promise<string[]>
  listGroupsForThing (thingName: string): Promise<string[]>
  countGroupChildren (groupName: string): Promise<number>
  countGroupMembers (groupName: string): Promise<number>

  getCertificate (id: string): Promise<Certificate | undefined>
  /**
   * A certificate with the status of the registered CA it chains to, in one read (every device connection asks):
   * `caStatus` is undefined when the certificate has no `caId` or that CA is not registered.
   */
  getCertificateWithCaStatus (id: string): Promise<{ certificate: Certificate, caStatus: CaStatus | undefined } | undefined>
  putCertificate (c: Certificate): Promise<void>
  deleteCertificate (id: string): Promise<void>
  /** Ordered by (createdMs, id); `after` is `${createdMs}:${id}`. */
  listCertificates (filter: { caId?: string, status?: CertificateStatus, ascending: boolean }, page: ListArgs): Promise<Certificate[]>
  /** Revocations of a CA's certificates that have not expired yet at `nowMs` (kept after the certificate is deleted). */
  listRevocations (caId: string, nowMs: number): Promise<Array<{ serialHex: string, revokedMs: number, reason: number | undefined }>>
  recordRevocation (r: { caId: string, serialHex: string, certificateId: string, revokedMs: number, reason: number | undefined, notAfterMs: number }): Promise<void>
  findCertificateBySerial (caId: string, serialHex: string): Promise<Certificate | undefined>

  getCaCertificate (id: string): Promise<CaCertificate | undefined>
  putCaCertificate (c: CaCertificate): Promise<void>
  listCaCertificates (page: ListArgs): Promise<CaCertificate[]>
  countCaCertificatesWithSubject (subject: string): Promise<number>

  getPolicy (name: string): Promise<Policy | undefined>
  putPolicy (p: Policy): Promise<void>
  deletePolicy (name: string): Promise<void>
  listPolicies (page: ListArgs): Promise<Policy[]>
  getPolicyVersion (name: string, version: number): Promise<PolicyVersion | undefined>
  putPolicyVersion (v: PolicyVersion): Promise<void>
  deletePolicyVersion (name: string, version: number): Promise<void>
  listPolicyVersions (name: string): Promise<PolicyVersion[]>

  attachPolicy (policyName: string, target: string, createdMs: number): Promise<void>
  detachPolicy (policyName: string, target: string): Promise<boolean>
  listPoliciesForTarget (target: string): Promise<string[]>
  /** The policies attached to a target, ordered by name (what `listPoliciesForTarget` names, with their rows). */
  listAttachedPolicies (target: string): Promise<Policy[]>
  listTargetsForPolicy (policyName: string, page: ListArgs): Promise<string[]>
  countTargetsForPolicy (policyName: string): Promise<number>

  attachThingPrincipal (p: ThingPrincipal): Promise<void>
  detachThingPrincipal (thingName: string, principal: string): Promise<boolean>
  listThingPrincipals (thingName: string, page: ListArgs): Promise<ThingPrincipal[]>
  listPrincipalThings (principal: string, page: ListArgs): Promise<ThingPrincipal[]>
  /** The thing a principal acts as: its exclusive thing, else the first attached thing by name; undefined when none. */
  getPrincipalThing (principal: string): Promise<{ thing: Thing, type: ThingPrincipalType } | undefined>

  putRegistrationCode (code: string, createdMs: number): Promise<void>
  getRegistrationCode (): Promise<string | undefined>


  getMeta (key: string): Promise<string | undefined>
  putMeta (key: string, value: string): Promise<void>
}

/** A unit of work: registry writes and their audit events commit together. */
export interface RegistryUnit { readonly store: RegistryStore, readonly audit: AuditAppender }

export interface RegistryStorage {
  /** All-or-nothing: a throw rolls back every write and every audit event of `fn`. */
  transaction<T> (fn: (u: RegistryUnit) => Promise<T>): Promise<T>
  /** Read-only access (consistent snapshot). */
  read<T> (fn: (s: RegistryStore) => Promise<T>): Promise<T>
}
