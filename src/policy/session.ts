/**
 * Building the inputs of a compiled authorizer the way AWS IoT does: which policies apply to a connection and
 * which policy variables it gets.
 */
import { isSessionScopedKey } from './keys.ts'
import type { ContextMap, ContextValue, NamedPolicy } from './types.ts'

/** Distinguished-name fields AWS IoT exposes as `iot:Certificate.{Subject|Issuer}.<Field>` (IoT DG `cert-policy-variables`). */
export type DnField = 'CommonName' | 'Organization' | 'OrganizationalUnit' | 'Country' | 'State' | 'SerialNumber' |
  'Title' | 'Surname' | 'GivenName' | 'Initials' | 'Pseudonym' | 'GenerationQualifier' | 'DistinguishedNameQualifier'

/** Alternative-name fields exposed as `iot:Certificate.{Subject|Issuer}.AlternativeName.<Field>`. */
export type AltNameField = 'RFC822Name' | 'DNSName' | 'DirectoryName' | 'UniformResourceIdentifier' | 'IPAddress'

/** Certificate fields as the PKI module extracts them; every field may hold several values, in certificate order. */
export interface CertificateFields {
  readonly subject?: Partial<Readonly<Record<DnField, readonly string[]>>>
  readonly issuer?: Partial<Readonly<Record<DnField, readonly string[]>>>
  readonly subjectAlternativeName?: Partial<Readonly<Record<AltNameField, readonly string[]>>>
  readonly issuerAlternativeName?: Partial<Readonly<Record<AltNameField, readonly string[]>>>
  readonly serialNumber?: string
  readonly availableKeys?: readonly string[]
}

/** The thing attached to the connecting principal, as the registry knows it. */
export interface SessionThing {
  readonly name: string
  readonly typeName?: string
  readonly attributes?: Readonly<Record<string, string>>
}

/** Everything known about a connection when it is authenticated. */
export interface SessionInput {
  readonly clientId: string
  /** The thing attached to the certificate, if any. */
  readonly thing?: SessionThing
  /** `thingPrincipalType = EXCLUSIVE_THING`: thing variables apply whatever the client id (IoT DG `exclusive-thing`). */
  readonly exclusiveThing?: boolean
  readonly certificate?: CertificateFields
  /** Remote address of the connection: fixed for an MQTT session. */
  readonly sourceIp?: string
  readonly domainName?: string
  /** Any further session-fixed keys, e.g. `aws:username` or `aws:PrincipalTag/team` for an operator session. */
  readonly extra?: ContextMap
}

/** IoT DG `cert-policy-variables`: "arrays are capped at 5". */
const MAX_CERT_VALUES = 5

function addCertificate (out: Record<string, ContextValue>, prefix: string, fields: Partial<Readonly<Record<string, readonly string[]>>> | undefined): void {
  if (fields === undefined) return
  for (const [name, values] of Object.entries(fields)) {
    if (values === undefined || values.length === 0) continue
    const capped = values.slice(0, MAX_CERT_VALUES)
    // IoT DG `cert-policy-variables`: the bare name is the first value, `.1` the second…, `.List` all of them
    // (for ForAllValues / ForAnyValue).
    out[`${prefix}.${name}`] = capped[0]
    for (let i = 1; i < capped.length; i++) out[`${prefix}.${name}.${i}`] = capped[i]
    out[`${prefix}.${name}.List`] = capped
  }
}

/**
 * The policy variables of a connection (IoT DG `iot-policy-variables`, `thing-policy-variables`,
 * `cert-policy-variables`):
 * - `iot:ClientId` always; `aws:SourceIp`, `iot:DomainName` when known.
 * - `iot:Connection.Thing.*` only when the client id equals the thing name, or the certificate is bound to the thing
 *   exclusively (IoT DG `thing-policy-variables`: thing variables are available when the client id matches the
 *   thing name). `IsAttached` is true exactly then, false otherwise.
 * - Thing attribute names that collide ignoring case are dropped (condition key names are case-insensitive, so
 *   such a key would be ambiguous).
 * - `iot:Certificate.*` from the certificate fields.
 */
export function buildSessionVariables (input: SessionInput): ContextMap {
  const out: Record<string, ContextValue> = { 'iot:ClientId': input.clientId }
  if (input.sourceIp !== undefined) out['aws:SourceIp'] = input.sourceIp
  if (input.domainName !== undefined) out['iot:DomainName'] = input.domainName
  const thing = input.thing
  const bound = thing !== undefined && (input.exclusiveThing === true || input.clientId === thing.name)
  out['iot:Connection.Thing.IsAttached'] = bound
  if (bound) {
    out['iot:Connection.Thing.ThingName'] = thing.name
    if (thing.typeName !== undefined) out['iot:Connection.Thing.ThingTypeName'] = thing.typeName
    const attrs = thing.attributes ?? {}
    const seen = new Map<string, number>()
    for (const k of Object.keys(attrs)) seen.set(k.toLowerCase(), (seen.get(k.toLowerCase()) ?? 0) + 1)
    for (const [k, v] of Object.entries(attrs)) {
      if (seen.get(k.toLowerCase()) === 1) out[`iot:Connection.Thing.Attributes[${k}]`] = v
    }
  }
  const cert = input.certificate
  if (cert !== undefined) {
    addCertificate(out, 'iot:Certificate.Subject', cert.subject)
    addCertificate(out, 'iot:Certificate.Issuer', cert.issuer)
    addCertificate(out, 'iot:Certificate.Subject.AlternativeName', cert.subjectAlternativeName)
    addCertificate(out, 'iot:Certificate.Issuer.AlternativeName', cert.issuerAlternativeName)
    if (cert.serialNumber !== undefined) out['iot:Certificate.SerialNumber'] = cert.serialNumber
    if (cert.availableKeys !== undefined) out['iot:Certificate.AvailableKeys'] = cert.availableKeys
  }
  for (const [k, v] of Object.entries(input.extra ?? {})) if (v !== undefined) out[k] = v
  return Object.freeze(out)
}

/**
 * The context the reference interpreter must see to agree with a compiled authorizer: session values win, and a
 * request cannot supply connection-scoped keys (client id, thing, certificate) that the session lacks.
 */
export function effectiveContext (session: ContextMap, request: ContextMap = {}): ContextMap {
  // An empty list is a missing key (IAM UG multi-valued keys): it does not bind the key for the session.
  const present = (v: ContextValue | undefined): v is ContextValue => v !== undefined && !(Array.isArray(v) && v.length === 0)
  const sessionKeys = new Set(Object.keys(session).filter(k => present(session[k])).map(k => k.toLowerCase()))
  const out: Record<string, ContextValue> = {}
  for (const [k, v] of Object.entries(request)) {
    const l = k.toLowerCase()
    if (v === undefined || sessionKeys.has(l) || isSessionScopedKey(l)) continue
    out[k] = v
  }
  for (const [k, v] of Object.entries(session)) if (present(v)) out[k] = v
  return out
}

/** A thing group with the policies attached to it (AWS allows at most two per group). */
export interface GroupPolicies {
  readonly groupName: string
  readonly policies: readonly NamedPolicy[]
}

/** What the registry knows about a principal when a session starts. */
export interface PrincipalPolicies {
  readonly certificatePolicies: readonly NamedPolicy[]
  /** The thing's groups with their ancestors, nearest first (IoT DG `thing-groups`: child groups inherit policies). */
  readonly thingGroups?: readonly GroupPolicies[]
  readonly thingName?: string
  readonly clientId: string
  readonly exclusiveThing?: boolean
}

/**
 * The policies that apply to a connection: the certificate's own, then its thing's group policies (parents
 * included) — the latter only when the client id equals the thing name or the association is exclusive
 * (IoT DG `thing-groups`: "for a group policy, the clientId must match the thing name"). A policy reachable twice
 * is evaluated once (evaluation is order-independent; we keep the first occurrence for explanations).
 */
export function collectEffectivePolicies (p: PrincipalPolicies): NamedPolicy[] {
  const out: NamedPolicy[] = []
  const seen = new Set<string>()
  const add = (np: NamedPolicy): void => {
    if (seen.has(np.name)) return
    seen.add(np.name)
    out.push(np)
  }
  for (const np of p.certificatePolicies) add(np)
  const groupsApply = p.thingName !== undefined && (p.exclusiveThing === true || p.clientId === p.thingName)
  if (groupsApply) for (const g of p.thingGroups ?? []) for (const np of g.policies) add(np)
  return out
}
