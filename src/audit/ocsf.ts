/**
 * Export of audit records as OCSF events (Open Cybersecurity Schema Framework 1.x, schema.ocsf.io). Identifiers
 * follow the schema's rules: class_uid = category_uid × 1000 + class id, type_uid = class_uid × 100 + activity_id.
 *
 * Mapping (DESIGN.md §2.6; research note §4):
 * - Authentication (3002, category IAM): `mqtt.connect` and `http.authenticate` are Logon (1);
 *   `mqtt.disconnect` and `mqtt.session` closes are Logoff (2). `user` is the device or key that authenticated.
 * - Entity Management (3004, IAM): state changes (registry events: things, certificates, policies, CAs, access
 *   keys) and mitigations. Create 1, Read 2, Update 3, Delete 4, Enable 8 (certificate set ACTIVE), Disable 9
 *   (INACTIVE, REVOKED, mitigation by revocation), Suspend 12 (quarantine).
 * - API Activity (6003, Application Activity): control-plane requests that changed nothing (reads, refusals,
 *   failures), key uses (`kms.*`), per-message gateway decisions and limits, the log's own maintenance.
 *   Create 1, Read 2, Update 3, Delete 4, Other 99.
 * Everything of the record that has no OCSF attribute (chain position, hashes, details) is kept under
 * `unmapped.thingward`, so an OCSF export loses nothing.
 */
import { GatewayAuditAction, parseIotArn } from '../core/index.ts'
import { AuditKind } from './chain.ts'
import type { AuditRecord } from './chain.ts'

/** The OCSF schema version the export declares in `metadata.version`. */
export const OCSF_VERSION = '1.3.0'

/** The OCSF classes the export uses. */
export const OcsfClass = {
  Authentication: 3002,
  EntityManagement: 3004,
  ApiActivity: 6003,
} as const
export type OcsfClass = (typeof OcsfClass)[keyof typeof OcsfClass]

const CLASS_NAMES: Record<OcsfClass, string> = { 3002: 'Authentication', 3004: 'Entity Management', 6003: 'API Activity' }
const CATEGORY_NAMES: Record<number, string> = { 3: 'Identity & Access Management', 6: 'Application Activity' }
const ACTIVITY_NAMES: Record<OcsfClass, Record<number, string>> = {
  3002: { 1: 'Logon', 2: 'Logoff' },
  3004: { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 8: 'Enable', 9: 'Disable', 12: 'Suspend', 99: 'Other' },
  6003: { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' },
}
/** OCSF severity_id: 1 Informational, 2 Low, 3 Medium. */
const SEVERITY: Record<string, [number, string]> = { success: [1, 'Informational'], failure: [2, 'Low'], denied: [3, 'Medium'] }

/** Options of {@link toOcsf}. */
export interface OcsfOptions {
  /** `metadata.product.version`. */
  readonly productVersion?: string
  /** The record's stored hash, kept in `unmapped.thingward.hash` (so an OCSF stream can anchor verification). */
  readonly hash?: string
}

/** An OCSF event (JSON object). */
export type OcsfEvent = Record<string, unknown>

const CREATE = /^(Create|Register|Issue|Provision|encrypt|generateDataKey|publish|subscribe|will)/
const READ = /^(Describe|Get|List|Export|Verify|Search|Query|decrypt|decryptDataKey|receive)/
const UPDATE = /^(Update|Set|Attach|Detach|Add|Remove|Rotate|Deprecate|Sign|rotate|reEncrypt|enableVersion|disableVersion)/
const DELETE = /^(Delete|Prune)/

/** The verb part of an action (`iot.CreateThing` → `CreateThing`). */
const operationOf = (action: string): string => action.slice(action.lastIndexOf('.') + 1)
const serviceOf = (action: string): string => { const i = action.indexOf('.'); return i < 0 ? action : action.slice(0, i) }

function crudActivity (op: string): number {
  if (CREATE.test(op)) return 1
  if (READ.test(op)) return 2
  if (DELETE.test(op)) return 4
  if (UPDATE.test(op)) return 3
  return 99
}

/** Which class and activity a record maps to. */
export function ocsfClassOf (r: AuditRecord): { classUid: OcsfClass, activityId: number } {
  if (r.action === GatewayAuditAction.Connect || r.action === 'http.authenticate') return { classUid: OcsfClass.Authentication, activityId: 1 }
  if (r.action === GatewayAuditAction.Disconnect || r.action === GatewayAuditAction.Session) return { classUid: OcsfClass.Authentication, activityId: 2 }
  if (r.kind === undefined || r.kind === AuditKind.Mitigation) {
    const op = operationOf(r.action)
    if (r.kind === AuditKind.Mitigation) return { classUid: OcsfClass.EntityManagement, activityId: r.details?.mitigation === 'quarantine' ? 12 : 9 }
    if (op === 'UpdateCertificate' || op === 'UpdateCACertificate') {
      const to = r.details?.to ?? r.details?.status
      if (to === 'ACTIVE') return { classUid: OcsfClass.EntityManagement, activityId: 8 }
      if (to === 'INACTIVE' || to === 'REVOKED') return { classUid: OcsfClass.EntityManagement, activityId: 9 }
    }
    return { classUid: OcsfClass.EntityManagement, activityId: crudActivity(op) }
  }
  return { classUid: OcsfClass.ApiActivity, activityId: crudActivity(operationOf(r.action)) }
}

/** OCSF user object for an actor string (`user/admin`, `system`, a certificate principal …). */
function userOf (actor: string): Record<string, unknown> {
  if (actor === 'system') return { name: 'system', uid: 'system', type_id: 3, type: 'System' }
  if (actor === 'anonymous') return { name: 'anonymous', type_id: 0, type: 'Unknown' }
  if (actor.startsWith('user/')) return { name: actor.slice(5), uid: actor, type_id: 1, type: 'User' }
  return { name: actor, uid: actor, type_id: 99, type: actor.startsWith('accessKey/') ? 'Access Key' : 'Device' }
}

/** OCSF resource/entity description of a target (ARN or `type/name`). */
function resourceOf (target: string): { uid: string, name: string, type: string } {
  const arn = parseIotArn(target)
  if (arn !== undefined) return { uid: target, name: arn.name, type: arn.type }
  const i = target.indexOf('/')
  return i < 0 ? { uid: target, name: target, type: 'resource' } : { uid: target, name: target.slice(i + 1), type: target.slice(0, i) }
}

/** Maps one audit record to an OCSF event of its class (see the module comment). */
export function toOcsf (r: AuditRecord, opts: OcsfOptions = {}): OcsfEvent {
  const { classUid, activityId } = ocsfClassOf(r)
  const categoryUid = Math.floor(classUid / 1000)
  const activityName = ACTIVITY_NAMES[classUid][activityId] ?? 'Other'
  const [severityId, severity] = SEVERITY[r.outcome] ?? [0, 'Unknown']
  const ok = r.outcome === 'success'
  const srcEndpoint = r.sourceIp !== undefined ? { ip: r.sourceIp } : { name: 'thingward' }
  const resources = [...(r.target === undefined ? [] : [r.target]), ...(r.resources ?? [])].map(resourceOf)
  const event: OcsfEvent = {
    activity_id: activityId,
    activity_name: activityName,
    category_uid: categoryUid,
    category_name: CATEGORY_NAMES[categoryUid],
    class_uid: classUid,
    class_name: CLASS_NAMES[classUid],
    type_uid: classUid * 100 + activityId,
    type_name: `${CLASS_NAMES[classUid]}: ${activityName}`,
    severity_id: severityId,
    severity,
    time: r.occurredMs ?? r.timeMs,
    status_id: ok ? 1 : 2,
    status: ok ? 'Success' : 'Failure',
    ...(r.errorCode === undefined ? {} : { status_code: r.errorCode }),
    ...(r.reason === undefined ? {} : { status_detail: r.reason }),
    message: `${r.action} ${r.outcome}${r.target === undefined ? '' : ` ${r.target}`}`,
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'Thingward', vendor_name: 'Thingward', ...(opts.productVersion === undefined ? {} : { version: opts.productVersion }) },
      uid: String(r.seq),
      sequence: r.seq,
      logged_time: r.timeMs,
      log_name: 'audit',
      ...(r.requestId === undefined ? {} : { correlation_uid: r.requestId }),
    },
    unmapped: {
      thingward: {
        seq: r.seq, prevHash: r.prevHash, ...(opts.hash === undefined ? {} : { hash: opts.hash }), action: r.action, actor: r.actor, outcome: r.outcome,
        ...(r.kind === undefined ? {} : { kind: r.kind }), ...(r.thing === undefined ? {} : { thing: r.thing }),
        ...(r.statement === undefined ? {} : { statement: r.statement }), ...(r.details === undefined ? {} : { details: r.details }),
      },
    },
  }
  if (classUid === OcsfClass.Authentication) {
    const device = r.action.startsWith('mqtt.')
    event.user = device ? { ...userOf(r.actor), ...(r.thing === undefined ? {} : { name: r.thing }) } : userOf(r.actor)
    event.service = { name: device ? 'Thingward MQTT gateway' : 'Thingward API' }
    event.auth_protocol_id = 99
    event.auth_protocol = device ? 'TLS client certificate' : 'AWS Signature Version 4'
    event.is_remote = true
    if (r.sourceIp !== undefined) event.src_endpoint = srcEndpoint
  } else if (classUid === OcsfClass.EntityManagement) {
    event.actor = { user: userOf(r.actor) }
    event.entity = r.target === undefined ? { name: r.action, type: 'unknown' } : resourceOf(r.target)
    if (r.sourceIp !== undefined) event.src_endpoint = srcEndpoint
  } else {
    event.actor = { user: userOf(r.actor) }
    event.api = { operation: operationOf(r.action), service: { name: serviceOf(r.action) }, ...(r.requestId === undefined ? {} : { request: { uid: r.requestId } }) }
    event.src_endpoint = srcEndpoint
    if (resources.length > 0) event.resources = resources
  }
  return event
}
