import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { AuditEventInput } from '../audit/index.ts'
import type { ArnContext } from '../core/index.ts'
import { AppError, iotArn, isRecord } from '../core/index.ts'
import { iamArn } from '../iam/index.ts'
import type { IamServices, Principal } from '../iam/index.ts'
import { decisionRecord, describeDecision } from '../policy/index.ts'
import type { Decision } from '../policy/index.ts'
import { dataPlaneAuthorization } from './routes/data-plane.ts'
import type { DataPlaneOperation, RequiredPermission } from './routes/data-plane.ts'

/**
 * The one table from HTTP route to IAM action and resource (issue #5). Every route registered on the server must
 * have an entry: the SigV4 hook denies a route without one (fail closed), and a test checks at startup that no
 * registered route lacks one (`routesWithoutAuthorization`).
 *
 * Actions follow the AWS Service Authorization Reference for AWS IoT (`iot:CreateThing` …) and IAM
 * (`iam:CreateUser` …); our own routes use the `thingward:` prefix. Resources are the ARN AWS checks for the
 * action (thing, thing type, thing group, certificate, CA certificate, policy, IAM user/group/role/policy) or `*`
 * for actions without resource-level permissions (List*, CreateKeysAndCertificate …). Deviation: AttachPolicy and
 * DetachPolicy are checked against the policy ARN (AWS: the target), so a provisioner can be limited to attaching
 * device role policies.
 */

/** What a resource function sees of the request. */
export interface RouteInput {
  readonly params: Readonly<Record<string, string>>
  readonly query: Readonly<Record<string, unknown>>
  /** The raw body (already authenticated). */
  readonly body: Buffer
  readonly arn: ArnContext
}

/** How one route is authorized. */
export type RouteAuthorization =
  /** No signature: health, public PKI endpoints, password sign-in (which authenticates by itself). */
  | { readonly kind: 'public', readonly why: string }
  /** Any authenticated principal: the operation needs no permission (STS GetCallerIdentity) or authorizes itself (AssumeRole's trust policy). */
  | { readonly kind: 'authenticated', readonly why: string }
  /** Every permission (action on resource) must be allowed. */
  | { readonly kind: 'action', readonly permissions: (r: RouteInput) => readonly RequiredPermission[] }
  /** One route, several operations (the STS query protocol's `Action` parameter). */
  | { readonly kind: 'dispatch', readonly resolve: (r: RouteInput) => RouteAuthorization | undefined }

const ANY = (): string => '*'
const iot = (type: string, param: string) => (r: RouteInput): string => iotArn(r.arn, type, r.params[param] ?? '')
const iam = (type: 'user' | 'group' | 'role' | 'policy', param: string) => (r: RouteInput): string => iamArn(r.arn.accountId, type, r.params[param] ?? '')
const all = (actions: readonly string[], resource: (r: RouteInput) => string): RouteAuthorization => ({ kind: 'action', permissions: (r) => actions.map(action => ({ action, resource: resource(r) })) })
const act = (action: string, resource: (r: RouteInput) => string = ANY): RouteAuthorization => all([action], resource)
const q = (r: RouteInput, name: string): string | undefined => typeof r.query[name] === 'string' ? r.query[name] : undefined
/** Data-plane entries come from the data-plane routes' own table (named shadows, retained Publish). */
const dataPlane = (op: DataPlaneOperation): RouteAuthorization => ({
  kind: 'action',
  permissions: (r) => dataPlaneAuthorization(op, { thingName: r.params.thingName, shadowName: q(r, 'name'), topic: r.params.topic, retain: q(r, 'retain') === 'true' }, r.arn),
})
const pub = (why: string): RouteAuthorization => ({ kind: 'public', why })

/** The value of `Action` in an `application/x-www-form-urlencoded` body (AWS query protocol). */
export function queryAction (body: Buffer): string | undefined {
  return new URLSearchParams(body.toString('utf8')).get('Action') ?? undefined
}

/** STS operations (awsQuery, POST /): AWS requires no permission for GetCallerIdentity and GetSessionToken. */
const STS: Readonly<Record<string, RouteAuthorization>> = {
  GetCallerIdentity: { kind: 'authenticated', why: 'STS GetCallerIdentity needs no permission (AWS STS API reference)' },
  GetSessionToken: { kind: 'authenticated', why: 'STS GetSessionToken needs no permission; it is refused for temporary credentials' },
  AssumeRole: { kind: 'authenticated', why: 'STS AssumeRole is authorized by the role trust policy and, for account trust, sts:AssumeRole in the caller identity policy (StsService.assumeRole)' },
}

/** `METHOD url` (Fastify route pattern) → authorization. */
export const ROUTE_ACTIONS: Readonly<Record<string, RouteAuthorization>> = {
  // ---- Public ---------------------------------------------------------------------------------------------
  'GET /healthz': pub('liveness probe'),
  'GET /readyz': pub('readiness probe'),
  'GET /metrics': pub('Prometheus metrics (counts only)'),
  'GET /ca.pem': pub('the CA chain relying parties must trust (RFC 5280)'),
  'GET /crl': pub('CRL distribution point (RFC 5280 §4.2.1.13)'),
  'GET /crl.pem': pub('CRL distribution point (PEM)'),
  'POST /ocsp': pub('OCSP responder (RFC 6960 Appendix A.1)'),
  'GET /ocsp/*': pub('OCSP responder, GET form (RFC 6960 Appendix A.1)'),
  'POST /thingward/login': pub('password sign-in: authenticates by password and TOTP, throttled with lockout'),

  // ---- STS (awsQuery) -----------------------------------------------------------------------------------
  'POST /': { kind: 'dispatch', resolve: (r) => STS[queryAction(r.body) ?? ''] },

  // ---- AWS IoT control plane ------------------------------------------------------------------------------
  'POST /things/:thingName': act('iot:CreateThing', iot('thing', 'thingName')),
  'GET /things/:thingName': act('iot:DescribeThing', iot('thing', 'thingName')),
  'PATCH /things/:thingName': act('iot:UpdateThing', iot('thing', 'thingName')),
  'DELETE /things/:thingName': act('iot:DeleteThing', iot('thing', 'thingName')),
  'GET /things': act('iot:ListThings'),
  'POST /thing-types/:thingTypeName': act('iot:CreateThingType', iot('thingtype', 'thingTypeName')),
  'GET /thing-types/:thingTypeName': act('iot:DescribeThingType', iot('thingtype', 'thingTypeName')),
  'GET /thing-types': act('iot:ListThingTypes'),
  'POST /thing-types/:thingTypeName/deprecate': act('iot:DeprecateThingType', iot('thingtype', 'thingTypeName')),
  'DELETE /thing-types/:thingTypeName': act('iot:DeleteThingType', iot('thingtype', 'thingTypeName')),
  'POST /thing-groups/:thingGroupName': act('iot:CreateThingGroup', iot('thinggroup', 'thingGroupName')),
  'GET /thing-groups/:thingGroupName': act('iot:DescribeThingGroup', iot('thinggroup', 'thingGroupName')),
  'PATCH /thing-groups/:thingGroupName': act('iot:UpdateThingGroup', iot('thinggroup', 'thingGroupName')),
  'DELETE /thing-groups/:thingGroupName': act('iot:DeleteThingGroup', iot('thinggroup', 'thingGroupName')),
  'GET /thing-groups': act('iot:ListThingGroups'),
  'PUT /thing-groups/addThingToThingGroup': act('iot:AddThingToThingGroup', (r) => groupFromBody(r)),
  'PUT /thing-groups/removeThingFromThingGroup': act('iot:RemoveThingFromThingGroup', (r) => groupFromBody(r)),
  'GET /thing-groups/:thingGroupName/things': act('iot:ListThingsInThingGroup', iot('thinggroup', 'thingGroupName')),
  'POST /keys-and-certificate': act('iot:CreateKeysAndCertificate'),
  'POST /certificates': act('iot:CreateCertificateFromCsr'),
  'GET /certificates/:certificateId': act('iot:DescribeCertificate', iot('cert', 'certificateId')),
  'GET /certificates': act('iot:ListCertificates'),
  'GET /certificates-by-ca/:caCertificateId': act('iot:ListCertificatesByCA'),
  'PUT /certificates/:certificateId': act('iot:UpdateCertificate', iot('cert', 'certificateId')),
  'DELETE /certificates/:certificateId': act('iot:DeleteCertificate', iot('cert', 'certificateId')),
  'POST /cacertificate': act('iot:RegisterCACertificate'),
  'GET /cacertificate/:certificateId': act('iot:DescribeCACertificate', iot('cacert', 'certificateId')),
  'GET /cacertificates': act('iot:ListCACertificates'),
  'PUT /cacertificate/:certificateId': act('iot:UpdateCACertificate', iot('cacert', 'certificateId')),
  'POST /certificate/register': act('iot:RegisterCertificate'),
  'POST /certificate/register-no-ca': act('iot:RegisterCertificateWithoutCA'),
  'GET /registrationcode': act('iot:GetRegistrationCode'),
  'POST /policies/:policyName': act('iot:CreatePolicy', iot('policy', 'policyName')),
  'GET /policies/:policyName': act('iot:GetPolicy', iot('policy', 'policyName')),
  'GET /policies': act('iot:ListPolicies'),
  'DELETE /policies/:policyName': act('iot:DeletePolicy', iot('policy', 'policyName')),
  'POST /policies/:policyName/version': act('iot:CreatePolicyVersion', iot('policy', 'policyName')),
  'GET /policies/:policyName/version': act('iot:ListPolicyVersions', iot('policy', 'policyName')),
  'GET /policies/:policyName/version/:policyVersionId': act('iot:GetPolicyVersion', iot('policy', 'policyName')),
  'PATCH /policies/:policyName/version/:policyVersionId': act('iot:SetDefaultPolicyVersion', iot('policy', 'policyName')),
  'DELETE /policies/:policyName/version/:policyVersionId': act('iot:DeletePolicyVersion', iot('policy', 'policyName')),
  'PUT /target-policies/:policyName': act('iot:AttachPolicy', iot('policy', 'policyName')),
  'POST /target-policies/:policyName': act('iot:DetachPolicy', iot('policy', 'policyName')),
  'POST /attached-policies/:target': act('iot:ListAttachedPolicies'),
  'POST /policy-targets/:policyName': act('iot:ListTargetsForPolicy', iot('policy', 'policyName')),
  'PUT /things/:thingName/principals': act('iot:AttachThingPrincipal', iot('thing', 'thingName')),
  'DELETE /things/:thingName/principals': act('iot:DetachThingPrincipal', iot('thing', 'thingName')),
  'GET /things/:thingName/principals': act('iot:ListThingPrincipals', iot('thing', 'thingName')),
  'GET /principals/things': act('iot:ListPrincipalThings'),
  'POST /test-authorization': act('iot:TestAuthorization'),
  'POST /effective-policies': act('iot:GetEffectivePolicies'),
  'GET /endpoint': act('iot:DescribeEndpoint'),

  // ---- AWS IoT data plane (iot-data: shadows, publish, retained messages) ---------------------------------
  'GET /things/:thingName/shadow': dataPlane('GetThingShadow'),
  'POST /things/:thingName/shadow': dataPlane('UpdateThingShadow'),
  'DELETE /things/:thingName/shadow': dataPlane('DeleteThingShadow'),
  'GET /api/things/shadow/ListNamedShadowsForThing/:thingName': dataPlane('ListNamedShadowsForThing'),
  'POST /topics/:topic': dataPlane('Publish'),
  'GET /retainedMessage/:topic': dataPlane('GetRetainedMessage'),
  'GET /retainedMessage': dataPlane('ListRetainedMessages'),

  // ---- Thingward operations ---------------------------------------------------------------------------------
  'POST /thingward/provision': act('thingward:Provision'),
  'GET /thingward/ca': act('thingward:GetCaChain'),
  'GET /thingward/policies/:policyName/lint': act('thingward:LintPolicy', iot('policy', 'policyName')),
  'POST /thingward/policy-lint': act('thingward:LintPolicy'),
  'GET /thingward/blast-radius': act('thingward:GetBlastRadius'),
  'GET /thingward/sensitive-topics': act('thingward:GetSensitiveTopics'),
  'PUT /thingward/sensitive-topics': act('thingward:SetSensitiveTopics'),
  'GET /thingward/command-keys': act('thingward:GetCommandKeys'),
  'GET /thingward/payload-schemas': act('thingward:ListPayloadSchemas'),
  'PUT /thingward/payload-schemas/:schemaName': act('thingward:PutPayloadSchema', iot('payloadschema', 'schemaName')),
  'GET /thingward/payload-schemas/:schemaName': act('thingward:GetPayloadSchema', iot('payloadschema', 'schemaName')),
  'DELETE /thingward/payload-schemas/:schemaName': act('thingward:DeletePayloadSchema', iot('payloadschema', 'schemaName')),
  'POST /thingward/payload-schemas/:schemaName/test': act('thingward:TestPayloadSchema', iot('payloadschema', 'schemaName')),
  'GET /thingward/audit/events': act('thingward:ReadAudit'),
  'GET /thingward/audit/export': act('thingward:ReadAudit'),
  'POST /thingward/audit/verify': act('thingward:ReadAudit'),
  'GET /thingward/audit/head': act('thingward:ReadAudit'),
  'GET /thingward/audit/public-keys': act('thingward:ReadAudit'),
  'GET /thingward/audit/digests': act('thingward:ReadAudit'),
  'POST /thingward/audit/digests': act('thingward:SignAuditDigest'),
  'POST /thingward/audit/rotate-key': act('thingward:RotateAuditSigningKey'),
  'POST /thingward/audit/prune': act('thingward:PruneAudit'),

  // ---- IAM (our REST shape of the AWS IAM operations) -------------------------------------------------------
  'GET /thingward/iam/whoami': { kind: 'authenticated', why: 'the caller\'s own identity, like STS GetCallerIdentity' },
  'GET /thingward/iam/users': act('iam:ListUsers'),
  // Creating a user with roles also assigns them: each needs thingward:AssignRole, or iam:CreateUser alone would
  // mint administrators.
  'POST /thingward/iam/users/:userName': {
    kind: 'action',
    permissions: (r) => [
      { action: 'iam:CreateUser', resource: iam('user', 'userName')(r) },
      ...rolesFromBody(r).map(role => ({ action: 'thingward:AssignRole', resource: iamArn(r.arn.accountId, 'role', role) })),
    ],
  },
  'GET /thingward/iam/users/:userName': act('iam:GetUser', iam('user', 'userName')),
  'DELETE /thingward/iam/users/:userName': act('iam:DeleteUser', iam('user', 'userName')),
  'PUT /thingward/iam/users/:userName/login-profile': act('iam:UpdateLoginProfile', iam('user', 'userName')),
  'DELETE /thingward/iam/users/:userName/login-profile': act('iam:DeleteLoginProfile', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/password': act('iam:ChangePassword', iam('user', 'userName')),
  'GET /thingward/iam/users/:userName/access-keys': act('iam:ListAccessKeys', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/access-keys': act('iam:CreateAccessKey', iam('user', 'userName')),
  'GET /thingward/iam/users/:userName/access-keys/:accessKeyId': act('iam:GetAccessKeyLastUsed', iam('user', 'userName')),
  'PATCH /thingward/iam/users/:userName/access-keys/:accessKeyId': act('iam:UpdateAccessKey', iam('user', 'userName')),
  'DELETE /thingward/iam/users/:userName/access-keys/:accessKeyId': act('iam:DeleteAccessKey', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/access-keys/:accessKeyId/rotate': all(['iam:CreateAccessKey', 'iam:UpdateAccessKey'], iam('user', 'userName')),
  'GET /thingward/iam/users/:userName/mfa': act('iam:ListMFADevices', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/mfa': act('iam:CreateVirtualMFADevice', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/mfa/enable': act('iam:EnableMFADevice', iam('user', 'userName')),
  'DELETE /thingward/iam/users/:userName/mfa': act('iam:DeactivateMFADevice', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/unlock': act('thingward:UnlockUser', iam('user', 'userName')),
  'POST /thingward/iam/users/:userName/revoke-sessions': act('thingward:RevokeSessions', iam('user', 'userName')),
  'PUT /thingward/iam/users/:userName/roles/:roleName': act('thingward:AssignRole', iam('role', 'roleName')),
  'DELETE /thingward/iam/users/:userName/roles/:roleName': act('thingward:UnassignRole', iam('role', 'roleName')),
  'PUT /thingward/iam/users/:userName/policies/:policyName': act('iam:AttachUserPolicy', iam('user', 'userName')),
  'DELETE /thingward/iam/users/:userName/policies/:policyName': act('iam:DetachUserPolicy', iam('user', 'userName')),
  'GET /thingward/iam/groups': act('iam:ListGroups'),
  'POST /thingward/iam/groups/:groupName': act('iam:CreateGroup', iam('group', 'groupName')),
  'GET /thingward/iam/groups/:groupName': act('iam:GetGroup', iam('group', 'groupName')),
  'DELETE /thingward/iam/groups/:groupName': act('iam:DeleteGroup', iam('group', 'groupName')),
  'PUT /thingward/iam/groups/:groupName/users/:userName': act('iam:AddUserToGroup', iam('group', 'groupName')),
  'DELETE /thingward/iam/groups/:groupName/users/:userName': act('iam:RemoveUserFromGroup', iam('group', 'groupName')),
  'PUT /thingward/iam/groups/:groupName/policies/:policyName': act('iam:AttachGroupPolicy', iam('group', 'groupName')),
  'DELETE /thingward/iam/groups/:groupName/policies/:policyName': act('iam:DetachGroupPolicy', iam('group', 'groupName')),
  'GET /thingward/iam/roles': act('iam:ListRoles'),
  'POST /thingward/iam/roles/:roleName': act('iam:CreateRole', iam('role', 'roleName')),
  'GET /thingward/iam/roles/:roleName': act('iam:GetRole', iam('role', 'roleName')),
  'DELETE /thingward/iam/roles/:roleName': act('iam:DeleteRole', iam('role', 'roleName')),
  'PUT /thingward/iam/roles/:roleName/trust-policy': act('iam:UpdateAssumeRolePolicy', iam('role', 'roleName')),
  'PUT /thingward/iam/roles/:roleName/policies/:policyName': act('iam:AttachRolePolicy', iam('role', 'roleName')),
  'DELETE /thingward/iam/roles/:roleName/policies/:policyName': act('iam:DetachRolePolicy', iam('role', 'roleName')),
  'GET /thingward/iam/policies': act('iam:ListPolicies'),
  'POST /thingward/iam/policies/:policyName': act('iam:CreatePolicy', iam('policy', 'policyName')),
  'GET /thingward/iam/policies/:policyName': act('iam:GetPolicy', iam('policy', 'policyName')),
  'PUT /thingward/iam/policies/:policyName': act('iam:CreatePolicyVersion', iam('policy', 'policyName')),
  'DELETE /thingward/iam/policies/:policyName': act('iam:DeletePolicy', iam('policy', 'policyName')),
  'POST /thingward/iam/simulate': act('iam:SimulatePrincipalPolicy'),
}

/** The JSON body, or {} when it is not a JSON object (the route then refuses it itself). */
function bodyOf (r: RouteInput): Record<string, unknown> {
  try {
    const b: unknown = JSON.parse(r.body.toString('utf8'))
    return isRecord(b) ? b : {}
  } catch { return {} }
}

/** CreateUser's `roles`: each string names a role to assign (anything else is refused by the route). */
const rolesFromBody = (r: RouteInput): string[] => {
  const roles = bodyOf(r).roles
  return Array.isArray(roles) ? roles.filter((x): x is string => typeof x === 'string') : []
}

/** AddThingToThingGroup names the group in the body (thingGroupName or thingGroupArn). */
function groupFromBody (r: RouteInput): string {
  const b = bodyOf(r)
  if (typeof b.thingGroupArn === 'string') return b.thingGroupArn
  return iotArn(r.arn, 'thinggroup', typeof b.thingGroupName === 'string' ? b.thingGroupName : '')
}

/** The entry for a request method and route pattern; HEAD uses its GET route's entry (Fastify exposes HEAD for GET). */
export function routeAuthorization (method: string, url: string): RouteAuthorization | undefined {
  const m = method.toUpperCase()
  const key = `${m === 'HEAD' ? 'GET' : m} ${url}`
  return Object.hasOwn(ROUTE_ACTIONS, key) ? ROUTE_ACTIONS[key] : undefined
}

const registered = new WeakMap<FastifyInstance, Set<string>>()

/** Records every route the server registers (call before any route is added). */
export function trackRoutes (app: FastifyInstance): void {
  const set = new Set<string>()
  registered.set(app, set)
  app.addHook('onRoute', (route) => {
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) set.add(`${m.toUpperCase()} ${route.url}`)
  })
}

/** Registered routes without an authorization entry (must be empty: the exhaustiveness test). */
export function routesWithoutAuthorization (app: FastifyInstance): string[] {
  return [...registered.get(app) ?? []].filter((r) => {
    const i = r.indexOf(' ')
    return routeAuthorization(r.slice(0, i), r.slice(i + 1)) === undefined
  }).sort()
}

/** Every registered route (for tests and the operator reference). */
export function registeredRoutes (app: FastifyInstance): string[] {
  return [...registered.get(app) ?? []].sort()
}

/** The authenticated principal of a signed request (set by the SigV4 hook); ERR_AUTH_MISSING on an unsigned one. */
export function requirePrincipal (req: FastifyRequest): Principal {
  if (req.principal === undefined) throw new AppError('ERR_AUTH_MISSING', 'missing authentication token: requests must be signed with AWS Signature Version 4')
  return req.principal
}

/** Dependencies of {@link authorizeRequest}. */
export interface AuthorizeDeps {
  readonly iam: IamServices
  readonly arn: ArnContext
  readonly recordAudit: (e: AuditEventInput) => Promise<void>
}

/** AWS-style denial text: names the principal, the action and the resource, never the policy (DESIGN.md §5). */
function denialMessage (p: Principal, action: string, resource: string, d: Decision | undefined): string {
  const why = d?.effect === 'explicitDeny' ? 'with an explicit deny in an identity-based policy' : `because no identity-based policy allows the ${action} action`
  return `User: ${p.arn} is not authorized to perform: ${action} on resource: ${resource} ${why}`
}

/**
 * Authorizes an authenticated request through {@link ROUTE_ACTIONS}: a route without an entry is denied, each
 * action of the entry must be allowed for the principal. A denial is audited with the deciding statement
 * (`describeDecision`) and thrown as AccessDeniedException. Requests that matched no route are left to the 404
 * handler (no operation runs).
 */
export async function authorizeRequest (req: FastifyRequest, principal: Principal, deps: AuthorizeDeps): Promise<void> {
  const url = req.routeOptions.url
  if (url === undefined) return
  const input: RouteInput = { params: isRecord(req.params) ? req.params as Record<string, string> : {}, query: isRecord(req.query) ? req.query : {}, body: req.rawBody, arn: deps.arn }
  let entry = routeAuthorization(req.method, url)
  if (entry?.kind === 'dispatch') entry = entry.resolve(input)
  if (entry?.kind === 'authenticated') return
  const deny = async (action: string, resource: string, d: Decision | undefined): Promise<never> => {
    await deps.recordAudit({
      action: action.replace(':', '.'), actor: principal.actor, outcome: 'denied', kind: 'request', target: resource, sourceIp: req.ip, requestId: req.id,
      errorCode: 'ERR_AUTH_ACCESS_DENIED', reason: d === undefined ? 'no-route-authorization' : 'access-denied',
      statement: d === undefined ? 'no route authorization entry: denied by default' : describeDecision(d),
      details: { iamAction: action, principalArn: principal.arn, accessKeyId: principal.accessKeyId, method: req.method, route: url, ...(d === undefined ? {} : { decision: decisionRecord(d) }) },
    })
    throw new AppError('ERR_AUTH_ACCESS_DENIED', denialMessage(principal, action, resource, d), { action })
  }
  if (entry === undefined || entry.kind !== 'action') return deny(`http:${req.method}`, url, undefined)
  const facts = { sourceIp: req.ip, secureTransport: req.protocol === 'https' }
  for (const { action, resource } of entry.permissions(input)) {
    const d = await deps.iam.authorizer.authorize(principal, action, resource, facts)
    if (!d.allowed) return deny(action, resource, d)
  }
}
