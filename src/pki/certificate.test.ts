import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { CertificateIssuer, createCaHierarchy, createCsr, generateKeyPair, parseCertificate, splitPemChain, verifyCaRegistration, verifyIssuedBy } from './index.ts'
import { assertAppError, openssl, tempDir } from './helpers.test.ts'

const NOW = Date.now()

const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_not_ca]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
`

/** An operator's own CA made with the openssl CLI, as a user registering it with AWS IoT would. */
function opensslWorld (t: TestContext): { dir: string, read: (f: string) => string, run: (args: string[]) => void } {
  const { dir, write } = tempDir(t)
  write('openssl.cnf', OPENSSL_CNF)
  const run = (args: string[]): void => {
    const r = openssl(args, { cwd: dir })
    assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.out}`)
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-subj', '/O=Customer/CN=Customer Root', '-days', '30', '-config', 'openssl.cnf', '-extensions', 'v3_ca', '-out', 'ca.pem'])
  run(['req', '-x509', ...ec, '-keyout', 'other.key', '-subj', '/O=Customer/CN=Customer Root', '-days', '30', '-config', 'openssl.cnf', '-extensions', 'v3_ca', '-out', 'other.pem'])
  run(['req', '-x509', ...ec, '-keyout', 'notca.key', '-subj', '/CN=Not A CA', '-days', '30', '-config', 'openssl.cnf', '-extensions', 'v3_not_ca', '-out', 'notca.pem'])
  run(['req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', 'weak.key', '-subj', '/CN=Weak CA', '-days', '30', '-config', 'openssl.cnf', '-extensions', 'v3_ca', '-out', 'weak.pem'])
  // Verification certificates: CN = registration code, signed by ca.key (good) or other.key (wrong signer).
  const verification = (name: string, cn: string, caName: string): void => {
    run(['req', '-new', ...ec, '-keyout', `${name}.key`, '-subj', `/CN=${cn}`, '-config', 'openssl.cnf', '-out', `${name}.csr`])
    run(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-set_serial', '0x1234', '-days', '2', '-out', `${name}.pem`])
  }
  verification('verif', 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 'ca')
  verification('verif-wrong-cn', 'not-the-code', 'ca')
  verification('verif-wrong-signer', 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 'other')
  verification('verif-weak', 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90', 'weak')
  return { dir, run, read: (f) => readFileSync(join(dir, f), 'utf8') }
}

const CODE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90'

test('verifyCaRegistration accepts an openssl-made CA with a proper verification certificate', (t) => {
  const w = opensslWorld(t)
  verifyCaRegistration(w.read('ca.pem'), w.read('verif.pem'), CODE, Date.now())
})

test('verifyCaRegistration refuses wrong CN, wrong signer, a non-CA, a weak or expired CA, and garbage', (t) => {
  const w = opensslWorld(t)
  const ca = w.read('ca.pem')
  const now = Date.now()
  assertAppError(() => verifyCaRegistration(ca, w.read('verif-wrong-cn.pem'), CODE, now), 'ERR_PKI_VERIFICATION_FAILED', /^verification certificate subject CN does not match the registration code$/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif-wrong-signer.pem'), CODE, now), 'ERR_PKI_VERIFICATION_FAILED', /^verification certificate is not signed by the CA certificate's key$/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif.pem'), CODE.replace('a1', 'ff'), now), 'ERR_PKI_VERIFICATION_FAILED', /does not match the registration code/)
  assertAppError(() => verifyCaRegistration(w.read('notca.pem'), w.read('verif.pem'), CODE, now), 'ERR_PKI_CA_INVALID', /^certificate is not a CA: basicConstraints cA is not true$/)
  assertAppError(() => verifyCaRegistration(w.read('weak.pem'), w.read('verif-weak.pem'), CODE, now), 'ERR_PKI_CA_INVALID', /^CA certificate key is not allowed: RSA key of 1024 bits is too weak: minimum 2048$/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif.pem'), CODE, now + 40 * 86_400_000), 'ERR_PKI_CA_INVALID', /^CA certificate has expired$/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif.pem'), CODE, now - 86_400_000), 'ERR_PKI_CA_INVALID', /^CA certificate is not yet valid$/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif.pem'), CODE, now + 5 * 86_400_000), 'ERR_PKI_VERIFICATION_FAILED', /^verification certificate is not valid at this time$/)
  assertAppError(() => verifyCaRegistration('garbage', w.read('verif.pem'), CODE, now), 'ERR_PKI_CA_INVALID', /^CA certificate is not PEM/)
  assertAppError(() => verifyCaRegistration(ca, 'garbage', CODE, now), 'ERR_PKI_VERIFICATION_FAILED', /^verification certificate is not PEM/)
  assertAppError(() => verifyCaRegistration(ca, w.read('verif.csr'), CODE, now), 'ERR_PKI_VERIFICATION_FAILED', /^expected PEM CERTIFICATE but found CERTIFICATE REQUEST$/)
})

test('verifyCaRegistration works with a CA we created and a verification cert we issued', () => {
  const { root } = createCaHierarchy({ algorithm: 'EC-P384', nowMs: NOW })
  const rootIssuer = new CertificateIssuer({ caCertPem: root.certPem, caPrivateKeyPkcs8Der: root.privateKeyPkcs8Der })
  const verification = rootIssuer.issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: CODE.slice(0, 64) })
  verifyCaRegistration(root.certPem, verification.certPem, CODE.slice(0, 64), NOW + 1000)
})

test('parseCertificate reads openssl-made certificates and ours, first of a chain, PEM or DER', (t) => {
  const w = opensslWorld(t)
  const ca = parseCertificate(w.read('ca.pem'))
  const node = new X509Certificate(w.read('ca.pem'))
  assert.equal(ca.subject, 'CN=Customer Root,O=Customer')
  assert.equal(ca.issuer, ca.subject)
  assert.equal(ca.subjectCommonName, 'Customer Root')
  assert.equal(ca.isCa, true)
  assert.equal(ca.publicKeyAlgorithm, 'EC-P256')
  assert.equal(ca.fingerprint256, node.fingerprint256)
  assert.equal(ca.certificateId, node.fingerprint256.replaceAll(':', '').toLowerCase())
  assert.equal(ca.serialHex, node.serialNumber.toLowerCase())
  assert.equal(ca.notBeforeMs, node.validFromDate.getTime())
  assert.equal(ca.notAfterMs, node.validToDate.getTime())
  assert.equal(ca.pem, node.toString())
  assert.ok(ca.der.equals(node.raw))
  const verif = parseCertificate(w.read('verif.pem'))
  assert.equal(verif.serialHex, '1234')
  assert.equal(verif.isCa, false)
  assert.equal(verif.subjectCommonName, CODE)
  assert.equal(parseCertificate(w.read('weak.pem')).publicKeyAlgorithm, 'RSA-1024')

  const { root, issuing } = createCaHierarchy({ algorithm: 'RSA-3072', nowMs: NOW })
  const issuer = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der })
  const leaf = issuer.issueForPublicKey(generateKeyPair('Ed25519').publicKey, { nowMs: NOW, commonName: 'ed' })
  const chain = `subject=CN = ed\n${leaf.certPem}\n${issuing.certPem}${root.certPem}`
  const first = parseCertificate(chain)
  assert.equal(first.certificateId, leaf.certificateId)
  assert.equal(first.publicKeyAlgorithm, 'Ed25519')
  assert.equal(first.subject, 'CN=ed')
  assert.match(first.issuer, /^CN=Thingward Issuing CA [0-9A-F]{8},O=Thingward$/)
  assert.equal(parseCertificate(leaf.certDer).certificateId, leaf.certificateId)
  assert.equal(parseCertificate(issuing.certPem).publicKeyAlgorithm, 'RSA-3072')
  // CRLF line endings and 76-column base64 are normalized.
  const b64 = leaf.certDer.toString('base64').replace(/(.{76})/g, '$1\r\n')
  assert.equal(parseCertificate(`-----BEGIN CERTIFICATE-----\r\n${b64}\r\n-----END CERTIFICATE-----\r\n`).pem, leaf.certPem)
  const noCn = issuer.issueServerCertificate(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, dnsNames: ['a'.repeat(63) + '.example.com'], ipAddresses: [] })
  const noCnInfo = parseCertificate(noCn.certPem)
  assert.equal(noCnInfo.subject, '')
  assert.equal(noCnInfo.subjectCommonName, undefined)
  assert.equal('subjectCommonName' in noCnInfo, false)
})

test('parseCertificate refuses garbage with ERR_PKI_CERT_INVALID and a precise message', () => {
  const { issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const der = issuing.certDer
  const pem = (body: Buffer): string => `-----BEGIN CERTIFICATE-----\n${body.toString('base64')}\n-----END CERTIFICATE-----\n`
  const trailing = Buffer.concat([der, Buffer.from([0])])
  const badSig = Buffer.from(der)
  badSig[badSig.length - 3] ^= 0xff // still parses: signatures are not checked by parseCertificate
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['text', 'hello', /^certificate is not PEM: no -----BEGIN line$/],
    ['csr', createCsrPem(), /^expected PEM CERTIFICATE but found CERTIFICATE REQUEST$/],
    ['truncated', pem(der.subarray(0, der.length - 10)), /^certificate is malformed: /],
    ['trailing byte', pem(trailing), /^certificate is malformed: Certificate: trailing bytes after the DER value$/],
    ['random DER-ish bytes', Buffer.from('300a02010102010102010100', 'hex'), /^certificate is malformed: /],
    ['unterminated', '-----BEGIN CERTIFICATE-----\nMIIB', /no matching -----END CERTIFICATE----- line/],
    ['empty body', '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', /PEM body is empty/],
  ]
  for (const [name, input, message] of cases) assertAppError(() => parseCertificate(input), 'ERR_PKI_CERT_INVALID', message)
  assert.equal(parseCertificate(pem(badSig)).isCa, true)
})

function createCsrPem (): string {
  return createCsr({ ...generateKeyPair('EC-P256'), commonName: 'not-a-certificate' })
}

test('splitPemChain returns every certificate, normalized, skipping other blocks and text', () => {
  const { root, issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const kp = generateKeyPair('EC-P256')
  const leaf = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der }).issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'x' })
  const bundle = `# device bundle\r\n${leaf.certPem.replaceAll('\n', '\r\n')}\n${kp.privateKeyPem}\nsubject=...\n${issuing.certPem}${root.certPem}`
  assert.deepEqual(splitPemChain(bundle), [leaf.certPem, issuing.certPem, root.certPem])
  assert.deepEqual(splitPemChain(''), [])
  assert.deepEqual(splitPemChain('no pem here'), [])
  assertAppError(() => splitPemChain('-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----'), 'ERR_PKI_CERT_INVALID', /not base64/)
})

test('verifyIssuedBy: true only for the real issuer (name and signature); false for others and garbage', (t) => {
  const { root, issuing } = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const other = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW })
  const leaf = new CertificateIssuer({ caCertPem: issuing.certPem, caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der }).issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'x' })
  assert.equal(verifyIssuedBy(leaf.certPem, issuing.certPem), true)
  assert.equal(verifyIssuedBy(issuing.certPem, root.certPem), true)
  assert.equal(verifyIssuedBy(root.certPem, root.certPem), true)
  assert.equal(verifyIssuedBy(leaf.certPem, root.certPem), false)
  assert.equal(verifyIssuedBy(leaf.certPem, other.issuing.certPem), false)
  assert.equal(verifyIssuedBy(issuing.certPem, leaf.certPem), false)
  assert.equal(verifyIssuedBy('garbage', issuing.certPem), false)
  assert.equal(verifyIssuedBy(leaf.certPem, 'garbage'), false)
  // Same issuer name, different key: openssl-made CA whose subject copies ours is not the issuer.
  const w = opensslWorld(t)
  assert.equal(verifyIssuedBy(w.read('verif.pem'), w.read('ca.pem')), true)
  assert.equal(verifyIssuedBy(w.read('verif.pem'), w.read('other.pem')), false, 'same subject name, different key')
  assert.equal(verifyIssuedBy(w.read('verif-wrong-signer.pem'), w.read('ca.pem')), false)
})
