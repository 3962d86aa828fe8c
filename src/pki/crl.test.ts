import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSecureContext } from 'node:tls'
import { CertificateIssuer, buildCrl, createCaHierarchy, generateKeyPair } from './index.ts'
import type { CaAlgorithm, CrlEntry } from './index.ts'
import { assertAppError, openssl, tempDir, x509 } from './helpers.test.ts'
import { children, readRoot } from './der.ts'

const NOW = Date.now()
const HOUR_MS = 3_600_000

for (const algorithm of ['EC-P256', 'EC-P384', 'RSA-3072'] as CaAlgorithm[]) {
  test(`${algorithm}: openssl verifies the CRL, lists serials with reasons, and revokes exactly the listed certificate`, async (t) => {
    const { root, issuing } = createCaHierarchy({ algorithm, nowMs: NOW })
    const issuer = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der })
    const revokedCert = issuer.issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'stolen' })
    const goodCert = issuer.issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'fine' })
    const entries: CrlEntry[] = [
      { serialHex: revokedCert.serialHex, revokedAtMs: NOW - 5000, reasonCode: 1 },
      { serialHex: 'FF01', revokedAtMs: NOW - 4000, reasonCode: 5 }, // high bit set → 00 pad; upper case accepted
      { serialHex: '0abc', revokedAtMs: NOW - 3000 }, // no reason
      { serialHex: '1234', revokedAtMs: NOW - 2000, reasonCode: 0 }, // unspecified → no reasonCode extension
    ]
    const crl = buildCrl({ issuerCertPem: issuing.certPem, issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, entries, thisUpdateMs: NOW, nextUpdateMs: NOW + 24 * HOUR_MS, crlNumber: 42n })
    assert.match(crl.pem, /^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/)
    assert.equal(Buffer.from(crl.pem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('hex'), crl.der.toString('hex'))

    const { write, dir } = tempDir(t)
    write('root.pem', root.certPem)
    write('issuing.pem', issuing.certPem)
    write('chain.pem', root.certPem + issuing.certPem)
    write('crl.pem', crl.pem)
    write('revoked.pem', revokedCert.certPem)
    write('good.pem', goodCert.certPem)
    const v = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'chain.pem', '-noout', '-verify'], { cwd: dir })
    assert.equal(v.status, 0, v.out)
    assert.match(v.stderr, /verify OK/)
    const text = openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], { cwd: dir }).stdout
    assert.match(text, /Version 2 \(0x1\)/)
    assert.match(text, /X509v3 CRL Number:\s*\n\s+42\n/)
    assert.match(text, /X509v3 Authority Key Identifier:/)
    assert.match(text, new RegExp(`Serial Number: ${revokedCert.serialHex.toUpperCase()}\\n\\s+Revocation Date: .*\\n\\s+CRL entry extensions:\\n\\s+X509v3 CRL Reason Code:\\s*\\n\\s+Key Compromise`))
    assert.match(text, /Serial Number: FF01\n\s+Revocation Date: .*\n\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code:\s*\n\s+Cessation Of Operation/)
    assert.match(text, /Serial Number: 0ABC\n\s+Revocation Date: [^\n]+\n\s+Serial Number: 1234\n\s+Revocation Date: [^\n]+\n\s+Signature Algorithm/)

    // The CRL in use: openssl refuses the revoked certificate and accepts the other one.
    const check = (file: string): ReturnType<typeof openssl> =>
      openssl(['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', file], { cwd: dir })
    const revoked = check('revoked.pem')
    assert.notEqual(revoked.status, 0)
    assert.match(revoked.out, /certificate revoked/)
    const good = check('good.pem')
    assert.equal(good.status, 0, good.out)

    // Node's TLS stack loads it, and @peculiar/x509 reads and verifies it.
    createSecureContext({ ca: root.certPem, crl: crl.pem })
    const p = new x509.X509Crl(crl.der)
    assert.equal(p.entries.length, 4)
    assert.equal(p.findRevoked(new x509.X509Certificate(revokedCert.certPem))?.reason, x509.X509CrlReason.keyCompromise)
    assert.equal(p.findRevoked(new x509.X509Certificate(goodCert.certPem)), null)
    assert.equal(p.thisUpdate.getTime(), Math.floor(NOW / 1000) * 1000)
    assert.equal(await p.verify({ publicKey: new x509.X509Certificate(issuing.certPem).publicKey }), true)
  })
}

test('an empty CRL omits revokedCertificates and still verifies', (t) => {
  const { root, issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const crl = buildCrl({ issuerCertPem: issuing.certPem, issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, entries: [], thisUpdateMs: NOW, nextUpdateMs: NOW + HOUR_MS, crlNumber: 0n })
  const { write, dir } = tempDir(t)
  write('chain.pem', root.certPem + issuing.certPem)
  write('crl.pem', crl.pem)
  const v = openssl(['crl', '-in', 'crl.pem', '-CAfile', 'chain.pem', '-noout', '-verify'], { cwd: dir })
  assert.equal(v.status, 0, v.out)
  assert.match(openssl(['crl', '-in', 'crl.pem', '-noout', '-text'], { cwd: dir }).stdout, /No Revoked Certificates/)
  // The root signs its own CRL too (Node's tls needs one per CA in the chain).
  const rootCrl = buildCrl({ issuerCertPem: root.certPem, issuerPrivateKeyPkcs8Der: root.privateKeyPkcs8Der, entries: [], thisUpdateMs: NOW, nextUpdateMs: NOW + HOUR_MS, crlNumber: 1n })
  write('root-crl.pem', rootCrl.pem)
  assert.equal(openssl(['crl', '-in', 'root-crl.pem', '-CAfile', 'chain.pem', '-noout', '-verify'], { cwd: dir }).status, 0)
})

test('100k entries build and openssl verifies the result (speed is measured in bench/pki.ts)', (t) => {
  const { root, issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const entries: CrlEntry[] = []
  for (let i = 0; i < 100_000; i++) entries.push({ serialHex: (0x40000000 + i).toString(16) + 'aabbccddeeff00112233', revokedAtMs: NOW - i * 1000, reasonCode: i % 3 === 0 ? 1 : undefined })
  const crl = buildCrl({ issuerCertPem: issuing.certPem, issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, entries, thisUpdateMs: NOW, nextUpdateMs: NOW + HOUR_MS, crlNumber: 7n })
  const { write, dir } = tempDir(t)
  write('chain.pem', root.certPem + issuing.certPem)
  write('crl.der', crl.der)
  const v = openssl(['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'chain.pem', '-noout', '-verify'], { cwd: dir })
  assert.equal(v.status, 0, v.out)
  // Count entries with a plain DER walk (@peculiar needs ~20 s for 100k entries): CertificateList → tbs → revoked list.
  const tbs = children(crl.der, readRoot(crl.der, 0x30))[0]
  const revokedList = children(crl.der, tbs)[5]
  const list = children(crl.der, revokedList)
  assert.equal(list.length, 100_000)
  const lastSerial = children(crl.der, list[99_999])[0]
  assert.equal(crl.der.toString('hex', lastSerial.valueStart, lastSerial.end), (0x40000000 + 99_999).toString(16) + 'aabbccddeeff00112233')
})

test('invalid CRL arguments are refused and nothing is signed', () => {
  const { root, issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const base = { issuerCertPem: issuing.certPem, issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, entries: [] as CrlEntry[], thisUpdateMs: NOW, nextUpdateMs: NOW + HOUR_MS, crlNumber: 1n }
  const cases: Array<[Partial<typeof base>, RegExp, 'ERR_PKI_INVALID_ARGUMENT' | 'ERR_PKI_CA_INVALID']> = [
    [{ entries: [{ serialHex: 'xyz', revokedAtMs: NOW }] }, /serialHex must be 1\.\.40 hex digits/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ entries: [{ serialHex: 'a'.repeat(41), revokedAtMs: NOW }] }, /serialHex/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ entries: [{ serialHex: '01', revokedAtMs: NOW, reasonCode: 7 }] }, /reasonCode/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ entries: [{ serialHex: '01', revokedAtMs: NOW, reasonCode: 8 }] }, /reasonCode/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ entries: [{ serialHex: '01', revokedAtMs: Number.NaN }] }, /revokedAtMs/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ nextUpdateMs: NOW }, /nextUpdateMs must be after thisUpdateMs/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ crlNumber: -1n }, /crlNumber/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ crlNumber: 1n << 160n }, /crlNumber/, 'ERR_PKI_INVALID_ARGUMENT'],
    [{ issuerPrivateKeyPkcs8Der: root.privateKeyPkcs8Der }, /does not match/, 'ERR_PKI_CA_INVALID'],
  ]
  for (const [override, message, code] of cases) {
    let result: unknown
    assertAppError(() => { result = buildCrl({ ...base, ...override }) }, code, message)
    assert.equal(result, undefined)
  }
})
