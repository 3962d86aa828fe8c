import { routeAuthorization } from '../authorization.ts'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import { AuditKind, AuditOutcome, digestEntry, ExportFormat, parseAnchors, toOcsf } from '../../audit/index.ts'
import type { AuditEventInput, AuditSearch, AuditService } from '../../audit/index.ts'
import { AppError, InvalidRequestError, iotArn, isRecord } from '../../core/index.ts'
import type { ArnContext } from '../../core/index.ts'
import type { HttpDeps } from '../server.ts'
import { jsonBody, PUBLIC_PREFIXES } from '../server.ts'
import { qInt, qString } from './shapes.ts'

/**
 * AWS IoT operation names by route (botocore iot service-2.json `http.method` + `requestUri`), so request events
 * carry the same action names as the change events (`iot.CreateThing`) and as CloudTrail would.
 */
const OPERATIONS: Readonly<Record<string, string>> = {
  'POST /things/:thingName': 'iot.CreateThing',
  'GET /things/:thingName': 'iot.DescribeThing',
  'PATCH /things/:thingName': 'iot.UpdateThing',
  'DELETE /things/:thingName': 'iot.DeleteThing',
  'GET /things': 'iot.ListThings',
  'POST /thing-types/:thingTypeName': 'iot.CreateThingType',
  'GET /thing-types/:thingTypeName': 'iot.DescribeThingType',
  'GET /thing-types': 'iot.ListThingTypes',
  'POST /thing-types/:thingTypeName/deprecate': 'iot.DeprecateThingType',
  'DELETE /thing-types/:thingTypeName': 'iot.DeleteThingType',
  'POST /thing-groups/:thingGroupName': 'iot.CreateThingGroup',
  'GET /thing-groups/:thingGroupName': 'iot.DescribeThingGroup',
  'PATCH /thing-groups/:thingGroupName': 'iot.UpdateThingGroup',
  'DELETE /thing-groups/:thingGroupName': 'iot.DeleteThingGroup',
  'GET /thing-groups': 'iot.ListThingGroups',
  'PUT /thing-groups/addThingToThingGroup': 'iot.AddThingToThingGroup',
  'PUT /thing-groups/removeThingFromThingGroup': 'iot.RemoveThingFromThingGroup',
  'GET /thing-groups/:thingGroupName/things': 'iot.ListThingsInThingGroup',
  'POST /keys-and-certificate': 'iot.CreateKeysAndCertificate',
  'POST /certificates': 'iot.CreateCertificateFromCsr',
  'GET /certificates/:certificateId': 'iot.DescribeCertificate',
  'GET /certificates': 'iot.ListCertificates',
  'GET /certificates-by-ca/:caCertificateId': 'iot.ListCertificatesByCA',
  'PUT /certificates/:certificateId': 'iot.UpdateCertificate',
  'DELETE /certificates/:certificateId': 'iot.DeleteCertificate',
  'POST /cacertificate': 'iot.RegisterCACertificate',
  'GET /cacertificate/:certificateId': 'iot.DescribeCACertificate',
  'GET /cacertificates': 'iot.ListCACertificates',
  'PUT /cacertificate/:certificateId': 'iot.UpdateCACertificate',
  'POST /certificate/register': 'iot.RegisterCertificate',
  'POST /certificate/register-no-ca': 'iot.RegisterCertificateWithoutCA',
  'GET /registrationcode': 'iot.GetRegistrationCode',
  'POST /policies/:policyName': 'iot.CreatePolicy',
  'GET /policies/:policyName': 'iot.GetPolicy',
  'GET /policies': 'iot.ListPolicies',
  'DELETE /policies/:policyName': 'iot.DeletePolicy',
  'POST /policies/:policyName/version': 'iot.CreatePolicyVersion',
  'GET /policies/:policyName/version': 'iot.ListPolicyVersions',
  'GET /policies/:policyName/version/:policyVersionId': 'iot.GetPolicyVersion',
  'PATCH /policies/:policyName/version/:policyVersionId': 'iot.SetDefaultPolicyVersion',
  'DELETE /policies/:policyName/version/:policyVersionId': 'iot.DeletePolicyVersion',
  'PUT /target-policies/:policyName': 'iot.AttachPolicy',
  'POST /target-policies/:policyName': 'iot.DetachPolicy',
  'POST /attached-policies/:target': 'iot.ListAttachedPolicies',
  'POST /policy-targets/:policyName': 'iot.ListTargetsForPolicy',
  'PUT /things/:thingName/principals': 'iot.AttachThingPrincipal',
  'DELETE /things/:thingName/principals': 'iot.DetachThingPrincipal',
  'GET /things/:thingName/principals': 'iot.ListThingPrincipals',
  'GET /principals/things': 'iot.ListPrincipalThings',
  'GET /endpoint': 'iot.DescribeEndpoint',
  'POST /thingward/provision': 'thingward.ProvisionDevices',
  'GET /thingward/ca': 'thingward.GetCaChain',
  'GET /thingward/audit/events': 'thingward.ListAuditEvents',
  'GET /thingward/audit/export': 'thingward.ExportAuditEvents',
  'POST /thingward/audit/verify': 'thingward.VerifyAuditLog',
  'GET /thingward/audit/head': 'thingward.GetAuditHead',
  'GET /thingward/audit/public-keys': 'thingward.ListAuditPublicKeys',
  'GET /thingward/audit/digests': 'thingward.ListAuditDigests',
  'POST /thingward/audit/digests': 'thingward.SignAuditDigest',
  'POST /thingward/audit/rotate-key': 'thingward.RotateAuditSigningKey',
  'POST /thingward/audit/prune': 'thingward.PruneAuditLog',
}

/**
 * The action name of a request: its AWS (or Thingward) operation from the table above, else the IAM action the
 * route is authorized as (`iot:GetThingShadow` → `iot.GetThingShadow`, from src/http/authorization.ts), else
 * `http.Request`.
 */
export function operationOf (method: string, routeUrl: string | undefined): string {
  if (routeUrl === undefined) return 'http.UnknownOperation'
  const key = `${method} ${routeUrl}`
  let name = operationNames.get(key)
  if (name === undefined) {
    name = OPERATIONS[key]
    const auth = name === undefined ? routeAuthorization(method, routeUrl) : undefined
    if (auth?.kind === 'action') name = auth.permissions({ params: {}, query: {}, body: Buffer.alloc(0), arn: { region: '', accountId: '' } })[0]?.action.replace(':', '.')
    name ??= 'http.Request'
    operationNames.set(key, name)
  }
  return name
}
/** Resolved once per route (routes are a fixed, small set). */
const operationNames = new Map<string, string>()

/** ARN resource types of the route parameters that name one resource. */
const PARAM_TYPES: ReadonlyArray<[string, string]> = [
  ['thingName', 'thing'], ['thingTypeName', 'thingtype'], ['thingGroupName', 'thinggroup'], ['policyName', 'policy'],
  ['certificateId', 'cert'], ['caCertificateId', 'cacert'],
]

function resourceOf (req: FastifyRequest, arn: ArnContext): { target?: string, thing?: string } {
  const p = isRecord(req.params) ? req.params : {}
  for (const [name, type] of PARAM_TYPES) {
    const v = p[name]
    if (typeof v === 'string' && v !== '') {
      const isCa = type === 'cert' && (req.routeOptions.url ?? '').startsWith('/cacertificate')
      return { target: iotArn(arn, isCa ? 'cacert' : type, v), ...(type === 'thing' ? { thing: v } : {}) }
    }
  }
  if (typeof p.target === 'string') return { target: p.target }
  return {}
}

const PUBLIC = (path: string): boolean => PUBLIC_PREFIXES.some(p => path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}.`))

/**
 * Records every control-plane request that left no other trace in the log (issue #5): reads, refusals and
 * failures get one `request` event (action = the AWS operation, outcome, status, error code, principal, source
 * address, request id, resource). A mutation that succeeded is already in the log as its change event(s),
 * committed with the change and carrying the request id, so it gets no second event. Refused signatures are
 * recorded by the SigV4 hook (`http.authenticate`) and not again here. Public endpoints (health, CA chain, CRL,
 * OCSP) are not recorded.
 *
 * The event is recorded in `onSend`, before the response leaves: a client that got an answer can rely on its
 * request being in the log. If the event cannot be recorded the client gets a 503 instead of the answer.
 */
export function registerRequestAudit (app: FastifyInstance, audit: AuditService, arn: ArnContext): void {
  const authenticated = new WeakSet<FastifyRequest>()
  const errorCodes = new WeakMap<FastifyRequest, string>()
  app.addHook('onRequest', async (req) => { audit.requests.begin(req.id) })
  app.addHook('preHandler', async (req) => { authenticated.add(req) })
  app.addHook('onError', async (req, _reply, err) => {
    const code = err instanceof AppError ? err.code : (isRecord(err) && typeof err.code === 'string' ? err.code : undefined)
    if (code !== undefined) errorCodes.set(req, code)
  })
  app.addHook('onSend', async (req, reply, payload) => {
    const changes = audit.requests.end(req.id)
    const url = req.raw.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    if (PUBLIC(path)) return payload
    const code = errorCodes.get(req)
    const status = reply.statusCode
    // The SigV4 hook recorded its own refusals (http.authenticate).
    if (!authenticated.has(req) && code !== undefined && code.startsWith('ERR_AUTH_')) return payload
    if (status < 400 && changes > 0) return payload
    const event: AuditEventInput = {
      action: operationOf(req.method, req.routeOptions.url),
      actor: authenticated.has(req) ? req.caller.actor : 'anonymous',
      outcome: status < 400 ? AuditOutcome.Success : status === 401 || status === 403 ? AuditOutcome.Denied : AuditOutcome.Failure,
      kind: AuditKind.Request,
      ...resourceOf(req, arn),
      sourceIp: req.ip,
      requestId: req.id,
      ...(code === undefined ? {} : { errorCode: code }),
      details: { method: req.method, path: req.routeOptions.url ?? path, statusCode: status },
    }
    try {
      await audit.record(event)
    } catch (err) {
      req.log.error({ err }, 'recording the request audit event failed')
      reply.code(503).header('x-amzn-ErrorType', 'ServiceUnavailableException')
      return JSON.stringify({ message: 'the audit log is unavailable', code: 'ERR_AUDIT_OVERLOADED' })
    }
    return payload
  })
  app.addHook('onResponse', async (req) => { audit.requests.end(req.id) })
}

/** Epoch milliseconds from an ISO 8601 time or a number of milliseconds. */
export function parseTime (v: unknown, field: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v
  if (typeof v === 'string') {
    if (/^\d{1,15}$/.test(v)) return Number(v)
    const ms = Date.parse(v)
    if (Number.isFinite(ms)) return ms
  }
  throw new InvalidRequestError('time must be an ISO 8601 date-time or epoch milliseconds', { field })
}

const OUTCOMES = new Set<string>(Object.values(AuditOutcome))

function searchOf (req: FastifyRequest): Omit<AuditSearch, 'limit'> & { limit?: number } {
  const outcome = qString(req, 'outcome')
  if (outcome !== undefined && !OUTCOMES.has(outcome)) throw new InvalidRequestError('outcome must be success, denied or failure', { field: 'outcome' })
  const next = qString(req, 'nextToken')
  if (next !== undefined && !/^\d{1,15}$/.test(next)) throw new InvalidRequestError('nextToken is malformed', { field: 'nextToken' })
  const s = {
    fromMs: parseTime(qString(req, 'from'), 'from'),
    toMs: parseTime(qString(req, 'to'), 'to'),
    principal: qString(req, 'principal'),
    thing: qString(req, 'thing'),
    action: qString(req, 'action'),
    outcome: outcome as AuditSearch['outcome'],
    afterSeq: next === undefined ? undefined : Number(next),
    limit: qInt(req, 'maxResults'),
  }
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined))
}

/** Thingward's audit operations: query, export, verify, head, keys, digests, rotation, prune. */
export const auditRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  const audit = deps.audit
  if (audit === undefined) return

  app.get('/thingward/audit/events', async (req) => {
    const page = await audit.search(searchOf(req))
    return { events: page.records, ...(page.nextToken === undefined ? {} : { nextToken: page.nextToken }) }
  })

  /**
   * One page as JSON lines: the stored records verbatim (`format=jsonl`) or OCSF events (`format=ocsf`); the next
   * page's token in `x-thingward-next-token`. With `envelope=json`, the same lines inside `{ lines, nextToken }`.
   */
  app.get('/thingward/audit/export', async (req, reply) => {
    const format = qString(req, 'format') ?? ExportFormat.Jsonl
    if (format !== ExportFormat.Jsonl && format !== ExportFormat.Ocsf) throw new InvalidRequestError('format must be jsonl or ocsf', { field: 'format' })
    const page = await audit.search({ ...searchOf(req), limit: qInt(req, 'maxResults') ?? 10_000 })
    const lines = format === ExportFormat.Jsonl
      ? page.rows.map(r => r[1])
      : page.records.map((r, i) => JSON.stringify(toOcsf(r, { hash: page.rows[i][2] })))
    if (qString(req, 'envelope') === 'json') return { lines, ...(page.nextToken === undefined ? {} : { nextToken: page.nextToken }) }
    if (page.nextToken !== undefined) reply.header('x-thingward-next-token', page.nextToken)
    return reply.type('application/x-ndjson').send(lines.map(l => `${l}\n`).join(''))
  })

  app.post('/thingward/audit/verify', async (req) => {
    const b = jsonBody(req)
    const seq = (v: unknown, field: string): number | undefined => {
      if (v === undefined || v === null) return undefined
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v
      throw new InvalidRequestError('must be a non-negative integer', { field })
    }
    const trustedKeys = b.trustedKeys
    if (trustedKeys !== undefined && (!Array.isArray(trustedKeys) || !trustedKeys.every(k => typeof k === 'string'))) throw new InvalidRequestError('trustedKeys must be a list of fingerprints', { field: 'trustedKeys' })
    if (b.anchors !== undefined && typeof b.anchors !== 'string') throw new InvalidRequestError('anchors must be text (JSON lines or audit head output)', { field: 'anchors' })
    const fromSeq = seq(b.fromSeq, 'fromSeq')
    const toSeq = seq(b.toSeq, 'toSeq')
    const fromMs = parseTime(b.from, 'from')
    const toMs = parseTime(b.to, 'to')
    return audit.verify({
      ...(fromSeq === undefined ? {} : { fromSeq }),
      ...(toSeq === undefined ? {} : { toSeq }),
      ...(fromMs === undefined ? {} : { fromMs }),
      ...(toMs === undefined ? {} : { toMs }),
      ...(trustedKeys === undefined ? {} : { trustedKeys: trustedKeys as string[] }),
      ...(typeof b.anchors === 'string' ? { anchors: parseAnchors(b.anchors) } : {}),
      requireClosed: false,
    })
  })

  app.get('/thingward/audit/head', async () => audit.head())

  app.get('/thingward/audit/public-keys', async () => ({ keys: await audit.publicKeys() }))

  app.get('/thingward/audit/digests', async (req) => {
    const after = qInt(req, 'afterDigestSeq') ?? 0
    const limit = Math.max(1, Math.min(qInt(req, 'maxResults') ?? 1000, 10_000))
    const digests = await audit.digestsAfter(after, limit + 1)
    const page = digests.slice(0, limit)
    return {
      digests: page.map(d => digestEntry(d)),
      ...(digests.length > limit ? { nextToken: String(page[page.length - 1].digestSeq) } : {}),
    }
  })

  app.post('/thingward/audit/digests', async () => {
    return digestEntry(await audit.signDigest())
  })

  app.post('/thingward/audit/rotate-key', async (req) => audit.rotateSigningKey(req.caller))

  app.post('/thingward/audit/prune', async (req) => {
    const before = parseTime(jsonBody(req).before, 'before')
    if (before === undefined) throw new InvalidRequestError('before is required', { field: 'before' })
    return audit.prune(req.caller, before)
  })
}
