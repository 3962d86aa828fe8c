/**
 * Built-in role policies for the seed example (DESIGN.md §1) and a generator for the seed fleet. One policy per
 * role serves the whole fleet: the thing name and the `building` / `floor` thing attributes are policy variables
 * (IoT DG `thing-policy-variables`), so each device reaches only its own topics and shadow.
 * Topic layout: `building/{b}/floor/{f}/{type}/{id}` (sensors publish exactly there), `…/{id}/status` and
 * `…/{id}/audit` for lights and locks, `…/{id}/cmd` for their commands.
 */
import type { ArnContext } from '../core/index.ts'
import { parsePolicy } from './parse.ts'
import type { ContextMap, NamedPolicy } from './types.ts'

/** The four device roles of the seed fleet. */
export const ROLES = ['temperature-sensor', 'occupancy-sensor', 'smart-light', 'door-lock'] as const
export type RoleName = (typeof ROLES)[number]

/** Per role: thing type name, topic segment, thing-name prefix and devices per floor in the seed. */
export const ROLE_INFO: Readonly<Record<RoleName, { readonly thingType: string, readonly segment: string, readonly prefix: string, readonly perFloor: number }>> = {
  'temperature-sensor': { thingType: 'TemperatureSensor', segment: 'temperature', prefix: 'temp', perFloor: 40 },
  'occupancy-sensor': { thingType: 'OccupancySensor', segment: 'occupancy', prefix: 'occ', perFloor: 30 },
  'smart-light': { thingType: 'SmartLight', segment: 'light', prefix: 'light', perFloor: 20 },
  'door-lock': { thingType: 'DoorLock', segment: 'lock', prefix: 'lock', perFloor: 10 },
}

const THING = '${iot:Connection.Thing.ThingName}'
const BUILDING = '${iot:Connection.Thing.Attributes[building]}'
const FLOOR = '${iot:Connection.Thing.Attributes[floor]}'

interface Stmt { Sid: string, Effect: 'Allow' | 'Deny', Action: string | string[], Resource: string | string[], Condition?: Record<string, Record<string, string>> }

function roleStatements (role: RoleName, p: string): Stmt[] {
  const base = `building/${BUILDING}/floor/${FLOOR}/${ROLE_INFO[role].segment}/${THING}`
  const shadow = `$aws/things/${THING}/shadow`
  // IoT DG `thing-policy-variables`: Connect pinned to the thing name, and only for a certificate attached to it.
  const connect: Stmt = {
    Sid: 'Connect',
    Effect: 'Allow',
    Action: 'iot:Connect',
    Resource: `${p}:client/${THING}`,
    Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
  }
  switch (role) {
    case 'temperature-sensor':
      return [connect, { Sid: 'Telemetry', Effect: 'Allow', Action: 'iot:Publish', Resource: `${p}:topic/${base}` }]
    case 'occupancy-sensor':
      return [
        connect,
        // Read own shadow over MQTT: publish …/shadow/get, receive the reply on …/get/accepted|rejected.
        { Sid: 'Publish', Effect: 'Allow', Action: 'iot:Publish', Resource: [`${p}:topic/${base}`, `${p}:topic/${shadow}/get`] },
        { Sid: 'Subscribe', Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${p}:topicfilter/${shadow}/get/*` },
        { Sid: 'Receive', Effect: 'Allow', Action: 'iot:Receive', Resource: `${p}:topic/${shadow}/get/*` },
        { Sid: 'ShadowHttp', Effect: 'Allow', Action: 'iot:GetThingShadow', Resource: `${p}:thing/${THING}` },
      ]
    case 'smart-light':
    case 'door-lock':
      return [
        connect,
        { Sid: 'Publish', Effect: 'Allow', Action: 'iot:Publish', Resource: [`${p}:topic/${base}/${role === 'smart-light' ? 'status' : 'audit'}`, `${p}:topic/${shadow}/get`, `${p}:topic/${shadow}/update`] },
        { Sid: 'Subscribe', Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`${p}:topicfilter/${base}/cmd`, `${p}:topicfilter/${shadow}/*`] },
        // IoT DG `pub-sub-policy`: Receive is checked per delivered message; it bounds what a subscription yields.
        { Sid: 'Receive', Effect: 'Allow', Action: 'iot:Receive', Resource: [`${p}:topic/${base}/cmd`, `${p}:topic/${shadow}/*`] },
        { Sid: 'ShadowHttp', Effect: 'Allow', Action: ['iot:GetThingShadow', 'iot:UpdateThingShadow'], Resource: `${p}:thing/${THING}` },
      ]
  }
}

const arnPrefix = (arn: ArnContext): string => `arn:aws:iot:${arn.region}:${arn.accountId}`

/** The four role policies pinned to one region and account (recommended: no wildcard outside the resource part). */
export function roleTemplates (arn: ArnContext): Readonly<Record<RoleName, string>> {
  const p = arnPrefix(arn)
  const out = {} as Record<RoleName, string>
  for (const r of ROLES) out[r] = JSON.stringify({ Version: '2012-10-17', Statement: roleStatements(r, p) }, null, 2)
  return Object.freeze(out)
}

/**
 * The four role policies as portable JSON (`arn:aws:iot:*:*:` — any region and account), ready for CreatePolicy.
 * Each is within the 2048-character IoT limit.
 */
export const ROLE_TEMPLATES: Readonly<Record<RoleName, string>> = roleTemplates({ region: '*', accountId: '*' })

/**
 * An operator policy for the seed building: commands to lights, and to door locks only when the operator
 * authenticated with MFA (IAM UG condition keys: `aws:MultiFactorAuthPresent`; the BoolIfExists-free form, so a
 * request without the key is not allowed).
 */
export function operatorTemplate (arn: ArnContext): string {
  const p = arnPrefix(arn)
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Sid: 'CommandLights', Effect: 'Allow', Action: 'iot:Publish', Resource: `${p}:topic/building/*/floor/*/light/*/cmd` },
      {
        Sid: 'CommandLocksWithMfa',
        Effect: 'Allow',
        Action: 'iot:Publish',
        Resource: `${p}:topic/building/*/floor/*/lock/*/cmd`,
        Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } },
      },
    ],
  }, null, 2)
}

/** A fleet-wide shared credential: the anti-pattern the blast-radius report must flag at 100 %. */
export const SHARED_CREDENTIAL_POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Sid: 'Everything', Effect: 'Allow', Action: 'iot:*', Resource: '*' }],
}, null, 2)

/** A thing as the blast-radius analysis sees it (plain registry data). */
export interface FleetThing {
  readonly name: string
  readonly typeName?: string
  readonly attributes?: Readonly<Record<string, string>>
  readonly groups?: readonly string[]
  /** The MQTT topics that belong to this thing (its telemetry, status, audit and command topics). */
  readonly topics?: readonly string[]
}

/** A principal (certificate or operator identity) with its effective policies, as `collectEffectivePolicies` gives them. */
export interface FleetPrincipal {
  readonly id: string
  /** A grouping label for reports, e.g. the role. */
  readonly label?: string
  /** The thing attached to the principal, if any. */
  readonly thingName?: string
  /** The client id it normally connects with (defaults to the thing name). */
  readonly clientId?: string
  readonly exclusiveThing?: boolean
  readonly policies: readonly NamedPolicy[]
  /** Further session-fixed keys (certificate fields, aws:username…). */
  readonly variables?: ContextMap
}

/** Plain fleet data for `computeBlastRadius`. */
export interface FleetSnapshot {
  readonly arn: ArnContext
  readonly things: readonly FleetThing[]
  readonly principals: readonly FleetPrincipal[]
}

/** Options for `seedFleet`. */
export interface SeedFleetOptions {
  readonly arn?: ArnContext
  readonly floors?: number
  readonly building?: string
  /** Add a principal holding the shared `iot:*` on `*` credential (default true). */
  readonly sharedCredential?: boolean
  /** Add an operator principal with `operatorTemplate` (default false). */
  readonly operator?: boolean
}

/** The seed's default ARN context. */
export const SEED_ARN: ArnContext = Object.freeze({ region: 'eu-west-1', accountId: '123456789012' })

const pad = (n: number, w: number): string => String(n).padStart(w, '0')

/** The seed fleet plus the role policies, as plain data. */
export interface SeedFleet extends FleetSnapshot {
  readonly rolePolicies: Readonly<Record<RoleName, NamedPolicy>>
}

/**
 * The worked example: 20 floors × (40 temperature, 30 occupancy, 20 lights, 10 locks) = 2,000 devices, each with
 * its own certificate principal whose effective policy is its role policy (attached to the role's thing group).
 */
export function seedFleet (options: SeedFleetOptions = {}): SeedFleet {
  const arn = options.arn ?? SEED_ARN
  const floors = options.floors ?? 20
  const building = options.building ?? '1'
  const texts = roleTemplates(arn)
  const rolePolicies = {} as Record<RoleName, NamedPolicy>
  for (const r of ROLES) rolePolicies[r] = { name: `role-${r}`, versionId: '1', document: parsePolicy(texts[r]) }
  const things: FleetThing[] = []
  const principals: FleetPrincipal[] = []
  for (let f = 1; f <= floors; f++) {
    for (const role of ROLES) {
      const info = ROLE_INFO[role]
      for (let n = 1; n <= info.perFloor; n++) {
        const name = `${info.prefix}-${pad(f, 2)}-${pad(n, 3)}`
        const base = `building/${building}/floor/${f}/${info.segment}/${name}`
        const topics = role === 'temperature-sensor' || role === 'occupancy-sensor'
          ? [base]
          : [role === 'smart-light' ? `${base}/status` : `${base}/audit`, `${base}/cmd`]
        things.push({ name, typeName: info.thingType, attributes: { building, floor: String(f) }, groups: [`${role}s`], topics })
        principals.push({ id: `cert-${name}`, label: role, thingName: name, policies: [rolePolicies[role]] })
      }
    }
  }
  if (options.sharedCredential ?? true) {
    principals.push({
      id: 'shared-fleet-credential',
      label: 'shared-credential',
      clientId: 'shared-fleet-credential',
      policies: [{ name: 'fleet-wide', versionId: '1', document: parsePolicy(SHARED_CREDENTIAL_POLICY) }],
    })
  }
  if (options.operator ?? false) {
    principals.push({
      id: 'operator-alice',
      label: 'operator',
      clientId: 'operator-alice',
      policies: [{ name: 'building-operator', versionId: '1', document: parsePolicy(operatorTemplate(arn)) }],
      variables: { 'aws:username': 'alice' },
    })
  }
  return { arn, things, principals, rolePolicies }
}
