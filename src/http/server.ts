import Fastify from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { randomUUID } from 'node:crypto'
import type { AuditEventInput } from '../audit/index.ts'
import { AppError, InvalidRequestError, TLS_CIPHERS, isRecord } from '../core/index.ts'
import type { Clock } from '../core/index.ts'
import type { AccessKeyService, Caller, CertificateService, PolicyService, ProvisioningService, ThingService } from '../registry/index.ts'
import { HTTP_ERRORS } from './errors.ts'
import { verifySigV4 } from './sigv4.ts'
import { controlPlaneRoutes } from './routes/control-plane.ts'
import { pkiRoutes } from './routes/pki.ts'
import { thingwardRoutes } from './routes/thingward.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the SigV4 hook on authenticated routes. */
    caller: Caller
    /** Raw body bytes (what SigV4 hashes); JSON is parsed from them only after the signature checks out. */
    rawBody: Buffer
  }
}

export interface HttpDeps {
  readonly things: ThingService
  readonly policies: PolicyService
  readonly certificates: CertificateService
  readonly accessKeys: AccessKeyService
  readonly provisioning: ProvisioningService
  readonly clock: Clock
  readonly region: string
  readonly accountId: string
  /** `host:port` of the MQTT endpoint, for DescribeEndpoint. */
  readonly mqttEndpoint: string
  /** Records an event that is not part of a state change (denied requests). */
  readonly recordAudit: (e: AuditEventInput) => Promise<void>
  readonly logger: Logger | false
  readonly bodyLimitBytes?: number
  readonly https?: { readonly cert: string, readonly key: string, readonly minVersion: 'TLSv1.2' | 'TLSv1.3' }
}

/** Routes reachable without a signature: health and the public PKI endpoints (CRL, OCSP, CA chain). */
const PUBLIC_PREFIXES = ['/healthz', '/readyz', '/crl', '/ocsp', '/ca.pem']

/** SigV4 signing names accepted (see shared/reference/aws-iot.md §3: SDKs sign iotdata, docs say iotdevicegateway). */
const SIGNING_SERVICES = ['iot', 'iotdata', 'iotdevicegateway', 'iot-jobs-data', 'execute-api']

/** Parses a JSON request body; malformed JSON is a 400 InvalidRequestException. */
export function jsonBody (req: FastifyRequest): Record<string, unknown> {
  if (req.rawBody === undefined || req.rawBody.length === 0) return {}
  let v: unknown
  try { v = JSON.parse(req.rawBody.toString('utf8')) } catch { throw new InvalidRequestError('request body is not valid JSON') }
  if (!isRecord(v)) throw new InvalidRequestError('request body must be a JSON object')
  return v
}

function sendError (reply: FastifyReply, err: AppError): FastifyReply {
  const { status, type } = HTTP_ERRORS[err.code]
  const body: Record<string, unknown> = { message: err.message, code: err.code }
  if (err.code === 'ERR_REGISTRY_ALREADY_EXISTS') {
    body.resourceId = err.details.resourceId
    if (err.details.resourceArn !== '') body.resourceArn = err.details.resourceArn
  }
  if (err.code === 'ERR_POLICY_MALFORMED' && err.details.path !== undefined) body.path = err.details.path
  if (err.code === 'ERR_REGISTRY_INVALID_REQUEST' && err.details.field !== undefined) body.field = err.details.field
  return reply.code(status).header('x-amzn-ErrorType', type).send(body)
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

  // Every body arrives as bytes; JSON is parsed by the route after authentication.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  app.addHook('onRequest', async (req, reply) => { reply.header('x-amzn-RequestId', req.id) })

  app.addHook('preHandler', async (req) => {
    const body = req.body
    Object.defineProperty(req, 'rawBody', { value: Buffer.isBuffer(body) ? body : Buffer.alloc(0), writable: true })
    const url = req.raw.url ?? '/'
    const q = url.indexOf('?')
    const rawPath = q < 0 ? url : url.slice(0, q)
    if (PUBLIC_PREFIXES.some(p => rawPath === p || rawPath.startsWith(`${p}/`) || rawPath.startsWith(`${p}.`))) return
    const sourceIp = req.ip
    try {
      const result = await verifySigV4({ method: req.method, rawPath, rawQuery: q < 0 ? '' : url.slice(q + 1), headers: req.headers, body: req.rawBody }, {
        region: deps.region, services: SIGNING_SERVICES, nowMs: deps.clock.nowMs(),
        lookup: async (id) => {
          const r = await deps.accessKeys.resolve(id)
          return r === undefined ? undefined : { secretAccessKey: r.secretAccessKey }
        },
      })
      if (result.sessionToken !== undefined) throw new AppError('ERR_AUTH_UNKNOWN_KEY', 'the security token included in the request is invalid')
      const key = await deps.accessKeys.resolve(result.accessKeyId)
      Object.defineProperty(req, 'caller', { value: { actor: `user/${key?.userName ?? 'unknown'}`, sourceIp, requestId: req.id } satisfies Caller, writable: true })
      void deps.accessKeys.touch(result.accessKeyId).catch(() => {})
    } catch (err) {
      if (err instanceof AppError) {
        await deps.recordAudit({
          action: 'http.authenticate', actor: typeof err.details.accessKeyId === 'string' ? `accessKey/${err.details.accessKeyId}` : 'anonymous',
          outcome: 'denied', sourceIp, requestId: req.id, errorCode: err.code, details: { method: req.method, path: rawPath },
        })
      }
      throw err
    }
  })

  app.setErrorHandler((err: unknown, req, reply) => {
    if (err instanceof AppError) {
      if (HTTP_ERRORS[err.code].status >= 500) req.log.error({ err, code: err.code }, 'request failed')
      return sendError(reply, err)
    }
    if (err instanceof Error && 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      const type = err.statusCode === 413 ? 'RequestEntityTooLargeException' : err.statusCode === 415 ? 'UnsupportedDocumentEncodingException' : 'InvalidRequestException'
      return reply.code(err.statusCode === 413 ? 413 : 400).header('x-amzn-ErrorType', type).send({ message: err.message, code: 'ERR_REGISTRY_INVALID_REQUEST' })
    }
    req.log.error({ err }, 'unhandled error')
    return reply.code(500).header('x-amzn-ErrorType', 'InternalFailureException').send({ message: 'internal error', code: 'ERR_INTERNAL' })
  })

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).header('x-amzn-ErrorType', 'UnknownOperationException').send({ message: 'unknown operation', code: 'ERR_REGISTRY_NOT_FOUND' })
  })

  app.get('/healthz', async () => ({ status: 'ok' }))
  await app.register(pkiRoutes, { deps })
  await app.register(controlPlaneRoutes, { deps })
  await app.register(thingwardRoutes, { deps })
  return app
}
