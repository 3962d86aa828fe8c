import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { AppError } from '../../core/index.ts'
import type { ErrorCode } from '../../core/index.ts'
import type { TemporaryCredentials } from '../../iam/index.ts'
import { requirePrincipal } from '../authorization.ts'
import { HTTP_ERRORS } from '../errors.ts'
import type { HttpDeps } from '../server.ts'

/**
 * AWS STS over the query protocol (STS API reference; @aws-sdk/client-sts `AwsQueryProtocol`): `POST /` with an
 * `application/x-www-form-urlencoded` body `Action=<Op>&Version=2011-06-15&…`, signed with SigV4 for service
 * `sts`, answered in XML (namespace `https://sts.amazonaws.com/doc/2011-06-15/`). Point the SDK at the platform
 * with `endpoint`. Operations: GetCallerIdentity, GetSessionToken, AssumeRole.
 */
export const STS_VERSION = '2011-06-15'
const NS = `https://sts.amazonaws.com/doc/${STS_VERSION}/`

const escapeXml = (s: string): string => s.replace(/[<>&'"]/g, c => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c] ?? c))
const el = (name: string, value: string): string => `<${name}>${escapeXml(value)}</${name}>`
/** STS timestamps are ISO 8601 (`Expiration`). */
const iso = (ms: number): string => new Date(ms).toISOString()

function respond (reply: FastifyReply, op: string, result: string, requestId: string): FastifyReply {
  return reply.type('text/xml').send(`<${op}Response xmlns="${NS}"><${op}Result>${result}</${op}Result><ResponseMetadata>${el('RequestId', requestId)}</ResponseMetadata></${op}Response>`)
}

const credentialsXml = (c: TemporaryCredentials): string =>
  `<Credentials>${el('AccessKeyId', c.accessKeyId)}${el('SecretAccessKey', c.secretAccessKey)}${el('SessionToken', c.sessionToken)}${el('Expiration', iso(c.expirationMs))}</Credentials>`

/**
 * Error codes as STS names them (the SDK maps `Error.Code` to its exception classes: ExpiredTokenException,
 * MalformedPolicyDocumentException …; unmodeled codes such as AccessDenied become the error name).
 */
const STS_ERRORS: Partial<Record<ErrorCode, { status: number, code: string }>> = {
  ERR_AUTH_ACCESS_DENIED: { status: 403, code: 'AccessDenied' },
  ERR_AUTH_TOKEN_EXPIRED: { status: 400, code: 'ExpiredTokenException' },
  ERR_AUTH_INVALID_TOKEN: { status: 403, code: 'InvalidClientTokenId' },
  ERR_AUTH_UNKNOWN_KEY: { status: 403, code: 'InvalidClientTokenId' },
  ERR_AUTH_KEY_INACTIVE: { status: 403, code: 'InvalidClientTokenId' },
  ERR_AUTH_SIGNATURE_MISMATCH: { status: 403, code: 'SignatureDoesNotMatch' },
  ERR_AUTH_MISSING: { status: 403, code: 'MissingAuthenticationToken' },
  ERR_AUTH_REQUEST_EXPIRED: { status: 400, code: 'RequestExpired' },
  ERR_AUTH_LOCKED_OUT: { status: 400, code: 'Throttling' },
  ERR_IAM_INVALID_INPUT: { status: 400, code: 'ValidationError' },
  ERR_REGISTRY_INVALID_REQUEST: { status: 400, code: 'ValidationError' },
  ERR_POLICY_MALFORMED: { status: 400, code: 'MalformedPolicyDocument' },
}

/** An STS error response (AWS query protocol `ErrorResponse`). */
export function sendStsError (reply: FastifyReply, err: unknown, requestId: string): FastifyReply {
  const app = err instanceof AppError ? err : undefined
  const mapped = app === undefined ? undefined : STS_ERRORS[app.code]
  const status = mapped?.status ?? (app === undefined ? 500 : HTTP_ERRORS[app.code].status)
  const code = mapped?.code ?? (status >= 500 ? 'InternalFailure' : 'InvalidParameterValue')
  const message = app?.message ?? 'internal error'
  return reply.code(status).type('text/xml').send(
    `<ErrorResponse xmlns="${NS}"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type>${el('Code', code)}${el('Message', message)}</Error>${el('RequestId', requestId)}</ErrorResponse>`,
  )
}

/** Parameters of the query protocol body; list members (`Tags.member.1.Key`…) stay flat. */
function form (req: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(req.rawBody.toString('utf8'))) {
    if (out.has(k)) throw new AppError('ERR_IAM_INVALID_INPUT', 'a parameter is given more than once', { field: k })
    out.set(k, v)
  }
  return out
}

/** The STS endpoint (POST /). */
export const stsRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  const { sts } = deps.iam
  // Failures of this route (the SigV4 hook's included) are answered in the query protocol's XML.
  app.setErrorHandler((err: unknown, req, reply) => {
    if (!(err instanceof AppError)) req.log.error({ err }, 'unhandled STS error')
    return sendStsError(reply, err, req.id)
  })

  app.post('/', async (req, reply) => {
    const p = form(req)
    if (p.get('Version') !== STS_VERSION) throw new AppError('ERR_IAM_INVALID_INPUT', 'Version must be 2011-06-15', { field: 'Version' })
    const caller = requirePrincipal(req)
    const meta = { sourceIp: req.ip, requestId: req.id }
    switch (p.get('Action')) {
      case 'GetCallerIdentity':
        return respond(reply, 'GetCallerIdentity', `${el('Arn', caller.arn)}${el('UserId', caller.userId)}${el('Account', deps.accountId)}`, req.id)
      case 'GetSessionToken': {
        const creds = await sts.getSessionToken(caller, { durationSeconds: p.get('DurationSeconds'), serialNumber: p.get('SerialNumber'), tokenCode: p.get('TokenCode') }, meta)
        return respond(reply, 'GetSessionToken', credentialsXml(creds), req.id)
      }
      case 'AssumeRole': {
        const unsupported = [...p.keys()].filter(k => /^(Policy|PolicyArns|Tags|TransitiveTagKeys|ProvidedContexts)(\.|$)/.test(k))
        const r = await sts.assumeRole(caller, {
          roleArn: p.get('RoleArn'), roleSessionName: p.get('RoleSessionName'), durationSeconds: p.get('DurationSeconds'), serialNumber: p.get('SerialNumber'),
          tokenCode: p.get('TokenCode'), externalId: p.get('ExternalId'), unsupported,
        }, { ...meta, secureTransport: req.protocol === 'https' })
        return respond(reply, 'AssumeRole', `${credentialsXml(r.credentials)}<AssumedRoleUser>${el('AssumedRoleId', r.assumedRoleId)}${el('Arn', r.assumedRoleArn)}</AssumedRoleUser>`, req.id)
      }
      default:
        throw new AppError('ERR_IAM_INVALID_INPUT', 'the action is not supported by this STS endpoint', { field: 'Action' })
    }
  })
}
