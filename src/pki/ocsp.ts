import { createHash } from 'node:crypto'
import { DerError, TAG, children, ctxCons, enumerated, expect, generalizedTime, octetString, raw, readRoot, readTlv, seq, tlvList, value } from './der.ts'
import type { Tlv } from './der.ts'
import { loadCa } from './ca.ts'
import type { LoadedCa } from './ca.ts'
import { serialHexOf } from './cert-der.ts'
import { OID, oidEquals, oidName } from './oids.ts'
import { KU, signed } from './template.ts'

export type OcspStatus =
  | { status: 'good' }
  | { status: 'revoked', revokedAtMs: number, reasonCode?: number }
  | { status: 'unknown' }

/** OCSPResponseStatus (RFC 6960 §4.2.1). */
export const OCSP_RESPONSE_STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const

/** At most this many CertIDs per request; more is refused as malformedRequest (bounds the signing work per request). */
export const MAX_OCSP_CERT_IDS = 100
/** RFC 8954 §2.1: a nonce longer than 128 octets MUST be rejected with malformedRequest. */
const MAX_NONCE_BYTES = 128

/**
 * Length of the nonce in an extnValue: RFC 8954 defines Nonce ::= OCTET STRING, so extnValue normally wraps a DER
 * OCTET STRING (OpenSSL, pkijs); some clients put the raw bytes there instead, in which case all of it counts.
 */
function nonceLength (der: Buffer, extnValue: Tlv): number {
  try {
    const inner = readTlv(der, extnValue.valueStart, extnValue.end)
    if (inner.tag === TAG.OCTET_STRING && inner.end === extnValue.end) return inner.end - inner.valueStart
  } catch {
    // not a wrapped OCTET STRING: raw nonce bytes
  }
  return extnValue.end - extnValue.valueStart
}

const HASHES = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' } as const
type HashName = keyof typeof HASHES

const REASONS = new Set([1, 2, 3, 4, 5, 6, 8, 9, 10])

const statusOnly = (status: number): Buffer => seq(enumerated(status))
const MALFORMED = statusOnly(OCSP_RESPONSE_STATUS.malformedRequest)
const INTERNAL_ERROR = statusOnly(OCSP_RESPONSE_STATUS.internalError)
const GOOD = Buffer.from([0x80, 0x00]) // good [0] IMPLICIT NULL
const UNKNOWN = Buffer.from([0x82, 0x00]) // unknown [2] IMPLICIT UnknownInfo (NULL)

interface CertIdRequest {
  /** The CertID exactly as received: the response must echo it byte for byte. */
  readonly certId: Buffer
  readonly hash: HashName | undefined
  readonly nameHash: Buffer
  readonly keyHash: Buffer
  readonly serialHex: string
}

/** Parses an OCSPRequest (RFC 6960 §4.1.1). Throws DerError on anything malformed. */
function parseRequest (der: Buffer): { requests: CertIdRequest[], nonce: Buffer | undefined } {
  const root = readRoot(der, TAG.SEQUENCE, 'OCSPRequest')
  const top = children(der, root)
  const tbsT = top[0]
  if (tbsT === undefined || tbsT.tag !== TAG.SEQUENCE || top.length > 2 || (top[1] !== undefined && top[1].tag !== 0xa0)) throw new DerError('malformed OCSPRequest')
  const fields = children(der, tbsT)
  let i = 0
  if (fields[i]?.tag === 0xa0) {
    const v = expect(der, fields[i].valueStart, TAG.INTEGER, fields[i].end, 'version')
    if (v.end - v.valueStart !== 1 || der[v.valueStart] !== 0) throw new DerError('unsupported OCSPRequest version')
    i++
  }
  if (fields[i]?.tag === 0xa1) i++ // requestorName
  const listT = fields[i++]
  if (listT === undefined || listT.tag !== TAG.SEQUENCE) throw new DerError('missing requestList')
  let nonce: Buffer | undefined
  const extsWrapper = fields[i]
  if (extsWrapper !== undefined) {
    if (extsWrapper.tag !== 0xa2 || i + 1 !== fields.length) throw new DerError('unexpected element in TBSRequest')
    const extsT = expect(der, extsWrapper.valueStart, TAG.SEQUENCE, extsWrapper.end, 'requestExtensions')
    for (const ext of children(der, extsT)) {
      const parts = children(der, ext)
      const oidT = parts[0]
      if (ext.tag !== TAG.SEQUENCE || oidT === undefined || oidT.tag !== TAG.OID) throw new DerError('malformed request extension')
      const valT = parts[parts.length - 1]
      if (parts.length < 2 || valT.tag !== TAG.OCTET_STRING) throw new DerError('malformed request extension value')
      if (oidEquals(der, oidT, OID.ocspNonce)) {
        const n = nonceLength(der, valT)
        if (n === 0 || n > MAX_NONCE_BYTES) throw new DerError('nonce length out of range (RFC 8954)')
        nonce = raw(der, ext)
      }
    }
  }
  const requests: CertIdRequest[] = []
  const list = children(der, listT)
  if (list.length === 0 || list.length > MAX_OCSP_CERT_IDS) throw new DerError('requestList must hold 1..100 requests')
  for (const reqT of list) {
    if (reqT.tag !== TAG.SEQUENCE) throw new DerError('Request is not a SEQUENCE')
    const certIdT = expect(der, reqT.valueStart, TAG.SEQUENCE, reqT.end, 'CertID')
    if (certIdT.end !== reqT.end) expect(der, certIdT.end, 0xa0, reqT.end, 'singleRequestExtensions')
    requests.push(parseCertId(der, certIdT))
  }
  return { requests, nonce }
}

function parseCertId (der: Buffer, t: Tlv): CertIdRequest {
  const [algT, nameT, keyT, serialT, extra] = children(der, t)
  if (algT?.tag !== TAG.SEQUENCE || nameT?.tag !== TAG.OCTET_STRING || keyT?.tag !== TAG.OCTET_STRING || serialT?.tag !== TAG.INTEGER || extra !== undefined) {
    throw new DerError('malformed CertID')
  }
  const oidT = expect(der, algT.valueStart, TAG.OID, algT.end, 'CertID hashAlgorithm')
  if (oidT.end !== algT.end) {
    const p = expect(der, oidT.end, TAG.NULL, algT.end, 'hashAlgorithm parameters')
    if (p.end !== algT.end || p.valueStart !== p.end) throw new DerError('unexpected hashAlgorithm parameters')
  }
  const name = oidName(der, oidT)
  const serial = value(der, serialT)
  if (serial.length === 0) throw new DerError('empty serialNumber')
  return {
    certId: raw(der, t),
    hash: name !== undefined && name in HASHES ? name as HashName : undefined,
    nameHash: value(der, nameT),
    keyHash: value(der, keyT),
    serialHex: serialHexOf(serial),
  }
}

/**
 * RFC 6960 OCSP responder for one issuing CA, signing with the CA key itself (§4.2.2.2 "the CA who issued the
 * certificate"), responderID byKey. Answers every CertID in a request: CertIDs hashed with SHA-1, SHA-256, SHA-384 or
 * SHA-512 whose issuerNameHash and issuerKeyHash match our CA get `lookup(serialHex)`, all others `unknown`. Echoes
 * the nonce (RFC 8954). thisUpdate = producedAt = now, nextUpdate = now + validityMs (default 1 hour), whole seconds.
 * The issuer certificate is included in `certs` so clients that were not given the issuer can still verify.
 *
 * `respond` never throws: a malformed request → malformedRequest(1); a failing lookup or signer → internalError(2).
 */
export class OcspResponder {
  readonly #ca: LoadedCa
  readonly #lookup: (serialHex: string) => OcspStatus
  readonly #validityMs: number
  readonly #issuerHashes: ReadonlyMap<HashName, { name: Buffer, key: Buffer }>
  readonly #responderId: Buffer
  readonly #certs: Buffer

  constructor (opts: { issuerCertPem: string, issuerPrivateKeyPkcs8Der: Buffer, lookup: (serialHex: string) => OcspStatus, validityMs?: number }) {
    this.#ca = loadCa(opts.issuerCertPem, opts.issuerPrivateKeyPkcs8Der, KU.keyCertSign)
    this.#lookup = opts.lookup
    this.#validityMs = opts.validityMs ?? 3_600_000
    if (!Number.isFinite(this.#validityMs) || this.#validityMs < 1000) throw new RangeError('validityMs must be at least 1000')
    const { subjectName, spkiInfo, der } = this.#ca.cert
    const hashes = new Map<HashName, { name: Buffer, key: Buffer }>()
    for (const h of Object.keys(HASHES) as HashName[]) {
      hashes.set(h, { name: createHash(h).update(subjectName).digest(), key: createHash(h).update(spkiInfo.keyBits).digest() })
    }
    this.#issuerHashes = hashes
    this.#responderId = ctxCons(2, octetString(createHash('sha1').update(spkiInfo.keyBits).digest())) // byKey (§4.2.2.3)
    this.#certs = ctxCons(0, seq(der))
  }

  respond (requestDer: Buffer, nowMs: number): Buffer {
    let parsed: ReturnType<typeof parseRequest>
    try {
      if (!(requestDer instanceof Uint8Array)) return Buffer.from(MALFORMED)
      parsed = parseRequest(Buffer.isBuffer(requestDer) ? requestDer : Buffer.from(requestDer))
    } catch {
      return Buffer.from(MALFORMED)
    }
    try {
      if (!Number.isFinite(nowMs)) return Buffer.from(INTERNAL_ERROR)
      const now = generalizedTime(nowMs)
      const next = ctxCons(0, generalizedTime(nowMs + this.#validityMs))
      const singles = parsed.requests.map((r) => seq(r.certId, this.#status(r), now, next))
      const tbs = seq(
        this.#responderId,
        now, // producedAt
        tlvList(TAG.SEQUENCE, singles),
        ...(parsed.nonce === undefined ? [] : [ctxCons(1, seq(parsed.nonce))]),
      )
      const basic = signed(tbs, this.#ca.signer, this.#certs)
      return seq(enumerated(OCSP_RESPONSE_STATUS.successful), ctxCons(0, seq(OID.ocspBasic, octetString(basic))))
    } catch {
      return Buffer.from(INTERNAL_ERROR)
    }
  }

  #status (r: CertIdRequest): Buffer {
    if (r.hash === undefined) return UNKNOWN
    const ours = this.#issuerHashes.get(r.hash)
    if (ours === undefined || !ours.name.equals(r.nameHash) || !ours.key.equals(r.keyHash)) return UNKNOWN
    const s = this.#lookup(r.serialHex)
    switch (s.status) {
      case 'good': return GOOD
      case 'revoked': {
        // revoked [1] IMPLICIT RevokedInfo { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
        const reason = s.reasonCode !== undefined && REASONS.has(s.reasonCode) ? [ctxCons(0, enumerated(s.reasonCode))] : []
        return ctxCons(1, generalizedTime(s.revokedAtMs), ...reason)
      }
      case 'unknown': return UNKNOWN
      default: throw new Error('lookup returned an invalid status')
    }
  }
}
