import { generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { AppError } from '../core/index.ts'
import { DerError, TAG, ctxPrim, readTlv, seq, tlvList } from './der.ts'
import { loadCa } from './ca.ts'
import type { LoadedCa } from './ca.ts'
import { parseAndVerifyCsr } from './csr.ts'
import { assertKeyAllowed, inspectSpki, signerFor, spkiOf } from './keys.ts'
import type { SpkiInfo } from './keys.ts'
import { buildName, escapeValue, formatName, replaceCommonName } from './names.ts'
import { OID } from './oids.ts'
import { toPem } from './pem.ts'
import {
  EXT_BC_END_ENTITY, KU, buildCertificate, certificateIdOf, extAiaOcsp, extAki, extBcCa, extCrlDp, extExtKeyUsage,
  extKeyUsage, extSki, extension, keyIdentifier, randomSerial,
} from './template.ts'
import { MAX_COMMON_NAME_LENGTH, assertCommonName, assertDnsName, assertTimeMs, assertUrl, parseIpAddress, validityMs } from './validate.ts'

export type CaAlgorithm = 'EC-P256' | 'EC-P384' | 'RSA-3072'

export interface CaMaterial {
  certPem: string
  certDer: Buffer
  privateKeyPkcs8Der: Buffer
  /** Lowercase hex SHA-256 of the DER. */
  certificateId: string
}

export interface IssuedCertificate {
  /** Lowercase hex SHA-256 of the DER, as AWS IoT. */
  certificateId: string
  certDer: Buffer
  certPem: string
  /** See `serialHexOf`: 32 lowercase hex digits for certificates we issue. */
  serialHex: string
  notBeforeMs: number
  notAfterMs: number
  /** RFC 4514 form, most specific RDN first, e.g. `CN=dev-1,O=Acme`. */
  subject: string
}

export interface IssueOptions {
  nowMs: number
  /** Default 365. Fractional days are allowed. notAfter is clamped to the CA's notAfter. */
  validityDays?: number
  /** Replaces every CN of the CSR subject (other RDNs are kept); when absent the CSR subject is copied verbatim. */
  commonName?: string
}

const DEFAULT_VALIDITY_DAYS = 365
const DAY_MS = 86_400_000

/** Seconds precision: DER times carry whole seconds, so the reported times must too. */
const floorToSecond = (ms: number): number => Math.floor(ms / 1000) * 1000

/**
 * Issues end-entity certificates from a CA certificate and key, with a DER template and `crypto.sign` (no generic
 * ASN.1 library on this path). Device certificates: v3, random 126-bit serial, issuer = CA subject byte for byte,
 * SPKI copied verbatim, basicConstraints cA:false (critical), keyUsage digitalSignature (+ keyEncipherment for RSA,
 * critical), extKeyUsage clientAuth, SKI (SHA-1 of the key bits), AKI = CA key id, and CRL DP / AIA OCSP when URLs are
 * configured. The signature algorithm follows the CA key: ecdsa-with-SHA256 (P-256), SHA384 (P-384), SHA512 (P-521),
 * sha256WithRSAEncryption (RSA), Ed25519.
 */
export class CertificateIssuer {
  readonly #ca: LoadedCa
  /** Extensions after SKI that every certificate carries: AKI, CDP, AIA. */
  readonly #tailExtensions: readonly Buffer[]
  readonly #kuSign = extKeyUsage([KU.digitalSignature])
  readonly #kuSignEncipher = extKeyUsage([KU.digitalSignature, KU.keyEncipherment])
  readonly #ekuClient = extExtKeyUsage(OID.clientAuth)
  readonly #ekuServer = extExtKeyUsage(OID.serverAuth)
  #issuedCount = 0

  constructor (opts: { caCertPem: string, caPrivateKeyPkcs8Der: Buffer, crlUrl?: string, ocspUrl?: string }) {
    this.#ca = loadCa(opts.caCertPem, opts.caPrivateKeyPkcs8Der, KU.keyCertSign)
    const tail = [extAki(this.#ca.keyId)]
    if (opts.crlUrl !== undefined) { assertUrl(opts.crlUrl, 'crlUrl'); tail.push(extCrlDp(opts.crlUrl)) }
    if (opts.ocspUrl !== undefined) { assertUrl(opts.ocspUrl, 'ocspUrl'); tail.push(extAiaOcsp(opts.ocspUrl)) }
    this.#tailExtensions = tail
  }

  /** How many certificates this issuer has signed (observability; lets tests prove a refusal signed nothing). */
  get issuedCount (): number { return this.#issuedCount }

  /** The CA certificate's notAfter: issued certificates never outlive it. */
  get caNotAfterMs (): number { return this.#ca.cert.notAfterMs }

  /**
   * CSR in PEM or DER. Verifies the CSR self-signature; allows only EC P-256/P-384/P-521, Ed25519 and RSA 2048..16384.
   * Throws ERR_PKI_CSR_INVALID (malformed, unsupported or SHA-1 signature algorithm, bad signature, empty subject
   * without commonName), ERR_PKI_KEY_WEAK (message names the reason), ERR_PKI_INVALID_ARGUMENT (bad options) or
   * ERR_PKI_CA_INVALID (CA expired at nowMs).
   */
  issueFromCsr (csr: string | Buffer, opts: IssueOptions): IssuedCertificate {
    assertTimeMs(opts.nowMs, 'nowMs')
    const lifetimeMs = validityMs(opts.validityDays, DEFAULT_VALIDITY_DAYS)
    if (opts.commonName !== undefined) assertCommonName(opts.commonName)
    const req = parseAndVerifyCsr(csr)
    let subjectName: Buffer
    let subject: string
    try {
      subjectName = opts.commonName === undefined ? req.subjectName : replaceCommonName(req.der, req.subjectNameTlv, opts.commonName)
      subject = formatName(subjectName)
    } catch (err) {
      if (err instanceof DerError) throw new AppError('ERR_PKI_CSR_INVALID', `CSR subject is malformed: ${err.message}`, {}, { cause: err })
      throw err
    }
    if (subject === '') throw new AppError('ERR_PKI_CSR_INVALID', 'CSR subject is empty and no commonName was given')
    return this.#issue(subjectName, subject, req.spki, req.spkiInfo, opts.nowMs, lifetimeMs, this.#ekuClient, [])
  }

  /** Certificate for a key we generated (or any public key); subject is CN=commonName only. */
  issueForPublicKey (publicKey: KeyObject, opts: IssueOptions & { commonName: string }): IssuedCertificate {
    assertTimeMs(opts.nowMs, 'nowMs')
    const lifetimeMs = validityMs(opts.validityDays, DEFAULT_VALIDITY_DAYS)
    assertCommonName(opts.commonName)
    const { spki, info } = checkedSpki(publicKey)
    const subjectName = buildName([{ typeDer: OID.commonName, value: opts.commonName }])
    return this.#issue(subjectName, 'CN=' + escapeValue(opts.commonName), spki, info, opts.nowMs, lifetimeMs, this.#ekuClient, [])
  }

  /**
   * TLS server certificate for our HTTPS API and MQTT listener: extKeyUsage serverAuth, subjectAltName with every DNS
   * name and IP address. Subject is CN=<first name> when it fits in 64 characters, else empty with a critical SAN
   * (RFC 5280 §4.2.1.6).
   */
  issueServerCertificate (publicKey: KeyObject, opts: { nowMs: number, validityDays?: number, dnsNames: string[], ipAddresses: string[] }): IssuedCertificate {
    assertTimeMs(opts.nowMs, 'nowMs')
    const lifetimeMs = validityMs(opts.validityDays, DEFAULT_VALIDITY_DAYS)
    const dnsNames = opts.dnsNames ?? []
    const ipAddresses = opts.ipAddresses ?? []
    if (!Array.isArray(dnsNames) || !Array.isArray(ipAddresses) || dnsNames.length + ipAddresses.length === 0) {
      throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'a server certificate needs at least one DNS name or IP address')
    }
    const generalNames: Buffer[] = []
    for (const n of dnsNames) { assertDnsName(n); generalNames.push(ctxPrim(2, Buffer.from(n.toLowerCase(), 'latin1'))) }
    for (const ip of ipAddresses) generalNames.push(ctxPrim(7, parseIpAddress(ip)))
    const { spki, info } = checkedSpki(publicKey)
    const first = dnsNames[0] ?? ipAddresses[0]
    const withCn = first.length <= MAX_COMMON_NAME_LENGTH
    const subjectName = withCn ? buildName([{ typeDer: OID.commonName, value: first }]) : seq()
    const san = extension(OID.subjectAltName, !withCn, tlvList(TAG.SEQUENCE, generalNames))
    return this.#issue(subjectName, withCn ? 'CN=' + escapeValue(first) : '', spki, info, opts.nowMs, lifetimeMs, this.#ekuServer, [san])
  }

  #issue (subjectName: Buffer, subject: string, spki: Buffer, info: SpkiInfo, nowMs: number, lifetimeMs: number, eku: Buffer, extra: readonly Buffer[]): IssuedCertificate {
    const notBeforeMs = floorToSecond(nowMs)
    const caNotAfter = this.#ca.cert.notAfterMs
    if (notBeforeMs >= caNotAfter) throw new AppError('ERR_PKI_CA_INVALID', 'issuing CA certificate has expired')
    if (notBeforeMs < this.#ca.cert.notBeforeMs) throw new AppError('ERR_PKI_CA_INVALID', 'issuing CA certificate is not yet valid')
    const notAfterMs = Math.min(notBeforeMs + lifetimeMs, caNotAfter)
    const serial = randomSerial()
    const certDer = buildCertificate({
      signer: this.#ca.signer,
      serialDer: serial.der,
      issuerName: this.#ca.cert.subjectName,
      notBeforeMs,
      notAfterMs,
      subjectName,
      spki,
      extensions: [
        EXT_BC_END_ENTITY,
        info.family === 'rsa' ? this.#kuSignEncipher : this.#kuSign,
        eku,
        ...extra,
        extSki(keyIdentifier(info.keyBits)),
        ...this.#tailExtensions,
      ],
    })
    this.#issuedCount++
    return {
      certificateId: certificateIdOf(certDer),
      certDer,
      certPem: toPem('CERTIFICATE', certDer),
      serialHex: serial.hex,
      notBeforeMs,
      notAfterMs,
      subject,
    }
  }
}

function checkedSpki (publicKey: KeyObject): { spki: Buffer, info: SpkiInfo } {
  let spki: Buffer
  try {
    spki = spkiOf(publicKey)
  } catch (err) {
    if (err instanceof AppError) throw err
    throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'publicKey is not an exportable asymmetric key', {}, { cause: err })
  }
  const info = inspectSpki(spki, readTlv(spki, 0))
  assertKeyAllowed(info)
  return { spki, info }
}

// ---- CA hierarchy -----------------------------------------------------------------------------------------------

const CA_KEY_PARAMS = {
  'EC-P256': { type: 'ec', namedCurve: 'P-256' },
  'EC-P384': { type: 'ec', namedCurve: 'P-384' },
  'RSA-3072': { type: 'rsa', modulusLength: 3072 },
} as const

function generateCaKey (algorithm: CaAlgorithm): KeyObject {
  const p = CA_KEY_PARAMS[algorithm]
  if (p === undefined) throw new AppError('ERR_PKI_INVALID_ARGUMENT', 'unknown CA algorithm', { algorithm: String(algorithm) })
  return p.type === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: p.namedCurve }).privateKey
    : generateKeyPairSync('rsa', { modulusLength: p.modulusLength, publicExponent: 0x10001 }).privateKey
}

function caName (organization: string, commonName: string): Buffer {
  return buildName([{ typeDer: OID.organizationName, value: organization }, { typeDer: OID.commonName, value: commonName }])
}

function material (der: Buffer, key: KeyObject): CaMaterial {
  return { certPem: toPem('CERTIFICATE', der), certDer: der, privateKeyPkcs8Der: key.export({ type: 'pkcs8', format: 'der' }), certificateId: certificateIdOf(der) }
}

/** Short id from a key: the first 4 octets of its SKI, uppercase hex, so successive hierarchies get distinct names. */
const shortKeyId = (keyBits: Buffer): string => keyIdentifier(keyBits).subarray(0, 4).toString('hex').toUpperCase()

const CA_KEY_USAGE = [KU.digitalSignature, KU.keyCertSign, KU.cRLSign]

/**
 * Creates a self-signed root (cA:true, keyCertSign+cRLSign+digitalSignature, critical) and an issuing CA under it
 * (cA:true pathLen 0). Names: `O=<organization>, CN=Thingward Root CA <keyid>` / `… Issuing CA <keyid>` where keyid
 * is the first 4 octets of the CA's SKI, so rotated hierarchies never share a name. Defaults: organization
 * 'Thingward', root 7300 days, issuing 3650 days (clamped to the root's notAfter). RSA-3072 key generation takes
 * about a second.
 */
export function createCaHierarchy (opts: { algorithm: CaAlgorithm, organization?: string, nowMs: number, rootValidityDays?: number, issuingValidityDays?: number }): { root: CaMaterial, issuing: CaMaterial } {
  assertTimeMs(opts.nowMs, 'nowMs')
  const organization = opts.organization ?? 'Thingward'
  assertCommonName(organization)
  const rootLifetime = validityMs(opts.rootValidityDays, 7300)
  const issuingLifetime = validityMs(opts.issuingValidityDays, 3650)
  const rootKey = generateCaKey(opts.algorithm)
  const rootSigner = signerFor(rootKey)
  const rootSpki = spkiOf(rootKey)
  const rootKeyBits = inspectSpki(rootSpki, readTlv(rootSpki, 0)).keyBits
  const rootKeyId = keyIdentifier(rootKeyBits)
  const rootName = caName(organization, `Thingward Root CA ${shortKeyId(rootKeyBits)}`)
  const notBeforeMs = floorToSecond(opts.nowMs)
  const rootNotAfter = notBeforeMs + rootLifetime
  const rootDer = buildCertificate({
    signer: rootSigner,
    serialDer: randomSerial().der,
    issuerName: rootName,
    notBeforeMs,
    notAfterMs: rootNotAfter,
    subjectName: rootName,
    spki: rootSpki,
    extensions: [extBcCa(), extKeyUsage(CA_KEY_USAGE), extSki(rootKeyId), extAki(rootKeyId)],
  })
  const issuing = createIssuingCa({
    rootCertPem: toPem('CERTIFICATE', rootDer),
    rootPrivateKeyPkcs8Der: rootKey.export({ type: 'pkcs8', format: 'der' }),
    algorithm: opts.algorithm,
    organization,
    nowMs: opts.nowMs,
    validityDays: issuingLifetime / DAY_MS,
  })
  return { root: material(rootDer, rootKey), issuing }
}

/**
 * Creates a new issuing CA (cA:true, pathLen 0) under an existing root, e.g. to rotate the issuing CA. Its notAfter
 * is clamped to the root's.
 */
export function createIssuingCa (opts: { rootCertPem: string, rootPrivateKeyPkcs8Der: Buffer, algorithm: CaAlgorithm, organization?: string, nowMs: number, validityDays?: number }): CaMaterial {
  assertTimeMs(opts.nowMs, 'nowMs')
  const organization = opts.organization ?? 'Thingward'
  assertCommonName(organization)
  const lifetime = validityMs(opts.validityDays, 3650)
  const root = loadCa(opts.rootCertPem, opts.rootPrivateKeyPkcs8Der, KU.keyCertSign)
  const key = generateCaKey(opts.algorithm)
  const spki = spkiOf(key)
  const keyBits = inspectSpki(spki, readTlv(spki, 0)).keyBits
  const notBeforeMs = floorToSecond(opts.nowMs)
  if (notBeforeMs >= root.cert.notAfterMs) throw new AppError('ERR_PKI_CA_INVALID', 'root CA certificate has expired')
  const der = buildCertificate({
    signer: root.signer,
    serialDer: randomSerial().der,
    issuerName: root.cert.subjectName,
    notBeforeMs,
    notAfterMs: Math.min(notBeforeMs + lifetime, root.cert.notAfterMs),
    subjectName: caName(organization, `Thingward Issuing CA ${shortKeyId(keyBits)}`),
    spki,
    extensions: [extBcCa(0), extKeyUsage(CA_KEY_USAGE), extSki(keyIdentifier(keyBits)), extAki(root.keyId)],
  })
  return material(der, key)
}
