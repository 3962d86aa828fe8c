import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CreateKeysAndCertificateCommand, UpdateCertificateCommand } from '@aws-sdk/client-iot'
import { startPlatform } from './helpers/platform.ts'

const run = promisify(execFile)

test('CRL (DER and PEM) and OCSP over HTTPS are accepted by openssl; revocation shows at once', async (t) => {
  const p = await startPlatform(t)
  const iot = p.iot()
  const good = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  const bad = await iot.send(new CreateKeysAndCertificateCommand({ setAsActive: true }))
  await iot.send(new UpdateCertificateCommand({ certificateId: bad.certificateId, newStatus: 'REVOKED' }))

  const dir = mkdtempSync(join(tmpdir(), 'tw-crl-'))
  const [issuing, root] = p.caPem.split(/(?<=-----END CERTIFICATE-----)\s*/).filter(s => s.includes('BEGIN'))
  writeFileSync(join(dir, 'chain.pem'), p.caPem)
  writeFileSync(join(dir, 'issuing.pem'), issuing)
  writeFileSync(join(dir, 'root.pem'), root)
  writeFileSync(join(dir, 'good.pem'), good.certificatePem ?? '')
  writeFileSync(join(dir, 'bad.pem'), bad.certificatePem ?? '')

  const fetchBytes = async (path: string, init?: RequestInit): Promise<Buffer> => {
    const { Agent, request } = await import('node:https')
    return new Promise((resolve, reject) => {
      const req = request(`${p.endpoint}${path}`, { method: init?.method ?? 'GET', agent: new Agent({ ca: p.caPem }), headers: init?.headers as Record<string, string> }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve(Buffer.concat(chunks)))
      })
      req.on('error', reject)
      req.end(init?.body as Buffer | undefined)
    })
  }
  writeFileSync(join(dir, 'crl.der'), await fetchBytes('/crl'))
  const pem = (await fetchBytes('/crl.pem')).toString()
  assert.match(pem, /^-----BEGIN X509 CRL-----/)
  writeFileSync(join(dir, 'crl.pem'), pem)
  const verified = await run('openssl', ['crl', '-in', 'crl.der', '-inform', 'DER', '-CAfile', 'chain.pem', '-noout', '-verify'], { cwd: dir })
  assert.match(verified.stdout + verified.stderr, /verify OK/)
  const text = (await run('openssl', ['crl', '-in', 'crl.pem', '-noout', '-text'], { cwd: dir })).stdout
  const badSerial = (await run('openssl', ['x509', '-in', 'bad.pem', '-noout', '-serial'], { cwd: dir })).stdout.split('=')[1].trim()
  const goodSerial = (await run('openssl', ['x509', '-in', 'good.pem', '-noout', '-serial'], { cwd: dir })).stdout.split('=')[1].trim()
  assert.ok(text.toUpperCase().includes(badSerial.toUpperCase()), 'the revoked serial is on the CRL')
  assert.ok(!text.toUpperCase().includes(goodSerial.toUpperCase()), 'the good serial is not on the CRL')

  // A client that enforces the CRL (openssl verify -crl_check) refuses the revoked chain and accepts the good one.
  const ok = await run('openssl', ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'good.pem'], { cwd: dir })
  assert.match(ok.stdout, /good.pem: OK/)
  await assert.rejects(run('openssl', ['verify', '-crl_check', '-CRLfile', 'crl.pem', '-CAfile', 'root.pem', '-untrusted', 'issuing.pem', 'bad.pem'], { cwd: dir }), /revoked/)

  // openssl ocsp over our HTTPS endpoint, with the default SHA-1 CertID and with SHA-256 (RFC 6960 §4.1.1).
  for (const [leaf, expected] of [['good.pem', /good\.pem: good/], ['bad.pem', /bad\.pem: revoked/]] as const) {
    for (const hash of [[], ['-sha256']]) {
      const r = await run('openssl', ['ocsp', '-issuer', 'issuing.pem', ...hash, '-cert', leaf, '-CAfile', 'chain.pem', '-url', `${p.endpoint}/ocsp`, '-resp_text'], { cwd: dir })
      assert.match(r.stdout, expected, `${leaf} ${hash.join('')}`)
      assert.match(r.stderr + r.stdout, /Response verify OK/)
    }
  }
  const malformed = await fetchBytes('/ocsp', { method: 'POST', body: Buffer.from('not der'), headers: { 'content-type': 'application/ocsp-request' } })
  // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED malformedRequest(1) }
  assert.deepEqual([...malformed], [0x30, 0x03, 0x0a, 0x01, 0x01])
})
