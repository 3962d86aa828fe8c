import { test } from 'node:test'
import assert from 'node:assert/strict'
import { X509Certificate, createHash, createPrivateKey, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import * as pkijs from 'pkijs'
import { CertificateIssuer, createCaHierarchy, createCsr, createIssuingCa, generateKeyPair, parseCertificate } from './index.ts'
import type { CaAlgorithm, CaMaterial, KeyAlgorithm } from './index.ts'
import { assertAppError, openssl, tempDir, x509 } from './helpers.test.ts'

const NOW = Date.now()
const DAY_MS = 86_400_000
const CRL_URL = 'http://pki.example.test/crl/issuing.crl'
const OCSP_URL = 'http://pki.example.test/ocsp'

const hierarchies = new Map<CaAlgorithm, { root: CaMaterial, issuing: CaMaterial }>()
function hierarchy (algorithm: CaAlgorithm): { root: CaMaterial, issuing: CaMaterial } {
  let h = hierarchies.get(algorithm)
  if (h === undefined) {
    h = createCaHierarchy({ algorithm, organization: 'Acme Buildings', nowMs: NOW })
    hierarchies.set(algorithm, h)
  }
  return h
}

function issuerFor (ca: CaMaterial, urls = true): CertificateIssuer {
  return new CertificateIssuer({ caCertPem: ca.certPem, caPrivateKeyPkcs8Der: ca.privateKeyPkcs8Der, ...(urls ? { crlUrl: CRL_URL, ocspUrl: OCSP_URL } : {}) })
}

const SIG_ALG: Record<CaAlgorithm, { openssl: string, hash: string }> = {
  'EC-P256': { openssl: 'ecdsa-with-SHA256', hash: 'SHA-256' },
  'EC-P384': { openssl: 'ecdsa-with-SHA384', hash: 'SHA-384' },
  'RSA-3072': { openssl: 'sha256WithRSAEncryption', hash: 'SHA-256' },
}

for (const algorithm of ['EC-P256', 'EC-P384', 'RSA-3072'] as const) {
  test(`${algorithm} hierarchy: openssl verifies device certs for sslclient and server certs for sslserver, and not the other way round`, (t) => {
    const { root, issuing } = hierarchy(algorithm)
    const issuer = issuerFor(issuing)
    const device = generateKeyPair('EC-P256')
    const dev = issuer.issueFromCsr(createCsr({ ...device, commonName: 'dev-1' }), { nowMs: NOW })
    const server = generateKeyPair('EC-P256')
    const srv = issuer.issueServerCertificate(server.publicKey, { nowMs: NOW, dnsNames: ['localhost', 'mqtt.example.com'], ipAddresses: ['127.0.0.1', '::1'] })
    const { write, dir } = tempDir(t)
    write('root.pem', root.certPem)
    write('issuing.pem', issuing.certPem)
    write('dev.pem', dev.certPem)
    write('srv.pem', srv.certPem)
    const verify = (purpose: string, file: string): ReturnType<typeof openssl> =>
      openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', purpose, file], { cwd: dir })

    const devOk = verify('sslclient', 'dev.pem')
    assert.equal(devOk.status, 0, devOk.out)
    assert.equal(devOk.stdout.trim(), 'dev.pem: OK')
    const srvOk = verify('sslserver', 'srv.pem')
    assert.equal(srvOk.status, 0, srvOk.out)
    assert.equal(srvOk.stdout.trim(), 'srv.pem: OK')
    const devAsServer = verify('sslserver', 'dev.pem')
    assert.notEqual(devAsServer.status, 0)
    assert.match(devAsServer.out, /unsuitable certificate purpose/)
    const srvAsClient = verify('sslclient', 'srv.pem')
    assert.notEqual(srvAsClient.status, 0)
    assert.match(srvAsClient.out, /unsuitable certificate purpose/)
    // Without the issuing CA the chain must not verify (the root alone does not vouch for the leaf).
    const noIntermediate = openssl(['verify', '-CAfile', 'root.pem', 'dev.pem'], { cwd: dir })
    assert.notEqual(noIntermediate.status, 0)

    const text = openssl(['x509', '-in', 'dev.pem', '-noout', '-text'], { cwd: dir }).stdout
    assert.match(text, new RegExp(`Signature Algorithm: ${SIG_ALG[algorithm].openssl}`))
    assert.match(text, /Version: 3 \(0x2\)/)
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/)
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/)
    assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+TLS Web Client Authentication\n/)
    assert.match(text, new RegExp(`URI:${CRL_URL}`))
    assert.match(text, new RegExp(`OCSP - URI:${OCSP_URL}`))
    const issuingText = openssl(['x509', '-in', 'issuing.pem', '-noout', '-text'], { cwd: dir }).stdout
    assert.match(issuingText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/)
    assert.match(issuingText, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/)
    const rootText = openssl(['x509', '-in', 'root.pem', '-noout', '-text'], { cwd: dir }).stdout
    assert.match(rootText, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/)
    assert.match(rootText, /O = Acme Buildings, CN = Thingward Root CA [0-9A-F]{8}/)
    const selfSigned = openssl(['verify', '-CAfile', 'root.pem', 'root.pem'], { cwd: dir })
    assert.equal(selfSigned.status, 0, selfSigned.out)
  })

  test(`${algorithm} hierarchy: Node's X509Certificate, @peculiar/x509 and pkijs read every field of a device certificate`, async () => {
    const { root, issuing } = hierarchy(algorithm)
    const issuer = issuerFor(issuing)
    const device = generateKeyPair('EC-P256')
    const dev = issuer.issueFromCsr(createCsr({ ...device, commonName: 'dev-2' }), { nowMs: NOW, validityDays: 30 })
    const issuingNode = new X509Certificate(issuing.certPem)
    const rootNode = new X509Certificate(root.certPem)

    // Node (OpenSSL 3.5)
    const node = new X509Certificate(dev.certPem)
    assert.equal(node.subject, 'CN=dev-2')
    assert.equal(node.issuer, issuingNode.subject)
    assert.equal(node.serialNumber.toLowerCase(), dev.serialHex)
    assert.equal(node.validFromDate.getTime(), dev.notBeforeMs)
    assert.equal(node.validToDate.getTime(), dev.notAfterMs)
    assert.equal(dev.notBeforeMs, Math.floor(NOW / 1000) * 1000)
    assert.equal(dev.notAfterMs - dev.notBeforeMs, 30 * DAY_MS)
    assert.equal(node.ca, false)
    assert.deepEqual(node.keyUsage, ['1.3.6.1.5.5.7.3.2']) // Node reports extKeyUsage here
    assert.match(node.infoAccess ?? '', new RegExp(`OCSP - URI:${OCSP_URL}`))
    assert.ok(node.checkIssued(issuingNode))
    assert.ok(node.verify(issuingNode.publicKey))
    assert.ok(node.publicKey.equals(device.publicKey))
    assert.ok(node.checkPrivateKey(device.privateKey))
    assert.equal(node.fingerprint256.replaceAll(':', '').toLowerCase(), dev.certificateId)
    assert.equal(createHash('sha256').update(dev.certDer).digest('hex'), dev.certificateId)
    assert.equal(node.toString(), dev.certPem)
    assert.ok(issuingNode.ca && rootNode.ca)
    assert.ok(issuingNode.checkIssued(rootNode) && issuingNode.verify(rootNode.publicKey))

    // @peculiar/x509
    const p = new x509.X509Certificate(dev.certPem)
    const pIssuing = new x509.X509Certificate(issuing.certPem)
    assert.equal(p.serialNumber, dev.serialHex)
    assert.equal(p.subject, 'CN=dev-2')
    assert.equal(p.signatureAlgorithm.hash.name, SIG_ALG[algorithm].hash)
    const bc = p.getExtension(x509.BasicConstraintsExtension)
    assert.ok(bc !== null && bc.critical && !bc.ca)
    const ku = p.getExtension(x509.KeyUsagesExtension)
    assert.ok(ku !== null && ku.critical)
    assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature)
    assert.deepEqual([...(p.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], [x509.ExtendedKeyUsage.clientAuth])
    const spkiBits = device.publicKey.export({ format: 'jwk' })
    const rawPoint = Buffer.concat([Buffer.from([4]), Buffer.from(spkiBits.x ?? '', 'base64url'), Buffer.from(spkiBits.y ?? '', 'base64url')])
    assert.equal(p.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId, createHash('sha1').update(rawPoint).digest('hex'))
    assert.equal(p.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, pIssuing.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId)
    const cdp = p.getExtension(x509.CRLDistributionPointsExtension)
    assert.equal(cdp?.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier, CRL_URL)
    assert.equal(p.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp[0]?.value, OCSP_URL)
    assert.equal(await p.verify({ publicKey: pIssuing.publicKey, signatureOnly: true }), true)
    assert.equal(await pIssuing.verify({ publicKey: new x509.X509Certificate(root.certPem).publicKey, signatureOnly: true }), true)
    const chain = await new x509.X509ChainBuilder({ certificates: [pIssuing, new x509.X509Certificate(root.certPem)] }).build(p)
    assert.equal(chain.length, 3)

    // pkijs
    const k = pkijs.Certificate.fromBER(dev.certDer)
    const kIssuing = pkijs.Certificate.fromBER(issuing.certDer)
    assert.equal(k.version, 2)
    assert.equal(Buffer.from(k.serialNumber.valueBlock.valueHexView).toString('hex'), dev.serialHex)
    assert.equal(await k.verify(kIssuing), true)
    assert.equal(k.notAfter.value.getTime(), dev.notAfterMs)
    assert.deepEqual(k.extensions?.map((e) => e.extnID), ['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.14', '2.5.29.35', '2.5.29.31', '1.3.6.1.5.5.7.1.1'])

    // Our own parser agrees.
    const info = parseCertificate(dev.certPem)
    assert.equal(info.subject, dev.subject)
    assert.equal(info.serialHex, dev.serialHex)
    assert.equal(info.certificateId, dev.certificateId)
    assert.equal(info.fingerprint256, node.fingerprint256)
  })
}

test('CSR path: every allowed key type is issued, SPKI and subject copied verbatim, RSA adds keyEncipherment', async (t) => {
  const { root, issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing)
  const { write, dir } = tempDir(t)
  write('root.pem', root.certPem)
  write('issuing.pem', issuing.certPem)
  const csrs: Array<{ name: string, csr: string, rsa: boolean }> = []
  for (const alg of ['EC-P256', 'EC-P384', 'Ed25519', 'RSA-2048', 'RSA-3072'] as KeyAlgorithm[]) {
    const kp = generateKeyPair(alg)
    csrs.push({ name: `ours-${alg}`, csr: createCsr({ ...kp, commonName: `dev-${alg}` }), rsa: alg.startsWith('RSA') })
  }
  // CSRs made by OpenSSL itself, with multi-RDN subjects and the algorithms createCsr does not offer.
  const made: Array<[string, string[], boolean]> = [
    ['openssl-P-521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], false],
    ['openssl-P-256-sha384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-sha384'], false],
    ['openssl-RSA-2048-sha512', ['-newkey', 'rsa:2048', '-sha512'], true],
    ['openssl-Ed25519', ['-newkey', 'ed25519'], false],
  ]
  for (const [name, args, rsa] of made) {
    const r = openssl(['req', '-new', ...args, '-nodes', '-keyout', `${name}.key`, '-subj', '/C=DE/O=Acme/OU=Floor 3/CN=sensor-9', '-out', `${name}.csr`], { cwd: dir })
    assert.equal(r.status, 0, r.out)
    csrs.push({ name, csr: readFileSync(join(dir, `${name}.csr`), 'utf8'), rsa })
  }
  for (const { name, csr, rsa } of csrs) {
    const before = issuer.issuedCount
    const cert = issuer.issueFromCsr(name.startsWith('openssl') ? Buffer.from(csr) : csr, { nowMs: NOW })
    assert.equal(issuer.issuedCount, before + 1)
    write(`${name}.pem`, cert.certPem)
    const v = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', `${name}.pem`], { cwd: dir })
    assert.equal(v.status, 0, `${name}: ${v.out}`)
    const pCsr = new x509.Pkcs10CertificateRequest(csr)
    const pCert = new x509.X509Certificate(cert.certPem)
    assert.ok(Buffer.from(pCsr.publicKey.rawData).equals(Buffer.from(pCert.publicKey.rawData)), `${name}: SPKI copied verbatim`)
    assert.ok(Buffer.from(pCsr.subjectName.toArrayBuffer()).equals(Buffer.from(pCert.subjectName.toArrayBuffer())), `${name}: subject copied verbatim`)
    const expectedUsage = rsa ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature
    assert.equal(pCert.getExtension(x509.KeyUsagesExtension)?.usages, expectedUsage, name)
    if (name.startsWith('openssl')) {
      assert.equal(cert.subject, 'CN=sensor-9,OU=Floor 3,O=Acme,C=DE')
      const key = createPrivateKey(readFileSync(join(dir, `${name}.key`)))
      assert.ok(new X509Certificate(cert.certDer).checkPrivateKey(key))
    }
  }
})

test('CSR path: commonName replaces the CSR CN and keeps the other RDNs; DER input works', (t) => {
  const { root, issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing, false)
  const { write, dir } = tempDir(t)
  const r = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-subj', '/O=Acme/CN=factory-default', '-outform', 'DER', '-out', 'r.der'], { cwd: dir })
  assert.equal(r.status, 0, r.out)
  const cert = issuer.issueFromCsr(readFileSync(join(dir, 'r.der')), { nowMs: NOW, commonName: 'thing-42' })
  assert.equal(cert.subject, 'CN=thing-42,O=Acme')
  assert.equal(new X509Certificate(cert.certPem).subject, 'O=Acme\nCN=thing-42')
  write('root.pem', root.certPem)
  write('issuing.pem', issuing.certPem)
  write('c.pem', cert.certPem)
  assert.equal(openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'c.pem'], { cwd: dir }).status, 0)
  // No URLs configured → no CDP / AIA extensions.
  const node = new X509Certificate(cert.certPem)
  assert.equal(node.infoAccess, undefined)
  assert.doesNotMatch(openssl(['x509', '-in', 'c.pem', '-noout', '-text'], { cwd: dir }).stdout, /CRL Distribution|Authority Information/)
})

test('CSR refusals: weak or forbidden keys, bad signatures, garbage and wrong PEM labels sign nothing', (t) => {
  const { issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing)
  const { dir } = tempDir(t)
  const mk = (name: string, keyArgs: string[], extra: string[] = []): string => {
    const r = openssl(['req', '-new', ...keyArgs, '-nodes', '-keyout', `${name}.key`, '-subj', '/CN=weak', ...extra, '-out', `${name}.csr`], { cwd: dir })
    assert.equal(r.status, 0, r.out)
    return readFileSync(join(dir, `${name}.csr`), 'utf8')
  }
  const gen = (name: string, args: string[]): void => { const r = openssl(args, { cwd: dir }); assert.equal(r.status, 0, `${name}: ${r.out}`) }
  gen('p192', ['ecparam', '-name', 'prime192v1', '-genkey', '-noout', '-out', 'p192.key'])
  gen('k1', ['ecparam', '-name', 'secp256k1', '-genkey', '-noout', '-out', 'k1.key'])
  gen('dsaparam', ['dsaparam', '-out', 'dsa.param', '2048'])
  gen('dsa', ['gendsa', '-out', 'dsa.key', 'dsa.param'])
  const good = createCsr({ ...generateKeyPair('EC-P256'), commonName: 'dev-ok' })
  const goodDer = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  const tamperedSig = Buffer.from(goodDer)
  tamperedSig[tamperedSig.length - 5] ^= 0x01
  const tamperedSubject = Buffer.from(goodDer)
  const at = tamperedSubject.indexOf(Buffer.from('dev-ok'))
  tamperedSubject[at] = 'D'.charCodeAt(0)

  const cases: Array<[string, string | Buffer, 'ERR_PKI_CSR_INVALID' | 'ERR_PKI_KEY_WEAK', RegExp]> = [
    ['RSA-1024', mk('rsa1024', ['-newkey', 'rsa:1024']), 'ERR_PKI_KEY_WEAK', /^RSA key of 1024 bits is too weak: minimum 2048$/],
    ['P-192', mk('p192', ['-key', 'p192.key']), 'ERR_PKI_KEY_WEAK', /^EC curve secp192r1 is not allowed: use P-256 or P-384$/],
    ['secp256k1', mk('k1', ['-key', 'k1.key']), 'ERR_PKI_KEY_WEAK', /^EC curve secp256k1 is not allowed/],
    ['DSA', mk('dsa', ['-key', 'dsa.key']), 'ERR_PKI_KEY_WEAK', /^DSA keys are not allowed$/],
    ['Ed448', mk('ed448', ['-newkey', 'ed448']), 'ERR_PKI_KEY_WEAK', /^Ed448 keys are not allowed/],
    ['SHA-1 signature', mk('sha1', ['-newkey', 'rsa:2048'], ['-sha1']), 'ERR_PKI_CSR_INVALID', /signature algorithm sha1WithRsa is not allowed/],
    ['tampered signature', tamperedSig, 'ERR_PKI_CSR_INVALID', /^CSR signature does not verify/],
    ['tampered subject', tamperedSubject, 'ERR_PKI_CSR_INVALID', /^CSR signature does not verify/],
    ['garbage text', 'hello, I am not a CSR', 'ERR_PKI_CSR_INVALID', /^CSR is not PEM: no -----BEGIN line$/],
    ['garbage DER', Buffer.from('3003020101ff', 'hex'), 'ERR_PKI_CSR_INVALID', /^CSR is malformed: /],
    ['truncated DER', goodDer.subarray(0, 40), 'ERR_PKI_CSR_INVALID', /^CSR is malformed: /],
    ['empty', '', 'ERR_PKI_CSR_INVALID', /not PEM/],
    ['certificate PEM', issuing.certPem, 'ERR_PKI_CSR_INVALID', /^expected PEM CERTIFICATE REQUEST but found CERTIFICATE$/],
    ['private key PEM', generateKeyPair('EC-P256').privateKeyPem, 'ERR_PKI_CSR_INVALID', /^expected PEM CERTIFICATE REQUEST but found PRIVATE KEY$/],
    ['non-base64 body', '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n', 'ERR_PKI_CSR_INVALID', /PEM body is not base64/],
    ['padding in the middle', '-----BEGIN CERTIFICATE REQUEST-----\nAA==AA\n-----END CERTIFICATE REQUEST-----\n', 'ERR_PKI_CSR_INVALID', /PEM body is not base64/],
    ['oversized', 'A'.repeat(70_000), 'ERR_PKI_CSR_INVALID', /^CSR is larger than 64 KiB$/],
  ]
  for (const [name, csr, code, message] of cases) {
    const before = issuer.issuedCount
    const err = assertAppError(() => issuer.issueFromCsr(csr, { nowMs: NOW }), code, message)
    assert.equal(issuer.issuedCount, before, `${name}: nothing may be signed (${err.message})`)
  }
})

// A backtracking blow-up would hang here; the timeout turns that into a failure (it is a guard, not a measurement).
test('PEM parsing rejects hostile whitespace without regex backtracking', { timeout: 20_000 }, () => {
  const { issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing)
  const hostile = '-----BEGIN CERTIFICATE REQUEST-----\nA' + ' '.repeat(60_000) + '!\n-----END CERTIFICATE REQUEST-----\n'
  assertAppError(() => issuer.issueFromCsr(hostile, { nowMs: NOW }), 'ERR_PKI_CSR_INVALID', /PEM body is not base64/)
  assertAppError(() => parseCertificate('-----BEGIN CERTIFICATE-----\nA' + '\t'.repeat(500_000) + '!\n-----END CERTIFICATE-----'), 'ERR_PKI_CERT_INVALID', /not base64/)
})

test('CSR with an empty subject needs a commonName', (t) => {
  const { issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing)
  const { dir } = tempDir(t)
  const r = openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-subj', '/', '-out', 'r.csr'], { cwd: dir })
  if (r.status !== 0) { t.skip('this openssl refuses an empty subject'); return }
  const csr = readFileSync(join(dir, 'r.csr'), 'utf8')
  assertAppError(() => issuer.issueFromCsr(csr, { nowMs: NOW }), 'ERR_PKI_CSR_INVALID', /^CSR subject is empty and no commonName was given$/)
  assert.equal(issuer.issuedCount, 0)
  assert.equal(issuer.issueFromCsr(csr, { nowMs: NOW, commonName: 'named' }).subject, 'CN=named')
})

test('generated keys: issueForPublicKey signs CN=commonName certs that verify, for every key algorithm', (t) => {
  const { root, issuing } = hierarchy('EC-P384')
  const issuer = issuerFor(issuing)
  const { write, dir } = tempDir(t)
  write('root.pem', root.certPem)
  write('issuing.pem', issuing.certPem)
  for (const alg of ['EC-P256', 'EC-P384', 'Ed25519', 'RSA-2048'] as KeyAlgorithm[]) {
    const kp = generateKeyPair(alg)
    assert.match(kp.privateKeyPem, /^-----BEGIN [A-Z ]*KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/)
    assert.match(kp.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/)
    const cert = issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: `gen-${alg}` })
    assert.equal(cert.subject, `CN=gen-${alg}`)
    write(`${alg}.pem`, cert.certPem)
    const v = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', `${alg}.pem`], { cwd: dir })
    assert.equal(v.status, 0, `${alg}: ${v.out}`)
    assert.ok(new X509Certificate(cert.certPem).checkPrivateKey(createPrivateKey(kp.privateKeyPem)))
  }
  // A private key is accepted as "the public key of this private key".
  const kp = generateKeyPair('EC-P256')
  assert.ok(new X509Certificate(issuer.issueForPublicKey(kp.privateKey, { nowMs: NOW, commonName: 'p' }).certPem).publicKey.equals(kp.publicKey))
  // Weak keys are refused here too.
  const { dir: d2 } = tempDir(t)
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', 'weak.key'], { cwd: d2 })
  const weak = createPublicKey(readFileSync(join(d2, 'weak.key')))
  const before = issuer.issuedCount
  assertAppError(() => issuer.issueForPublicKey(weak, { nowMs: NOW, commonName: 'weak' }), 'ERR_PKI_KEY_WEAK', /^RSA key of 1024 bits is too weak: minimum 2048$/)
  assertAppError(() => issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'x'.repeat(65) }), 'ERR_PKI_INVALID_ARGUMENT', /64 characters/)
  assertAppError(() => issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'ok', validityDays: 0 }), 'ERR_PKI_INVALID_ARGUMENT', /validityDays/)
  assertAppError(() => issuer.issueForPublicKey(kp.publicKey, { nowMs: Number.NaN, commonName: 'ok' }), 'ERR_PKI_INVALID_ARGUMENT', /nowMs/)
  assert.equal(issuer.issuedCount, before)
})

test('server certificates carry DNS and IP SANs and serverAuth; bad names are refused', (t) => {
  const { root, issuing } = hierarchy('EC-P256')
  const issuer = issuerFor(issuing)
  const kp = generateKeyPair('EC-P256')
  const srv = issuer.issueServerCertificate(kp.publicKey, { nowMs: NOW, validityDays: 90, dnsNames: ['mqtt.example.com', '*.devices.example.com'], ipAddresses: ['10.0.0.7', '2001:db8::1'] })
  const node = new X509Certificate(srv.certPem)
  assert.equal(node.subjectAltName, 'DNS:mqtt.example.com, DNS:*.devices.example.com, IP Address:10.0.0.7, IP Address:2001:DB8:0:0:0:0:0:1')
  assert.deepEqual(node.keyUsage, ['1.3.6.1.5.5.7.3.1'])
  assert.equal(node.checkHost('mqtt.example.com'), 'mqtt.example.com')
  assert.equal(node.checkHost('a.devices.example.com'), '*.devices.example.com')
  assert.equal(node.checkIP('10.0.0.7'), '10.0.0.7')
  assert.equal(node.checkHost('evil.example.com'), undefined)
  assert.equal(srv.subject, 'CN=mqtt.example.com')
  assert.equal(srv.notAfterMs - srv.notBeforeMs, 90 * DAY_MS)
  const { write, dir } = tempDir(t)
  write('root.pem', root.certPem)
  write('issuing.pem', issuing.certPem)
  write('srv.pem', srv.certPem)
  const v = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslserver', '-verify_hostname', 'mqtt.example.com', 'srv.pem'], { cwd: dir })
  assert.equal(v.status, 0, v.out)
  const ipOnly = issuer.issueServerCertificate(kp.publicKey, { nowMs: NOW, dnsNames: [], ipAddresses: ['127.0.0.1'] })
  assert.equal(new X509Certificate(ipOnly.certPem).checkIP('127.0.0.1'), '127.0.0.1')
  const before = issuer.issuedCount
  assertAppError(() => issuer.issueServerCertificate(kp.publicKey, { nowMs: NOW, dnsNames: [], ipAddresses: [] }), 'ERR_PKI_INVALID_ARGUMENT', /at least one DNS name or IP address/)
  assertAppError(() => issuer.issueServerCertificate(kp.publicKey, { nowMs: NOW, dnsNames: ['bad_name.example'], ipAddresses: [] }), 'ERR_PKI_INVALID_ARGUMENT', /DNS name has an invalid label/)
  assertAppError(() => issuer.issueServerCertificate(kp.publicKey, { nowMs: NOW, dnsNames: [], ipAddresses: ['300.1.1.1'] }), 'ERR_PKI_INVALID_ARGUMENT', /IP address/)
  assert.equal(issuer.issuedCount, before)
})

test('validity: default 365 days, clamped to the CA notAfter; an expired or mismatched CA signs nothing', () => {
  const h = createCaHierarchy({ algorithm: 'EC-P256', nowMs: NOW, rootValidityDays: 3650, issuingValidityDays: 10 })
  const issuer = issuerFor(h.issuing)
  const kp = generateKeyPair('EC-P256')
  const caNotAfter = new X509Certificate(h.issuing.certPem).validToDate.getTime()
  assert.equal(caNotAfter, Math.floor(NOW / 1000) * 1000 + 10 * DAY_MS)
  const c = issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'clamped' })
  assert.equal(c.notAfterMs, caNotAfter)
  const short = issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'short', validityDays: 1 / 24 })
  assert.equal(short.notAfterMs - short.notBeforeMs, 3_600_000)
  const h2 = hierarchy('EC-P256')
  const def = issuerFor(h2.issuing).issueForPublicKey(kp.publicKey, { nowMs: NOW, commonName: 'default' })
  assert.equal(def.notAfterMs - def.notBeforeMs, 365 * DAY_MS)

  const before = issuer.issuedCount
  assertAppError(() => issuer.issueForPublicKey(kp.publicKey, { nowMs: caNotAfter + 1000, commonName: 'late' }), 'ERR_PKI_CA_INVALID', /^issuing CA certificate has expired$/)
  assertAppError(() => issuer.issueForPublicKey(kp.publicKey, { nowMs: NOW - 3_600_000, commonName: 'early' }), 'ERR_PKI_CA_INVALID', /^issuing CA certificate is not yet valid$/)
  assert.equal(issuer.issuedCount, before)

  assertAppError(() => new CertificateIssuer({ caCertPem: h.issuing.certPem, caPrivateKeyPkcs8Der: h.root.privateKeyPkcs8Der }), 'ERR_PKI_CA_INVALID', /^CA private key does not match the CA certificate$/)
  const leafKey = generateKeyPair('EC-P256')
  const leaf = issuer.issueForPublicKey(leafKey.publicKey, { nowMs: NOW, commonName: 'leaf' })
  assertAppError(() => new CertificateIssuer({ caCertPem: leaf.certPem, caPrivateKeyPkcs8Der: leafKey.privateKey.export({ type: 'pkcs8', format: 'der' }) }), 'ERR_PKI_CA_INVALID', /^certificate is not a CA/)
  assertAppError(() => new CertificateIssuer({ caCertPem: 'nope', caPrivateKeyPkcs8Der: h.issuing.privateKeyPkcs8Der }), 'ERR_PKI_CA_INVALID', /not PEM/)
  assertAppError(() => new CertificateIssuer({ caCertPem: h.issuing.certPem, caPrivateKeyPkcs8Der: Buffer.from('junk') }), 'ERR_PKI_CA_INVALID', /not a valid PKCS#8/)
  assertAppError(() => new CertificateIssuer({ caCertPem: h.issuing.certPem, caPrivateKeyPkcs8Der: h.issuing.privateKeyPkcs8Der, crlUrl: 'ftp://x' }), 'ERR_PKI_INVALID_ARGUMENT', /crlUrl/)
})

test('dates from 2050 are GeneralizedTime and OpenSSL and Node read them (RFC 5280 §4.1.2.5)', (t) => {
  const nowMs = Date.UTC(2049, 5, 1, 12, 0, 0)
  const h = createCaHierarchy({ algorithm: 'EC-P256', nowMs, rootValidityDays: 3650, issuingValidityDays: 1825 })
  const issuer = issuerFor(h.issuing)
  const kp = generateKeyPair('EC-P256')
  const cert = issuer.issueForPublicKey(kp.publicKey, { nowMs, commonName: 'future' })
  const node = new X509Certificate(cert.certPem)
  assert.equal(node.validFromDate.getTime(), nowMs)
  assert.equal(node.validToDate.getTime(), nowMs + 365 * DAY_MS)
  assert.equal(new Date(cert.notAfterMs).getUTCFullYear(), 2050)
  const k = pkijs.Certificate.fromBER(cert.certDer)
  assert.equal(k.notBefore.type, 0) // UTCTime
  assert.equal(k.notAfter.type, 1) // GeneralizedTime
  const { write, dir } = tempDir(t)
  write('root.pem', h.root.certPem)
  write('issuing.pem', h.issuing.certPem)
  write('leaf.pem', cert.certPem)
  const at = String(Math.floor(Date.UTC(2050, 2, 1) / 1000))
  const v = openssl(['verify', '-attime', at, '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', '-purpose', 'sslclient', 'leaf.pem'], { cwd: dir })
  assert.equal(v.status, 0, v.out)
  const late = openssl(['verify', '-attime', String(Math.floor(Date.UTC(2050, 6, 1) / 1000)), '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'leaf.pem'], { cwd: dir })
  assert.notEqual(late.status, 0)
  assert.match(late.out, /certificate has expired/)
})

test('createIssuingCa rotates the issuing CA under the same root', (t) => {
  const { root, issuing } = hierarchy('EC-P256')
  const next = createIssuingCa({ rootCertPem: root.certPem, rootPrivateKeyPkcs8Der: root.privateKeyPkcs8Der, algorithm: 'EC-P384', nowMs: NOW, validityDays: 365 })
  assert.notEqual(new X509Certificate(next.certPem).subject, new X509Certificate(issuing.certPem).subject)
  const cert = issuerFor(next).issueForPublicKey(generateKeyPair('EC-P256').publicKey, { nowMs: NOW, commonName: 'rotated' })
  const { write, dir } = tempDir(t)
  write('root.pem', root.certPem)
  write('next.pem', next.certPem)
  write('leaf.pem', cert.certPem)
  const v = openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'next.pem', '-purpose', 'sslclient', 'leaf.pem'], { cwd: dir })
  assert.equal(v.status, 0, v.out)
})
