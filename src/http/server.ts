import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { randomUUID } from 'node:crypto'
import type { CommandService } from '../command/index.ts'
import type { AuditEventInput, AuditService } from '../audit/index.ts'
import { AppError, InvalidRequestError, TLS_CIPHERS, isRecord } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import type { AuthorizationService, Caller, CertificateService, PolicyService, ProvisioningService, ThingService } from '../registry/index.ts'
import type { IamServices, Principal } from '../iam/index.ts'
import { authorizeRequest, routeAuthorization, trackRoutes } from './authorization.ts'
import { iamRoutes } from './routes/iam.ts'
import { stsRoutes } from './routes/sts.ts'
import { jsonErrorHandler, unknownOperation } from './errors.ts'
import { verifySigV4 } from './sigv4.ts'
import { controlPlaneRoutes } from './routes/control-plane.ts'
import { pkiRoutes } from './routes/pki.ts'
import { thingwardRoutes } from './routes/thingward.ts'
import { auditRoutes, registerRequestAudit } from './routes/audit.ts'
import { dataPlaneRoutes } from './routes/data-plane.ts'
import type { DataPlaneDeps } from './routes/data-plane.ts'
import { healthRoutes } from './routes/health.ts'
import type { PlatformMetrics, Readiness } from './routes/health.ts'
import { payloadSchemaRoutes } from './routes/schemas.ts'
import type { PayloadSchemaService } from '../shadow/index.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the SigV4 hook on authenticated routes. */
    caller: Caller
    /** Raw body bytes (what SigV4 hashes); JSON is parsed from them only after the signature checks out. */
    rawBody: Buffer
    /** The authenticated operator (set by the SigV4 hook); undefined on public routes. */
    principal: Principal | undefined
  }
}

export interface HttpDeps {
  readonly things: ThingService
  readonly policies: PolicyService
  readonly certificates: CertificateService
  /** Operator identities: credentials, authorization of every route (./authorization.ts), IAM and STS routes. */
  readonly iam: IamServices
  readonly provisioning: ProvisioningService
  /** TestAuthorization, policy lint and blast radius. */
  readonly authorization: AuthorizationService
  /** MFA-gated command topics. */
  readonly commands?: CommandService
  readonly clock: Clock
  readonly region: string
  readonly accountId: string
  /** `host:port` of the MQTT endpoint, for DescribeEndpoint. */
  readonly mqttEndpoint: string
  /** Records an event that is not part of a state change (denied requests). */
  readonly recordAudit: (e: AuditEventInput) => Promise<void>
  /** The audit log: request events for every control-plane request, and the /thingward/audit routes. */
  readonly audit?: AuditService
  /** The AWS IoT data plane (shadows, Publish, retained messages); absent: not served. */
  readonly dataPlane?: DataPlaneDeps
  /** /thingward/payload-schemas; absent: not served. */
  readonly payloadSchemas?: PayloadSchemaService
  /** /metrics (Prometheus); absent: not served. */
  readonly metrics?: PlatformMetrics
  /** /readyz; absent: ready whenever the server answers. */
  readonly ready?: () => Promise<Readiness>
  readonly logger: Logger | false
  readonly bodyLimitBytes?: number
  readonly https?: { readonly cert: string, readonly key: string, readonly minVersion: 'TLSv1.2' | 'TLSv1.3' }
}

/** Routes reachable without a signature: health, readiness and metrics (counts only), and the public PKI endpoints (CRL, OCSP, CA chain). */
export const PUBLIC_PREFIXES = ['/healthz', '/readyz', '/metrics', '/crl', '/ocsp', '/ca.pem']

/** SigV4 signing names accepted (see shared/reference/aws-iot.md §3: SDKs sign iotdata, docs say iotdevicegateway). */
const SIGNING_SERVICES = ['iot', 'iotdata', 'iotdevicegateway', 'iot-jobs-data', 'execute-api', 'sts']

/** Parses a JSON request body; malformed JSON is a 400 InvalidRequestException. */
export function jsonBody (req: FastifyRequest): Record<string, unknown> {
  if (req.rawBody === undefined || req.rawBody.length === 0) return {}
  let v: unknown
  try { v = JSON.parse(req.rawBody.toString('utf8')) } catch { throw new InvalidRequestError('request body is not valid JSON') }
  if (!isRecord(v)) throw new InvalidRequestError('request body must be a JSON object')
  return v
}

/** Builds the HTTPS API (never listens: the caller does). */
export async function buildHttp (deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger === false ? undefined : deps.logger,
    logger: deps.logger === false ? false : undefined,
    bodyLimit: deps.bodyLimitBytes ?? 1_048_576,
    genReqId: () => randomUUID(),
    // ARNs arrive as path parameters (ListAttachedPolicies): allow them whole.
    routerOptions: { maxParamLength: 2048 },
    ...(deps.https !== undefined
      ? { https: { cert: deps.https.cert, key: deps.https.key, minVersion: deps.https.minVersion, ciphers: TLS_CIPHERS, honorCipherOrder: true } }
      : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance

  app.decorateRequest('caller', { getter () { return { actor: 'anonymous' } } } as never)
  app.decorateRequest('rawBody', { getter () { return Buffer.alloc(0) } } as never)
  app.decorateRequest('principal', { getter () { return undefined } } as never)
  // Every route must have an IAM authorization entry (./authorization.ts); record them all as they are added.
  trackRoutes(app)

  // Every body arrives as bytes; JSON is parsed by the route after authentication.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-amzn-RequestId', req.id)
    // AWS SDKs correct their clock from the Date header (@aws-sdk/core getUpdatedSystemClockOffset), so it must be
    // the clock SigV4 is verified against.
    reply.header('date', new Date(deps.clock.nowMs()).toUTCString())
  })

  app.addHook('preHandler', async (req) => {
    const body = req.body
    Object.defineProperty(req, 'rawBody', { value: Buffer.isBuffer(body) ? body : Buffer.alloc(0), writable: true })
    const url = req.raw.url ?? '/'
    const q = url.indexOf('?')
    const rawPath = q < 0 ? url : url.slice(0, q)
    if (PUBLIC_PREFIXES.some(p => rawPath === p || rawPath.startsWith(`${p}/`) || rawPath.startsWith(`${p}.`))) return
    const route = req.routeOptions.url
    if (route !== undefined && routeAuthorization(req.method, route)?.kind === 'public') return
    const sourceIp = req.ip
    let accessKeyId: string | undefined
    let principal: Principal
    try {
      deps.iam.authenticator.checkAddress(sourceIp)
      const result = await verifySigV4({ method: req.method, rawPath, rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headers, body: req.rawBody }, {
        region: deps.region, services: SIGNING_SERVICES, nowMs: deps.clock.nowMs(),
        lookup: async (id) => {
          accessKeyId = id
          const secret = await deps.iam.authenticator.secret(id)
          return secret === undefined ? undefined : { secretAccessKey: secret }
        },
      })
      // STS is signed for `sts` and served only at POST /; no other route accepts an `sts` signature.
      if ((result.service === 'sts') !== (route === '/' && req.method === 'POST')) {
        throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the credential scope names another service', { service: result.service, accessKeyId: result.accessKeyId })
      }
      principal = await deps.iam.authenticator.principal(result.accessKeyId, result.sessionToken)
      Object.defineProperty(req, 'caller', { value: { actor: principal.actor, sourceIp, requestId: req.id } satisfies Caller, writable: true })
      Object.defineProperty(req, 'principal', { value: principal, writable: true })
      if (!principal.temporary) void deps.iam.accessKeys.touch(result.accessKeyId, result.service, deps.region).catch(() => {})
    } catch (err) {
      if (err instanceof AppError) {
        const keyId = typeof err.details.accessKeyId === 'string' ? err.details.accessKeyId : accessKeyId
        await deps.iam.authenticator.failed(err.code, keyId, sourceIp, req.id)
        await deps.recordAudit({
          action: 'http.authenticate', actor: keyId !== undefined ? `accessKey/${keyId}` : 'anonymous',
          outcome: 'denied', sourceIp, requestId: req.id, errorCode: err.code, details: { method: req.method, path: rawPath },
        })
      }
      throw err
    }
    // Authorization: the route's IAM action(s) and resource, through the one table; no entry, no access.
    await authorizeRequest(req, principal, { iam: deps.iam, arn: { region: deps.region, accountId: deps.accountId }, recordAudit: deps.recordAudit })
  })

  if (deps.audit !== undefined) registerRequestAudit(app, deps.audit, { region: deps.region, accountId: deps.accountId })

  app.setErrorHandler(jsonErrorHandler)
  app.setNotFoundHandler(unknownOperation)

  await app.register(healthRoutes, { metrics: deps.metrics, ready: deps.ready })
  await app.register(pkiRoutes, { deps })
  await app.register(controlPlaneRoutes, { deps })
  await app.register(thingwardRoutes, { deps })
  await app.register(auditRoutes, { deps })
  await app.register(iamRoutes, { deps })
  await app.register(stsRoutes, { deps })
  if (deps.dataPlane !== undefined) await app.register(dataPlaneRoutes, { dataPlane: deps.dataPlane, arn: { region: deps.region, accountId: deps.accountId } })
  if (deps.payloadSchemas !== undefined) await app.register(payloadSchemaRoutes, { payloadSchemas: deps.payloadSchemas })
  return app
}
