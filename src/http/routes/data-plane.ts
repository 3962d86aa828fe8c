/**
 * The AWS IoT data plane over HTTPS (service `iotdata`, protocol rest-json; botocore iot-data 2015-05-28 and
 * @aws-sdk/client-iot-data-plane): shadows, ListNamedShadowsForThing, Publish and retained-message reads, with the
 * SDKs' paths, query names, headers and exception names, so the real clients work with an endpoint override.
 *
 * Two front doors share one implementation:
 * - operators, on the API server: signed with SigV4 (`iotdata` or `iotdevicegateway`), `req.caller` set by the
 *   server's hook; {@link DATA_PLANE_OPERATIONS} and {@link dataPlaneAuthorization} tell the IAM layer which
 *   action and resource each call needs;
 * - devices, on their own mTLS listener ({@link buildDeviceDataPlane}): `POST /topics/{topic}` with their client
 *   certificate, authorized by the same compiled per-device policy the MQTT gateway uses.
 */
import Fastify from 'fastify'
import type { CommandService } from '../../command/index.ts'
import { COMMAND_TOKEN_PROPERTY } from '../../command/index.ts'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { X509Certificate } from 'node:crypto'
import type { Server as TlsServer, TLSSocket } from 'node:tls'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { AuditEventInput } from '../../audit/index.ts'
import { AppError, InvalidRequestError, TLS_CIPHERS, certificateActor, iotArn, isRecord } from '../../core/index.ts'
import { headerValue } from '../../core/sigv4.ts'
import type { ArnContext } from '../../core/index.ts'
import { describeRejection, parseShadowRequestTopic, shadowArn } from '../../shadow/index.ts'
import type { PayloadVerdict, ShadowCaller, ShadowService } from '../../shadow/index.ts'
import { jsonErrorHandler, unknownOperation } from '../errors.ts'
import { params, qBool, qInt, qString } from './shapes.ts'

// ---- the route table the IAM layer consumes -----------------------------------------------------------------

/** Data-plane operations: SDK operation name → method, route (Fastify syntax) and IAM action (IoT DG `policy-actions`). */
export const DATA_PLANE_OPERATIONS = {
  GetThingShadow: { method: 'GET', url: '/things/:thingName/shadow', action: 'iot:GetThingShadow' },
  UpdateThingShadow: { method: 'POST', url: '/things/:thingName/shadow', action: 'iot:UpdateThingShadow' },
  DeleteThingShadow: { method: 'DELETE', url: '/things/:thingName/shadow', action: 'iot:DeleteThingShadow' },
  ListNamedShadowsForThing: { method: 'GET', url: '/api/things/shadow/ListNamedShadowsForThing/:thingName', action: 'iot:ListNamedShadowsForThing' },
  Publish: { method: 'POST', url: '/topics/:topic', action: 'iot:Publish' },
  GetRetainedMessage: { method: 'GET', url: '/retainedMessage/:topic', action: 'iot:GetRetainedMessage' },
  ListRetainedMessages: { method: 'GET', url: '/retainedMessage', action: 'iot:ListRetainedMessages' },
} as const
export type DataPlaneOperation = keyof typeof DATA_PLANE_OPERATIONS

/** One action on one resource ARN that a data-plane call needs to be allowed. */
export interface RequiredPermission { readonly action: string, readonly resource: string }

/**
 * The IAM checks a data-plane call needs (shared/reference/aws-iot.md §1): shadows need their action on
 * `thing/{thing}` or `thing/{thing}/{shadowName}`; Publish needs iot:Publish on `topic/{topic}` and, when
 * retained, iot:RetainPublish too; GetRetainedMessage needs `topic/{topic}`; ListNamedShadowsForThing and
 * ListRetainedMessages are on `*`. Each route carries `config.operation`, so a hook can call this with
 * `req.routeOptions.config.operation`, `req.params` and `req.query`.
 */
export function dataPlaneAuthorization (operation: DataPlaneOperation, p: { thingName?: string, shadowName?: string, topic?: string, retain?: boolean }, arn: ArnContext): RequiredPermission[] {
  const action = DATA_PLANE_OPERATIONS[operation].action
  switch (operation) {
    case 'GetThingShadow': case 'UpdateThingShadow': case 'DeleteThingShadow':
      return [{ action, resource: shadowArn(arn, p.thingName ?? '', p.shadowName) }]
    case 'Publish': {
      const resource = iotArn(arn, 'topic', p.topic ?? '')
      return p.retain === true ? [{ action, resource }, { action: 'iot:RetainPublish', resource }] : [{ action, resource }]
    }
    case 'GetRetainedMessage':
      return [{ action, resource: iotArn(arn, 'topic', p.topic ?? '') }]
    case 'ListNamedShadowsForThing': case 'ListRetainedMessages':
      return [{ action, resource: '*' }]
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The data-plane operation a route serves (see DATA_PLANE_OPERATIONS). */
    operation?: DataPlaneOperation
  }
}

// ---- ports --------------------------------------------------------------------------------------------------

/** MQTT 5 properties an HTTPS Publish can carry (iot-data Publish headers and query). */
export interface PublishProperties {
  readonly payloadFormatIndicator?: boolean
  readonly contentType?: string
  readonly responseTopic?: string
  readonly correlationData?: Buffer
  readonly userProperties?: Readonly<Record<string, string | readonly string[]>>
}

/** The message bus the data plane publishes to and reads retained messages from (the MQTT gateway). */
export interface MessagingPort {
  /** Publishes to MQTT subscribers (each subject to iot:Receive). Throws ERR_DATA_PLANE_UNAVAILABLE without a gateway. */
  publish (m: { topic: string, payload: Buffer, qos: 0 | 1, retain: boolean, properties?: PublishProperties, messageExpirySec?: number, v311Payload?: Buffer }): void
  retainedMessage (topic: string): { message: { topic: string, payload: Buffer, qos: 0 | 1, properties?: PublishProperties }, lastModifiedMs: number } | undefined
  retainedMessages (): Array<{ topic: string, payloadSize: number, qos: 0 | 1, lastModifiedMs: number }>
}

/** What the data-plane routes need; app.ts wires it. */
export interface DataPlaneDeps {
  readonly shadows: ShadowService
  /** The payload-schema check (PayloadSchemaService). */
  readonly payloadSchemas: { validate (topic: string, payload: Uint8Array): PayloadVerdict }
  readonly messaging: MessagingPort
  /** Records a refused publish (schema or policy) in the audit log. */
  readonly recordAudit: (e: AuditEventInput) => Promise<void>
  /** MFA-gated command topics (absent: no topic is sensitive). */
  readonly commands?: Pick<CommandService, 'isSensitive' | 'issueToken'>
}

// ---- shared implementation -----------------------------------------------------------------------------------

const JSON_TYPE = 'application/json'

function shadowName (req: FastifyRequest): string | undefined { return qString(req, 'name') }

/**
 * `x-amz-mqtt5-user-properties`: base64 of a JSON array of one-key objects (iot-data Publish
 * `SynthesizedJsonUserProperties`, media type application/json). Repeated names become arrays.
 */
function parseUserProperties (raw: string | undefined): Record<string, string | string[]> | undefined {
  if (raw === undefined) return undefined
  let v: unknown
  try { v = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) } catch { v = undefined }
  if (!Array.isArray(v)) throw new InvalidRequestError('x-amz-mqtt5-user-properties must be base64 of a JSON array of objects', { field: 'userProperties' })
  const out: Record<string, string | string[]> = {}
  for (const item of v) {
    if (!isRecord(item)) throw new InvalidRequestError('x-amz-mqtt5-user-properties must be base64 of a JSON array of objects', { field: 'userProperties' })
    for (const [k, val] of Object.entries(item)) {
      if (typeof val !== 'string') throw new InvalidRequestError('user property values must be strings', { field: 'userProperties' })
      const prev = Object.hasOwn(out, k) ? out[k] : undefined
      Object.defineProperty(out, k, { value: prev === undefined ? val : [...(Array.isArray(prev) ? prev : [prev]), val], enumerable: true, writable: true, configurable: true })
    }
  }
  return out
}

function userPropertiesJson (p: Readonly<Record<string, string | readonly string[]>>): string {
  const arr: Array<Record<string, string>> = []
  for (const [k, v] of Object.entries(p)) for (const x of (typeof v === 'string' ? [v] : v)) arr.push({ [k]: x })
  return JSON.stringify(arr)
}

/** Who published, for audit events and the shadow service. */
interface Publisher {
  readonly actor: string
  readonly sourceIp: string
  readonly requestId: string
  /** An operator (SigV4) rather than a device (client certificate). */
  readonly operator?: boolean
  /** aws:MultiFactorAuthPresent of the operator's credentials. */
  readonly mfa?: boolean
}

/**
 * Publish (iot-data `POST /topics/{topic}`): payload schema first (a refused payload reaches nobody), then either
 * a shadow request (a publish to `$aws/things/…/shadow/…/{get,update,delete}` acts as one, as over MQTT) or the
 * gateway. The caller has authorized the publish.
 */
async function publish (deps: DataPlaneDeps, req: FastifyRequest, who: Publisher): Promise<void> {
  const topic = params(req).topic
  const qos = qInt(req, 'qos') ?? 0
  if (qos !== 0 && qos !== 1) throw new InvalidRequestError('qos must be 0 or 1', { field: 'qos' })
  const retain = qBool(req, 'retain') ?? false
  const payload = req.rawBody
  const verdict = deps.payloadSchemas.validate(topic, payload)
  if (!verdict.allowed) {
    await deps.recordAudit({
      action: 'iot.Publish', actor: who.actor, outcome: 'denied', target: topic, sourceIp: who.sourceIp, requestId: who.requestId,
      errorCode: 'ERR_SCHEMA_PAYLOAD_REJECTED', reason: 'payload-schema-mismatch', statement: describeRejection(verdict),
      details: { schemaName: verdict.schemaName, schemaPath: verdict.schemaPath, instancePath: verdict.instancePath },
    })
    throw new AppError('ERR_SCHEMA_PAYLOAD_REJECTED', 'the payload does not match the schema attached to the topic',
      { schemaName: verdict.schemaName, schemaPath: verdict.schemaPath, instancePath: verdict.instancePath })
  }
  if (topic.charCodeAt(0) === 0x24) {
    const shadowRequest = parseShadowRequestTopic(topic)
    // IoT DG `reserved-topics`: only the shadow request topics are writable; RETAIN is not allowed on `$` topics.
    if (shadowRequest === undefined || retain) throw new AppError('ERR_DATA_PLANE_FORBIDDEN', 'publishing to this reserved topic is not allowed', { topic })
    const caller: ShadowCaller = { actor: who.actor, via: 'https', sourceIp: who.sourceIp, requestId: who.requestId }
    await deps.shadows.handleRequest(shadowRequest, payload, caller)
    return
  }
  const pfi = headerValue(req.headers['x-amz-mqtt5-payload-format-indicator'])
  if (pfi !== undefined && pfi !== 'UNSPECIFIED_BYTES' && pfi !== 'UTF8_DATA') throw new InvalidRequestError('invalid payload format indicator', { field: 'payloadFormatIndicator' })
  const cd = headerValue(req.headers['x-amz-mqtt5-correlation-data'])
  const userProperties = parseUserProperties(headerValue(req.headers['x-amz-mqtt5-user-properties']))
  const contentType = qString(req, 'contentType')
  const responseTopic = qString(req, 'responseTopic')
  const properties: PublishProperties = {
    ...(pfi === undefined ? {} : { payloadFormatIndicator: pfi === 'UTF8_DATA' }),
    ...(contentType === undefined ? {} : { contentType }),
    ...(responseTopic === undefined ? {} : { responseTopic }),
    ...(cd === undefined ? {} : { correlationData: Buffer.from(cd, 'base64') }),
    ...(userProperties === undefined ? {} : { userProperties }),
  }
  const messageExpiry = qInt(req, 'messageExpiry')
  if (messageExpiry !== undefined && messageExpiry < 0) throw new InvalidRequestError('messageExpiry must not be negative', { field: 'messageExpiry' })
  const command = await commandToken(deps, topic, payload, retain, who)
  const withToken: PublishProperties = command === undefined ? properties : { ...properties, userProperties: { ...(properties.userProperties ?? {}), [COMMAND_TOKEN_PROPERTY]: command.token } }
  deps.messaging.publish({
    topic, payload, qos, retain, ...(Object.keys(withToken).length === 0 ? {} : { properties: withToken }),
    ...(messageExpiry === undefined ? {} : { messageExpirySec: messageExpiry }),
    ...(command === undefined ? {} : { v311Payload: command.envelope }),
  })
}

/**
 * MFA-gated commands (issue #5 §5): a publish to a sensitive topic filter needs operator credentials with MFA
 * (aws:MultiFactorAuthPresent true) — devices never, whatever their policy. The message then carries a command
 * token (JWS ES256 over operator, topic, payload hash, expiry ≤ 60 s): an MQTT 5 user property, or for MQTT 3.1.1
 * devices a JSON envelope `{"commandToken", "payloadBase64"}`. Refusals are audited and change nothing.
 */
async function commandToken (deps: DataPlaneDeps, topic: string, payload: Buffer, retain: boolean, who: Publisher): Promise<{ token: string, envelope: Buffer } | undefined> {
  const commands = deps.commands
  if (commands === undefined || !commands.isSensitive(topic)) return undefined
  const refuse = async (reason: string, message: string): Promise<never> => {
    await deps.recordAudit({
      action: 'iot.Publish', actor: who.actor, outcome: 'denied', target: topic, sourceIp: who.sourceIp, requestId: who.requestId,
      errorCode: 'ERR_DATA_PLANE_FORBIDDEN', reason, statement: 'sensitive command topic: operator commands with MFA only',
    })
    throw new AppError('ERR_DATA_PLANE_FORBIDDEN', message, { topic })
  }
  if (who.operator !== true) return refuse('sensitive-topic-device', 'devices cannot publish to sensitive command topics')
  if (who.mfa !== true) return refuse('mfa-required', 'publishing to a sensitive command topic requires credentials with MFA')
  // A retained command would replay after its token expired: refuse rather than store it.
  if (retain) return refuse('retained-command', 'commands to sensitive topics cannot be retained')
  const token = commands.issueToken(who.actor, topic, payload)
  return { token, envelope: Buffer.from(JSON.stringify({ commandToken: token, payloadBase64: payload.toString('base64') })) }
}

function sendJson (reply: FastifyReply, doc: unknown): FastifyReply {
  return reply.type(JSON_TYPE).send(JSON.stringify(doc))
}

/**
 * Authorizes one data-plane call and says who made it. Operators: the server's SigV4/IAM hook already decided
 * (it reads `config.operation` and {@link dataPlaneAuthorization}); devices: their certificate and policies.
 * Throws to refuse.
 */
type Authorize = (req: FastifyRequest, operation: DataPlaneOperation, permissions: RequiredPermission[]) => Promise<Publisher>

const target = (req: FastifyRequest): { thingName: string, shadowName?: string } => {
  const name = shadowName(req)
  return { thingName: params(req).thingName, ...(name === undefined ? {} : { shadowName: name }) }
}

/** Registers `operations` (a subset of {@link DATA_PLANE_OPERATIONS}) with one authorization rule. */
function registerOperations (app: FastifyInstance, deps: DataPlaneDeps, arn: ArnContext, authorize: Authorize, operations: readonly DataPlaneOperation[]): void {
  const on = new Set(operations)
  const shadowCaller = (who: Publisher): ShadowCaller => ({ actor: who.actor, via: 'https', sourceIp: who.sourceIp, requestId: who.requestId })
  const check = (req: FastifyRequest, op: DataPlaneOperation, p: Parameters<typeof dataPlaneAuthorization>[1]): Promise<Publisher> =>
    authorize(req, op, dataPlaneAuthorization(op, p, arn))

  if (on.has('GetThingShadow')) {
    app.get('/things/:thingName/shadow', { config: { operation: 'GetThingShadow' } }, async (req, reply) => {
      const t = target(req)
      await check(req, 'GetThingShadow', t)
      const maxAgeSeconds = qInt(req, 'maxAgeSeconds')
      if (maxAgeSeconds !== undefined && maxAgeSeconds < 0) throw new InvalidRequestError('maxAgeSeconds must not be negative', { field: 'maxAgeSeconds' })
      const doc = await deps.shadows.get(t, maxAgeSeconds === undefined ? {} : { maxAgeSeconds })
      const ext = doc.thingward
      if (typeof ext === 'object' && ext !== null && !Array.isArray(ext) && typeof ext.oldestReportedAgeSeconds === 'number') {
        reply.header('x-thingward-oldest-reported-age-seconds', String(ext.oldestReportedAgeSeconds))
      }
      return sendJson(reply, doc)
    })
  }

  if (on.has('UpdateThingShadow')) {
    app.post('/things/:thingName/shadow', { config: { operation: 'UpdateThingShadow' } }, async (req, reply) => {
      const t = target(req)
      const who = await check(req, 'UpdateThingShadow', t)
      return sendJson(reply, await deps.shadows.update(t, req.rawBody, shadowCaller(who)))
    })
  }

  if (on.has('DeleteThingShadow')) {
    app.delete('/things/:thingName/shadow', { config: { operation: 'DeleteThingShadow' } }, async (req, reply) => {
      const t = target(req)
      const who = await check(req, 'DeleteThingShadow', t)
      return sendJson(reply, await deps.shadows.delete(t, shadowCaller(who)))
    })
  }

  if (on.has('ListNamedShadowsForThing')) {
    app.get('/api/things/shadow/ListNamedShadowsForThing/:thingName', { config: { operation: 'ListNamedShadowsForThing' } }, async (req) => {
      await check(req, 'ListNamedShadowsForThing', { thingName: params(req).thingName })
      return deps.shadows.listNamedShadows(params(req).thingName, qString(req, 'nextToken'), qInt(req, 'pageSize'))
    })
  }

  if (on.has('Publish')) {
    app.post('/topics/:topic', { config: { operation: 'Publish' } }, async (req, reply) => {
      const who = await check(req, 'Publish', { topic: params(req).topic, retain: qBool(req, 'retain') ?? false })
      await publish(deps, req, who)
      return reply.send()
    })
  }

  if (on.has('GetRetainedMessage')) {
    app.get('/retainedMessage/:topic', { config: { operation: 'GetRetainedMessage' } }, async (req) => {
      const topic = params(req).topic
      await check(req, 'GetRetainedMessage', { topic })
      const r = deps.messaging.retainedMessage(topic)
      if (r === undefined) throw new AppError('ERR_REGISTRY_NOT_FOUND', 'retained message not found', { resourceType: 'retained message', resourceId: topic })
      const up = r.message.properties?.userProperties
      return {
        topic: r.message.topic,
        payload: r.message.payload.toString('base64'),
        qos: r.message.qos,
        // iot-data GetRetainedMessage: "The Epoch date and time, in milliseconds".
        lastModifiedTime: r.lastModifiedMs,
        ...(up === undefined ? {} : { userProperties: Buffer.from(userPropertiesJson(up)).toString('base64') }),
      }
    })
  }

  if (on.has('ListRetainedMessages')) {
    app.get('/retainedMessage', { config: { operation: 'ListRetainedMessages' } }, async (req) => {
      await check(req, 'ListRetainedMessages', {})
      const max = qInt(req, 'maxResults') ?? 200
      if (max < 1 || max > 200) throw new InvalidRequestError('maxResults must be from 1 to 200', { field: 'maxResults' })
      const token = qString(req, 'nextToken')
      const after = token === undefined ? undefined : Buffer.from(token, 'base64url').toString('utf8')
      const all = deps.messaging.retainedMessages().sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0)
      const from = after === undefined ? 0 : all.findIndex(m => m.topic > after)
      const page = from < 0 ? [] : all.slice(from, from + max)
      const more = from >= 0 && from + max < all.length
      return {
        retainedTopics: page.map(m => ({ topic: m.topic, payloadSize: m.payloadSize, qos: m.qos, lastModifiedTime: m.lastModifiedMs })),
        ...(more ? { nextToken: Buffer.from(page[page.length - 1].topic).toString('base64url') } : {}),
      }
    })
  }
}

/**
 * The operator data plane, on the API server (SigV4; `req.caller` set by the server's hook, which is where IAM
 * decides — see {@link dataPlaneAuthorization}). Shadow responses are the raw documents (the SDK returns them as
 * `payload` bytes). GET accepts our `maxAgeSeconds` extension and reports the age of the oldest reported value
 * in `x-thingward-oldest-reported-age-seconds`.
 */
export const dataPlaneRoutes: FastifyPluginAsync<{ dataPlane: DataPlaneDeps, arn: ArnContext }> = async (app, { dataPlane, arn }) => {
  registerOperations(app, dataPlane, arn, async (req) => ({ actor: req.caller.actor, sourceIp: req.ip, requestId: req.id, operator: true, mfa: req.principal?.mfa === true }), Object.keys(DATA_PLANE_OPERATIONS) as DataPlaneOperation[])
}

// ---- the device endpoint (mutual TLS) -------------------------------------------------------------------------

/** A device's authorization for one HTTPS call, made from its client certificate. */
export interface DeviceDecision {
  readonly allowed: boolean
  /** The certificate principal (audit actor), when the certificate is known. */
  readonly principalId?: string
  readonly thingName?: string
  /** Why not, for the audit log only (`certificate-revoked`, `no-matching-statement` …). */
  readonly reason?: string
  readonly statement?: string
}

/**
 * Authenticates a verified client certificate against the registry (status, validity, CA — on every request)
 * and decides every permission with the device's compiled policies (the gateway's policy set: certificate and
 * thing-group policies, thing variables bound). All must be allowed.
 */
export interface DeviceAuthorizer {
  authorize (req: { readonly certificate: X509Certificate, readonly sourceIp: string, readonly permissions: readonly RequiredPermission[] }): Promise<DeviceDecision>
}

/** The operations served to devices on their endpoint (AWS: Publish and the shadow calls with a client certificate). */
export const DEVICE_OPERATIONS: readonly DataPlaneOperation[] = ['Publish', 'GetThingShadow', 'UpdateThingShadow', 'DeleteThingShadow']

/** Options of {@link buildDeviceDataPlane}. */
export interface DeviceDataPlaneOptions {
  readonly dataPlane: DataPlaneDeps
  readonly authorizer: DeviceAuthorizer
  readonly arn: ArnContext
  /** Server certificate and key, and the CAs device certificates must chain to (our CA plus ACTIVE registered CAs). */
  readonly tls: { readonly cert: string, readonly key: string, readonly ca: readonly string[], readonly minVersion: 'TLSv1.2' | 'TLSv1.3' }
  readonly logger: Logger | false
  /** AWS caps a publish at 128 KB. */
  readonly bodyLimitBytes?: number
}

/** The device endpoint's Fastify instance, plus a way to swap the trusted CAs for new handshakes. */
export type DeviceDataPlane = FastifyInstance & { setTrustedCAs (ca: readonly string[]): void }

/**
 * The device HTTPS endpoint (AWS: the data endpoint on port 8443 with a client certificate): TLS 1.2+ with a
 * client certificate required and verified against our CAs, then {@link DEVICE_OPERATIONS} authorized per request
 * with the device's policies, from the same table as the IAM checks (iot:Publish, plus iot:RetainPublish when
 * retained; iot:Get/Update/DeleteThingShadow on `thing/{thing}[/{shadow}]`). No SigV4 here: the certificate is
 * the credential. Never listens: the caller does.
 */
export async function buildDeviceDataPlane (opts: DeviceDataPlaneOptions): Promise<DeviceDataPlane> {
  const secure = (ca: readonly string[]): { cert: string, key: string, ca: string[], minVersion: 'TLSv1.2' | 'TLSv1.3', ciphers: string, honorCipherOrder: boolean } =>
    ({ cert: opts.tls.cert, key: opts.tls.key, ca: [...ca], minVersion: opts.tls.minVersion, ciphers: TLS_CIPHERS, honorCipherOrder: true })
  const app = Fastify({
    loggerInstance: opts.logger === false ? undefined : opts.logger,
    logger: opts.logger === false ? false : undefined,
    bodyLimit: opts.bodyLimitBytes ?? 128 * 1024,
    genReqId: () => randomUUID(),
    routerOptions: { maxParamLength: 2048 },
    https: { ...secure(opts.tls.ca), requestCert: true, rejectUnauthorized: true },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  app.decorateRequest('rawBody', { getter () { return Buffer.alloc(0) } } as never)
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })
  app.addHook('onRequest', async (req, reply) => { reply.header('x-amzn-RequestId', req.id) })
  app.addHook('preHandler', async (req) => {
    Object.defineProperty(req, 'rawBody', { value: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), writable: true })
  })
  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(unknownOperation)

  registerOperations(app, opts.dataPlane, opts.arn, async (req, operation, permissions) => {
    const socket = req.raw.socket as TLSSocket
    const certificate = socket.getPeerX509Certificate()
    // rejectUnauthorized already refused unverified chains; the registry lookup below is the real check.
    if (certificate === undefined || !socket.authorized) throw new AppError('ERR_DATA_PLANE_FORBIDDEN', 'a client certificate is required')
    const d = await opts.authorizer.authorize({ certificate, sourceIp: req.ip, permissions })
    const actor = d.principalId ?? certificateActor(certificate.fingerprint256)
    if (!d.allowed) {
      await opts.dataPlane.recordAudit({
        action: `iot.${operation}`, actor, outcome: 'denied', target: permissions[0]?.resource, sourceIp: req.ip, requestId: req.id,
        errorCode: 'ERR_DATA_PLANE_FORBIDDEN', reason: d.reason ?? 'not-authorized', statement: d.statement,
        ...(d.thingName === undefined ? {} : { thing: d.thingName }), details: { via: 'https-device', actions: permissions.map(p => p.action).join(',') },
      })
      // The device learns only "forbidden" (DESIGN.md §5: explainable to the operator, not the attacker).
      throw new AppError('ERR_DATA_PLANE_FORBIDDEN', 'not authorized')
    }
    return { actor, sourceIp: req.ip, requestId: req.id }
  }, DEVICE_OPERATIONS)

  return Object.assign(app, {
    setTrustedCAs (ca: readonly string[]): void { (app.server as unknown as TlsServer).setSecureContext(secure(ca)) },
  })
}
