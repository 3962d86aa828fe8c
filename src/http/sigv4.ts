import { createHmac, timingSafeEqual } from 'node:crypto'
import { AppError } from '../core/index.ts'
import { canonicalPath, canonicalQuery, headerValue, parseAmzDate, sha256Hex, signingKey } from '../core/sigv4.ts'

/**
 * AWS Signature Version 4 verification (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html),
 * byte-compatible with botocore and @smithy/signature-v4: the canonical URI is the *raw* request path
 * normalized and URI-encoded again (so `%2F` is signed as `%252F`), the canonical query is re-encoded from the
 * decoded pairs and sorted, header values are trimmed with inner runs of spaces folded.
 */

export interface SignedRequest {
  readonly method: string
  /** Path exactly as received on the wire (still percent-encoded), without the query. */
  readonly rawPath: string
  /** Query string as received (after `?`), or ''. */
  readonly rawQuery: string
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: Buffer
}

export interface SigV4Credentials { readonly secretAccessKey: string }

export interface SigV4Options {
  readonly region: string
  /** Signing names accepted, e.g. iot, iotdata, iotdevicegateway. */
  readonly services: readonly string[]
  readonly nowMs: number
  /** AWS rejects requests whose time is more than 5 minutes off. */
  readonly maxSkewMs?: number
  readonly lookup: (accessKeyId: string) => Promise<SigV4Credentials | undefined>
}

export interface SigV4Result { readonly accessKeyId: string, readonly service: string, readonly sessionToken: string | undefined }

const AUTH_RE = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/

/**
 * Verifies a request's SigV4 signature. Throws AppError: ERR_AUTH_MISSING (no or malformed Authorization),
 * ERR_AUTH_REQUEST_EXPIRED (clock skew over 5 minutes), ERR_AUTH_UNKNOWN_KEY, ERR_AUTH_SIGNATURE_MISMATCH.
 * Messages never contain the expected signature or any secret.
 */
export async function verifySigV4 (req: SignedRequest, opts: SigV4Options): Promise<SigV4Result> {
  const auth = headerValue(req.headers.authorization)
  if (auth === undefined) throw new AppError('ERR_AUTH_MISSING', 'missing authentication token: requests must be signed with AWS Signature Version 4')
  const m = AUTH_RE.exec(auth.trim())
  if (m === null) throw new AppError('ERR_AUTH_MISSING', 'the Authorization header is not a valid AWS4-HMAC-SHA256 authorization')
  const [, credential, signedHeadersStr, signature] = m
  const scopeParts = credential.split('/')
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') throw new AppError('ERR_AUTH_MISSING', 'the credential scope is malformed')
  const [accessKeyId, scopeDate, scopeRegion, scopeService] = scopeParts

  const amzDate = headerValue(req.headers['x-amz-date'])
  const requestMs = amzDate === undefined ? undefined : parseAmzDate(amzDate)
  if (amzDate === undefined || requestMs === undefined) throw new AppError('ERR_AUTH_MISSING', 'the X-Amz-Date header is missing or malformed')
  if (Math.abs(opts.nowMs - requestMs) > (opts.maxSkewMs ?? 300_000)) {
    throw new AppError('ERR_AUTH_REQUEST_EXPIRED', 'signature expired: the request time is more than 5 minutes from the server time')
  }
  if (scopeDate !== amzDate.slice(0, 8)) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the credential scope date does not match X-Amz-Date')
  if (scopeRegion !== opts.region) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the credential scope names another region', { region: scopeRegion })
  if (!opts.services.includes(scopeService)) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the credential scope names another service', { service: scopeService })

  const signedHeaders = signedHeadersStr.split(';')
  if (!signedHeaders.includes('host')) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the host header must be signed')
  if (signedHeaders.join(';') !== [...signedHeaders].sort().join(';')) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'SignedHeaders must be sorted')

  const creds = await opts.lookup(accessKeyId)
  if (creds === undefined) throw new AppError('ERR_AUTH_UNKNOWN_KEY', 'the security token included in the request is invalid: unknown access key', { accessKeyId })

  const bodyHash = sha256Hex(req.body)
  const declared = headerValue(req.headers['x-amz-content-sha256'])
  if (declared !== undefined && declared !== 'UNSIGNED-PAYLOAD' && declared !== bodyHash) {
    throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the body does not match x-amz-content-sha256')
  }
  const payloadHash = declared === 'UNSIGNED-PAYLOAD' ? declared : bodyHash

  let canonicalHeaders = ''
  for (const name of signedHeaders) {
    const v = headerValue(req.headers[name])
    if (v === undefined) throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'a signed header is missing from the request', { header: name })
    canonicalHeaders += `${name}:${v.trim().replace(/\s+/g, ' ')}\n`
  }
  const canonicalRequest = `${req.method}\n${canonicalPath(req.rawPath)}\n${canonicalQuery(req.rawQuery)}\n${canonicalHeaders}\n${signedHeadersStr}\n${payloadHash}`
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequest)}`
  const expected = createHmac('sha256', signingKey(creds.secretAccessKey, scopeDate, scopeRegion, scopeService)).update(stringToSign).digest()
  const given = Buffer.from(signature, 'hex')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AppError('ERR_AUTH_SIGNATURE_MISMATCH', 'the request signature we calculated does not match the signature you provided', { accessKeyId })
  }
  return { accessKeyId, service: scopeService, sessionToken: headerValue(req.headers['x-amz-security-token']) }
}
