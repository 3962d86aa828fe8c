import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import * as asn1js from 'asn1js'
import * as pkijs from 'pkijs'
import { CertificateIssuer, OcspResponder, createCaHierarchy, generateKeyPair } from './index.ts'
import type { CaAlgorithm, CaMaterial, IssuedCertificate, OcspStatus } from './index.ts'
import { opensslAsync, tempDir } from './helpers.test.ts'
import type { TestContext } from 'node:test'
import { NULL_DER, ctxCons, octetString, seq } from './der.ts'
import { OID } from './oids.ts'
import { parseCertDer } from './cert-der.ts'

const NOW = Date.now()
const REVOKED_AT = Math.floor((NOW - 60_000) / 1000) * 1000

interface Fixture {
  root: CaMaterial
  issuing: CaMaterial
  good: IssuedCertificate
  revoked: IssuedCertificate
  lookups: string[]
  responder: OcspResponder
}

function fixture (algorithm: CaAlgorithm, lookup?: (serialHex: string) => OcspStatus): Fixture {
  const { root, issuing } = createCaHierarchy({ algorithm, nowMs: NOW })
  const issuer = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, ocspUrl: 'http://127.0.0.1/ocsp' })
  const good = issuer.issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'good' })
  const revoked = issuer.issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'revoked' })
  const lookups: string[] = []
  const responder = new OcspResponder({
    issuerCertPem: issuing.certPem,
    issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der,
    lookup: lookup ?? ((serialHex) => {
      lookups.push(serialHex)
      if (serialHex === good.serialHex) return { status: 'good' }
      if (serialHex === revoked.serialHex) return { status: 'revoked', revokedAtMs: REVOKED_AT, reasonCode: 1 }
      return { status: 'unknown' }
    }),
  })
  return { root, issuing, good, revoked, lookups, responder }
}

/** A real loopback OCSP responder over HTTP (RFC 6960 Appendix A: POST body or base64 GET path). */
async function serve (t: TestContext, responder: OcspResponder): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = req.method === 'GET'
        ? Buffer.from(decodeURIComponent((req.url ?? '/').slice(1)), 'base64')
        : Buffer.concat(chunks)
      const answer = responder.respond(body, Date.now())
      res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': answer.length })
      res.end(answer)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

for (const algorithm of ['EC-P256', 'RSA-3072'] as CaAlgorithm[]) {
  for (const hashArgs of [[], ['-sha256']]) {
    const label = hashArgs.length === 0 ? 'SHA-1 CertID (default)' : 'SHA-256 CertID'
    test(`${algorithm} CA, ${label}: openssl ocsp over HTTP gets good / revoked with reason, nonce echoed, Response verify OK`, async (t) => {
      const f = fixture(algorithm)
      const url = await serve(t, f.responder)
      const { write, dir } = tempDir(t)
      write('issuing.pem', f.issuing.certPem)
      write('chain.pem', f.root.certPem + f.issuing.certPem)
      write('good.pem', f.good.certPem)
      write('revoked.pem', f.revoked.certPem)
      const ask = (cert: string): ReturnType<typeof opensslAsync> =>
        opensslAsync(['ocsp', '-issuer', 'issuing.pem', ...hashArgs, '-cert', cert, '-CAfile', 'chain.pem', '-url', url, '-resp_text'], dir)

      const good = await ask('good.pem')
      assert.equal(good.status, 0, good.out)
      assert.match(good.stderr, /Response verify OK/)
      assert.match(good.stdout, /good\.pem: good\n\s+This Update: .+\n\s+Next Update: .+/)
      assert.match(good.stdout, /Responder Id: [0-9A-F]{40}/) // byKey
      assert.match(good.stdout, /OCSP Nonce:\s*\n\s+0410[0-9A-F]{32}/) // openssl checks the echo too
      assert.match(good.stdout, new RegExp(`Hash Algorithm: ${hashArgs.length === 0 ? 'sha1' : 'sha256'}`))

      const revoked = await ask('revoked.pem')
      assert.equal(revoked.status, 0, revoked.out)
      assert.match(revoked.stderr, /Response verify OK/)
      assert.match(revoked.stdout, /revoked\.pem: revoked\n\s+This Update: .+\n\s+Next Update: .+\n\s+Reason: keyCompromise\n\s+Revocation Time: .+/)
      assert.deepEqual(f.lookups, [f.good.serialHex, f.revoked.serialHex])

      // Two CertIDs in one request, answered in order.
      const both = await opensslAsync(['ocsp', '-issuer', 'issuing.pem', ...hashArgs, '-cert', 'good.pem', '-cert', 'revoked.pem', '-CAfile', 'chain.pem', '-url', url], dir)
      assert.match(both.stdout, /good\.pem: good[\s\S]+revoked\.pem: revoked/)
      assert.match(both.stderr, /Response verify OK/)
    })
  }
}

test('a certificate of another CA gets unknown without a registry lookup; an unknown serial gets unknown', async (t) => {
  const f = fixture('EC-P256')
  const other = fixture('EC-P256')
  const url = await serve(t, f.responder)
  const { write, dir } = tempDir(t)
  write('other-issuing.pem', other.issuing.certPem)
  write('other-good.pem', other.good.certPem)
  write('chain.pem', f.root.certPem + f.issuing.certPem)
  const r = await opensslAsync(['ocsp', '-issuer', 'other-issuing.pem', '-cert', 'other-good.pem', '-CAfile', 'chain.pem', '-url', url, '-resp_text'], dir)
  assert.match(r.stdout, /other-good\.pem: unknown/)
  assert.deepEqual(f.lookups, [], 'a CertID of another issuer must not reach the registry')

  write('issuing.pem', f.issuing.certPem)
  // A serial we never issued, under our issuer's hashes.
  const r2 = await opensslAsync(['ocsp', '-issuer', 'issuing.pem', '-serial', '0x' + '5'.repeat(32), '-CAfile', 'chain.pem', '-url', url], dir)
  assert.match(r2.stdout, /0x5{32}: unknown/)
  assert.match(r2.stderr, /Response verify OK/)
  assert.deepEqual(f.lookups, ['5'.repeat(32)])

  // Garbage over HTTP: a 200 carrying malformedRequest(1), and no lookup.
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: 'garbage' })
  assert.equal(Buffer.from(await res.arrayBuffer()).toString('hex'), '30030a0101')
  assert.deepEqual(f.lookups, ['5'.repeat(32)])
})

test('pkijs builds a SHA-256 request with a nonce; the response verifies, echoes the nonce and uses whole seconds', async () => {
  const f = fixture('EC-P256')
  const cert = pkijs.Certificate.fromBER(f.revoked.certDer)
  const issuerCert = pkijs.Certificate.fromBER(f.issuing.certDer)
  const req = new pkijs.OCSPRequest()
  await req.createForCertificate(cert, { hashAlgorithm: 'SHA-256', issuerCertificate: issuerCert })
  const nonce = randomBytes(32)
  req.tbsRequest.requestExtensions = [new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(false) })]
  const answer = f.responder.respond(Buffer.from(req.toSchema(true).toBER(false)), NOW + 1234)

  const rootCert = pkijs.Certificate.fromBER(f.root.certDer)
  const resp = pkijs.OCSPResponse.fromBER(answer)
  assert.equal(resp.responseStatus.valueBlock.valueDec, 0)
  const basic = pkijs.BasicOCSPResponse.fromBER(resp.responseBytes?.response.valueBlock.valueHexView ?? new Uint8Array())
  assert.equal(await basic.verify({ trustedCerts: [rootCert] }), true) // signer = issuing CA, carried in certs
  const echoed = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')
  assert.ok(echoed !== undefined)
  assert.ok(Buffer.from(echoed.extnValue.valueBlock.valueHexView).equals(Buffer.from(new asn1js.OctetString({ valueHex: nonce }).toBER(false))))
  const single = basic.tbsResponseData.responses[0]
  assert.equal(basic.tbsResponseData.responses.length, 1)
  assert.equal(single.thisUpdate.getTime(), Math.floor((NOW + 1234) / 1000) * 1000)
  assert.equal(single.nextUpdate?.getTime(), Math.floor((NOW + 1234) / 1000) * 1000 + 3_600_000)
  assert.equal(basic.tbsResponseData.producedAt.getTime(), single.thisUpdate.getTime())
  const status = await resp.getCertificateStatus(cert, issuerCert)
  assert.deepEqual({ isForCertificate: status.isForCertificate, status: status.status }, { isForCertificate: true, status: 1 })
  assert.equal(single.certStatus.idBlock.tagNumber, 1)
  // The CertID is echoed byte for byte.
  assert.ok(Buffer.from(single.certID.toSchema().toBER(false)).equals(Buffer.from(req.tbsRequest.requestList[0].reqCert.toSchema().toBER(false))))
})

/** Hand-made OCSPRequests (RFC 6960 §4.1.1) with our DER writer, for shapes no client library would produce. */
function certId (ca?: CaMaterial, serial: Buffer = Buffer.from([2, 1, 1])): Buffer {
  const parsed = ca === undefined ? undefined : parseCertDer(ca.certDer)
  const nameHash = parsed === undefined ? Buffer.alloc(20) : createHash('sha1').update(parsed.subjectName).digest()
  const keyHash = parsed === undefined ? Buffer.alloc(20) : createHash('sha1').update(parsed.spkiInfo.keyBits).digest()
  return seq(seq(OID.sha1, NULL_DER), octetString(nameHash), octetString(keyHash), serial)
}
function request (ids: Buffer[], extensions?: Buffer): Buffer {
  return seq(seq(seq(...ids.map((id) => seq(id))), ...(extensions === undefined ? [] : [ctxCons(2, extensions)])))
}
const nonceExtensions = (length: number): Buffer => seq(seq(OID.ocspNonce, octetString(octetString(Buffer.alloc(length, 0xab)))))

test('malformed requests get malformedRequest(1) and never reach the lookup; a failing lookup gives internalError(2)', () => {
  const f = fixture('EC-P256')
  const MALFORMED = '30030a0101'
  const bad: Array<[string, unknown]> = [
    ['empty', Buffer.alloc(0)],
    ['garbage', Buffer.from('not an OCSP request')],
    ['empty sequence', Buffer.from('3000', 'hex')],
    ['truncated', Buffer.from('3082ffff30', 'hex')],
    ['empty requestList', request([])],
    ['101 CertIDs', request(Array.from({ length: 101 }, () => certId(f.issuing)))],
    ['nonce of 129 octets (RFC 8954)', request([certId(f.issuing)], nonceExtensions(129))],
    ['trailing bytes', Buffer.concat([request([certId(f.issuing)]), Buffer.from([0])])],
    ['CertID without serial', request([seq(seq(OID.sha1, NULL_DER), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)))])],
    ['not a buffer', 'not a buffer'],
  ]
  for (const [name, body] of bad) assert.equal(f.responder.respond(body as Buffer, NOW).toString('hex'), MALFORMED, name)
  assert.deepEqual(f.lookups, [], 'no malformed request may reach the registry')

  // The same shapes, well formed, are answered: 100 CertIDs, a 128-octet nonce, a foreign-issuer CertID.
  const hundred = pkijs.OCSPResponse.fromBER(f.responder.respond(request(Array.from({ length: 100 }, () => certId(f.issuing))), NOW))
  assert.equal(hundred.responseStatus.valueBlock.valueDec, 0)
  assert.equal(f.lookups.length, 100)
  assert.equal(f.lookups[0], '01')
  const withNonce = pkijs.OCSPResponse.fromBER(f.responder.respond(request([certId()], nonceExtensions(128)), NOW))
  assert.equal(withNonce.responseStatus.valueBlock.valueDec, 0)
  assert.equal(f.lookups.length, 100, 'a CertID with foreign hashes is answered unknown without a lookup')

  const failing = fixture('EC-P256', () => { throw new Error('database down') })
  assert.equal(failing.responder.respond(request([certId(failing.issuing)]), NOW).toString('hex'), '30030a0102')
  assert.equal(failing.responder.respond(request([certId(failing.issuing)]), Number.NaN).toString('hex'), '30030a0102')
})

test('respond never throws on fuzzed input', () => {
  const f = fixture('EC-P256')
  const valid = request([certId(f.issuing), certId()], nonceExtensions(16))
  const statuses = new Set<number>()
  for (let i = 0; i < 3000; i++) {
    const input = i % 2 === 0 ? randomBytes(i % 97) : Buffer.from(valid)
    if (i % 2 === 1) input[(i * 7) % input.length] ^= 1 << (i % 8)
    const out = f.responder.respond(input, NOW)
    statuses.add(pkijs.OCSPResponse.fromBER(out).responseStatus.valueBlock.valueDec)
  }
  assert.ok([...statuses].every((s) => s === 0 || s === 1), [...statuses].join(','))
  assert.ok(statuses.has(0) && statuses.has(1))
})
